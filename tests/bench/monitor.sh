#!/usr/bin/env bash
# Monitor benchmark: pgha (ocf:pgha:pgsqlms) against PAF 2.3.0 (ocf:heartbeat:pgsqlms, Debian
# package resource-agents-paf) on the same PostgreSQL 15 primary and streaming standby, with
# the same environment and the same fake Pacemaker tools, in alternating runs.
#
#   make bench                       # or: tests/bench/monitor.sh
#   BENCH_RUNS=100 make bench        # timed runs per agent and role (default 30)
#
# Other knobs: BENCH_WARMUP (3), BENCH_RSS_RUNS (5), BENCH_STRACE_RUNS (3), PGHA_BIN (the
# binary to measure, default target/release/pgha).
#
# Run as root on Debian 12. Prints a Markdown table and writes it, with the machine and the
# method, to tests/bench/results-monitor.md.
#
# What is measured, per agent and role (one `monitor` action, scores already right):
#   * wall time: median and p90 of BENCH_RUNS runs, timed in this shell with $EPOCHREALTIME
#     around fork+exec+wait of the agent; pgha and PAF runs alternate (and which goes first
#     alternates too), after BENCH_WARMUP untimed runs of each; /bin/true, started the same
#     way in every round, gives the floor any agent pays on this machine;
#   * processes spawned: successful execve(2) calls under `strace -f`, minus the one that
#     starts the agent. For PAF this counts every program perl starts, including the /bin/sh
#     of each qx{} and the fake Pacemaker tools (themselves /bin/sh scripts that spawn
#     nothing), but not perl itself (the agent's own execve, via its #! line). Forks
#     (clone/fork/vfork without CLONE_THREAD) are reported too. The very first monitor of
#     each (nothing remembered yet) is traced and reported apart;
#   * peak RSS: GNU time's %M, i.e. ru_maxrss of wait4() on the agent, which Linux reports as
#     the largest maximum RSS of any single process in the agent's tree (the agent or one of
#     its waited-for descendants), not a sum. pgha is one process; for PAF it is the largest
#     of perl, postgres -C, psql, ... Maximum over BENCH_RSS_RUNS runs.
#
# The fake Pacemaker tools (crm_node, crm_attribute, crm_master, attrd_updater, crm_resource)
# keep node attributes in files. Scores are preset to what PAF's primary monitor computes
# (node1, the primary: 1001; node2, the streaming standby: 1000), so both agents run a
# monitor whose scores do not change; any attribute write during the benchmark aborts it.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# Run in a clean, fixed environment: both agents inherit exactly what is set below.
if [[ -z ${PGHA_BENCH_CLEAN:-} ]]; then
    exec env -i PGHA_BENCH_CLEAN=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
        BENCH_RUNS="${BENCH_RUNS:-}" BENCH_WARMUP="${BENCH_WARMUP:-}" \
        BENCH_RSS_RUNS="${BENCH_RSS_RUNS:-}" BENCH_STRACE_RUNS="${BENCH_STRACE_RUNS:-}" \
        PGHA_BIN="${PGHA_BIN:-}" bash "$0" "$@"
fi
export -n PGHA_BENCH_CLEAN BENCH_RUNS BENCH_WARMUP BENCH_RSS_RUNS BENCH_STRACE_RUNS PGHA_BIN

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
# shellcheck source=../lib/fake-pacemaker.sh
source "$ROOT/tests/lib/fake-pacemaker.sh"
PGHA=${PGHA_BIN:-$ROOT/target/release/pgha}
PAF=/usr/lib/ocf/resource.d/heartbeat/pgsqlms
PGBIN=/usr/lib/postgresql/15/bin
RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
RSS_RUNS=${BENCH_RSS_RUNS:-5}
STRACE_RUNS=${BENCH_STRACE_RUNS:-3}
RESULTS=$ROOT/tests/bench/results-monitor.md
RSC=pgsqld
PRIMARY=node1
STANDBY=node2

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'monitor.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

