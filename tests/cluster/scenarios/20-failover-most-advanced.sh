#!/bin/bash
# 20-failover-most-advanced: power cut of the primary's node while one standby lags. The
# lagging standby L stops receiving WAL (its primary_conninfo points at a closed port), rows
# are written on the primary and reach the other standby G only. Just before the crash, L is
# given the best promotion score, so Pacemaker designates L: the agent's election (pre-promote
# publishes every candidate's TL#LSN, promote compares) must refuse L ("G is the best
# candidate") and G must be promoted ("elected G"), with every committed row. L, reattached,
# then streams from G.
# NEEDS PROMOTION (the agent's promote action and its election).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; l=$(echo "$STANDBYS" | cut -d' ' -f1); g=$(echo "$STANDBYS" | cut -d' ' -f2)
stale_standby "$p" "$l" "$g" t20
lsn=$(current_lsn "$p")
require "$g replayed the 1000 new rows (up to $lsn)" wait_replayed "$g" "$lsn"
check "$l has only the first 100 rows (got $(count_rows "$l" t20))" test "$(count_rows "$l" t20)" = 100

# designate the lagging standby: the best score to L, right before the crash (the primary's
# monitor, every 15 s, would put it back to -1000)
{ set_promotion_score "$g" "$l" 1000 && set_promotion_score "$g" "$g" 990; } || fatal "set the scores"
t0=$(now)
h crash "$p"
say "power cut of $p; scores: $l=$(promotion_score "$l") $g=$(promotion_score "$g")"
check "$p fenced and seen offline" h wait-offline "$p"
require "a standby promoted" h wait-mon "new primary" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and $(xp_roles 1 1)" 45
n=$(promoted_node)
say "crash of $p -> $n promoted: $(since "$t0") s"
check "the most advanced standby $g is the one promoted (got $n)" test "$n" = "$g"
check "Pacemaker designated $l first, and its election refused it ($g is the best candidate)" \
  in_agent_log "$l" "$g is the best candidate to promote"
check "$g's promote logged 'elected $g'" in_agent_log "$g" "elected $g"
show_agent_log "$l" "promoting instance on node|best candidate"
show_agent_log "$g" "promoting instance on node|elected"
check "VIP on the new primary $g" h wait-mon "VIP on $g" "$(xp_vip_on "$g")"
rows=$(sql_vip "$l" "select count(*) from t20" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100
check "the VIP accepts writes" sql_vip "$l" "insert into t20 values (0)"

attach_standby "$l" || ko "reattach $l"
check "$l (reattached) streams from $g" wait_streaming "$g" "$l" 30
check "$l has every row" wait_replayed "$l" "$(current_lsn "$g")"
check "$l: 1101 rows" test "$(count_rows "$l" t20)" = 1101
check "1 Promoted ($g) + 1 Unpromoted" h wait-mon "$g Promoted, $l Unpromoted" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$g'] and //resource[@id='$RSC' and @role='Unpromoted']/node[@name='$l']" 30
scenario_end
