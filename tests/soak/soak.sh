#!/bin/bash
# soak.sh - randomized faults against a 3-node pgha cluster with synchronous replication,
# under load, with a checker of acknowledged writes (make soak, make soak-ci; README "Soak").
#
#   soak.sh [--plan] SEED FAULTS [ROUNDS]   ROUNDS rounds (default 1), round r with seed
#                                           SEED+r-1, each on a fresh cluster
#   --plan: print the fault sequences only
#
# A round: a cluster as the scenarios build it (lib/common.sh), with PGHA_SYNC=1 (synchronous
# replication, ANY 1 of the others) and PGHA_PGDISK (each node's /var/lib/postgresql on a disk
# of its own, to be filled); a client machine (harness.sh client up) runs the writer of
# numbered rows and the WAL generator through the VIP; every node's network namespace runs a
# sampler of its own instance; then the faults of the plan (soak.py plan), each followed by a
# wait for a healthy cluster within the kind's time limit. Nothing else is done to the
# cluster: nodes that are off are powered on (after the survivors saw them go), a pulled cable
# is plugged back, a stopped postmaster continued, a full disk freed, a moved role cleared, a
# node in standby mode brought back: what the hardware or the fault's end does, never a
# `pcs resource cleanup`.
#
# Healthy: 3 nodes online, 1 Promoted + 2 Unpromoted, a write through the VIP commits (and is
# replicated: synchronous), both other nodes stream from the primary, every node has a
# positive promotion score (master-pgsqld), no data directory has the rewind marker.
# At the end soak.py check: every acknowledged row on every node, never two nodes accepting
# writes at once, recovery times per kind. A round's files: artifacts/soak-SEED-TIME/ (with
# every node's logs when it failed).
#
# Settings: the harness's (a soak runs on its own instance by default, next to the tests':
# PGHA_CLUSTER_ROOT=/var/tmp/pgha-soak PGHA_NET=10.201.0 PGHA_NS_PREFIX=pghs, set by the
# Makefile), PGHA_PGDISK=3G, SOAK_DATA_MB=256: a table of that size written before the load,
# so that a former primary costs less to rewind than to re-clone, as in a real cluster (the
# load writes about 2 MB of WAL a second; with a smaller database the re-clone is cheaper),
# and a checkpoint (else a rewind before the next one fetches the whole table back).
# The round ends with what the agents' rejoins did (rejoins.txt: plan, engine, outcome;
# rejoin-plans.txt: each plan's line).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SOAKPY=$HERE/soak.py
PY=/usr/bin/python3

if [ "${1:-}" = --plan ]; then
  shift
  for r in $(seq 1 "${3:-1}"); do
    echo "# round $r, seed $(( $1 + r - 1 ))"; "$PY" "$SOAKPY" plan "$(( $1 + r - 1 ))" "$2"
  done
  exit 0