for n in "$RUNS" "$WARMUP" "$RSS_RUNS" "$STRACE_RUNS"; do
    [[ $n =~ ^[0-9]+$ ]] || die "BENCH_* values must be whole numbers (got \"$n\")"
done
((RUNS >= 1 && RSS_RUNS >= 1 && STRACE_RUNS >= 1)) || die "BENCH_* run counts must be at least 1"
((EUID == 0)) || die "run as root (the agents run PostgreSQL tools as the postgres user)"
LOAD=$(cut -d" " -f1-3 /proc/loadavg)

# --- 1. What the benchmark needs --------------------------------------------------------------
missing=()
for pkg in postgresql-15 postgresql-client-15 resource-agents-paf strace time; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing: ${missing[*]}"
    # As in `make deps`: keep postinsts from starting corosync/pacemaker on this host.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
[[ -x $PAF ]] || die "PAF is not at $PAF"
[[ -x $PGHA ]] || die "no pgha release binary at $PGHA: run \`make build\` (or \`make bench\`)"
[[ -x $PGBIN/postgres ]] || die "PostgreSQL 15 is not at $PGBIN"

# --- 2. A primary and a streaming standby ----------------------------------------------------
WORK=$(mktemp -d /tmp/pgha-bench.XXXXXX)
chmod 0755 "$WORK"
SOCK=$WORK/sock
SBIN=$WORK/sbin
STATE=$WORK/attrs

cleanup() {
    local rc=$?
    pg_stop_all "$WORK/$PRIMARY" "$WORK/$STANDBY"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql_on() { pg_sql "$SOCK" "$@"; } # port sql

mkdir -p "$WORK/log" "$SOCK" "$WORK/rsctmp" "$WORK/trace"
chown postgres: "$SOCK" "$WORK/log"
chmod 0755 "$WORK/rsctmp"
PORT1=$(pg_free_port 25432) || die "no free TCP port from 25432"
PORT2=$(pg_free_port $((PORT1 + 1))) || die "no free TCP port from $((PORT1 + 1))"

say "initdb $PRIMARY (port $PORT1) in $WORK"
install -d -o postgres -g postgres -m 0700 "$WORK/$PRIMARY" "$WORK/$STANDBY"
pg_initdb "$WORK/$PRIMARY" || die "initdb failed"
cat >>"$WORK/$PRIMARY/postgresql.conf" <<EOF

# pgha monitor benchmark
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
wal_level = replica
wal_log_hints = on
hot_standby = on
max_wal_senders = 5
recovery_target_timeline = 'latest'
logging_collector = off
port = $PORT1
primary_conninfo = 'host=127.0.0.1 port=$PORT2 user=postgres application_name=$PRIMARY'
EOF
pg_start "$WORK/$PRIMARY" "$WORK/log/$PRIMARY.log" || die "the primary did not start"

say "pg_basebackup $STANDBY (port $PORT2)"
pg_standby "$WORK/$STANDBY" -h 127.0.0.1 -p "$PORT1" -U postgres || die "pg_basebackup failed"
cat >>"$WORK/$STANDBY/postgresql.conf" <<EOF
port = $PORT2
primary_conninfo = 'host=127.0.0.1 port=$PORT1 user=postgres application_name=$STANDBY'
EOF
pg_start "$WORK/$STANDBY" "$WORK/log/$STANDBY.log" || die "the standby did not start"
pg_poll 30 0.1 pg_streams "$SOCK" "$PORT1" "$STANDBY" ||
    die "$STANDBY is not streaming from $PRIMARY"
say "$STANDBY is streaming from $PRIMARY"

# --- 3. Fake Pacemaker tools, shared by both agents -------------------------------------------
# tests/lib/fake-pacemaker.sh's crm_node and crm_attribute, and the tools only PAF calls
# (builtins only: they spawn nothing). PAF's crm_master (lifetime forever) and pgha's
# crm_attribute --promotion (lifetime reboot) share the same store, as one score per node is
# all either agent reads. Writes and unexpected calls must not happen.
fake_pacemaker "$SBIN" "$STATE" "$PRIMARY" "$STANDBY"

# PAF: crm_master --lifetime forever [--node <node>] --quiet --get-value | --update <score>
fake_tool "$SBIN" "$STATE" crm_master <<'EOF'
node=${OCF_RESKEY_CRM_meta_on_node:?} op= val=
while [ $# -gt 0 ]; do
    case "$1" in
        -l|--lifetime) shift ;;
        -q|--quiet) ;;
        -N|--node) shift; node=$1 ;;
        -G|--get-value) op=get ;;
        -v|--update) shift; op=set; val=$1 ;;
        *) unsupported ;;
    esac
    shift
