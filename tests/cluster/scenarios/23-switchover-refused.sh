#!/bin/bash
# 23-switchover-refused: a switchover to a standby that does not stream is refused and the
# primary stays. The target T stops receiving WAL (primary_conninfo at a closed port), rows
# are written on the primary P, then `pcs resource move pgsqld-clone T --promoted`: P is
# demoted (clean shutdown), T's pre-promote finds it did not receive P's shutdown checkpoint,
# its promote fails with "switchover to T canceled" and sets T's score to -INFINITY, so
# Pacemaker promotes P again. Checked: P Promoted again with the VIP, no committed row lost,
# the switchover tried once only (not again and again until migration-threshold bans T),
# then `pcs resource clear` + `pcs resource cleanup`, T reattached streams again and gets a promotion score back.
# NEEDS PROMOTION (the agent's promote and demote actions, its switchover check).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; t=$(echo "$STANDBYS" | cut -d' ' -f2); o=$(echo "$STANDBYS" | cut -d' ' -f1)
stale_standby "$p" "$t" "$o" t23

t0=$(now); rc=0
# --wait: pcs returns once the cluster settled; the move cannot succeed (rc != 0 expected)
h exec "$o" pcs resource move "$CLONE" "$t" --promoted --wait=45 >"$PGHA_CLUSTER_ROOT/move.out" 2>&1 || rc=$?
say "pcs resource move $CLONE $t --promoted: rc $rc after $(since "$t0") s: $(tr '\n' ' ' < "$PGHA_CLUSTER_ROOT/move.out" | cut -c1-200)"
check "the old primary $p is Promoted again, $t not" h wait-mon "$p Promoted" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$p'] and not(//resource[@id='$RSC' and @role='Promoted']/node[@name='$t'])" 30
say "refused switchover -> $p primary again: $(since "$t0") s"
check "$t refused in pre-promote: did not receive the shutdown checkpoint" \
  in_agent_log "$t" "switchover to $t refused"
check "$t's promote failed: switchover to $t canceled" in_agent_log "$t" "switchover to $t canceled"
show_agent_log "$t" "switchover|canceled" 3
n=$(grep -c "switchover to $t canceled" "$(agent_log "$t")" || true)
check "the switchover was tried once, not again and again (promote canceled $n times)" test "$n" = 1
sc=$(h exec "$p" crm_attribute -N "$t" -n "master-$RSC" -l reboot -G -q 2>/dev/null || true)
check "$t's promotion score stays -INFINITY while it is not safe (got '$sc')" \
  bash -c "[ '$sc' = -INFINITY ] || [ '${sc:-0}' -le -1000000 ]"
check "$t's instance still runs (not banned by migration-threshold)" \
  h wait-mon "$RSC on $t" "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$t']" 5
check "VIP on $p" h wait-mon "VIP on $p" "$(xp_vip_on "$p")"
rows=$(sql_vip "$o" "select count(*) from t23" 2>/dev/null || true)
check "no committed row lost: $rows of 1100 through the VIP" test "$rows" = 1100
check "the VIP accepts writes" sql_vip "$o" "insert into t23 values (0)"

check "pcs resource clear $CLONE" quiet h exec "$o" pcs resource clear "$CLONE"
check "no move constraint left" bash -c "! '$H' exec $o cibadmin -Q -o constraints | grep -q cli-"
# the operator's step after a refused switchover: forget the failed promote on the target
quiet h exec "$o" pcs resource cleanup "$CLONE" || ko "pcs resource cleanup $CLONE"
attach_standby "$t" || ko "reattach $t"
check "$t (reattached) and $o stream from $p" wait_streaming "$p" "$(other_nodes "$p")" 30
check "1 Promoted ($p) + 2 Unpromoted" h wait-mon "$p Promoted, 1+2" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$p'] and $(xp_roles 1 2)" 30
check "$t gets a positive promotion score back (primary's monitor)" wait_scores_positive "$t"
check "$t has every row" wait_replayed "$t" "$(current_lsn "$p")"
scenario_end