fi
[ $# -ge 2 ] || { sed -n '2,30p' "$0"; exit 2; }
if [ "${SOAK_ROUND:-}" = "" ]; then          # the driver: one process per round
  rc=0 t0=$SECONDS
  for r in $(seq 1 "${3:-1}"); do
    SOAK_ROUND=$r bash "$0" "$(( $1 + r - 1 ))" "$2" || rc=1
  done
  echo "soak: ${3:-1} round(s) of $2 faults from seed $1 in $((SECONDS - t0)) s: $([ $rc = 0 ] && echo PASS || echo FAIL)"
  exit $rc
fi

SEED=$1 FAULTS=$2
"$PY" "$SOAKPY" selftest >/dev/null || { echo "soak.sh: the checker's own tests fail" >&2; exit 1; }
export PGHA_SYNC=1 PGHA_PGDISK=${PGHA_PGDISK:-3G}
# shellcheck source=tests/cluster/lib/common.sh
source "$HERE/../cluster/lib/common.sh"
OUT=$REPO/artifacts/soak-$SEED-$(date +%Y%m%d-%H%M%S)
ARTIFACTS_DIR=$OUT/logs      # every node's logs, when the round fails (common.sh's on_exit)
mkdir -p "$OUT"
STOP=$OUT/stop
PFX=${PGHA_NS_PREFIX:-pgha}
MARKER=$PGDATA.pgha-rewind

# shellcheck disable=SC2317 # (final_check's)
ip_of() { echo "$NET.$((10 + ${1#node}))"; }
alive() { h exec "$1" true 2>/dev/null; }
client() { h client exec "$@"; }
vip_sql() { client psql -h "$VIP" -U postgres -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# ---------------------------------------------------------------- health

# healthy: prints nothing, exit 0 when the cluster is healthy (see the header)
healthy() {
  local x p n others err
  x=$(h mon 2>/dev/null) || return 1
  xpath_ok "$x" "count(//node[@online='true'])=3 and $(xp_roles 1 2)" || return 1
  p=$(xmllint --xpath "//resource[@id='$RSC' and @role='Promoted']/node/@name" - <<<"$x" 2>/dev/null \
    | sed -n 's/.*name="\([^"]*\)".*/\1/p')
  [ -n "$p" ] || return 1
  for n in node1 node2 node3; do
    xpath_ok "$x" "//node_attributes/node[@name='$n']/attribute[@name='master-$RSC' and number(@value) > 0]" || return 1
  done
  err=$(client timeout 10 psql -h "$VIP" -U postgres -X -q -At -v ON_ERROR_STOP=1 \
          -c "set statement_timeout = 5000" -c "insert into soak_health values (now())" 2>&1) || return 1
  [ -z "$err" ] || return 1              # a warning: the commit waited for no standby
  others=$(other_nodes "$p")
  [ "$(streaming_names "$p")" = "$others" ] || return 1
  for n in node1 node2 node3; do
    if h exec "$n" test -e "$MARKER"; then return 1; fi
  done
}

# power_on NODE: fails when NODE was powered off again (fenced) while it booted: the others
# may fence a node they have not seen yet (startup fencing) at that very moment
power_on() {
  h boot-ns "$1" || return 1
  if [ "$BALLAST" = "$1" ]; then free_disk "$1" || return 1; BALLAST=""; fi
  h start-stack "$1" 2>/dev/null || { say "  $1 was powered off while it booted (fenced)"; return 1; }
}

# power_on_dead: power on every node that is off, once the others no longer count it a member
# (a node booted while still in their membership is told it was fenced and stops for good)
free_disk() { h exec "$1" rm -f /var/lib/postgresql/ballast /var/lib/postgresql/ballast2; }
BALLAST=""        # the node whose disk a disk-full fault filled and could not free (it was off)
power_on_dead() {
  local n
  for n in node1 node2 node3; do
    alive "$n" && continue
    h wait-gone "$n" >/dev/null 2>&1 || true
    sleep 2
    power_on "$n" || continue
    say "  $n powered on"
  done
}

# wait_healthy KIND LIMIT T0: powers on what is off meanwhile; records the time from T0
wait_healthy() {
  local kind=$1 limit=$2 t0=$3 deadline verdict=timeout
  deadline=$(awk -v a="$t0" -v l="$limit" 'BEGIN { printf "%d", a + l }')
  while [ "$(date +%s)" -lt "$deadline" ]; do
    power_on_dead
    if healthy; then verdict=ok; break; fi
    sleep 1
  done
  [ "$kind" = start ] || echo "$kind $(since "$t0") $verdict" >> "$OUT/recovery.log"
  [ "$verdict" = ok ] || { ko "$kind: not healthy within ${limit} s"; return 1; }
  ok "$kind: healthy again after $(since "$t0") s"
}

# ---------------------------------------------------------------- the faults

primary() { promoted_node; }
standby_n() { local s; read -ra s <<<"$(other_nodes "$(primary)")"; echo "${s[$1]}"; }
target() {             # target ROLE WHICH
  if [ "$1" = primary ]; then primary; else standby_n "${2:-0}"; fi
}
postmaster_of() { h exec "$1" head -1 "$PGDATA/postmaster.pid"; }

inject() {             # inject KIND key=value...
  local kind=$1 off="" hold="" role="" which=0 order="" gap=0 n pid kv
  shift
  for kv in "$@"; do
    case $kv in
      off=*) off=${kv#*=} ;; hold=*) hold=${kv#*=} ;; role=*) role=${kv#*=} ;;
      which=*) which=${kv#*=} ;; order=*) order=${kv#*=} ;; gap=*) gap=${kv#*=} ;;
    esac
  done
  case $kind in
    power-primary|power-standby)
      n=$(target "${kind#power-}" "$which"); say "  power cut of $n for $off s"
      h crash "$n"; h wait-gone "$n" >/dev/null 2>&1 || true; sleep "$off" ;;
    power-all)
      say "  power cut of every node for $off s, booted in the order $order, $gap s apart"
      for n in node1 node2 node3; do h crash "$n"; done
      sleep "$off"
      for n in ${order//,/ }; do power_on "$n" || true; sleep "$gap"; done ;;
    kill9-postmaster)
      n=$(target "$role" "$which"); kill_postmaster "$n" "the $role $n" ;;
    sigstop-postmaster)
      n=$(target "$role" "$which"); pid=$(postmaster_of "$n")
      say "  SIGSTOP to the postmaster of the $role $n (pid $pid) for $hold s"
      h exec "$n" kill -STOP "$pid"; sleep "$hold"
      h exec "$n" kill -CONT "$pid" 2>/dev/null || say "  ($n is off: nothing to continue)" ;;
    netcut-primary|netcut-standby)
      n=$(target "${kind#netcut-}" "$which"); say "  cable of $n pulled for $hold s"
      h isolate "$n"; sleep "$hold"; h heal "$n" ;;
    switchover)
      n=$(standby_n "$which"); say "  pcs resource move $CLONE $n --promoted, then clear"
      h exec "$n" pcs resource move "$CLONE" "$n" --promoted --wait=60 >/dev/null 2>&1 \
        || say "  (the move did not complete in 60 s)"
      h exec "$n" pcs resource clear "$CLONE" >/dev/null 2>&1 || say "  (clear failed)" ;;
    node-standby)
      n=$(target "$role" "$which"); say "  pcs node standby $n (the $role) for $hold s"
      h exec "$n" pcs node standby "$n" >/dev/null; sleep "$hold"
      h exec "$n" pcs node unstandby "$n" >/dev/null ;;
    disk-full-standby)
      n=$(standby_n "$which"); say "  $n's disk (/var/lib/postgresql, pg_wal) filled for $hold s"
      # the extents of a file as large as the free space need blocks too: the last 16 MB
      # are written (until ENOSPC)
      # shellcheck disable=SC2016 # expanded inside the node
      h exec "$n" bash -c 'cd /var/lib/postgresql && avail=$(df --output=avail -B1 . | tail -1) &&
        fallocate -l $((avail - 16 * 1024 * 1024)) ballast && { dd if=/dev/zero of=ballast2 bs=1M 2>/dev/null || true; }'
      sleep "$hold"
      if alive "$n"; then free_disk "$n"; else BALLAST=$n; fi ;;
    *) fatal "unknown fault kind $kind" ;;
  esac
}