done
f="$S/master-${OCF_RESOURCE_INSTANCE:?}.$node"
case $op in
    get) get "$f" ;;
    set) set_attr "$f" "$val" ;;
    *) unsupported ;;
esac
EOF

# PAF: attrd_updater --private --lifetime reboot --name <n> --query|--update <v>|--delete [--node]
fake_tool "$SBIN" "$STATE" attrd_updater <<'EOF'
name= node=${OCF_RESKEY_CRM_meta_on_node:?} op= val=
while [ $# -gt 0 ]; do
    case "$1" in
        -p|--private) ;;
        -l|--lifetime) shift ;;
        -n|--name) shift; name=$1 ;;
        -N|--node) shift; node=$1 ;;
        -Q|--query) op=get ;;
        -U|--update) shift; op=set; val=$1 ;;
        -D|--delete) op=del ;;
        *) unsupported ;;
    esac
    shift
done
f="$S/attrd-$name.$node"
case $op in
    get) [ -f "$f" ] || exit 105; read -r v <"$f"
         printf "name=\"%s\" host=\"%s\" value=\"%s\"\n" "$name" "$node" "$v" ;;
    set) set_attr "$f" "$val" ;;
    del) echo "$0 $f delete" >>"$S/.writes"; rm -f "$f" ;;
    *) unsupported ;;
esac
EOF

# PAF 2.3.0 validate-all: crm_resource --resource <rsc> --meta --get-parameter notify
fake_tool "$SBIN" "$STATE" crm_resource <<'EOF'
case "$*" in
    *"--meta --get-parameter notify") printf "%s\n" "${OCF_RESKEY_CRM_meta_notify:?}" ;;
    *) unsupported ;;
esac
EOF

fake_score "$STATE" "$RSC" "$PRIMARY" 1001
fake_score "$STATE" "$RSC" "$STANDBY" 1000

# The environment of every agent run: what Pacemaker 2.1 passes to a recurring monitor of a
# promotable clone (plus PAF's requirements), identical for both agents. PATH starts with
# the fake tools because PAF finds crm_node through PATH (ocf_local_nodename).
export PATH="$SBIN:/usr/sbin:/usr/bin:/sbin:/bin"
export OCF_ROOT=/usr/lib/ocf OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1
export OCF_RESOURCE_INSTANCE=$RSC OCF_RESOURCE_TYPE=pgsqlms
export OCF_RESKEY_crm_feature_set=3.16.1
export OCF_RESKEY_CRM_meta_notify=true OCF_RESKEY_CRM_meta_master_max=1
export OCF_RESKEY_CRM_meta_promoted_max=1 OCF_RESKEY_CRM_meta_clone_max=2
export OCF_RESKEY_CRM_meta_timeout=10000
export OCF_RESKEY_bindir=$PGBIN OCF_RESKEY_pghost=$SOCK
export HA_SBIN_DIR=$SBIN HA_RSCTMP=$WORK/rsctmp HA_LOGFACILITY=none HA_debug=0

