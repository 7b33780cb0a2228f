#!/bin/bash
# 40-paf-switch: a cluster created with PAF 2.3 (ocf:heartbeat:pgsqlms, resource-agents-paf)
# switched to pgha in place, first as a user who only changes the agent, then with
# crm-examples/paf-to-pgha.sh. Shows what Pacemaker does with PAF's permanent promotion scores
# (`crm_master --lifetime forever`: master-pgsqld in the CIB's nodes section) next to pgha's
# transient ones (lifetime reboot, the status section):
# - a node with both: the scheduler uses pgha's transient value;
# - a node without a transient value (what a reboot or a rejoin leaves until the primary's
#   next monitor): the scheduler uses PAF's old permanent value, which pgha itself reads as
#   "unset" (crm_attribute --promotion): a stale standby is promotable with PAF's score;
# - after paf-to-pgha.sh: no permanent score is left, the stale standby has none at all.
# NEEDS PROMOTION (the agent's monitor scores the standbys).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
PAF=ocf:heartbeat:pgsqlms

# permanent_score NODE: PAF's permanent master-pgsqld of NODE ("" if none)
permanent_score() { h exec node1 crm_attribute -N "$1" -n "master-$RSC" -l forever -G -q 2>/dev/null || true; }
# scheduler_score NODE: the promotion score the scheduler gives NODE's instance ("" if none)
scheduler_score() {
  h exec node1 crm_simulate -Ls 2>/dev/null | sed -n "s/^$RSC:[0-9]* promotion score on $1: *//p"
}
# pgha_reads NODE: the promotion score as pgha reads it (crm_attribute --promotion, transient)
pgha_reads() { h exec node1 crm_attribute --promotion="$RSC" -N "$1" -G -q 2>/dev/null || echo unset; }
# wait_pgha_scores NODE...: pgha's monitor gave these nodes a positive transient score (crm_mon's
# node attributes cannot tell: they show PAF's permanent value when there is no transient one)
# shellcheck disable=SC2317 # called through check
wait_pgha_scores() {
  local deadline=$(( $(date +%s) + 40 )) n v ok
  while [ "$(date +%s)" -lt "$deadline" ]; do
    ok=1
    for n in "$@"; do v=$(pgha_reads "$n"); [ "$v" != unset ] && [ "$v" -gt 0 ] || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 1
  done
  say "no positive transient score on all of $*"; return 1
}
scores_of() { echo "permanent ${2:-$(permanent_score "$1")}, pgha reads $(pgha_reads "$1"), scheduler $(scheduler_score "$1")"; }

