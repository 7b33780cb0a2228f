#!/bin/bash
# demo.sh - pgha in a real 3-node Pacemaker cluster, on this one machine (make demo).
#
#   tests/cluster/demo.sh          build, run the demo, take the cluster down again
#   tests/cluster/demo.sh --keep   leave the cluster up afterwards, to play with it
#   tests/cluster/demo.sh down     remove a cluster left by --keep
#
# Steps: 3 nodes (Corosync + Pacemaker, fencing on) in network namespaces, PostgreSQL
# primary + 2 streaming standbys, the resources created by crm-examples/pcs-3nodes-vip.sh
# (promotable clone of ocf:pgha:pgsqlms + a VIP), then a power cut of the primary's node:
# fencing, failover and its timing, then the node booted and brought back as a streaming
# standby by the agent itself (rewind of the crashed former primary), with no manual step.
# Needs root. PGHA_AGENT=ocf:heartbeat:pgsqlms runs the same demo with PAF, for comparison.
# PGHA_PG_MAJOR=17 runs it on Debian 13 nodes (Pacemaker 3.0), 18 or 19 on sid nodes
# (Pacemaker 3.0.3; lib/node-os.sh; `make demo PG=17`); with --keep, use the cluster from a
# shell in that root: tests/cluster/node-root.sh debian13 run bash (or sid).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"
enter_node_os "$0" "$@"
SCENARIO=demo
KEEP=0

case ${1:-} in
  down) exec "$H" down ;;
  --keep) KEEP=1 ;;
  "") ;;
  *) echo "usage: demo.sh [--keep] | demo.sh down" >&2; exit 2 ;;
esac

step() { echo; echo "==> $*"; }
declare -A T            # timings, for the summary
RESULT=()               # what worked / what did not, for the summary
worked() { RESULT+=("  ok    $*"); ok "$*"; }
missing() { RESULT+=("  NOT   $*"); ko "$*"; }

# shellcheck disable=SC2317 # called through the EXIT trap
demo_exit() {
  local rc=$? dest
  trap - EXIT INT TERM
  if [ "$CLUSTER_STARTED" = 1 ]; then
    if [ "$rc" != 0 ] || [ "$FAIL" -gt 0 ]; then
      dest=$REPO/artifacts/demo-$(date +%Y%m%d-%H%M%S)
      h collect "$dest" >/dev/null 2>&1 || true
      echo "logs of every node (corosync, pacemaker, postgresql, agent syslog): ${dest#"$REPO"/}"
    fi
    if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then
      cat <<EOF

The cluster is still up (--keep). Try:
  $H exec node1 crm_mon                 # live status (Ctrl-C to leave)
  $H exec node1 pcs status
  $H exec node2 psql -h $VIP -U postgres   # the primary, through the VIP
  $H exec node1 bash                    # a shell "on" node1
  $H crash node2 | isolate node2 | heal node2 | boot node2
  crm-examples/ scripts run inside a node: $H exec node1 bash $PGHA_CLUSTER_ROOT/crm-examples/pcs-switchover.sh node3
Agent log lines of each node: $PGHA_CLUSTER_ROOT/nodes/NODE/agents.log
Remove it with: $HERE/demo.sh down
EOF
    else
      h down
    fi
  fi
  exit "$rc"
}

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates namespaces and mounts)" >&2; exit 1; }
case $AGENT in ocf:pgha:*)
  if [ ! -f "${PGHA_DEB:-$REPO/target/debian/current.deb}" ]; then   # what the nodes install
    step "building the Debian package (make deb)"; make -C "$REPO" deb
  fi ;;
esac
if h status >/dev/null; then
  echo "demo.sh: a cluster is already up ($(h status)). Remove it first: $HERE/demo.sh down" >&2
  exit 1
fi
trap demo_exit EXIT
trap 'exit 130' INT TERM

