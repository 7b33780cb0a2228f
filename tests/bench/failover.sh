#!/usr/bin/env bash
# Failover and switchover benchmark: pgha (ocf:pgha:pgsqlms) against PAF (ocf:heartbeat:pgsqlms,
# resource-agents-paf) on identical harness clusters (tests/cluster), one cluster at a time.
#
#   make bench-failover                        # or: tests/bench/failover.sh
#   BENCH_RUNS=1 tests/bench/failover.sh       # a quick run
#
# Knobs:
#   BENCH_RUNS    runs of each measurement for each agent (default 3); medians are reported
#   BENCH_AGENTS  agents to compare (default "ocf:pgha:pgsqlms ocf:heartbeat:pgsqlms")
#   BENCH_KINDS   "failover switchover" (default) or one of them
#
# Every measurement runs on a fresh cluster (pgha_cluster_up_eligible: 3 nodes, fencing on,
# 1 Promoted + 2 streaming Unpromoted with positive promotion scores); the agents alternate
# (run 1: A then B, run 2: B then A, ...).
#   failover:   `harness.sh crash PRIMARY` (power cut) -> an INSERT through the VIP succeeds,
#               polled every 100 ms from a surviving standby (each attempt bounded to 0.5 s).
#               Phases, from the survivors' pacemaker.log (ms timestamps, same clock as the host):
#                 detection  crash -> "Requesting fencing" (DC's controller)
#                 fencing    -> "Peer NODE was terminated ...: OK"
#                 agent      first "Initiating notify operation pgsqld_pre_notify_promote_0"
#                            -> first "Result of promote operation for pgsqld on X: ok"
#                            (Pacemaker 3 logs "OK": both match)
#                 rest       promote ok -> VIP writable (VIP start, ARP, the poll's granularity)
#                 fenced->agent  fencing confirmed -> that pre-promote notify (the notifies of
#                            the implied demote/stop of the lost primary, the scheduler)
#   switchover: `pcs resource move pgsqld-clone STANDBY --promoted` -> an INSERT through the VIP
#               succeeds on a server other than the old primary (pg_postmaster_start_time()
#               differs), polled the same way from the third node; then `pcs resource clear`.
#                 detection  (here: scheduling) pcs move -> "Initiating demote operation"
#                 agent      demote initiated -> "Result of promote operation ...: ok"
#                 rest       promote ok -> writable through the VIP
# Writes the tables to tests/bench/results-failover.md. Run as root (the harness needs it).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RESULTS=$HERE/results-failover.md

