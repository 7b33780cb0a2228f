#!/bin/bash
# 14-failover-crash: power cut of the primary's node. The survivors fence it (powered off,
# pcmk_reboot_action=off), the best standby is promoted, the VIP follows and accepts writes,
# no committed row is lost, the other standby streams from the new primary. The old node is
# then rebuilt (pg_basebackup) and rejoins as a streaming standby.
# NEEDS PROMOTION (the agent's promote action and its failover election in notify).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1)
h exec "$s" runuser -u postgres -- psql -h "$VIP" -X -q -c \
  "create table t14(v int); insert into t14 select generate_series(1, 1000)" || ko "write through the VIP"

t0=$(now)
h crash "$p"
check "$p fenced and seen offline" h wait-offline "$p"
check "fence_harness powered $p off" fenced "$p"
require "a standby promoted" h wait-mon "new primary" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and $(xp_roles 1 1)" 40
n=$(promoted_node)
say "crash of $p -> $n promoted: $(since "$t0") s"
check "VIP on the new primary $n" h wait-mon "VIP on $n" "$(xp_vip_on "$n")"
rows=$(h exec "$s" runuser -u postgres -- psql -h "$VIP" -X -At -c "select count(*) from t14" 2>/dev/null || true)
check "no committed row lost (got '$rows' of 1000)" test "$rows" = 1000
check "the VIP accepts writes" h exec "$s" runuser -u postgres -- psql -h "$VIP" -X -q -c "insert into t14 values (0)"
check "the other standby streams from $n" wait_streaming "$n" "$(other_nodes "$n" | tr ' ' '\n' | grep -vx "$p")" 30

t0=$(now)
h boot-ns "$p"
h pg-rebuild "$p" "$n" >/dev/null 2>&1 || ko "pg-rebuild $p from $n"
h start-stack "$p"
check "$p rebuilt and back: 1 Promoted + 2 Unpromoted, $n still primary" h wait-mon "$p back" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$n'] and $(xp_roles 1 2)" 40
check "$p streams from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
say "rebuild + rejoin of $p: $(since "$t0") s"
scenario_end