step "1. three nodes: Corosync (knet) + Pacemaker, fencing on (fence_harness powers nodes off)"
t0=$(now); CLUSTER_STARTED=1
h up
T[up]=$(since "$t0"); worked "3 nodes online in ${T[up]} s"

step "2. PostgreSQL $PG_MAJOR: primary on node1, streaming standbys on node2 and node3 (tests/cluster/lib/pg-setup.sh)"
t0=$(now)
h pg-init
h pg-handover       # clean shutdowns: the agent promotes the clean primary at its first start
T[pg]=$(since "$t0"); worked "primary + 2 streaming standbys built, shut down cleanly, in ${T[pg]} s"

step "3. resources, exactly as crm-examples/pcs-3nodes-vip.sh creates them (agent $AGENT)"
grep -E '^(pcs| +(op|bindir|ip=|symmetrical|promotable))' "$REPO/crm-examples/pcs-3nodes-vip.sh" | sed 's/^/    /'
t0=$(now)
quiet h exec node1 env PGHA_AGENT="$AGENT" PGHA_VIP="$VIP" PGBIN="$PGBIN" PGDATA="$PGDATA" \
  bash "$PGHA_CLUSTER_ROOT/crm-examples/pcs-3nodes-vip.sh"
if wait_roles 1 2 60 && h wait-mon "VIP started" "//resource[@id='pgsql-vip' and @role='Started']" 30; then
  T[start]=$(since "$t0"); P=$(promoted_node)
  worked "1 Promoted ($P) + 2 Unpromoted, VIP on $P, ${T[start]} s after the resources were created"
else
  missing "a primary: the agent did not promote any instance (promotion is the agent's next step)"
  show_mon; agent_log_tail 8
  exit 0
fi
h exec node1 crm_mon -1 -r | sed -n '/Node List/,$p'
wait_streaming "$P" "$(other_nodes "$P")" 30 || true
echo "pg_stat_replication on the primary $P:"
psql_on "$P" "select application_name, client_addr, state, sync_state from pg_stat_replication order by 1" | sed 's/^/    /'
h exec node2 runuser -u postgres -- psql -h "$VIP" -X -q -c \
  "create table demo(at timestamptz default now(), note text); insert into demo(note) values ('written before the crash')"

step "4. power cut of the primary's node $P (every process killed at once, addresses dropped)"
# wait until the standbys are eligible: the primary's monitor (every 15 s) gives them their
# promotion scores; right after a promotion they are not connected yet and get -1000
echo "    (waiting until the primary's monitor has given both standbys a positive promotion score)"
# shellcheck disable=SC2046 # one argument per node
wait_scores_positive $(other_nodes "$P") || true
S=$(other_nodes "$P" | cut -d' ' -f1)
t0=$(now)
h crash "$P"
if h wait-offline "$P"; then T[fenced]=$(since "$t0"); worked "$P fenced (powered off) and seen offline after ${T[fenced]} s"
else missing "$P fenced"; fi
if h wait-mon "a new primary" "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$P']" 60; then
  N=$(promoted_node); T[promoted]=$(since "$t0")
  worked "$N promoted ${T[promoted]} s after the crash"
else
  missing "failover: no standby promoted within 60 s of the crash"
  show_mon "$S"; agent_log_tail 8; exit 0