# ------------------------------------------------------------ one measurement (a child run)
# failover.sh --one KIND OUT: PGHA_AGENT set by the parent; appends one line to OUT:
#   AGENT KIND TOTAL DETECTION FENCING FENCED->AGENT AGENT REST READY->PROMOTED
#   (seconds, "-" if not applicable)
if [ "${1:-}" = --one ]; then
  KIND=$2 OUT=$3
  # shellcheck source=../cluster/lib/common.sh
  source "$HERE/../cluster/lib/common.sh"

  # logt REGEX: pacemaker_log_time (lib/common.sh) from the event on
  logt() { pacemaker_log_time "$t0" "$1"; }
  # an operation's success as the controller logs it: "ok" up to Pacemaker 2.1, "OK" from 3.0
  OK_RE=': (ok|OK)( |$)'

  # diff A B: B - A, "-" if either is missing
  d() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; else echo -; fi; }
  # poll_writable FROM OLDSTART: every 100 ms from node FROM, INSERT through the VIP until it
  # succeeds on a server whose pg_postmaster_start_time() is not OLDSTART; prints the epoch
  # time of the success (the node's clock is the host's)
  poll_writable() {
    # shellcheck disable=SC2016 # expanded by the node's shell
    h exec "$1" bash -c '
      end=$(( $(date +%s) + 120 ))
      while [ "$(date +%s)" -lt "$end" ]; do
        r=$(timeout 0.5 runuser -u postgres -- psql -h "$1" -X -q -At -v ON_ERROR_STOP=1 \
              -c "insert into tbench values (1)" -c "select pg_postmaster_start_time()" 2>/dev/null) || r=""
        if [ -n "$r" ] && [ "$r" != "$2" ]; then date +%s.%N; exit 0; fi
        sleep 0.1
      done
      exit 1' poll "$VIP" "$2"
  }

  scenario_begin
  pgha_cluster_up_eligible
  p=$PRIMARY; s1=${STANDBYS%% *}; s2=${STANDBYS##* }
  sql_vip "$s1" "create table tbench(v int)" || fatal "create table through the VIP"
  oldstart=$(psql_on "$p" "select pg_postmaster_start_time()")
  case $KIND in
    failover)
      t0=$(now); T0SOD=$(sod "$t0")
      h crash "$p"
      t1=$(poll_writable "$s1" "$oldstart") || fatal "VIP not writable 120 s after the crash of $p"
      fr=$(logt "Requesting fencing [(]")
      fc=$(logt "Peer $p was terminated .*: OK")
      as=$(logt "Initiating notify operation ${RSC}_pre_notify_promote_0")
      ae=$(logt "Result of promote operation for $RSC on [^:]*$OK_RE")
      det=$(d "$T0SOD" "$fr"); fen=$(d "$fr" "$fc"); gap=$(d "$fc" "$as"); ag=$(d "$as" "$ae")
      ;;
    switchover)
      t0=$(now); T0SOD=$(sod "$t0")
      quiet h exec "$s1" pcs resource move "$CLONE" "$s1" --promoted || fatal "pcs resource move"
      t1=$(poll_writable "$s2" "$oldstart") || fatal "VIP not writable on $s1 120 s after the move"
      as=$(logt "Initiating demote operation ${RSC}_demote_0")
      ae=$(logt "Result of promote operation for $RSC on $s1$OK_RE")
      det=$(d "$T0SOD" "$as"); fen=-; gap=-; ag=$(d "$as" "$ae")
      quiet h exec "$s1" pcs resource clear "$CLONE" || ko "pcs resource clear"
      ;;
    *) fatal "unknown kind $KIND" ;;
  esac
  total=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  T1SOD=$(sod "$t1")
  rest=$(d "$ae" "$T1SOD")
  # the promoted server accepting writes ("database system is ready to accept connections"
  # in its log) -> Pacemaker records the promote's success
  pn=$(promoted_node)
  ready=$(awk -v t0="$T0SOD" '/database system is ready to accept connections/ {
      split($2, a, ":"); t = a[1] * 3600 + a[2] * 60 + a[3]; if (t + 0.0005 >= t0) { printf "%.3f\n", t; exit } }' \
      "$PGHA_CLUSTER_ROOT/nodes/$pn/var-log-postgresql/postgresql.log" 2>/dev/null || true)
  rp=$(d "$ready" "$ae")
  say "$KIND: total $total s, detection $det, fencing $fen, fenced->agent $gap, agent $ag, rest $rest, ready->promoted $rp"
  # the log lines the phases come from, for the record
  for re in "Requesting fencing [(]" "Peer $p was terminated" "${RSC}_pre_notify_promote_0" \
            "Initiating demote operation" "Result of (promote|demote) operation for $RSC"; do
    cat "$PGHA_CLUSTER_ROOT"/nodes/*/var-log-pacemaker/pacemaker.log \
      | awk -v t0="$T0SOD" -v re="$re" '{ split($3, a, ":"); if (a[1]*3600+a[2]*60+a[3] + 0.0005 >= t0 && $0 ~ re) print }' \
      | sort -k3,3 | head -n 2 | cut -c1-220 | sed 's/^/    /'
  done
  # the agents' own lines from the event to the end (what the agents did meanwhile)
  for n in node1 node2 node3; do
    [ "$n" = "$p" ] && [ "$KIND" = failover ] && continue
    awk -v t0="$T0SOD" -v t1="$T1SOD" -v n="$n" '{ split(substr($1, 12), a, ":"); t = a[1]*3600+a[2]*60+a[3]
      if (t + 0.0005 >= t0 && t <= t1 + 0.5) print "    " n ": " substr($0, 12, 12) " " substr($0, index($0, "]: ") + 3) }' \
      "$(agent_log "$n")" 2>/dev/null | grep -v 'IPaddr2\|^ *$' | cut -c1-200 | head -n 25 || true
  done
  echo "$AGENT $KIND $total $det $fen $gap $ag $rest $rp" >>"$OUT"
  ok "$KIND measured"
  scenario_end
fi

# ------------------------------------------------------------ the driver
RUNS=${BENCH_RUNS:-3}
read -r -a AGENTS <<<"${BENCH_AGENTS:-ocf:pgha:pgsqlms ocf:heartbeat:pgsqlms}"
read -r -a KINDS <<<"${BENCH_KINDS:-failover switchover}"
[ "$(id -u)" = 0 ] || { echo "failover.sh: run as root (the cluster harness needs it)" >&2; exit 1; }
[ -x "$ROOT/target/release/pgha" ] || { echo "failover.sh: target/release/pgha is not built (make build)" >&2; exit 1; }
RAW=$(mktemp /tmp/pgha-bench-failover.XXXXXX)
LOG=${RAW}.log
T_START=$(date +%s)
echo "raw results: $RAW, run log: $LOG"

for ((run = 1; run <= RUNS; run++)); do
  order=("${AGENTS[@]}")
  if ((run % 2 == 0)); then order=(); for ((i = ${#AGENTS[@]} - 1; i >= 0; i--)); do order+=("${AGENTS[i]}"); done; fi
  for kind in "${KINDS[@]}"; do
    for agent in "${order[@]}"; do
      echo "== run $run/$RUNS: $kind with $agent"
      if ! PGHA_AGENT=$agent "$HERE/failover.sh" --one "$kind" "$RAW" 2>&1 | tee -a "$LOG" \
           | grep -E 'total|FAIL|    '; then
        echo "   (no result)"
      fi
    done
  done
done

# median of the numeric values on stdin ("-" if none)
median() { grep -E '^-?[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END {
  if (NR == 0) { print "-"; exit }
  if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v a="$1" -v k="$2" -v c="$3" '$1 == a && $2 == k { print $c }' "$RAW" | median; }
nrun() { awk -v a="$1" -v k="$2" '$1 == a && $2 == k' "$RAW" | wc -l; }
name() { case $1 in ocf:pgha:*) echo "pgha $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')" ;;
                    ocf:heartbeat:pgsqlms) echo "PAF $(dpkg-query -W -f='${Version}' resource-agents-paf 2>/dev/null)" ;;
                    *) echo "$1" ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

{
  echo "# Failover and switchover: pgha vs PAF"
  echo
  echo "Command: \`BENCH_RUNS=$RUNS tests/bench/failover.sh\` (\`make bench-failover\`), $(date -u +%Y-%m-%d), $(( $(date +%s) - T_START )) s."
  echo
  echo "Machine: $(nproc) CPU ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r);"
  echo "Pacemaker $(dpkg-query -W -f='${Version}' pacemaker 2>/dev/null), Corosync $(dpkg-query -W -f='${Version}' corosync 2>/dev/null), PostgreSQL $(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null)."
  echo "Harness clusters (tests/cluster): 3 nodes on one machine, corosync token ${PGHA_TOKEN:-1000} ms, fencing by fence_harness, resources from crm-examples/pcs-3nodes-vip.sh."
  echo
  echo "Medians of the runs, seconds. Each run on a fresh cluster; agents alternate. Phases from the survivors' pacemaker.log (ms timestamps):"
  echo "failover = \`harness.sh crash PRIMARY\` -> INSERT through the VIP succeeds (polled every 100 ms, 0.5 s per attempt, from a surviving standby);"
  echo "detection = crash -> \"Requesting fencing\"; fencing -> \"Peer ... was terminated ...: OK\"; fenced->agent = fencing confirmed -> first pre-promote notify initiated (notifies of the lost primary's implied demote/stop, scheduling); agent = first pre-promote notify initiated -> \"Result of promote operation ...: ok\"; rest = promote ok -> writable (VIP start, ARP, poll granularity); ready->promoted = the new primary's log says \"database system is ready to accept connections\" -> \"Result of promote operation ...: ok\" (the issue's bound: 0.5 s)."
  echo "switchover = \`pcs resource move pgsqld-clone STANDBY --promoted\` -> INSERT through the VIP succeeds on the new primary; its \"detection\" column is the scheduling time (move -> demote initiated), agent = demote initiated -> promote ok."
  echo
  echo "| agent | what | runs | median total s | detection s | fencing s | fenced->agent s | agent s | rest s | ready->promoted s |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for kind in "${KINDS[@]}"; do
    for agent in "${AGENTS[@]}"; do
      echo "| $(name "$agent") | $kind | $(nrun "$agent" "$kind") | $(col "$agent" "$kind" 3) | $(col "$agent" "$kind" 4) | $(col "$agent" "$kind" 5) | $(col "$agent" "$kind" 6) | $(col "$agent" "$kind" 7) | $(col "$agent" "$kind" 8) | $(col "$agent" "$kind" 9) |"
    done
  done
  echo
  if [ "${#AGENTS[@]}" = 2 ]; then
    for kind in "${KINDS[@]}"; do
      echo "Agent phase, $kind, $(name "${AGENTS[0]}" | cut -d' ' -f1)/$(name "${AGENTS[1]}" | cut -d' ' -f1): $(ratio "$(col "${AGENTS[0]}" "$kind" 7)" "$(col "${AGENTS[1]}" "$kind" 7)") (target: <= 0.3)."
      echo
    done
  fi
  echo "Every run (agent, what, total, detection, fencing, fenced->agent, agent, rest, ready->promoted):"
  echo
  echo '```'
  cat "$RAW"
  echo '```'
} >"$RESULTS"
cat "$RESULTS"