# run_agent AGENT ROLE [wrapper...]: one monitor in a subshell that adds the node's variables
# and execs the (wrapped) agent. Output goes to $WORK/out and $WORK/err; returns its status.
run_agent() {
    local agent=$1 role=$2
    shift 2
    local node=$PRIMARY port=$PORT1 interval=15000
    if [[ $role == standby ]]; then
        node=$STANDBY port=$PORT2 interval=16000
    fi
    (
        export OCF_RESKEY_pgdata=$WORK/$node OCF_RESKEY_pgport=$port
        export OCF_RESKEY_CRM_meta_on_node=$node OCF_RESKEY_CRM_meta_interval=$interval
        exec "$@" "$agent" monitor
    ) >"$WORK/out" 2>"$WORK/err"
}

agent_path() {
    case $1 in
        pgha) echo "$PGHA" ;;
        paf) echo "$PAF" ;;
        floor) echo /bin/true ;;
    esac
}
expected_rc() { if [[ $1 == primary ]]; then echo 8; else echo 0; fi; }

# check NAME ROLE [wrapper...]: the run returned what the role requires, or abort loudly.
check() {
    local name=$1 role=$2 rc=0
    shift 2
    run_agent "$(agent_path "$name")" "$role" "$@" || rc=$?
    if ((rc != $(expected_rc "$role"))); then
        printf '%s\n' "--- stdout:" "$(cat "$WORK/out")" "--- stderr:" "$(cat "$WORK/err")" >&2
        die "$name monitor on the $role returned $rc, not $(expected_rc "$role")"
    fi
}

check_scores_untouched() {
    fake_calls_understood "$STATE" || die "the fake Pacemaker tools were called unexpectedly"
    fake_nothing_written "$STATE" ||
        die "a monitor wrote attributes (preset scores are not what it computes)"
}

# trace NAME ROLE: one checked run under strace; sets TRACED to "programs/forks" and
# PROGRAMS to what was run. Programs: successful execve minus the agent's own; forks:
# clone/fork/vfork that created a process (threads excluded). -ff gives one file per process,
# so no line is split by another process's.
trace() {
    local name=$1 role=$2 execs forks
    rm -rf "$WORK/trace" && mkdir "$WORK/trace"
    check "$name" "$role" strace -f -ff -qq -e trace=execve,clone,clone3,fork,vfork \
        -o "$WORK/trace/t"
    execs=$(cat "$WORK/trace"/t.* | grep -c '^execve(.*) = 0$' || true)
    forks=$(cat "$WORK/trace"/t.* | grep -E '^(clone3?|v?fork)\(' |
        grep -v CLONE_THREAD | grep -cE '= [0-9]+$' || true)
    TRACED="$((execs - 1))/$forks"
    PROGRAMS=$(cat "$WORK/trace"/t.* | grep '^execve(.*) = 0$' |
        sed -E 's/^execve\("([^"]*)".*/\1/' | { grep -vxF "$(agent_path "$name")" || true; } |
        xargs -r -n1 basename | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }')
}

# First runs, traced: nothing remembered yet (pgha keeps what it wrote under HA_RSCTMP).
ROLES=(primary standby)
AGENTS=(pgha paf)
declare -A FIRST
for role in "${ROLES[@]}"; do
    for name in "${AGENTS[@]}"; do
        trace "$name" "$role"
        FIRST[$name.$role]="${TRACED%/*} (${PROGRAMS:-none})"
    done
done
check_scores_untouched
say "both agents: primary -> 8, standby -> 0, no attribute written"

