#!/bin/bash
# 26-power-off-restart (PAF #225, the power cut): one standby L lags (primary_conninfo at a
# closed port) while rows go to the primary P and the other standby G. Then every node loses
# power at once: P's PostgreSQL is left "in production", the standbys "in archive recovery",
# and no promotion score survives. L's network problem is fixed and all nodes boot together.
# With no primary anywhere, pgha will not start the crashed P (as PAF: it may hold writes no
# one else has, and nothing can tell yet whether it diverged); L and G start, one of them
# gets the first-start score and the election hands the promotion to G, the most advanced:
# never the stale L, and no committed row is lost. After `pcs resource cleanup`, P starts
# against the new primary: the rewind module brings it back as a standby by itself.
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
if ! h wait-mon "$g Promoted, $l Unpromoted" \
     "//resource[@id='$RSC' and @role='Promoted']/node[@name='$g'] and //resource[@id='$RSC' and @role='Unpromoted']/node[@name='$l']" 50; then
  say "scores: $(for m in node1 node2 node3; do printf '%s=%s ' "$m" "$(promotion_score "$m")"; done)"
  show_mon node1
  fatal "the most advanced standby $g promoted after the power cut"
fi
ok "the most advanced standby $g promoted after the power cut, the stale $l a standby"
say "power cut -> $g promoted: $(since "$t0") s (since the stacks started)"
show_agent_log "$g" "elected|best candidate|first-start" 2
show_agent_log "$l" "elected|best candidate|first-start" 2
check "the crashed primary $p was not started without a primary to compare it with" \
  in_agent_log "$p" "crashed as a primary .* no other primary is known"
rows=$(sql_vip "$g" "select count(*) from t26" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100

t0=$(now)
quiet h exec "$g" pcs resource cleanup "$RSC" || ko "pcs resource cleanup $RSC"
check "after the cleanup, $p back: 1 Promoted ($g) + 2 Unpromoted" h wait-mon "$p back" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$g'] and $(xp_roles 1 2)" 40
check "$p brought in line with $g by itself" in_agent_log "$p" "bringing .* in line with the primary"
check "both standbys stream from $g" wait_streaming "$g" "$(other_nodes "$g")" 30
say "cleanup -> $p streaming: $(since "$t0") s"
scenario_end