fi
vip_writable() { [ "$(h exec "$S" runuser -u postgres -- psql -h "$VIP" -X -At -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; }
deadline=$(( $(date +%s) + 30 ))
until vip_writable || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.2; done
if vip_writable; then T[vip]=$(since "$t0"); worked "the VIP accepts writes again ${T[vip]} s after the crash (on $N)"
else missing "the VIP does not reach a writable primary"; fi
rows=$(h exec "$S" runuser -u postgres -- psql -h "$VIP" -X -At -c \
  "insert into demo(note) values ('written after the failover'); select count(*) from demo" 2>/dev/null | tail -1 || true)
if [ "$rows" = 2 ]; then worked "no committed row lost (2 rows through the VIP)"; else missing "rows after the failover: '$rows', expected 2"; fi
echo "pgha status on the new primary $N, while $P is off:"
h exec "$N" pgha status | sed 's/^/    /' || missing "pgha status on $N"

step "5. bringing $P back: boot it, nothing else; the agent's start rewinds the crashed former primary"
echo "    (the start action sees a primary that crashed, compares it with the current primary $N,"
echo "     rewinds it with pg_rewind or re-clones it, whichever copies less, keeps what it discards)"
t0=$(now)
h boot "$P"
# stop waiting early if the agent refuses (a failed start on that node is final)
h wait-mon "$P back as a standby, or a failure there" \
  "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$P'] and $(xp_roles 1 2) or //failures/failure[@node='$P' and @task='start']" 45 || true
if h wait-mon "$P back as a standby" "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$P'] and $(xp_roles 1 2)" 1 \
   && wait_streaming "$N" "$(other_nodes "$N")" 20; then
  T[rejoin]=$(since "$t0")
  how=$(sed -n 's/.*\(start\|demote\): "[^"]*": \(Rewound\|Recloned\) in [^(]*(\([^)]*\)).*/\2 (\3)/p' "$(agent_log "$P")" | tail -1)
  worked "$P rejoined as a streaming standby by itself in ${T[rejoin]} s: ${how:-no rewind needed}"
  echo "    the agent's lines on $P:"
  show_agent_log "$P" "bringing|needs a rewind|re-cloning|Rewound|Recloned|kept [0-9]+ WAL" 8
  kept=$(h exec "$P" bash -c "ls -d $KEEP_DIR/*/ 2>/dev/null | tail -1" || true)
  if [ -n "$kept" ]; then
    echo "    what $P wrote after the fork (if anything) is kept in $kept on $P:"
    h exec "$P" bash -c "cd '$kept' && ls -l && echo && sed 's/^/      /' README | head -20" | sed 's/^/      /'
    echo "    (read it with: $H exec $P $PGBIN/pg_waldump -p ${kept}pg_wal ...)"
  fi
else
  missing "$P back on its own: the agent did not bring the crashed former primary back (see its log below)"
  agent_log_tail 5
  echo "    -> LAST RESORT, by hand: rebuilding $P from $N with pg_basebackup. This is NOT the"
  echo "       expected path: the agent should have rewound $P by itself."
  t0=$(now)
  h crash "$P"; h wait-offline "$P" || true
  h boot-ns "$P"
  h pg-rebuild "$P" "$N"
  h start-stack "$P"
  h exec "$N" crm_resource --cleanup -r "$CLONE" >/dev/null 2>&1 || true
  if h wait-mon "$P back" "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$P'] and $(xp_roles 1 2)" 45 \
     && wait_streaming "$N" "$(other_nodes "$N")" 20; then
    T[rejoin]=$(since "$t0"); RESULT+=("  NOTE  $P rebuilt BY HAND (pg_basebackup, last resort) and streaming again in ${T[rejoin]} s")
  else
    missing "$P rebuilt and streaming"
  fi
fi
echo "pgha status on $P, back (its own line, and what its files say of the last rewind):"
h exec "$P" pgha status | sed 's/^/    /' || missing "pgha status on $P"

step "summary (agent $AGENT, corosync token ${PGHA_TOKEN:-1000} ms, $(nproc) cores)"
printf '%s\n' "${RESULT[@]}"
echo "  timings: cluster up ${T[up]} s, first start -> primary ${T[start]:-?} s;" \
     "crash -> fenced ${T[fenced]:-?} s, -> promoted ${T[promoted]:-?} s, -> VIP writable ${T[vip]:-?} s;" \
     "rejoin ${T[rejoin]:-?} s"
if [ "$FAIL" -gt 0 ]; then
  echo "  next: the lines marked NOT are what the agent does not do yet."
fi
exit 0
