#!/bin/bash
# 13-force-debug: `crm_resource --force-check/--force-start/--force-stop -r pgsqld` debug runs
# on a node give the documented OCF codes: 8 on the primary, 0 on a running standby, 7 where
# the instance is stopped; force-start on a stopped node gives 0 (running as a standby),
# force-stop gives 0, and then force-check 7 again.
# NEEDS PROMOTION (the agent's promote action) for the code 8.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

force() {              # force NODE ACTION: the OCF code of crm_resource --force-ACTION
  local rc=0
  h exec "$1" crm_resource "--force-$2" -r "$RSC" >"$PGHA_CLUSTER_ROOT/force.out" 2>&1 || rc=$?
  echo "$rc"
}
expect() {             # expect NODE ACTION CODE
  local got; got=$(force "$1" "$2")
  if [ "$got" = "$3" ]; then ok "force-$2 on $1: rc $3"
  else ko "force-$2 on $1: rc $got, expected $3"; sed 's/^/    /' "$PGHA_CLUSTER_ROOT/force.out"; fi
}

scenario_begin
pgha_cluster_up
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1); v=$(echo "$STANDBYS" | cut -d' ' -f2)
expect "$p" check 8
expect "$s" check 0

# keep the cluster's hands off v: ban the clone there, then debug it by hand
quiet h exec node1 pcs resource ban "$CLONE" "$v" || ko "pcs resource ban $CLONE $v"
require "$v stopped by the ban" h wait-mon "$RSC stopped on $v" \
  "not(//resource[@id='$RSC']/node[@name='$v']) and $(xp_roles 1 1)" 40
expect "$v" check 7
expect "$v" start 0
expect "$v" check 0
check "$v streams after the forced start" wait_streaming "$p" "$(other_nodes "$p")" 30
expect "$v" stop 0
expect "$v" check 7
quiet h exec node1 pcs resource clear "$CLONE" || ko "pcs resource clear $CLONE"
check "$v back under the cluster: 1 Promoted + 2 Unpromoted" wait_roles 1 2 40
scenario_end
