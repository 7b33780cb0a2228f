#!/bin/bash
# 22-switchover-and-back: a planned switchover with `pcs resource move pgsqld-clone NODE
# --promoted` (as crm-examples/pcs-switchover.sh does), then `pcs resource clear`, and back
# to the first primary the same way. Each time: the target is Promoted, the VIP follows, the
# old primary was shut down cleanly and streams from the new one, no committed row is lost
# (rows are written before each switchover), the agent checked the shutdown checkpoint.
# Timings printed. NEEDS PROMOTION (the agent's promote and demote actions).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

# switchover FROM TO ROWS: move the Promoted role from FROM to TO, ROWS committed before
switchover() {
  local from=$1 to=$2 rows=$3 t0 got
  # shellcheck disable=SC2046 # one argument per node
  require "standbys of $from have positive promotion scores" wait_scores_positive $(other_nodes "$from")
  sql_vip "$to" "insert into t22 select generate_series(1, 500)" || fatal "write on $from"
  t0=$(now)
  check "pcs resource move $CLONE $to --promoted" \
    quiet h exec "$to" pcs resource move "$CLONE" "$to" --promoted --wait=40
  check "$to Promoted, 1 Promoted + 2 Unpromoted" h wait-mon "$to Promoted" \
    "//resource[@id='$RSC' and @role='Promoted']/node[@name='$to'] and $(xp_roles 1 2)" 20
  check "VIP on $to" h wait-mon "VIP on $to" "$(xp_vip_on "$to")"
  say "switchover $from -> $to: $(since "$t0") s (to $to Promoted with the VIP)"
  check "$to checked it received $from's shutdown checkpoint" \
    in_agent_log "$to" "standby received the shutdown checkpoint"
  show_agent_log "$to" "switchover from|shutdown checkpoint|elected" 3
  got=$(sql_vip "$from" "select count(*) from t22" 2>/dev/null || true)
  check "no committed row lost: $got of $rows through the VIP" test "$got" = "$rows"
  check "the old primary $from and the other standby stream from $to" \
    wait_streaming "$to" "$(other_nodes "$to")" 30
  say "switchover $from -> $to, until both standbys stream: $(since "$t0") s"
  check "pcs resource clear $CLONE" quiet h exec "$to" pcs resource clear "$CLONE"
  check "no move constraint left" bash -c "! '$H' exec $to cibadmin -Q -o constraints | grep -q cli-"
  check "$to still Promoted after the clear" h wait-mon "$to Promoted" \
    "//resource[@id='$RSC' and @role='Promoted']/node[@name='$to'] and $(xp_roles 1 2)" 10
}

scenario_begin
pgha_cluster_up
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f2)
sql_vip "$s" "create table t22(v int)" || fatal "create table through the VIP"
switchover "$p" "$s" 500
switchover "$s" "$p" 1000
check "rows on every node" bash -c "for n in $(other_nodes "$p"); do
  [ \"\$('$H' exec \$n runuser -u postgres -- psql -h /run/postgresql -X -At -c 'select count(*) from t22')\" = 1000 ] || exit 1; done"
scenario_end
