#!/usr/bin/env bash
# pg.sh - PostgreSQL instances for the scripts of tests/ that build them in bash: the
# benchmarks (tests/bench/monitor.sh, rewind.sh) and the fixture makers
# (tests/fixtures/*/make-fixtures.sh). Sourced, never run. The Rust integration tests have
# their own fixtures (tests/integration/pg.rs); the cluster harness builds its nodes with
# tests/cluster/lib/pg-setup.sh, inside the nodes.
#
# Every function runs PostgreSQL's programs as the postgres user (through runuser: the
# caller is root), in the C locale and UTC, so their output reads the same on every machine.
# Failures print what the program said on stderr and return non-zero; the caller decides
# whether that ends the script (`|| die ...`).
#
# Settings, read when a function runs:
#   PGBIN       PostgreSQL's programs (default /usr/lib/postgresql/15/bin)
#   PG_TIMEOUT  seconds pg_ctl waits for a start, stop or promotion (default 60)

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# as_pg CMD...: CMD as the postgres user, LC_ALL=C, TZ=UTC (runuser keeps the environment
# but for HOME, SHELL, USER and LOGNAME; no `env` process, so a timed wait pays for none).
as_pg() { LC_ALL=C TZ=UTC runuser -u postgres -- "$@"; }

# pg_scratch NAME: for a script run as root (else it ends it): PG_SCRATCH, a new directory
# /tmp/pgha-NAME.XXXXXX that postgres owns, and an EXIT trap that stops every server run from
# a directory in it, then removes it. Not in a subshell: the trap is the caller's.
pg_scratch() {
    if ((EUID != 0)); then
        echo "${0##*/}: run as root (it runs PostgreSQL as postgres through runuser)" >&2
        exit 1
    fi
    PG_SCRATCH=$(mktemp -d "/tmp/pgha-$1.XXXXXX")
    chown postgres: "$PG_SCRATCH"
    trap pg_scratch_remove EXIT
}
pg_scratch_remove() {
    pg_stop_all "$PG_SCRATCH"/*/
    rm -rf "$PG_SCRATCH"
}

# pg_tool TOOL ARGS...: one of PostgreSQL's programs, as postgres.
pg_tool() {
    local tool=$1
    shift
    as_pg "$PGBIN/$tool" "$@"
}

# pg_initdb DIR [INITDB-OPTIONS...]: a new cluster in DIR, superuser postgres, trust. (No
# --no-instructions: 13's initdb lacks it, and the output is only shown on failure.)
pg_initdb() {
    local dir=$1 out
    shift
    out=$(pg_tool initdb -D "$dir" -U postgres -A trust "$@" 2>&1) || {
        printf 'initdb of %s failed:\n%s\n' "$dir" "$out" >&2
        return 1
    }
}

# pg_start DIR LOG [PG_CTL-OPTIONS...]: starts DIR's server, logging to LOG, and waits until
# it accepts connections; on failure shows the end of LOG.
pg_start() {
    local dir=$1 log=$2
    shift 2
    pg_tool pg_ctl -D "$dir" -l "$log" -w -t "${PG_TIMEOUT:-60}" "$@" start >/dev/null || {
        printf '%s did not start:\n' "$dir" >&2
        tail -n 20 "$log" >&2
        return 1
    }
}

# pg_start_unix DIR PORT SOCKDIR: starts DIR's server with no TCP at all, its Unix socket
# (for PORT) in SOCKDIR, logging to DIR.log: what the fixture makers run, so that nothing
# else on the machine can reach or disturb it.
pg_start_unix() {
    pg_start "$1" "$1.log" -o "-c listen_addresses='' -k $3 -p $2"
}

# pg_stop DIR [MODE]: stops DIR's server (MODE: fast, the default, or immediate).
pg_stop() {
    pg_tool pg_ctl -D "$1" -m "${2:-fast}" -w -t "${PG_TIMEOUT:-60}" stop >/dev/null
}

# pg_promote DIR: promotes DIR's standby and waits until it is a primary.
pg_promote() {
    pg_tool pg_ctl -D "$1" -w -t "${PG_TIMEOUT:-60}" promote >/dev/null
}

# pg_stop_all DIR...: stops, immediately, every server that runs from one of these
# directories; for the EXIT traps, so it never fails.
pg_stop_all() {
    local dir
    for dir in "$@"; do
        if [[ -f $dir/postmaster.pid ]]; then
            pg_stop "$dir" immediate >/dev/null 2>&1 || true
        fi
    done
}

# pg_standby DIR PG_BASEBACKUP-OPTIONS...: a standby in DIR, copied from a running primary
# (the options say which, and how to reach it) with its WAL streamed, after a fast
# checkpoint, and standby.signal. Its own settings are the caller's.
pg_standby() {
    local dir=$1 out
    shift
    out=$(pg_tool pg_basebackup -D "$dir" -X stream -c fast "$@" 2>&1) || {
        printf 'pg_basebackup into %s failed:\n%s\n' "$dir" "$out" >&2
        return 1
    }
    as_pg touch "$dir/standby.signal"
}

# pg_sql HOST PORT SQL: runs SQL as postgres in database postgres; the values, unaligned.
pg_sql() {
    pg_tool psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres -d postgres -c "$3"
}

# pg_true HOST PORT EXPR: the server says EXPR is true (false when it cannot answer).
pg_true() { [[ $(pg_sql "$1" "$2" "SELECT $3" 2>/dev/null) == t ]]; }

# pg_replayed HOST PORT LSN: the standby there has replayed up to LSN.
pg_replayed() { pg_true "$1" "$2" "pg_last_wal_replay_lsn() >= '$3'"; }

# pg_streams HOST PORT NAME: the primary there sees NAME (its application_name) streaming.
pg_streams() {
    pg_true "$1" "$2" "coalesce((SELECT state = 'streaming' FROM pg_stat_replication \
        WHERE application_name = '$3'), false)"
}

# pg_poll SECONDS EVERY CMD...: runs CMD every EVERY seconds until it succeeds; fails when it
# has not after SECONDS.
pg_poll() {
    local end=$((SECONDS + $1)) every=$2
    shift 2
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep "$every"
    done
}

# pg_free_port FROM IP...: the first TCP port from FROM (200 tried) that nothing listens on
# at any of the IPs (default 127.0.0.1).
pg_free_port() {
    local from=$1 p ip free
    shift
    (($#)) || set -- 127.0.0.1
    for ((p = from; p < from + 200; p++)); do
        free=1
        for ip in "$@"; do
            if (: <"/dev/tcp/$ip/$p") 2>/dev/null; then
                free=0
                break
            fi
        done
        if ((free)); then
            echo "$p"
            return
        fi
    done
    printf 'no TCP port free from %s on %s\n' "$from" "$*" >&2
    return 1
}
