#!/usr/bin/env bash
# Rewind benchmark: how fast a diverged former primary streams again, brought back by pgha's
# start action, by pgha's native engine (pgha rewind --engine native), by a bare pg_rewind,
# and by a bare pg_basebackup re-clone, from identical copies of the same diverged cluster,
# in two settings of WAL retention on the new primary.
#
#   make bench-rewind                                # or: tests/bench/rewind.sh
#   make bench-rewind PG=19                          # another major (BENCH_PG=19 here)
#   BENCH_SCALE=10 BENCH_RUNS=1 make bench-rewind    # a quick, small run
#   BENCH_SCALE=700 BENCH_DIR=/var/tmp make bench-rewind  # the 10 GB point (needs ~50 GB)
#
# Knobs:
#   BENCH_PG        the PostgreSQL major (default 15, the host's), its programs from
#                   tests/pgbin/fetch.sh (13–19; fetched once per machine)
#   BENCH_SCALE     pgbench scale (default 70, about 1.1 GB of database; 700: about 10 GB)
#   BENCH_RUNS      timed runs of each path in each setting (default 3); the median counts
#   BENCH_SETTINGS  "small large" (default), or one of them:
#                     small: wal_keep_size=64MB, WAL archive (archive_command/restore_command)
#                     large: wal_keep_size=2GB, no archive
#   BENCH_STOP      how the old primary stops after diverging: crash (default: immediate
#                   shutdown, as in a failover) or clean (fast shutdown)
#   BENCH_SETTLE    1 (default): before the fork, let WAL retention reach its steady state
#                   (see below); 0: fork right after the load
#   BENCH_FAST      1: fsync=off and synchronous_commit=off (default: both on, realistic)
#   BENCH_DIR       where the work directory goes (default /tmp); it needs about 4 times
#                   the database size, plus wal_keep_size
#   BENCH_CONF      extra postgresql.conf lines for both nodes, separated by ";"
#                   (e.g. "min_wal_size=32MB; shared_buffers=1GB")
#   BENCH_KEEP      1: keep the work directory (data directories, logs) at the end
#   PGHA_BIN        the binary to measure (default target/release/pgha)
#
# Run as root on Debian 12. Prints the tables and writes them, with the machine and the
# method, to tests/bench/results-rewind-pgN.md (N: the major; -scaleS.md added at another
# scale than 70).
#
# Per setting, built once: node A, a primary (initdb, wal_log_hints=on), and node B, its
# streaming standby, both on one TCP port, A on 127.0.0.1 and B on 127.0.0.2, and each on its
# own Unix socket directory (pgha reaches the primary as host=<its node name> port=<pgport>,
# so both need the same port). pgbench -i -s BENCH_SCALE on A while B streams. Settle (when
# BENCH_SETTLE=1): rounds of CHECKPOINT + pg_switch_wal() on A and a restartpoint on B until
# B's pg_wal holds no more preallocated segments than min_wal_size, so that B keeps what
# wal_keep_size says and not the recycled segments a bulk load leaves (pg_rewind copies
# every file of the source's pg_wal). Then B is promoted (timeline 2), 2 % of
# pgbench_accounts' rows are updated on each side (contiguous ranges, different on A and B),
# A stops (BENCH_STOP) and B is shut down cleanly. Copies of both data directories, and the
# list of archived files, are kept; every timed run starts from fresh copies of them (and an
# archive with exactly the same files), with B started first and not timed.
#
# The timed paths, each from its first command until B's pg_stat_replication shows A
# (application_name nodeA) streaming:
#   pgha:        the agent's start action on A with Pacemaker's environment for a start
#                during a transition where nodeB is the primary (notify variables); it
#                decides itself between pg_rewind and a re-clone. It runs in a private mount
#                namespace where /etc/hosts also maps nodeB to 127.0.0.2 (as the cluster
#                tests do); the host's /etc/hosts is not touched.
#   pg_rewind:   CHECKPOINT on B; A's configuration files saved; pg_rewind -P (with -c in
#                the archive setting, as pgha does when a restore_command is set; it runs
#                single-user crash recovery itself after a crash); files restored;
#                standby.signal; pg_ctl start -w.
#   native:      pgha rewind --engine native --no-fallback -R (by hand: the agent does not
#                use the engine yet; --no-fallback, or the cost model, which prices pg_rewind,
#                would re-clone when the source keeps much WAL); pg_ctl start -w. pgha runs
#                crash recovery itself; the column says which engine ran (it hands over to
#                pg_rewind where it cannot do it: tablespaces, links, a standby source).
#   basebackup:  pg_basebackup -X stream -c fast -P into a new directory next to A; A's
#                configuration files put in; standby.signal; the directories swapped and the
#                old one removed; pg_ctl start -w.
# The paths run in turn, their order rotating from one round to the next.
#
# For the native engine, also: the bytes that must move (the changed blocks of its file map,
# from `pgha rewind --check` on a crash-recovered copy of A: the target's, and the source's
# up to its checkpoint when replay starts there; plus the source's WAL from the redo point
# where replay starts, read from the backup_label the engine wrote, to the source's end),
# this disk's sequential direct-write throughput (dd), and so the physical
# limit; the phases of each native run from its stamped log; and one untimed native run
# under strace for the time spent in fsync and the number of requests sent to the source.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

if [[ -z ${PGHA_BENCH_CLEAN:-} ]]; then
    exec env -i PGHA_BENCH_CLEAN=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
        BENCH_PG="${BENCH_PG:-}" BENCH_SCALE="${BENCH_SCALE:-}" BENCH_RUNS="${BENCH_RUNS:-}" \
        BENCH_SETTINGS="${BENCH_SETTINGS:-}" BENCH_STOP="${BENCH_STOP:-}" \
        BENCH_SETTLE="${BENCH_SETTLE:-}" BENCH_FAST="${BENCH_FAST:-}" \
        BENCH_DIR="${BENCH_DIR:-}" BENCH_KEEP="${BENCH_KEEP:-}" \
        BENCH_CONF="${BENCH_CONF:-}" PGHA_BIN="${PGHA_BIN:-}" bash "$0" "$@"