# --- 4. Measurements ----------------------------------------------------------------------------
say "processes: $STRACE_RUNS strace runs of each"
declare -A EXECS FORKS SPAWNED
for name in "${AGENTS[@]}"; do
    for role in "${ROLES[@]}"; do
        counts=()
        for ((i = 0; i < STRACE_RUNS; i++)); do
            trace "$name" "$role"
            counts+=("$TRACED")
            SPAWNED[$name.$role]=$PROGRAMS
        done
        mapfile -t uniq < <(printf '%s\n' "${counts[@]}" | sort -u)
        if ((${#uniq[@]} == 1)); then
            EXECS[$name.$role]=${uniq[0]%/*}
            FORKS[$name.$role]=${uniq[0]#*/}
        else # not the same in every run: show the range
            EXECS[$name.$role]=$(printf '%s\n' "${counts[@]%/*}" | sort -n | sed -n '1p;$p' | paste -sd-)
            FORKS[$name.$role]=$(printf '%s\n' "${counts[@]#*/}" | sort -n | sed -n '1p;$p' | paste -sd-)
        fi
    done
done

say "peak RSS: $RSS_RUNS runs of each"
declare -A RSS
for name in "${AGENTS[@]}"; do
    for role in "${ROLES[@]}"; do
        RSS[$name.$role]=0
        for ((i = 0; i < RSS_RUNS; i++)); do
            check "$name" "$role" /usr/bin/time -f %M -o "$WORK/rss"
            kb=$(tail -n 1 "$WORK/rss")
            [[ $kb =~ ^[0-9]+$ ]] || die "GNU time printed \"$kb\""
            ((kb > RSS[$name.$role])) && RSS[$name.$role]=$kb
        done
    done
done

# PAF's perl alone: its meta-data action loads the agent and its modules and runs nothing.
/usr/bin/time -f %M -o "$WORK/rss" "$PAF" meta-data >/dev/null || die "PAF meta-data failed"
PERL_RSS=$(tail -n 1 "$WORK/rss")
# ... and the largest program it runs, as PAF's validate does (as root, -C first).
/usr/bin/time -f %M -o "$WORK/rss" "$PGBIN/postgres" -C primary_conninfo -D "$WORK/$PRIMARY" \
    >/dev/null || die "postgres -C failed"
PGC_RSS=$(tail -n 1 "$WORK/rss")

declare -A TIMES
us_now() { local t=$EPOCHREALTIME; REPLY=$((10#${t/./})); }
timed() { # name role: appends the wall time in µs to TIMES[name.role]
    local name=$1 role=$2 agent t0 rc=0 want=0
    agent=$(agent_path "$name")
    [[ $name == floor ]] || want=$(expected_rc "$role")
    us_now
    t0=$REPLY
    run_agent "$agent" "$role" || rc=$?
    us_now
    ((rc == want)) || { check "$name" "$role"; die "$name returned $rc"; }
    TIMES[$name.$role]+="$((REPLY - t0)) "
}

say "warm-up: $WARMUP runs of each"
for ((i = 0; i < WARMUP; i++)); do
    for role in "${ROLES[@]}"; do
        for name in "${AGENTS[@]}"; do
            check "$name" "$role"
        done
    done
done
say "timing: $RUNS alternating runs per agent and role"
for ((i = 0; i < RUNS; i++)); do
    for role in "${ROLES[@]}"; do
        if ((i % 2 == 0)); then
            timed pgha "$role"
            timed paf "$role"
        else
            timed paf "$role"
            timed pgha "$role"
        fi
    done
    timed floor primary # /bin/true: the cost of starting any program from here
done
check_scores_untouched

# stat VALUES...: sets MEDIAN and P90 (nearest rank), in µs.
stat() {
    local sorted n
    mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
    n=${#sorted[@]}
    if ((n % 2)); then
        MEDIAN=${sorted[n / 2]}
    else
        MEDIAN=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2))
    fi
    P90=${sorted[(9 * n + 9) / 10 - 1]}
}

# --- 5. Report -----------------------------------------------------------------------------------
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
label() { if [[ $1 == pgha ]]; then echo "pgha"; else echo "PAF 2.3.0"; fi; }

rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
paf_version=$(dpkg-query -W -f='${Version}' resource-agents-paf)
pg_version=$("$PGBIN/postgres" --version)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
built=$(date -u -r "$PGHA" '+%Y-%m-%d %H:%M UTC')

table() {
    local name role
    echo "| agent | role | median ms | p90 ms | processes spawned | forks | peak RSS MiB | speed-up |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for role in "${ROLES[@]}"; do
        # shellcheck disable=SC2086 # the times are a space-separated list of integers
        stat ${TIMES[paf.$role]}
        local paf_median=$MEDIAN
        for name in "${AGENTS[@]}"; do
            # shellcheck disable=SC2086
            stat ${TIMES[$name.$role]}
            local ratio="1×"
            if [[ $name == pgha ]]; then
                ratio=$(awk -v a="$paf_median" -v b="$MEDIAN" 'BEGIN { printf "%.1f×", a / b }')
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(label "$name")" "$role" \
                "$(ms "$MEDIAN")" "$(ms "$P90")" "${EXECS[$name.$role]}" \
                "${FORKS[$name.$role]}" "$(mib "${RSS[$name.$role]}")" "$ratio"
        done
    done
}

TABLE=$(table)
# shellcheck disable=SC2086
stat ${TIMES[floor.primary]}
FLOOR=$(ms "$MEDIAN")
{
    echo "# Monitor benchmark: pgha vs PAF 2.3.0"
    echo
    runs=""
    [[ -z ${BENCH_RUNS:-} ]] || runs="BENCH_RUNS=$RUNS "
    echo "Reproduce (root, Debian 12): \`${runs}make bench\` (runs \`tests/bench/monitor.sh\`)."
    echo
    echo "$TABLE"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPU(s), $cpu; Linux $(uname -r);"
    echo "  load average before the run: $LOAD."
    echo "- $pg_version; PAF $paf_version (resource-agents-paf); pgha $rev (release binary"
    echo "  built $built)."
    echo "- A PostgreSQL 15 primary ($PRIMARY) and a streaming standby ($STANDBY) on this host,"
    echo "  Unix sockets; scores preset to what the agents compute (1001, 1000) and left"
    echo "  unchanged: no attribute was written during the benchmark."
    echo "- Wall time: $RUNS runs per agent and role, pgha and PAF alternating (each first in"
    echo "  every other round), after $WARMUP warm-up runs; fork+exec+wait of the agent from"
    echo "  bash. Starting /bin/true the same way takes $FLOOR ms (median) on this machine."
    echo "  Speed-up = PAF median / pgha median."
    echo "- Processes spawned: successful execve(2) under \`strace -f\` minus the agent's own"
    echo "  (so PAF's perl is not counted; its /bin/sh wrappers are). Forks: clone/fork/vfork"
    echo "  creating a process (threads excluded). Same count in all $STRACE_RUNS traced runs"
    echo "  unless a range is shown. The Pacemaker tools are fake /bin/sh scripts that spawn"
    echo "  nothing and answer at once; the real ones talk to the CIB (and \`crm_master\` is a"
    echo "  bash script running \`crm_attribute\`), so PAF's counts and times are lower bounds."
    echo "- Peak RSS: GNU time %M (wait4 ru_maxrss), max of $RSS_RUNS runs: the largest single"
    echo "  process of the agent's tree, not a sum (pgha: the agent; PAF: perl or a child)."
    echo "  Alone, PAF's perl (its meta-data action, which runs nothing) peaks at"
    echo "  $(mib "$PERL_RSS") MiB and \`postgres -C primary_conninfo\` (run twice by PAF's validate) at"
    echo "  $(mib "$PGC_RSS") MiB."
    echo
    echo "Programs run by one steady-state monitor:"
    echo
    for role in "${ROLES[@]}"; do
        for name in "${AGENTS[@]}"; do
            echo "- $(label "$name"), $role: ${SPAWNED[$name.$role]:-none}"
        done
    done
    echo
    echo "First monitor after setup (nothing remembered yet; pgha keeps the scores it last"
    echo "wrote under HA_RSCTMP and asks Pacemaker again when they are older than its TTL):"
    echo
    for role in "${ROLES[@]}"; do
        for name in "${AGENTS[@]}"; do
            echo "- $(label "$name"), $role: ${FIRST[$name.$role]}"
        done
    done
} >"$RESULTS"

echo
echo "$TABLE"
echo
say "/bin/true floor: $FLOOR ms; details in ${RESULTS#"$ROOT"/}"