# ---------------------------------------------------------------- load, samplers, checker

LOAD_PIDS=()
start_load() {
  local n
  vip_sql "create table soak_data as select g as id, repeat('d', 1000) as pad
             from generate_series(1, ${SOAK_DATA_MB:-256} * 1000) g" || fatal "soak_data through the VIP"
  vip_sql "checkpoint" || fatal "a checkpoint through the VIP"
  vip_sql "create table soak_rows(id bigint primary key, t timestamptz default now());
           create table soak_bulk(id int, pad text); create table soak_health(t timestamptz)" \
    || fatal "tables through the VIP"
  client "$PY" "$SOAKPY" writer "$VIP" "$OUT/writer.log" "$STOP" 2>>"$OUT/clients.err" & LOAD_PIDS+=($!)
  client "$PY" "$SOAKPY" wal "$VIP" "$STOP" 2>>"$OUT/clients.err" & LOAD_PIDS+=($!)
  for n in node1 node2 node3; do
    ip netns exec "$PFX-$n" "$PY" "$SOAKPY" sample "$n" "$OUT/samples-$n.log" "$STOP" 2>>"$OUT/clients.err" &
    LOAD_PIDS+=($!)
  done
}
stop_load() {
  touch "$STOP"
  local p; for p in "${LOAD_PIDS[@]}"; do wait "$p" || true; done
  LOAD_PIDS=()
}