fi
export -n PGHA_BENCH_CLEAN BENCH_PG BENCH_SCALE BENCH_RUNS BENCH_SETTINGS BENCH_STOP BENCH_SETTLE \
    BENCH_FAST BENCH_DIR BENCH_KEEP BENCH_CONF PGHA_BIN

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
# shellcheck source=../lib/fake-pacemaker.sh
source "$ROOT/tests/lib/fake-pacemaker.sh"
PGHA=${PGHA_BIN:-$ROOT/target/release/pgha}
MAJOR=${BENCH_PG:-15}
[[ $MAJOR =~ ^1[3-9]$ ]] || {
    printf 'rewind.sh: FAILED: BENCH_PG must be a major from 13 to 19 (got "%s")\n' "$MAJOR" >&2
    exit 1
}
PGBIN=$("$ROOT/tests/pgbin/fetch.sh" "$MAJOR") || {
    printf 'rewind.sh: FAILED: no PostgreSQL %s programs (tests/pgbin/fetch.sh %s)\n' "$MAJOR" "$MAJOR" >&2
    exit 1
}
SCALE=${BENCH_SCALE:-70}
RUNS=${BENCH_RUNS:-3}
read -r -a SETTINGS <<<"${BENCH_SETTINGS:-small large}"
STOP=${BENCH_STOP:-crash}
SETTLE=${BENCH_SETTLE:-1}
FAST=${BENCH_FAST:-0}
# The default scale's results are results-rewind-pgN.md; another scale's name it (…-scale700.md).
RESULTS=$ROOT/tests/bench/results-rewind-pg$MAJOR$([[ $SCALE == 70 ]] || echo "-scale$SCALE").md
PATHS=(pgha native pg_rewind basebackup)
IP_A=127.0.0.1
IP_B=127.0.0.2
CONF_FILES=(postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf)
STREAM_TIMEOUT=900 # seconds, per path
PG_TIMEOUT=900     # pg_ctl's waits (tests/lib/pg.sh): a large database starts slowly

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'rewind.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

