#!/bin/bash
# 24-full-restart-stale-standby (PAF #225: after a full restart a stale standby was elected):
# one standby L lags (primary_conninfo at a closed port) while rows go to the primary P and
# the other standby G. The whole cluster is stopped (every node's stack at once, gracefully:
# Pacemaker stops PostgreSQL everywhere), L's network problem is fixed, and the cluster is
# restarted: L and G first. They have quorum, and P, which they never saw, is fenced
# (Pacemaker's startup-fencing). No node is promoted and reboot-lifetime scores are gone, so
# the agent's first-start rule gives one of them score 1 and the election in promote hands
# the promotion to the most advanced, G: never the stale L. Then P is booted and rejoins as
# a standby; nothing is lost, L catches up and streams.
# NEEDS PROMOTION (the agent's first-start rule and its election).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_with_stale_standby t24
p=$PRIMARY; l=$STALE; g=$GOOD

t0=$(now)
for n in node1 node2 node3; do h stop-stack "$n" & done
wait || fatal "stop the stack of every node"
say "whole cluster stopped (every stack, at once): $(since "$t0") s"
for n in node1 node2 node3; do    # (pgha's demote is a clean stop + start as a standby)
  st=$(h pg-state "$n")
  check "$n stopped cleanly: $st" bash -c "[ '$st' = 'shut down' ] || [ '$st' = 'shut down in recovery' ]"
done
attach_standby "$l" || ko "reattach $l"

t0=$(now)
h start-stack "$l"; h start-stack "$g"
require "$l and $g online with quorum" h wait-online "$l" "$g"
# Pacemaker's startup-fencing: a node the new partition never saw is fenced before anything
# runs (here: powered off, pcmk_reboot_action=off), so P is booted again afterwards
check "$p seen offline by the new partition" h wait-offline "$p"
check "the most advanced present node $g is promoted, not the stale $l" \
  h wait-mon "$g Promoted" "//resource[@id='$RSC' and @role='Promoted']/node[@name='$g']" 30
# The partition without P may promote only once P is known dead.
fenced_at=$(pacemaker_log_time "$t0" "Peer $p was terminated .*: OK")
# (the result is "ok" in Pacemaker 2.1's log, "OK" in 3.0's)
promoted_at=$(pacemaker_log_time "$t0" "Result of promote operation for $RSC on [^:]*: (ok|OK)")
check "nothing promoted before $p was fenced (fenced at $fenced_at s, promoted at $promoted_at s of the day)" \
  awk -v f="$fenced_at" -v p="$promoted_at" 'BEGIN { exit !(f != "" && p != "" && f <= p) }'
if fenced "$p"; then say "$p was fenced (startup-fencing): booting it"; h boot "$p"; else h start-stack "$p"; fi
if ! wait_roles 1 2 40; then
  say "scores: $(for m in node1 node2 node3; do printf '%s=%s ' "$m" "$(promotion_score "$m")"; done)"
  show_mon "$l"
  fatal "$p back: 1 Promoted + 2 Unpromoted (nobody promoted after the full restart)"
fi
ok "$p back: 1 Promoted + 2 Unpromoted"
n=$(promoted_node)
say "full restart -> $n promoted: $(since "$t0") s (since the first stack started)"
check "the most advanced node is promoted: $p (cleanly shut down primary) or $g (got $n)" \
  bash -c "[ '$n' = '$p' ] || [ '$n' = '$g' ]"
check "the stale $l is not the primary" test "$n" != "$l"
show_agent_log "$n" "first-start|no promotion score|elected|best candidate" 3
rows=$(sql_vip "$l" "select count(*) from t24" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100
check "both standbys stream from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
check "$l caught up: 1100 rows" bash -c "sleep 0.5; [ \"\$('$H' exec $l runuser -u postgres -- psql -h /run/postgresql -X -At -c 'select count(*) from t24')\" = 1100 ]"
say "full restart -> both standbys streaming: $(since "$t0") s"
scenario_end
