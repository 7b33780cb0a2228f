#!/bin/bash
# 21-kill-primary-postgres: SIGKILL of the primary's postmaster (the node and its stack stay
# up). The Promoted monitor sees a crashed primary; Pacemaker either recovers it in place
# (demote, stop, start, promote on the same node: the agent's pre-demote runs its crash
# recovery first) or fails over to the best standby. Either way: no committed row lost, and
# the cluster ends with 1 Promoted + 2 Unpromoted, both standbys streaming from the primary.
# NEEDS PROMOTION (the agent's promote, its in-place recovery or its failover election).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1)
sql_vip "$s" "create table t21(v int); insert into t21 select generate_series(1, 1000)" \
  || fatal "write through the VIP"
kill_postmaster "$p" "the primary $p"
t0=$T_KILLED
check "the crash of the primary is detected (failed monitor on $p)" h wait-mon "failure on $p" \
  "//failures/failure[@node='$p' and @task='monitor']" 30
require "a primary again, 1 Promoted + 2 Unpromoted" h wait-mon "1 Promoted + 2 Unpromoted, after the failure" \
  "//failures/failure[@node='$p' and @task='monitor'] and $(xp_roles 1 2)" 60
n=$(promoted_node)
if [ "$n" = "$p" ]; then how="recovered in place on $p"; else how="failed over to $n"; fi
say "kill -> $how: $(since "$t0") s"
show_agent_log "$p" "recover|Recover|crash|promot" 6
check "VIP on the primary $n" h wait-mon "VIP on $n" "$(xp_vip_on "$n")"
rows=$(sql_vip "$s" "select count(*) from t21" 2>/dev/null || true)
check "no committed row lost: $rows of 1000 through the VIP" test "$rows" = 1000
check "the VIP accepts writes" sql_vip "$s" "insert into t21 values (0)"
check "both standbys stream from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
say "kill -> both standbys streaming: $(since "$t0") s"
for m in $(other_nodes "$n"); do
  check "$m has every row" wait_replayed "$m" "$(current_lsn "$n")"
done
scenario_end