# rejoins: how many of the agents' rejoins (every node's log) planned what, with which engine,
# and how they ended; their plan lines (with the costs compared) in rejoin-plans.txt
# shellcheck disable=SC2317 # called through final_check and the EXIT trap
rejoins() {
  local n
  for n in node1 node2 node3; do
    grep -h '; plan: ' "$(agent_log "$n")" 2>/dev/null | sed "s/^/$n: /"
  done > "$OUT/rejoin-plans.txt"
  for n in node1 node2 node3; do cat "$(agent_log "$n")" 2>/dev/null; done \
    | sed -n 's/.*; plan: \(rewind; engine: [a-z_]*\|[a-z-]*\).*/plan: \1/p
              s/.*: \(Rewound\|Recloned\|Streamable\) in [0-9.]*[mµn]*s$/outcome: \1/p' \
    | sort | uniq -c | tee "$OUT/rejoins.txt"
}

# verdict: the rows of every node that answers, then soak.py check (also for a failed round:
# what was lost so far)
# shellcheck disable=SC2317 # called through final_check and the EXIT trap
verdict() {
  local n
  for n in node1 node2 node3; do
    client timeout 120 "$PY" "$SOAKPY" rows "$(ip_of "$n")" > "$OUT/rows-$n.txt" 2>>"$OUT/clients.err" \
      || { say "no rows from $n"; rm -f "$OUT/rows-$n.txt"; }
  done
  say "the agents' rejoins:"; rejoins
  "$PY" "$SOAKPY" check "$OUT" node1 node2 node3 | tee "$OUT/report.txt"
  [ "${PIPESTATUS[0]}" = 0 ]
}
# final_check: every standby replayed what the primary has, then the verdict
# shellcheck disable=SC2317 # called through check
final_check() {
  local p n lsn
  p=$(primary) || return 1
  lsn=$(client psql -h "$(ip_of "$p")" -U postgres -X -At -c "select pg_current_wal_lsn()") || return 1
  for n in $(other_nodes "$p"); do
    wait_replayed "$n" "$lsn" 60 || ko "$n replayed the primary's WAL"
  done
  verdict
}

# shellcheck disable=SC2317 # called by the EXIT trap
soak_exit() {          # stop the clients before the cluster goes down (common.sh's on_exit)
  if [ ! -e "$STOP" ] && [ ${#LOAD_PIDS[@]} -gt 0 ]; then
    stop_load
    say "the round failed: what the nodes hold now"
    verdict || true
  fi
  h client down 2>/dev/null || true
}

# ---------------------------------------------------------------- the round

scenario_begin
trap 'rc=$?; soak_exit; on_exit "$rc"' EXIT
"$PY" "$SOAKPY" plan "$SEED" "$FAULTS" > "$OUT/plan.txt"
say "round ${SOAK_ROUND}: seed $SEED, $FAULTS faults, files in ${OUT#"$REPO"/}:"
sed 's/^/    /' "$OUT/plan.txt"
pgha_cluster_up_eligible
h client up
start_load
wait_healthy start 120 "$(now)" || fatal "the cluster is not healthy under load"
while read -r i kind args; do
  # shellcheck disable=SC2086 # key=value words
  set -- $args
  pause=${1#pause=} limit=${2#limit=}; shift 2
  sleep "$pause"
  say "fault $i/$FAULTS: $kind $*"
  t0=$(now)
  inject "$kind" "$@"
  wait_healthy "$kind" "$limit" "$t0" || fatal "fault $i ($kind) left the cluster unhealthy"
done < "$OUT/plan.txt"
sleep 3
stop_load
check "acknowledged rows on every node, one primary at a time, every fault within its limit" final_check
scenario_end