for n in "$SCALE" "$RUNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE and BENCH_RUNS must be whole numbers ≥ 1 (got \"$n\")"
done
((${#SETTINGS[@]})) || die "BENCH_SETTINGS is empty"
for s in "${SETTINGS[@]}"; do
    [[ $s == small || $s == large ]] || die "BENCH_SETTINGS: \"$s\" is neither small nor large"
done
[[ $STOP == crash || $STOP == clean ]] || die "BENCH_STOP must be crash or clean"
[[ $SETTLE == 0 || $SETTLE == 1 ]] || die "BENCH_SETTLE must be 0 or 1"
[[ $FAST == 0 || $FAST == 1 ]] || die "BENCH_FAST must be 0 or 1"
((EUID == 0)) || die "run as root (PostgreSQL runs as the postgres user; pgha runs in its own mount namespace)"
[[ -x $PGHA ]] || die "no pgha release binary at $PGHA: run \`make build\`"
[[ -x $PGBIN/pg_rewind && -x $PGBIN/pg_basebackup ]] || die "PostgreSQL $MAJOR's pg_rewind or pg_basebackup is not in $PGBIN"
[[ -x $PGBIN/pgbench ]] || die "pgbench is missing at $PGBIN"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
command -v strace >/dev/null || die "strace is missing (make deps installs it)"
LOAD=$(cut -d" " -f1-3 /proc/loadavg)

# --- 1. Work directory, cleanup ----------------------------------------------------------------
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/pgha-bench-rewind.XXXXXX")
chmod 0755 "$WORK"
RUN=$WORK/run         # the live cluster: A, B, archive, sockets (paths are in the configuration)
PRISTINE=$WORK/pristine # the diverged cluster, copied before every run
SBIN=$WORK/sbin
STATE=$WORK/attrs
LOGDIR=$WORK/log
HOSTS=$WORK/hosts

stop_all() { pg_stop_all "$RUN"/*/; } # every postmaster of the live cluster, immediately
cleanup() {
    local rc=$?
    stop_all
    if [[ ${BENCH_KEEP:-} == 1 ]]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql_on() { pg_sql "$RUN/sock$1" "$PORT" "$2"; } # node sql
node_start() { pg_start "$RUN/$1" "$LOGDIR/$1.log" || die "node $1 did not start"; } # node
node_stop() { pg_stop "$RUN/$1" "$2" || die "node $1 did not stop ($2)"; }           # node mode
now() { REPLY=$EPOCHREALTIME; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; } # from to

# median/min/max of numbers ("-" ignored); "-" when none
stats() {
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "- - -"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'
}
median() {
    local m
    read -r m _ < <(stats "$@")
    echo "$m"
}
PORT=$(pg_free_port 25532 "$IP_A" "$IP_B") || die "no TCP port free on both $IP_A and $IP_B"

mkdir -p "$RUN" "$PRISTINE" "$SBIN" "$STATE" "$LOGDIR"
chown postgres: "$LOGDIR"

# --- 2. Fake Pacemaker tools, and the agent's environment -------------------------------------
# tests/lib/fake-pacemaker.sh: /bin/sh scripts keeping node attributes in files. nodeB, the
# primary, has the primary's score, so a start after a clean stop (PAF's first-start rule) writes nothing.
fake_pacemaker "$SBIN" "$STATE" nodeA nodeB
fake_score "$STATE" pgsqld nodeB 1001

{
    cat /etc/hosts
    echo "$IP_A nodeA"
    echo "$IP_B nodeB"
} >"$HOSTS"

# What Pacemaker 2.1 passes to the start of a promotable clone's instance on nodeA while
# nodeB is promoted (notify=true copies the notification lists onto start).
AGENT_ENV=(
    PATH="$SBIN:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root LC_ALL=C
    OCF_ROOT=/usr/lib/ocf OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1
    OCF_RESOURCE_INSTANCE=pgsqld OCF_RESOURCE_TYPE=pgsqlms OCF_RESKEY_crm_feature_set=3.16.1
    OCF_RESKEY_CRM_meta_notify=true OCF_RESKEY_CRM_meta_promoted_max=1
    OCF_RESKEY_CRM_meta_master_max=1 OCF_RESKEY_CRM_meta_clone_max=2
    OCF_RESKEY_CRM_meta_timeout=600000 OCF_RESKEY_CRM_meta_interval=0
    OCF_RESKEY_CRM_meta_on_node=nodeA
    OCF_RESKEY_CRM_meta_notify_promoted_uname=nodeB OCF_RESKEY_CRM_meta_notify_master_uname=nodeB
    OCF_RESKEY_CRM_meta_notify_unpromoted_uname=" " OCF_RESKEY_CRM_meta_notify_slave_uname=" "
    OCF_RESKEY_CRM_meta_notify_active_uname=nodeB OCF_RESKEY_CRM_meta_notify_start_uname=nodeA
    OCF_RESKEY_CRM_meta_notify_stop_uname=" " OCF_RESKEY_CRM_meta_notify_promote_uname=" "
    OCF_RESKEY_CRM_meta_notify_demote_uname=" "
    OCF_RESKEY_pgdata="$RUN/A" OCF_RESKEY_pghost="$RUN/sockA" OCF_RESKEY_pgport="$PORT"
    OCF_RESKEY_bindir="$PGBIN"
    HA_SBIN_DIR="$SBIN" HA_RSCTMP="$RUN/rsctmp" HA_LOGFACILITY=none HA_debug=0
)

# --- 3. Building a diverged cluster -----------------------------------------------------------
# conf NODE SETTING: the node's own lines, appended to postgresql.conf.
node_conf() {
    local ip=$IP_A other=$IP_B name=nodeA
    if [[ $1 == B ]]; then
        ip=$IP_B other=$IP_A name=nodeB
    fi
    cat <<EOF

# --- node $name (pgha rewind benchmark)
listen_addresses = '$ip'
unix_socket_directories = '$RUN/sock$1'
primary_conninfo = 'host=$other port=$PORT user=postgres application_name=$name'
EOF
}
common_conf() { # setting
    cat <<EOF

# --- pgha rewind benchmark, setting "$1"
port = $PORT
wal_level = replica
wal_log_hints = on
hot_standby = on
max_wal_senders = 10
recovery_target_timeline = 'latest'
logging_collector = off
log_checkpoints = on
EOF
    if [[ $1 == small ]]; then
        cat <<EOF
wal_keep_size = '64MB'
archive_mode = on
archive_command = 'test ! -f $RUN/archive/%f && cp %p $RUN/archive/%f'
restore_command = 'cp $RUN/archive/%f %p'
EOF
    else
        echo "wal_keep_size = '2GB'"
    fi
    if ((FAST)); then
        printf '%s\n' "fsync = off" "synchronous_commit = off"
    fi
    if [[ -n ${BENCH_CONF:-} ]]; then
        tr ';' '\n' <<<"$BENCH_CONF" | sed -E 's/^[[:space:]]+//'
    fi
}

wait_replayed() { # the standby B has replayed all A wrote
    local lsn
    lsn=$(psql_on A "SELECT pg_current_wal_lsn()")
    pg_poll 900 0.1 pg_replayed "$RUN/sockB" "$PORT" "$lsn" || die "B did not replay up to $lsn"
}

pg_wal_mb() { # node: size of its pg_wal, MB
    du -sb "$RUN/$1/pg_wal" | awk '{ printf "%d", $1 / 1048576 }'
}

# Preallocated (recycled) segments in B's pg_wal: names after A's current segment.
future_segments() {
    local cur
    cur=$(psql_on A "SELECT pg_walfile_name(pg_current_wal_lsn())")
    find "$RUN/B/pg_wal" -maxdepth 1 -type f -regextype egrep -regex '.*/[0-9A-F]{24}' \
        -printf '%f\n' | awk -v c="$cur" '$0 > c { n++ } END { print n + 0 }'
}

build() { # setting
    local setting=$1 rows first_b i f floor
    stop_all
    rm -rf "${RUN:?}"/* "${PRISTINE:?}"/*
    install -d -o postgres -g postgres -m 0700 "$RUN/A" "$RUN/B"
    install -d -o postgres -g postgres -m 0755 "$RUN/sockA" "$RUN/sockB" "$RUN/archive"

    say "[$setting] initdb A; port $PORT, A on $IP_A, B on $IP_B, in $RUN"
    pg_initdb "$RUN/A" || die "initdb failed"
    {
        common_conf "$setting"
        node_conf A
    } >>"$RUN/A/postgresql.conf"
    printf '%s\n' "host all all 127.0.0.0/8 trust" "host replication all 127.0.0.0/8 trust" \
        >>"$RUN/A/pg_hba.conf"
    node_start A

    say "[$setting] pg_basebackup B, streaming from A"
    pg_standby "$RUN/B" -d "host=$IP_A port=$PORT user=postgres" || die "pg_basebackup of B failed"
    node_conf B >>"$RUN/B/postgresql.conf"
    node_start B

    say "[$setting] pgbench -i -s $SCALE on A (B streams)"
    as_pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$RUN/sockA" -p "$PORT" -U postgres postgres \
        >"$LOGDIR/pgbench-init.log" 2>&1 ||
        die "pgbench -i failed: $(tail -n 20 "$LOGDIR/pgbench-init.log")"
    psql_on A "CHECKPOINT"
    wait_replayed
    say "[$setting] database $(psql_on A "SELECT pg_size_pretty(pg_database_size('postgres'))");" \
        "B's pg_wal: $(pg_wal_mb B) MB"

    SETTLE_ROUNDS=0
    if ((SETTLE)); then
        # A restartpoint keeps min_wal_size preallocated at least, more while its estimate
        # of the checkpoint distance (decaying by 10 % a round) is high; every round uses one.
        floor=$(psql_on B "SELECT pg_size_bytes(current_setting('min_wal_size')) \
            / pg_size_bytes(current_setting('wal_segment_size')) + 1")
        for ((i = 1; i <= 150; i++)); do
            psql_on A "CHECKPOINT" >/dev/null
            psql_on A "SELECT pg_switch_wal()" >/dev/null
            wait_replayed
            psql_on B "CHECKPOINT"
            SETTLE_ROUNDS=$i
            (($(future_segments) <= floor)) && break
        done
        say "[$setting] settled in $SETTLE_ROUNDS rounds: B's pg_wal $(pg_wal_mb B) MB," \
            "$(future_segments) preallocated segments"
    fi

    say "[$setting] promote B; 2 % of pgbench_accounts updated on each side"
    pg_promote "$RUN/B" || die "B did not promote"
    rows=$((SCALE * 100000 * 2 / 100))
    first_b=$((SCALE * 100000 / 2 + 1))
    psql_on A "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN 1 AND $rows"
    psql_on B "UPDATE pgbench_accounts SET abalance = abalance - 1 \
        WHERE aid BETWEEN $first_b AND $((first_b + rows - 1))"
    FORK_WAL_A=$(psql_on A "SELECT pg_size_pretty(pg_current_wal_lsn() - '0/0'::pg_lsn)")
    if [[ $STOP == crash ]]; then
        node_stop A immediate
    else
        node_stop A fast
    fi
    node_stop B fast
    SOURCE_WAL_MB=$(pg_wal_mb B)
    DB_MB=$(du -sb "$RUN/B/base" | awk '{ printf "%d", $1 / 1048576 }')

    say "[$setting] keeping copies of the diverged A and B (B's pg_wal: $SOURCE_WAL_MB MB)"
    for f in A B; do
        cp -a --reflink=auto "$RUN/$f" "$PRISTINE/$f"
    done
    (cd "$RUN/archive" && find . -maxdepth 1 -type f -printf '%f\n' | sort) >"$PRISTINE/archive.list"
}

# Fresh copies of the diverged cluster; B started (a primary with the same WAL every time).
restore() {
    local f
    stop_all
    rm -rf "$RUN/A" "$RUN/B" "$RUN/A.clone" "$RUN/A.old" "$RUN/A.pgha-clone" "$RUN/A.pgha-old" \
        "$RUN/pgha-rewind" "$RUN/rsctmp" "$RUN/conf.save"
    for f in A B; do
        cp -a --reflink=auto "$PRISTINE/$f" "$RUN/$f"
    done
    # The archive: exactly the files it had (archive_command never overwrites).
    (cd "$RUN/archive" && find . -maxdepth 1 -type f -printf '%f\n' | sort) |
        comm -23 - "$PRISTINE/archive.list" | while IFS= read -r f; do rm -f "$RUN/archive/$f"; done
    install -d -m 0755 "$RUN/rsctmp"
    sync -f "$RUN"
    node_start B
    SOURCE_END=$(psql_on B "SELECT pg_current_wal_lsn()")
    # Nothing pending on B: its pg_control is on its new timeline after the clean shutdown.
    [[ $(psql_on B "SELECT pg_is_in_recovery()") == f ]] || die "B is not a primary"
}

# --- 3b. What the native engine must move, and how fast this disk writes ----------------------
# Sequential direct writes (dd oflag=direct, 1 MiB blocks, then fsync) of 512 MiB into the
# work directory, three times: DISK_MBS, the median MB/s (the rewound data must reach the
# target's disk; the source's files are in the page cache, as in every run).
disk_throughput() {
    local i out mbs=()
    for i in 1 2 3; do
        out=$(LC_ALL=C dd if=/dev/zero of="$WORK/dd.test" bs=1M count=512 oflag=direct \
            conv=fsync 2>&1) || die "dd into $WORK failed: $out"
        rm -f "$WORK/dd.test"
        mbs+=("$(awk '/bytes/ && / s,/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.0f", $1 / $(i - 1) / 1048576 }' <<<"$out")")
    done
    DISK_MBS=$(median "${mbs[@]}")
    DISK_MBS=${DISK_MBS%.*}
    DISK_RUNS="${mbs[*]}"
}

# native_facts SETTING, untimed, on a copy of the diverged A made clean by single-user crash
# recovery (what pgha does first): `pgha rewind --check` (the target's changed blocks and the
# file map), then one native rewind of that copy under strace (fsync/fdatasync time and the
# number of requests sent to the source; strace slows the run, so only these are used).
native_facts() {
    local check=$RUN/A.check out trace=$LOGDIR/native-strace-$1
    restore
    cp -a --reflink=auto "$RUN/A" "$check"
    # As pgha runs it: all WAL kept (at 10 GB the end-of-recovery checkpoint removed the
    # segments from the fork on, which the rewind reads).
    as_pg "$PGBIN/postgres" --single -F -D "$check" -c archive_mode=off \
        -c wal_keep_size=2147483647 template1 </dev/null \
        >"$LOGDIR/check-recovery-$1.log" 2>&1 || die "crash recovery of a copy of A failed"
    out=$("$PGHA" rewind --check --target-pgdata "$check" --engine native --bindir "$PGBIN" \
        --source-server "host=$IP_B port=$PORT user=postgres dbname=postgres" 2>&1) ||
        die "pgha rewind --check failed: $out"
    printf '%s\n' "$out" >"$LOGDIR/check-$1.log"
    CHANGED_BLOCKS[$1]=$(sed -nE 's/^target changes: ([0-9]+) changed blocks.*/\1/p' <<<"$out")
    NATIVE_MAP[$1]=$(sed -nE 's/^native file map: //p' <<<"$out")
    MAP_BLOCKS[$1]=$(sed -nE 's/^native file map: .* ([0-9]+) changed blocks.*/\1/p' <<<"$out")
    REPLAY_FROM[$1]=$(sed -nE 's/^replay after a native rewind: from //p' <<<"$out")
    [[ -n ${CHANGED_BLOCKS[$1]} && -n ${MAP_BLOCKS[$1]} ]] ||
        die "pgha rewind --check did not show the target's changes and the file map: $out"
    strace -f -qq --seccomp-bpf -T -e trace=fsync,fdatasync,sendto -o "$trace" \
        "$PGHA" rewind --target-pgdata "$check" --engine native --no-fallback --bindir "$PGBIN" \
        --source-server "host=$IP_B port=$PORT user=postgres dbname=postgres" \
        >"$LOGDIR/native-traced-$1.log" 2>&1 || die "the traced native rewind failed"
    grep -q 'native rewind: [0-9]* MB fetched' "$LOGDIR/native-traced-$1.log" ||
        die "the traced rewind did not run the native engine: $(cat "$LOGDIR/native-traced-$1.log")"
    read -r "FSYNC_S[$1]" "FSYNC_N[$1]" "SENDS[$1]" < <(awk '
        / (fsync|fdatasync)\(/ { n++; if (match($0, /<[0-9.]+>$/)) t += substr($0, RSTART + 1, RLENGTH - 2) }
        / sendto\(/ { m++ }
        END { printf "%.2f %d %d\n", t, n, m }' "$trace")
    TRACED_S[$1]=$(duration_s "$(sed -nE 's/.*native rewind: .* in ([0-9.]+[µnum]?s)( \(.*\))?$/\1/p' \
        "$LOGDIR/native-traced-$1.log" | tail -n 1)")
    rm -rf "$check"
}

# --- 4. The paths -----------------------------------------------------------------------------
# Each sets T_TOTAL (start to streaming), T_TOOL (pg_rewind or pg_basebackup alone, as timed
# or logged), T_UP (start until A runs as a standby: the agent exited, or pg_ctl returned),
# COPIED (MB, what the tool said), CHOSE (pgha: the plan it logged).

wait_streaming() { # until STREAM_DEADLINE (bash's SECONDS), polled every 50 ms
    pg_poll $((STREAM_DEADLINE - SECONDS)) 0.05 pg_streams "$RUN/sockB" "$PORT" nodeA ||
        die "A is not streaming from B"
}

# Prefixes each line with the seconds since $1 ($EPOCHREALTIME) when it was read.
stamp() {
    local line t0=${1/./} t
    while IFS= read -r line; do
        t=${EPOCHREALTIME/./}
        printf '%+8.3f %s\n' "$(((10#$t - 10#$t0) / 1000))e-3" "$line"
    done
}

# "1.2s", "812.3ms", "2.0µs" (Rust's {:.1?} of a Duration) → seconds
duration_s() {
    awk -v d="$1" 'BEGIN {
        if (d ~ /ms$/) { sub(/ms$/, "", d); printf "%.3f", d / 1000 }
        else if (d ~ /(µs|us)$/) { sub(/(µs|us)$/, "", d); printf "%.3f", d / 1000000 }
        else if (d ~ /ns$/) { printf "0.000" }
        else if (d ~ /s$/) { sub(/s$/, "", d); printf "%.3f", d }
        else { printf "" } }'
}

# MB copied, from pg_rewind's "need to copy N MB" or pg_basebackup's last "N/M kB".
copied_mb() { # log file
    local mb
    mb=$(sed -nE 's/.*native rewind: ([0-9]+) MB fetched.*/\1/p' "$1" | tail -n 1)
    [[ -n $mb ]] ||
        mb=$(tr '\r' '\n' <"$1" | sed -nE 's/.*need to copy ([0-9]+) MB.*/\1/p' | tail -n 1)
    if [[ -z $mb ]]; then
        mb=$(tr '\r' '\n' <"$1" | sed -nE 's@^(.*[^0-9])?[0-9]+/([0-9]+) kB \(100%\).*@\2@p' |
            tail -n 1)
        [[ -z $mb ]] || mb=$((mb / 1024))
    fi
    echo "${mb:--}"
}

path_pgha() {
    local t0 t1 rc=0 log=$RUN/pgha.log tool
    now
    t0=$REPLY
    # The hosts file goes over the chroot's own too when the major's programs run in one
    # (13 and 19: fetch.sh's wrappers unshare --root into PGBIN/../root, inheriting this
    # mount namespace), or pg_rewind there could not resolve nodeB.
    # shellcheck disable=SC2016 # expanded by that sh
    env -i "${AGENT_ENV[@]}" unshare --mount -- /bin/sh -c \
        'mount --bind "$1" /etc/hosts &&
         if [ -f "$3/etc/hosts" ]; then mount --bind "$1" "$3/etc/hosts"; fi &&
         exec "$2" start' sh "$HOSTS" "$PGHA" "$PGBIN/../root" \
        2>&1 >"$RUN/pgha.out" | stamp "$t0" >"$log" || rc=$?
    now
    t1=$REPLY
    if ((rc != 0)); then
        cat "$log" >&2
        die "pgha start returned $rc (its log is above)"
    fi
    wait_streaming
    now
    T_TOTAL=$(secs "$t0" "$REPLY")
    T_UP=$(secs "$t0" "$t1")
    {
        cat "$log"
        printf '%+8.3f (start returned)\n' "$T_UP"
        printf '%+8.3f (B shows A streaming)\n' "$T_TOTAL"
    } | sed "s@$RUN/@@g; s@ pgsqlms(pgsqld)\[[0-9]*\]: INFO: start:@@" >"$LOGDIR/pgha-$CURRENT.log"
    [[ -n ${PGHA_LOG[$SETTING]:-} ]] || PGHA_LOG[$SETTING]=$LOGDIR/pgha-$CURRENT.log
    if grep -q 'plan: rewind; engine: native' "$log" && grep -q 'native rewind: [0-9]* MB fetched' "$log"; then
        CHOSE=native
    elif grep -q 'plan: rewind' "$log"; then
        CHOSE=pg_rewind
    elif grep -q 'plan: re-clone' "$log"; then
        CHOSE=basebackup
    else
        CHOSE="?"
    fi
    grep -q 'Recloned in' "$log" && CHOSE=basebackup # a failed pg_rewind fell back
    tool=$(sed -nE 's/.*(pg_rewind|pg_basebackup|native rewind) done in ([0-9.]+[µnum]?s).*/\2/p' "$log" |
        tail -n 1)
    T_TOOL=$(duration_s "${tool:-}")
    COPIED=$(copied_mb "$log")
}

save_conf() {
    install -d -m 0700 "$RUN/conf.save"
    local f
    for f in "${CONF_FILES[@]}"; do
        [[ ! -e $RUN/A/$f ]] || cp -p "$RUN/A/$f" "$RUN/conf.save/$f"
    done
}
put_conf() { # into
    local f
    for f in "${CONF_FILES[@]}"; do
        [[ ! -e $RUN/conf.save/$f ]] || cp -p "$RUN/conf.save/$f" "$1/$f"
    done
}

# finish_bare_path T0 T1 T2 LOG NAME: starts A as the bare paths do, waits until it streams,
# and records the times (T0: the path began; T1..T2: the tool ran) and what the tool copied
finish_bare_path() {
    local t3
    node_start A
    now
    t3=$REPLY
    wait_streaming
    now
    T_TOTAL=$(secs "$1" "$REPLY")
    T_TOOL=$(secs "$2" "$3")
    T_UP=$(secs "$1" "$t3")
    cp "$4" "$LOGDIR/$5-$CURRENT.log"
    COPIED=$(copied_mb "$4")
    CHOSE=
}
# pgha's own engine, by hand (the agent does not use it yet): `pgha rewind --engine native`
# (--no-fallback: the cost model still prices pg_rewind and would re-clone when the source
# keeps much WAL), then A started as the bare paths start it. It runs crash recovery itself.
path_native() {
    local t0 t1 log=$RUN/native.log
    now
    t0=$REPLY
    "$PGHA" rewind --target-pgdata "$RUN/A" --engine native --no-fallback --progress \
        --write-recovery-conf --node nodeA --bindir "$PGBIN" \
        --source-server "host=$IP_B port=$PORT user=postgres dbname=postgres" \
        2>&1 | stamp "$t0" >"$log" || {
        cat "$log" >&2
        die "pgha rewind --engine native failed (its log is above)"
    }
    now
    t1=$REPLY
    NATIVE_REDO=$(sed -nE 's/^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+) .*/\1/p' \
        "$RUN/A/backup_label" 2>/dev/null || true)
    finish_bare_path "$t0" "$t0" "$t1" "$log" native
    [[ -n $NATIVE_REDO ]] || die "no backup_label after the native rewind"
    WAL_NEED[$SETTING]+="$(psql_on B "SELECT pg_wal_lsn_diff('$SOURCE_END', '$NATIVE_REDO')") "
    native_phases "$log" "$(secs "$t0" "$t1")"
    printf '%+8.3f (rewind returned)\n%+8.3f (pg_ctl start returned)\n%+8.3f (B shows A streaming)\n' \
        "$(secs "$t0" "$t1")" "$T_UP" "$T_TOTAL" |
        cat "$log" - | sed "s@$RUN/@@g" >"$LOGDIR/native-$CURRENT.log"
    [[ -n ${NATIVE_LOG[$SETTING]:-} ]] || NATIVE_LOG[$SETTING]=$LOGDIR/native-$CURRENT.log
    T_TOOL=$(duration_s "$(sed -nE 's/.*native rewind: .* in ([0-9.]+[µnum]?s)( \(.*\))?$/\1/p' "$log" | tail -n 1)")
    if grep -q 'native rewind: [0-9]* MB fetched' "$log"; then
        CHOSE=native
    elif grep -q 'hands over to pg_rewind' "$log"; then
        CHOSE=pg_rewind
    else
        CHOSE="?"
    fi
}

# native_phases LOG RETURNED: the phases of a native run, from its stamped log, appended to
# PHASES[setting.phase]: checks (to the first decision), recovery (crash recovery, or
# the crashed target's WAL read to its end when the native engine skips it, then the
# target's changes read from its WAL, both listings and the file map: the engine's view),
# decide (the discarded WAL kept, the marker),
# engine (its own logged time: fetch, write, fsync, backup_label and pg_control), finish
# (configuration put back, marker removed, until the command returned), start (pg_ctl
# start -w: replay to consistency), stream (until B shows A streaming).
NATIVE_PHASES=(checks recovery decide engine finish start stream)
log_at() { sed -nE "s/^ *\+([0-9.]+) .*$1.*/\1/p" "$2" | head -n 1; } # pattern stamped-log
native_phases() {
    local t_cr t_dec t_mark t_eng v
    # Crash recovery, or where the native engine starts reading the crashed target's WAL
    # to its end instead ("crash recovery skipped").
    t_cr=$(log_at 'INFO: rewind: crash recovery: ' "$1")
    [[ -n $t_cr ]] || ! grep -q 'crash recovery skipped' "$1" ||
        t_cr=$(log_at 'INFO: rewind: .*stopped uncleanly as a primary' "$1")
    t_dec=$(log_at 'INFO: rewind: .*needs a rewind' "$1")
    t_mark=$(log_at 'wrote the rewind marker' "$1")
    t_eng=$(log_at 'INFO: rewind: (native rewind: |pg_rewind done in)' "$1")
    if [[ -z $t_dec || -z $t_mark || -z $t_eng ]]; then
        say "$CURRENT: phases not found in the native run's log ($LOGDIR/native-$CURRENT.log):"
        cat "$1" >&2
        return 0
    fi
    [[ -n $t_cr ]] || t_cr=$t_dec
    for v in "checks $t_cr" "recovery $(secs "$t_cr" "$t_dec")" "decide $(secs "$t_dec" "$t_mark")" \
        "engine $(secs "$t_mark" "$t_eng")" "finish $(secs "$t_eng" "$2")" \
        "start $(secs "$2" "$T_UP")" "stream $(secs "$T_UP" "$T_TOTAL")"; do
        PHASES[$SETTING.${v%% *}]+="${v#* } "
    done
}

path_pg_rewind() {
    local t0 t1 t2 log=$RUN/pg_rewind.log restore_opt=()
    [[ $SETTING == small ]] && restore_opt=(--restore-target-wal)
    now
    t0=$REPLY
    psql_on B "CHECKPOINT"
    save_conf
    now
    t1=$REPLY
    as_pg "$PGBIN/pg_rewind" --target-pgdata "$RUN/A" -P "${restore_opt[@]}" \
        --source-server "host=$IP_B port=$PORT user=postgres dbname=postgres" >"$log" 2>&1 || {
        cat "$log" >&2
        die "pg_rewind failed"
    }
    now
    t2=$REPLY
    put_conf "$RUN/A"
    rm -f "$RUN/A/recovery.signal"
    as_pg touch "$RUN/A/standby.signal"
    finish_bare_path "$t0" "$t1" "$t2" "$log" pg_rewind
}

path_basebackup() {
    local t0 t1 t2 log=$RUN/basebackup.log
    now
    t0=$REPLY
    save_conf
    install -d -o postgres -g postgres -m 0700 "$RUN/A.clone"
    now
    t1=$REPLY
    as_pg "$PGBIN/pg_basebackup" -D "$RUN/A.clone" -X stream -c fast -P \
        -d "host=$IP_B port=$PORT user=postgres application_name=nodeA" >"$log" 2>&1 || {
        cat "$log" >&2
        die "pg_basebackup failed"
    }
    now
    t2=$REPLY
    put_conf "$RUN/A.clone"
    as_pg touch "$RUN/A.clone/standby.signal"
    mv "$RUN/A" "$RUN/A.old"
    mv "$RUN/A.clone" "$RUN/A"
    rm -rf "$RUN/A.old"
    finish_bare_path "$t0" "$t1" "$t2" "$log" basebackup
}

# A holds B's data: same sum of balances once A replayed all B has (checked untimed).
check_result() {
    local lsn a b
    lsn=$(psql_on B "SELECT pg_current_wal_lsn()")
    pg_poll 300 0.1 pg_replayed "$RUN/sockA" "$PORT" "$lsn" ||
        die "$CURRENT: A did not replay up to $lsn"
    a=$(psql_on A "SELECT sum(abalance) FROM pgbench_accounts")
    b=$(psql_on B "SELECT sum(abalance) FROM pgbench_accounts")
    [[ $a == "$b" ]] || die "$CURRENT: A's data differs from B's (sum of balances $a vs $b)"
}

# --- 5. Runs ----------------------------------------------------------------------------------
declare -A TOTALS TOOLS UPS COPY CHOICES SRC_WAL DBSIZE SETTLED FORKWAL PGHA_LOG NATIVE_LOG \
    WAL_NEED PHASES CHANGED_BLOCKS MAP_BLOCKS REPLAY_FROM NATIVE_MAP FSYNC_S FSYNC_N SENDS TRACED_S LOADS
disk_throughput
say "disk: ${DISK_MBS} MB/s sequential direct writes (runs: $DISK_RUNS)"
for SETTING in "${SETTINGS[@]}"; do
    build "$SETTING"
    say "[$SETTING] native engine facts (untimed: pgha rewind --check, one run under strace)"
    native_facts "$SETTING"
    LOADS[$SETTING]=$(cut -d" " -f1-3 /proc/loadavg)
    SRC_WAL[$SETTING]=$SOURCE_WAL_MB
    DBSIZE[$SETTING]=$DB_MB
    SETTLED[$SETTING]=$SETTLE_ROUNDS
    FORKWAL[$SETTING]=$FORK_WAL_A
    for ((r = 0; r < RUNS; r++)); do
        for ((k = 0; k < ${#PATHS[@]}; k++)); do
            path=${PATHS[(k + r) % ${#PATHS[@]}]}
            CURRENT=$SETTING-$path-$((r + 1))
            restore
            say "[$SETTING] run $((r + 1))/$RUNS: $path"
            STREAM_DEADLINE=$((SECONDS + STREAM_TIMEOUT))
            "path_$path"
            check_result
            key=$SETTING.$path
            TOTALS[$key]+="$T_TOTAL "
            TOOLS[$key]+="${T_TOOL:--} "
            UPS[$key]+="$T_UP "
            COPY[$key]+="$COPIED "
            [[ -z $CHOSE ]] || CHOICES[$key]+="$CHOSE "
            say "[$SETTING] $path: streaming after ${T_TOTAL}s (tool ${T_TOOL:--}s," \
                "up after ${T_UP}s, copied ${COPIED} MB)${CHOSE:+, pgha chose $CHOSE}"
        done
    done
    LOADS[$SETTING]+=" → $(cut -d" " -f1-3 /proc/loadavg)"
    stop_all
done
LOAD_END=$(cut -d" " -f1-3 /proc/loadavg)
fake_calls_understood "$STATE" || die "the fake Pacemaker tools were called unexpectedly"

# --- 6. Report --------------------------------------------------------------------------------
label() {
    case $1 in
        pgha) echo "pgha start" ;;
        native) echo "pgha rewind --engine native" ;;
        pg_rewind) echo "bare pg_rewind" ;;
        basebackup) echo "bare pg_basebackup" ;;
    esac
}
setting_label() {
    if [[ $1 == small ]]; then
        echo "wal_keep_size=64MB + archive"
    else
        echo "wal_keep_size=2GB"
    fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else printf "-" }'; }

table() {
    local s p med mn mx chose copied
    echo "| setting | path | median s | min s | max s | tool s (median) | up s (median) | copied MB | pgha chose |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    for s in "${SETTINGS[@]}"; do
        for p in "${PATHS[@]}"; do
            # shellcheck disable=SC2086 # space-separated lists of numbers
            read -r med mn mx < <(stats ${TOTALS[$s.$p]})
            chose=
            # shellcheck disable=SC2086
            [[ $p != pgha && $p != native ]] || chose=$(printf '%s\n' ${CHOICES[$s.$p]:-?} | sort | uniq -c |
                awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }')
            # shellcheck disable=SC2086
            copied=$(median ${COPY[$s.$p]})
            # shellcheck disable=SC2086
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(setting_label "$s")" \
                "$(label "$p")" "$med" "$mn" "$mx" "$(median ${TOOLS[$s.$p]})" \
                "$(median ${UPS[$s.$p]})" "${copied%.00}" "$chose"
        done
    done
}

verdict() {
    local s pg rw bb best bestname chosen same ok1 ok2 r1 r2 wrap_pgha wrap_bare
    echo "| setting | faster bare path | pgha / faster bare (target ≤ 1.10) | pgha ran | pgha / the same path without the agent (target ≤ 1.10) | pgha beyond its tool, s | that path beyond the tool, s |"
    echo "|---|---|---:|---|---:|---:|---:|"
    for s in "${SETTINGS[@]}"; do
        # shellcheck disable=SC2086
        {
            pg=$(median ${TOTALS[$s.pgha]})
            rw=$(median ${TOTALS[$s.pg_rewind]})
            bb=$(median ${TOTALS[$s.basebackup]})
        }
        if awk -v a="$rw" -v b="$bb" 'BEGIN { exit !(a <= b) }'; then
            best=$rw bestname=pg_rewind
        else
            best=$bb bestname=basebackup
        fi
        # shellcheck disable=SC2086
        chosen=$(printf '%s\n' ${CHOICES[$s.pgha]:-?} | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
        # The same path without the agent: the bare tool, or pgha rewind --engine native.
        # shellcheck disable=SC2086
        case $chosen in
            pg_rewind) same=$rw ;;
            basebackup) same=$bb ;;
            native) same=$(median ${TOTALS[$s.native]}) ;;
            *) same=- ;;
        esac
        r1=$(ratio "$pg" "$best")
        r2=$(ratio "$pg" "$same")
        ok1=$(awk -v r="$r1" 'BEGIN { print (r != "-" && r <= 1.10) ? "ok" : "MISSED" }')
        ok2=$(awk -v r="$r2" 'BEGIN { print (r != "-" && r <= 1.10) ? "ok" : "MISSED" }')
        # Beyond the tool: total minus what pg_rewind / pg_basebackup took (medians of the
        # per-run differences).
        wrap_pgha=$(beyond "$s" pgha)
        wrap_bare=$(beyond "$s" "${chosen/\?/pg_rewind}")
        printf '| %s | %s (%s s) | %s× %s | %s | %s× %s | %s | %s |\n' "$(setting_label "$s")" \
            "$(label "$bestname" | sed 's/^bare //')" "$best" "$r1" "$ok1" "$chosen" "$r2" "$ok2" \
            "$wrap_pgha" "$wrap_bare"
    done
}
beyond() { # setting path: median of (total - tool) over the runs
    local -a tot tool d=()
    read -r -a tot <<<"${TOTALS[$1.$2]}"
    read -r -a tool <<<"${TOOLS[$1.$2]}"
    local i
    for i in "${!tot[@]}"; do
        [[ ${tool[i]} == - ]] || d+=("$(awk -v a="${tot[i]}" -v b="${tool[i]}" 'BEGIN { printf "%.3f", a - b }')")
    done
    ((${#d[@]})) || {
        echo -
        return
    }
    median "${d[@]}"
}

# The native engine against the issue's target (≥ 3× faster than the faster bare path) and
# against the physical limit: the bytes that must move (the changed blocks of the file map,
# and the source's WAL from the redo point where replay starts to its end) at DISK_MBS.
native_verdict() {
    local s nat mn mx best fetched blocks_mb wal_mb must limit speedup ok
    echo "| setting | faster bare path, s | native, s (median, min–max) | faster bare ÷ native (target ≥ 3×) | engine ran | fetched MB | must move MB (changed blocks + WAL from redo) | physical limit s (at ${DISK_MBS} MB/s) | native ÷ limit |"
    echo "|---|---:|---:|---:|---|---:|---:|---:|---:|"
    for s in "${SETTINGS[@]}"; do
        # shellcheck disable=SC2086 # space-separated lists of numbers
        {
            read -r nat mn mx < <(stats ${TOTALS[$s.native]})
            best=$(printf '%s\n' "$(median ${TOTALS[$s.pg_rewind]})" "$(median ${TOTALS[$s.basebackup]})" | sort -g | head -n 1)
            fetched=$(median ${COPY[$s.native]})
            wal_mb=$(printf '%s\n' ${WAL_NEED[$s]} | awk '{ printf "%.2f\n", $1 / 1048576 }' | sort -g |
                awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }')
        }
        blocks_mb=$(awk -v b="${MAP_BLOCKS[$s]}" 'BEGIN { printf "%.0f", b * 8192 / 1048576 }')
        must=$((blocks_mb + wal_mb))
        limit=$(awk -v m="$must" -v d="$DISK_MBS" 'BEGIN { printf "%.2f", m / d }')
        speedup=$(ratio "$best" "$nat")
        ok=$(awk -v r="$speedup" 'BEGIN { print (r != "-" && r >= 3) ? "ok" : "MISSED" }')
        # shellcheck disable=SC2086
        printf '| %s | %s | %s (%s–%s) | %s× %s | %s | %s | %s (%s + %s) | %s | %s× |\n' \
            "$(setting_label "$s")" "$best" "$nat" "$mn" "$mx" "$speedup" "$ok" \
            "$(printf '%s\n' ${CHOICES[$s.native]:-?} | sort | uniq -c | awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }')" \
            "${fetched%.00}" "$must" "$blocks_mb" "$wal_mb" "$limit" "$(ratio "$nat" "$limit")"
    done
}

native_phase_table() {
    local s ph row
    echo "| setting | checks | crash recovery (or the WAL read to its end), then the target's changes, listings, file map | WAL kept, marker | engine: fetch, write, fsync, backup_label, pg_control | finish: configuration, marker | pg_ctl start -w (replay) | until B shows A streaming |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${SETTINGS[@]}"; do
        row="| $(setting_label "$s") |"
        for ph in "${NATIVE_PHASES[@]}"; do
            # shellcheck disable=SC2086
            row+=" $(median ${PHASES[$s.$ph]:-}) |"
        done
        echo "$row"
    done
}

native_traced() {
    local s
    for s in "${SETTINGS[@]}"; do
        echo "- $(setting_label "$s"): the target changed ${CHANGED_BLOCKS[$s]} blocks; replay from"
        echo "  ${REPLAY_FROM[$s]:-?}; native file map:"
        echo "  ${NATIVE_MAP[$s]}. Traced run: the engine took ${TRACED_S[$s]} s under strace,"
        echo "  of which ${FSYNC_S[$s]} s in ${FSYNC_N[$s]} fsync/fdatasync calls; ${SENDS[$s]} requests"
        echo "  sent to the source (sendto). Load average over the setting's timed runs: ${LOADS[$s]}."
    done
}

TABLE=$(table)
VERDICT=$(verdict)
NATIVE_VERDICT=$(native_verdict)
NATIVE_PHASE_TABLE=$(native_phase_table)
rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
pg_version=$("$PGBIN/postgres" --version)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
built=$(date -u -r "$PGHA" '+%Y-%m-%d %H:%M UTC')
fs=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || echo unknown)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
knobs=""
[[ -z ${BENCH_PG:-} ]] || knobs+="PG=$MAJOR "
[[ -z ${BENCH_SCALE:-} ]] || knobs+="BENCH_SCALE=$SCALE "
[[ -z ${BENCH_RUNS:-} ]] || knobs+="BENCH_RUNS=$RUNS "
[[ -z ${BENCH_SETTINGS:-} ]] || knobs+="BENCH_SETTINGS=\"${SETTINGS[*]}\" "
[[ -z ${BENCH_STOP:-} ]] || knobs+="BENCH_STOP=$STOP "
[[ -z ${BENCH_SETTLE:-} ]] || knobs+="BENCH_SETTLE=$SETTLE "
[[ -z ${BENCH_FAST:-} ]] || knobs+="BENCH_FAST=$FAST "
[[ -z ${BENCH_CONF:-} ]] || knobs+="BENCH_CONF=\"$BENCH_CONF\" "
{
    echo "# Rewind benchmark: a diverged former primary back to streaming"
    echo
    echo "Reproduce (root, Debian 12): \`${knobs}make bench-rewind\` (runs \`tests/bench/rewind.sh\`)."
    echo
    echo "$TABLE"
    echo
    echo "$VERDICT"
    echo
    echo "The native engine (\`pgha rewind --engine native --no-fallback -R\`, then \`pg_ctl start -w\`):"
    echo
    echo "$NATIVE_VERDICT"
    echo
    echo "Where the native path spends its time (medians over the runs, seconds; from its stamped log):"
    echo
    echo "$NATIVE_PHASE_TABLE"
    echo
    native_traced
    echo "- Disk: ${DISK_MBS} MB/s, the median of three sequential direct writes of 512 MiB"
    echo "  (dd oflag=direct conv=fsync, 1 MiB blocks) into the work directory ($DISK_RUNS MB/s)."
    echo "  The physical limit is the bytes that must move at that rate; it ignores replay and"
    echo "  the server's start, which every path pays."
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPU(s), $cpu; $mem; Linux $(uname -r);"
    echo "  work directory on $fs; load average before the run: $LOAD, after it: $LOAD_END"
    echo "  ($(nproc) cores shared with other work: figures are medians of $RUNS runs)."
    echo "- $pg_version; pgha $rev (release binary built $built)."
    how=$([[ $STOP == crash ]] && echo "crashed (immediate shutdown)" || echo "was shut down cleanly")
    echo "- pgbench scale $SCALE; fsync $([[ $FAST == 1 ]] && echo off || echo on); $RUNS run(s) per path and"
    echo "  setting; the old primary $how after diverging."
    for s in "${SETTINGS[@]}"; do
        echo "- $(setting_label "$s"): databases ${DBSIZE[$s]} MB on disk (base/); the source's"
        echo "  (B's) pg_wal ${SRC_WAL[$s]} MB, after ${SETTLED[$s]} settle round(s); A's WAL ended at"
        echo "  ${FORKWAL[$s]} (from 0/0)."
    done
    echo "- Times: from the path's first command until B's pg_stat_replication shows A"
    echo "  streaming (polled every 50 ms). \"tool\": pg_rewind or pg_basebackup alone (pgha: its"
    echo "  own logged duration of the one it ran); \"up\": until A runs as a standby (pgha: the"
    echo "  start action returned; bare: pg_ctl start -w returned). Copied: pg_rewind's \"need to"
    echo "  copy\", pg_basebackup's total. The bare pg_rewind runs single-user crash recovery"
    echo "  inside pg_rewind (tool time); pgha runs it before, so it counts outside its tool time."
    echo "- Every run starts from fresh copies of the same diverged A and B (B started first,"
    echo "  untimed), so the copies are in the page cache for every path alike; A's data is"
    echo "  checked against B's after each run (same timeline content: sum of balances)."
    echo "- Targets (the issue): pgha ≤ 1.1 × the faster bare path in each setting; pgha ≤ 1.1 ×"
    echo "  the path it ran, without the agent (wrapper overhead ≤ 10 %): the bare tool, or for"
    echo "  the native engine \`pgha rewind --engine native\` then \`pg_ctl start -w\`."
    for s in "${SETTINGS[@]}"; do
        echo
        echo "The native path's log, first run, $(setting_label "$s") (seconds since it began):"
        echo
        echo '```'
        cat "${NATIVE_LOG[$s]}"
        echo '```'
    done
    for s in "${SETTINGS[@]}"; do
        echo
        echo "pgha's log, first run, $(setting_label "$s") (seconds since the start action began;"
        echo "paths relative to the work directory):"
        echo
        echo '```'
        cat "${PGHA_LOG[$s]}"
        echo '```'
    done
} >"$RESULTS"

echo
echo "$TABLE"
echo
echo "$VERDICT"
echo
echo "$NATIVE_VERDICT"
echo
echo "$NATIVE_PHASE_TABLE"
echo
say "details in ${RESULTS#"$ROOT"/}"
