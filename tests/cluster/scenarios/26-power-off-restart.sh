#!/bin/bash
# 26-power-off-restart (PAF #225, the power cut): one standby L lags (primary_conninfo at a
# closed port) while rows go to the primary P and the other standby G. Then every node loses
# power at once: P's PostgreSQL is left "in production", the standbys "in archive recovery",
# and no promotion score survives. L's network problem is fixed and all nodes boot together.
# P's probe finds a crashed primary, which Pacemaker recovers in place (pre-demote runs its
# crash recovery, then demote and promote), or an election picks G: the stale L is never the
# primary, no committed row is lost, and both standbys stream again.
# NEEDS PROMOTION (the agent's in-place recovery and its election).
# shellcheck source=../lib/common.sh
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up
p=$PRIMARY; l=$(echo "$STANDBYS" | cut -d' ' -f1); g=$(echo "$STANDBYS" | cut -d' ' -f2)
sql_vip "$g" "create table t26(v int); insert into t26 select generate_series(1, 100)" \
  || fatal "write through the VIP"
require "$l replayed the first 100 rows" wait_replayed "$l" "$(current_lsn "$p")"
require "$l detached (primary_conninfo at a closed port)" detach_standby "$p" "$l"
sql_vip "$g" "insert into t26 select generate_series(101, 1100)" || fatal "write 1000 rows on $p"
require "$g replayed the 1000 new rows" wait_replayed "$g" "$(current_lsn "$p")"
check "$l is stale: 100 rows" test "$(count_rows "$l" t26)" = 100

for n in node1 node2 node3; do h crash "$n"; done
say "power cut on every node"
for n in node1 node2 node3; do h boot-ns "$n"; done
for n in node1 node2 node3; do say "$n after the power cut: $(h exec "$n" bash "$PGHA_CLUSTER_ROOT/bin/pg-setup.sh" state)"; done
attach_standby "$l" || ko "reattach $l"

t0=$(now)
for n in node1 node2 node3; do h start-stack "$n" & done
wait || fatal "start the stack of every node"
require "every node online" h wait-online
if ! wait_roles 1 2 50; then
  say "scores: $(for m in node1 node2 node3; do printf '%s=%s ' "$m" "$(promotion_score "$m")"; done)"
  show_mon node1
  fatal "1 Promoted + 2 Unpromoted after the power cut"
fi
ok "1 Promoted + 2 Unpromoted after the power cut"
n=$(promoted_node)
say "power cut -> $n promoted: $(since "$t0") s (since the stacks started)"
check "the stale $l is not the primary (got $n)" test "$n" != "$l"
show_agent_log "$n" "recover|elected|best candidate|first-start" 4
rows=$(sql_vip "$g" "select count(*) from t26" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100
check "both standbys stream from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
scenario_end
