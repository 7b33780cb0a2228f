#!/bin/bash
# 15-password-kept-secret: a password in a standby's primary_conninfo reaches neither the
# CIB, nor Pacemaker's or the agent's logs (issue 11, finding 3). The standby V's
# primary_conninfo is given a password and a wrong application_name, then its postmaster is
# killed: Pacemaker recovers it, the agent's start refuses the setting with an exit reason
# that quotes primary_conninfo, and Pacemaker stores that reason in the CIB. Checked: the
# refusal is there, the password is nowhere in the CIB or the logs; then the setting is put
# back, a cleanup brings V back, and it streams.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
SECRET=Sup3rS3cretPw

scenario_begin
pgha_cluster_up
p=$PRIMARY; v=$(echo "$STANDBYS" | cut -d' ' -f1)
saved=$(h exec "$v" cat "$NODE_CONF")
h exec "$v" runuser -u postgres -- tee "$NODE_CONF" >/dev/null <<CONF
primary_conninfo = 'host=$VIP port=5432 user=postgres password=$SECRET application_name=not-$v'
CONF
h exec "$v" kill -KILL "$(h exec "$v" head -1 "$PGDATA/postmaster.pid")"
say "$v: primary_conninfo with a password and a wrong application_name; postmaster killed"
check "the agent's start on $v fails on primary_conninfo" h wait-mon "failed start on $v" \
  "//failures/failure[@node='$v' and @task='start']" 60
cib=$(h exec node1 cibadmin -Q 2>/dev/null || true)
check "the CIB holds the start's exit reason" grep -q "application_name=$v" <<<"$cib"
# lacks_secret FILE...: none of the files holds the password (a missing file holds nothing)
# shellcheck disable=SC2317 # called through check
lacks_secret() { ! grep -qs "$SECRET" "$@"; }
check "the password is not in the CIB" lacks_secret <(printf '%s\n' "$cib")
for n in node1 node2 node3; do
  nd=$PGHA_CLUSTER_ROOT/nodes/$n
  check "the password is not in $n's agent log or syslog" lacks_secret "$nd/agents.log" "$nd/syslog.log"
  check "the password is not in $n's Pacemaker log" lacks_secret "$nd/var-log-pacemaker/pacemaker.log"
done
h exec "$v" runuser -u postgres -- tee "$NODE_CONF" >/dev/null <<<"$saved"
quiet h exec node1 pcs resource cleanup "$RSC" || ko "pcs resource cleanup $RSC"
check "$v back: 1 Promoted + 2 Unpromoted" wait_roles 1 2 60
check "$v streams again" wait_streaming "$p" "$(other_nodes "$p")" 30
scenario_end
