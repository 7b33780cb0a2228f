#!/bin/bash
# 10-start-roles: the first start of the cluster. The agent starts every instance as a
# standby and promotes the one that was shut down cleanly as a primary (node1): 1 Promoted +
# 2 Unpromoted, the VIP on the primary, 2 standbys streaming from it with their node names as
# application_name, data written through the VIP reaches both standbys, and the agent's log
# lines reach syslog.
# NEEDS PROMOTION (the agent's promote action).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up
p=$PRIMARY
check "the clean primary node1 is the one promoted (got $p)" test "$p" = node1
check "VIP on the primary $p" h wait-mon "VIP on $p" "$(xp_vip_on "$p")"
check "standbys node2 node3 streaming from $p" wait_streaming "$p" "$(other_nodes "$p")"
check "pg_is_in_recovery: f on $p" test "$(psql_on "$p" 'select pg_is_in_recovery()')" = f
for n in $(other_nodes "$p"); do
  check "pg_is_in_recovery: t on $n" test "$(psql_on "$n" 'select pg_is_in_recovery()')" = t
done
h exec node2 runuser -u postgres -- psql -h "$VIP" -X -q -c \
  "create table t10(v text); insert into t10 values ('through the VIP')" || ko "write through the VIP"
for n in $(other_nodes "$p"); do
  check "the row written through the VIP is on $n" bash -c \
    "for i in \$(seq 40); do [ \"\$('$H' exec $n runuser -u postgres -- psql -h /run/postgresql -X -At -c 'select count(*) from t10' 2>/dev/null)\" = 1 ] && exit 0; sleep 0.25; done; exit 1"
done
failures=$(h mon | xmllint --xpath '//failures/failure' - 2>/dev/null \
  | sed -n 's/.*op_key="\([^"]*\)" node="\([^"]*\)" exitstatus="\([^"]*\)".*/\1 on \2: \3/p' | tr '\n' ';' || true)
check "no failed actions after a clean first start${failures:+ (got: $failures)}" test -z "$failures"
case $AGENT in ocf:pgha:*)
  check "the agent's log lines reach syslog (agents.log of $p)" grep -q pgsqlms "$PGHA_CLUSTER_ROOT/nodes/$p/agents.log" ;;
esac
scenario_end
