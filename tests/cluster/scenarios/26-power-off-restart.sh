#!/bin/bash
# 26-power-off-restart (PAF #225, the power cut): one standby L lags (primary_conninfo at a
# closed port) while rows go to the primary P and the other standby G. Then every node loses
# power at once: P's PostgreSQL is left "in production", the standbys "in archive recovery",
# and no promotion score survives. L's network problem is fixed and all nodes boot together.
# With no primary anywhere, every node starts as a standby, the crashed P included (issue 10:
# it no longer waits for a cleanup): P replays its own WAL, gets the former primary's
# first-start score, and the election promotes the most advanced node, P or G, never the
# stale L; no committed row is lost, both others stream from it, and no step is done by
# hand.
# NEEDS PROMOTION (the agent's in-place recovery and its election).
# shellcheck source=../lib/common.sh
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_with_stale_standby t26
p=$PRIMARY; l=$STALE; g=$GOOD

for n in node1 node2 node3; do h crash "$n"; done
say "power cut on every node"
for n in node1 node2 node3; do h boot-ns "$n"; done
for n in node1 node2 node3; do say "$n after the power cut: $(h pg-state "$n")"; done
attach_standby "$l" || ko "reattach $l"

t0=$(now)
for n in node1 node2 node3; do h start-stack "$n" & done
wait || fatal "start the stack of every node"
require "every node online" h wait-online
if ! h wait-mon "1 Promoted, not the stale $l" \
     "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$l'] and $(xp_roles 1 2)" 60; then
  say "scores: $(for m in node1 node2 node3; do printf '%s=%s ' "$m" "$(promotion_score "$m")"; done)"
  show_mon node1
  fatal "a primary that is not the stale $l, and two standbys, after the power cut"
fi
n=$(promoted_node)
ok "$n promoted after the power cut, the stale $l a standby, with no step by hand"
say "power cut -> $n promoted: $(since "$t0") s (since the stacks started)"
check "the promoted node is the former primary $p or the up-to-date standby $g (got $n)" \
  bash -c "[ '$n' = '$p' ] || [ '$n' = '$g' ]"
show_agent_log "$p" "crashed as a primary|elected|best candidate|first-start|bringing" 3
check "the crashed primary $p started as a standby and took part in the election" \
  in_agent_log "$p" "crashed as a primary .* takes part in the election"
rows=$(sql_vip "$g" "select count(*) from t26" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100
check "both standbys stream from $n" wait_streaming "$n" "$(other_nodes "$n")" 45
say "power cut -> every standby streaming: $(since "$t0") s"
scenario_end
