#!/bin/bash
# 41-paf-leftover-failover: can PAF's permanent promotion scores, left by a switch to pgha that
# only changed the agent (as in 40), get a wrong node promoted? The PAF primary's node L keeps
# PAF's permanent 1001 after a switchover makes it a standby; L goes stale (its WAL receiver
# detached, 1000 more rows on the primary); L's transient score is absent (what a reboot or a
# rejoin leaves until the primary's next monitor), so the scheduler gives L PAF's 1001, more
# than any score pgha gives; then the primary's node loses power. Checked: Pacemaker designates
# the stale L (PAF's score), pgha's election refuses it and promotes G, the up-to-date standby;
# no row is lost. So the leftovers mislead Pacemaker, and pgha's election is what keeps the
# promotion right (crm-examples/paf-to-pgha.sh removes them).
# NEEDS PROMOTION (switchover, failover, the election).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
paf_cluster_switched
l=$PRIMARY
target=${STANDBYS%% *}
check "pcs-switchover.sh $target: PAF's primary $l becomes a standby" quiet h exec node1 \
  env PGHA_SWITCHOVER_WAIT=40 bash "$PGHA_CLUSTER_ROOT/crm-examples/pcs-switchover.sh" "$target"
require "$target Promoted, 1 + 2" h wait-mon "$target Promoted" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$target'] and $(xp_roles 1 2)" 30
p=$target; g=$(other_nodes "$p" | tr ' ' '\n' | grep -vx "$l")
require "$l and $g streaming from $p" wait_streaming "$p" "$(other_nodes "$p")" 30
require "pgha scored $l and $g" wait_pgha_scores "$l" "$g"

stale_standby "$p" "$l" "$g" t41
require "$g replayed the 1000 new rows" wait_replayed "$g" "$(current_lsn "$p")"
check "pgha scores the stale $l -1000" h wait-mon "$l at -1000" \
  "//node_attributes/node[@name='$l']/attribute[@name='master-$RSC' and @value='-1000']" 40
h exec node1 crm_attribute -N "$l" -n "master-$RSC" -l reboot -D
say "stale $l, transient score gone: $(scores_of "$l"); $g: $(scores_of "$g")"
check "the scheduler gives the stale $l PAF's ${PAF_SCORE[$l]}, above $g's" \
  test "$(scheduler_score "$l")" -gt "$(scheduler_score "$g")"

t0=$(now)
h crash "$p"
say "power cut of the primary's node $p"
check "$p fenced" h wait-offline "$p"
check "$g, the up-to-date standby, is promoted" h wait-mon "$g Promoted" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$g']" 60
say "$g promoted $(since "$t0") s after the power cut"
check "Pacemaker designated the stale $l first (PAF's score), pgha's election refused it" \
  in_agent_log "$l" "$g is the best candidate to promote"
show_agent_log "$l" "promoting instance on node|best candidate"
rows=$(sql_vip "$g" "select count(*) from t41" 2>/dev/null || true)
check "no row lost: $rows of 1100 through the VIP" test "$rows" = 1100
scenario_end
