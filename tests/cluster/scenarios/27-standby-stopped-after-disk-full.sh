#!/bin/bash
# 27-standby-stopped-after-disk-full: found by the soak (tests/soak, seed 18). A standby's
# disk (pg_wal's file system, PGHA_PGDISK) fills up while the primary writes: its WAL receiver
# cannot write, the instance crashes, Pacemaker's recovery starts it again and the start fails
# (a failed start counts as infinite failures). The disk is freed a little later. Without
# failure-timeout in crm-examples' resource defaults the standby stayed stopped for good
# (fail-count INFINITY) until someone ran `pcs resource cleanup`; with it, Pacemaker forgets
# the failures 60 s after the last one and starts the standby again by itself: it streams,
# its promotion score comes back. Nothing is done by hand but freeing the disk.
# NEEDS PROMOTION (the agent's promote action): the cluster must have a primary first.
set -euo pipefail
export PGHA_PGDISK=${PGHA_PGDISK:-1G}
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; v=${STANDBYS##* }
check "failure-timeout=60s in the resource defaults (crm-examples/pcs-3nodes-vip.sh)" xpath_ok \
  "$(h exec "$p" cibadmin -Q -o rsc_defaults)" "//nvpair[@name='failure-timeout' and @value='60s']"
# shellcheck disable=SC2016 # expanded inside the node
h exec "$v" bash -c 'cd /var/lib/postgresql && avail=$(df --output=avail -B1 . | tail -1) &&
  fallocate -l $((avail - 16 * 1024 * 1024)) ballast && { dd if=/dev/zero of=ballast2 bs=1M 2>/dev/null || true; }'
t0=$(now)
say "$v's disk is full"
sql_vip "$p" "create table t27(v int, pad text); insert into t27 select g, repeat('x', 500) from generate_series(1, 100000) g" \
  || fatal "write through the VIP"
check "$v's start failed (fail-count INFINITY)" h wait-mon "failed start of $RSC on $v" \
  "//failures/failure[@node='$v' and @task='start']" 60
h exec "$v" rm -f /var/lib/postgresql/ballast /var/lib/postgresql/ballast2
say "$v's disk freed $(since "$t0") s after it filled"
check "$v started again by Pacemaker (failure-timeout), no cleanup: 1 Promoted + 2 Unpromoted" wait_roles 1 2 100
check "$v streams again" wait_streaming "$p" "$(other_nodes "$p")" 30
check "$v has its promotion score again" wait_scores_positive "$v"
check "$v has all 100000 rows" wait_replayed "$v" "$(current_lsn "$p")"
say "disk full -> streaming again: $(since "$t0") s"
scenario_end
