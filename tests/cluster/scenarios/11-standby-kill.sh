#!/bin/bash
# 11-standby-kill: SIGKILL of a standby's postmaster. The Unpromoted monitor notices the
# crash, Pacemaker recovers the instance (stop + start) on the same node, and it streams
# again; the primary is untouched.
# NEEDS PROMOTION (the agent's promote action): the cluster must have a primary first.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up
p=$PRIMARY; v=$(echo "$STANDBYS" | cut -d' ' -f2)
kill_postmaster "$v"
old=$KILLED; t0=$T_KILLED
# detected = the monitor reports the crash (not a 190 "degraded" entry from before the kill)
check "the crash on $v is detected (failed monitor)" h wait-mon "failure of $RSC on $v" \
  "//failures/failure[@node='$v' and @task='monitor' and @exitcode!='190']" 40
new=""; deadline=$(( $(date +%s) + 40 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  new=$(h exec "$v" bash -c "p=\$(head -1 $PGDATA/postmaster.pid 2>/dev/null) && kill -0 \$p 2>/dev/null && echo \$p" || true)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.5
done
check "a new postmaster runs on $v (pid $old -> ${new:-none})" bash -c "[ -n '$new' ] && [ '$new' != '$old' ]"
check "$v recovered: 1 Promoted + 2 Unpromoted again" wait_roles 1 2 40
check "$v streams again" wait_streaming "$p" "$(other_nodes "$p")" 30
say "kill -> streaming again: $(since "$t0") s"
check "the primary stayed on $p" test "$(promoted_node)" = "$p"
scenario_end