scenario_begin
needs_promotion
require_agent
[ -x /usr/lib/ocf/resource.d/heartbeat/pgsqlms ] || fatal "PAF is not installed (resource-agents-paf)"
cluster_up
pg_ready
t0=$(now)
AGENT=$PAF create_resources_pcs
require "PAF: 1 Promoted + 2 Unpromoted" wait_roles 1 2
PRIMARY=$(promoted_node); STANDBYS=$(other_nodes "$PRIMARY")
require "PAF: standbys $STANDBYS streaming" wait_streaming "$PRIMARY" "$STANDBYS" 30
cib_nodes_xp() { echo "//nodes/node[@uname='$1']/instance_attributes/nvpair[@name='master-$RSC' and number(@value) > 0]"; }
deadline=$(( $(date +%s) + 40 ))
until xpath_ok "$(h exec node1 cibadmin -Q -o nodes)" "$(cib_nodes_xp "${STANDBYS% *}") and $(cib_nodes_xp "${STANDBYS#* }")" \
  || [ "$(date +%s)" -ge "$deadline" ]; do sleep 1; done
declare -A PAF_SCORE
for n in node1 node2 node3; do PAF_SCORE[$n]=$(permanent_score "$n"); done
check "PAF's permanent scores: node1 ${PAF_SCORE[node1]}, node2 ${PAF_SCORE[node2]}, node3 ${PAF_SCORE[node3]}" \
  xpath_ok "$(h exec node1 cibadmin -Q -o nodes)" "$(cib_nodes_xp "${STANDBYS% *}") and $(cib_nodes_xp "${STANDBYS#* }")"
say "PAF cluster ready, $PRIMARY primary ($(since "$t0") s)"

# 1. the switch as a user who only changes the agent: maintenance, provider, cleanup
t0=$(now)
h exec node1 crm_attribute -t crm_config -n maintenance-mode -v true
h exec node1 cibadmin --modify --xml-text "<primitive id=\"$RSC\" provider=\"pgha\"/>"
quiet h exec node1 crm_resource --cleanup --resource "$RSC"
h exec node1 crm_attribute -t crm_config -n maintenance-mode -v false
check "pgha runs the clone, $PRIMARY still the primary" h wait-mon "pgha, same roles" \
  "//resource[@id='$RSC' and @resource_agent='ocf:pgha:pgsqlms' and @role='Promoted']/node[@name='$PRIMARY'] and $(xp_roles 1 2)" 30
check "standbys $STANDBYS streaming from $PRIMARY" wait_streaming "$PRIMARY" "$STANDBYS" 30
# shellcheck disable=SC2086 # one argument per node
check "pgha's monitor gave both standbys a transient score" wait_pgha_scores $STANDBYS
say "switched to pgha by changing the agent only ($(since "$t0") s)"
for n in node1 node2 node3; do say "  $n: $(scores_of "$n")"; done

# 2. a stale standby: pgha's monitor gives it -1000 (transient), PAF's positive permanent stays
s=${STANDBYS%% *}
require "$s detached" detach_standby "$PRIMARY" "$s"
check "pgha scores the stale $s -1000" h wait-mon "$s at -1000" \
  "//node_attributes/node[@name='$s']/attribute[@name='master-$RSC' and @value='-1000']" 40
say "stale $s, with both: $(scores_of "$s")"
check "with both, the scheduler uses pgha's transient -1000 (PAF's ${PAF_SCORE[$s]} is ignored)" \
  test "$(scheduler_score "$s")" = -1000
# what a reboot or a rejoin of the node leaves until the primary's next monitor: no transient score
h exec node1 crm_attribute -N "$s" -n "master-$RSC" -l reboot -D
say "stale $s, transient score gone: $(scores_of "$s")"
check "without it, the scheduler gives the stale $s PAF's old score ${PAF_SCORE[$s]}" \
  test "$(scheduler_score "$s")" = "${PAF_SCORE[$s]}"
check "while pgha reads $s's score as unset" test "$(pgha_reads "$s")" = unset

# 3. crm-examples/paf-to-pgha.sh: the agent (already pgha: unchanged) and PAF's scores cleaned
check "crm-examples/paf-to-pgha.sh" quiet h exec node1 bash "$PGHA_CLUSTER_ROOT/crm-examples/paf-to-pgha.sh"
check "no permanent promotion score left in the CIB" \
  bash -c "! '$H' exec node1 cibadmin -Q -o nodes | grep -q 'name=\"master-$RSC\"'"
say "stale $s after paf-to-pgha.sh: $(scores_of "$s" none)"
check "the scheduler no longer gives the stale $s a positive score" \
  bash -c "s=\$1; [ -z \"\$s\" ] || [ \"\$s\" -le 0 ]" _ "$(scheduler_score "$s")"
check "roles kept: $PRIMARY Promoted, 1 + 2" h wait-mon "same roles" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$PRIMARY'] and $(xp_roles 1 2)" 30
require "$s attached again" attach_standby "$s"
# shellcheck disable=SC2086 # one argument per node
check "$s streams again, both standbys scored by pgha" wait_pgha_scores $STANDBYS
check "crm_verify -L" h exec node1 crm_verify -L
scenario_end
