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

scenario_begin
paf_cluster_switched

# 1. a stale standby: pgha's monitor gives it -1000 (transient), PAF's positive permanent stays
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

# 2. crm-examples/paf-to-pgha.sh: the agent (already pgha: unchanged) and PAF's scores cleaned
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
