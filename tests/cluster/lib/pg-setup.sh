#!/bin/bash
# pg-setup.sh - build PostgreSQL streaming replication the way pgha (and PAF) expect it,
# on ONE node. Run as root on that node. Shared by the namespace test harness
# (tests/cluster/harness.sh runs it inside each fake node) and by the Vagrantfile
# (provisioning of real VMs), so both get exactly the same PostgreSQL layout.
#
#   pg-setup.sh primary NAME ADDR          initdb + config + start (this node is the primary)
#   pg-setup.sh standby NAME ADDR SOURCE   pg_basebackup from SOURCE + config + start as standby
#   pg-setup.sh rebuild NAME ADDR SOURCE   same as standby, after wiping PGDATA; left STOPPED
#                                          (used to bring a crashed former primary back)
#   pg-setup.sh upstream NAME HOST         point primary_conninfo at HOST (e.g. the VIP)
#   pg-setup.sh stop                       clean (fast) shutdown, then print the control state
#   pg-setup.sh state                      print "Database cluster state" from pg_controldata
#
# NAME is the Pacemaker node name: it becomes application_name in primary_conninfo, which
# the agent matches against pg_stat_replication. ADDR is the node's own address: replication
# from it is rejected (no self-replication, PAF requirement).
#
# Settings (environment): PGBIN=/usr/lib/postgresql/15/bin  PGDATA=/var/lib/postgresql/15/data
#   (the harness passes its nodes' major: lib/node-os.sh)
#   PGPORT=5432  PG_SUBNET=$PGHA_NET.0/24 (replication allowed from here; PGHA_NET=10.200.0)
#   PG_VIP=$PGHA_NET.10 (also rejected for replication: the VIP may sit on a standby for a while)
#   PG_SYNC_NAMES='' (e.g. 'ANY 1 (node1, node2, node3)': synchronous_standby_names, per node)
#   PG_SOCKDIR=/run/postgresql  PG_LOGDIR=/var/log/postgresql
#   PG_NOSYNC=0 (1: initdb/pg_basebackup skip their final fsync; the test harness uses it,
#   its nodes share one kernel and page cache, so a node "crash" loses nothing unsynced)
#
# Node-specific settings live OUTSIDE PGDATA (PAF's recommendation): a rebuild with
# pg_basebackup or a pg_rewind copies PGDATA from another node and would otherwise bring
# that node's application_name and pg_hba reject lines along.
#   $PGHOME/pgha-node.conf   primary_conninfo, synchronous_standby_names (included from
#                            postgresql.conf)
#   $PGHOME/pg_hba.conf      hba_file
# where PGHOME is the parent of PGDATA (/var/lib/postgresql/15).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA=${PGDATA:-/var/lib/postgresql/15/data}
PGPORT=${PGPORT:-5432}
PG_SUBNET=${PG_SUBNET:-${PGHA_NET:-10.200.0}.0/24}
PG_VIP=${PG_VIP:-${PGHA_NET:-10.200.0}.10}
PG_SYNC_NAMES=${PG_SYNC_NAMES:-}
PG_SOCKDIR=${PG_SOCKDIR:-/run/postgresql}
PG_LOGDIR=${PG_LOGDIR:-/var/log/postgresql}
PG_NOSYNC=${PG_NOSYNC:-0}
PGHOME=$(dirname "$PGDATA")
NODE_CONF=$PGHOME/pgha-node.conf
HBA_FILE=$PGHOME/pg_hba.conf

die() { echo "pg-setup: $*" >&2; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }

# Everything that must be identical on every node. Copied along by pg_basebackup.
write_common_conf() {
  as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<CONF

# ---- pgha cluster settings (tests/cluster/lib/pg-setup.sh) ----
listen_addresses = '*'
port = $PGPORT
unix_socket_directories = '$PG_SOCKDIR'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 128MB
hot_standby = on                    # standbys answer the agent's monitor queries
wal_log_hints = on                  # pg_rewind needs it (or data checksums)
recovery_target_timeline = 'latest' # follow a new primary's timeline (default since PG 12)
hot_standby_feedback = on
shared_buffers = 32MB
max_connections = 40
logging_collector = on              # keeps the server log whoever starts the server (the agent)
log_directory = '$PG_LOGDIR'
log_filename = 'postgresql.log'
log_file_mode = 0644
log_line_prefix = '%m [%p] %q%u@%d '
log_replication_commands = on
hba_file = '$HBA_FILE'              # per node, outside PGDATA
include_if_exists = '$NODE_CONF'    # per node: primary_conninfo with application_name
CONF
}

# Per node: this node's own address and the VIP must not replicate from this instance.
write_node_files() {
  local name=$1 addr=$2 upstream=$3
  as_pg tee "$HBA_FILE" >/dev/null <<HBA
# pg_hba.conf of $name (written by pg-setup.sh). First match wins.
# TYPE  DATABASE     USER  ADDRESS            METHOD
local   replication  all                      reject   # no self-replication over the socket
host    replication  all   127.0.0.1/32       reject   # ... nor over loopback
host    replication  all   $addr/32     reject   # ... nor from this node's own address
host    replication  all   $PG_VIP/32     reject   # ... nor from the VIP (it may be here)
host    replication  all   $PG_SUBNET     trust    # the other nodes (lab: trust; use scram-sha-256 in production)
local   all          all                      trust    # the agent's monitor (peer in production)
host    all          all   127.0.0.1/32       trust
host    all          all   $PG_SUBNET     trust
HBA
  set_upstream "$name" "$upstream"
}

set_upstream() {
  local name=$1 host=$2
  # tcp_user_timeout: data left unacknowledged for 10 s ends the connection, not the kernel's
  # 15 minutes of retransmissions; the keepalives end an idle one whose peer is gone (after
  # 5 + 3 × 2 s), not after the kernel's 2 hours. Seen once in the soak (seed 6606, fault
  # 22): a standby whose reconnection met its primary's power cut stayed silent for 150 s,
  # most likely connected to a peer that was gone (its log had neither a refusal nor a
  # timeout).
  as_pg tee "$NODE_CONF" >/dev/null <<CONF
# $name: where this instance streams from when it runs as a standby (pg-setup.sh).
primary_conninfo = 'host=$host port=$PGPORT user=postgres application_name=$name tcp_user_timeout=10000 keepalives_idle=5 keepalives_interval=2 keepalives_count=3'
CONF
  if [ -n "$PG_SYNC_NAMES" ]; then   # used when this node is the primary
    echo "synchronous_standby_names = '$PG_SYNC_NAMES'" | as_pg tee -a "$NODE_CONF" >/dev/null
  fi
}

pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOGDIR/startup.log" -w -t 60 start >/dev/null
}

state() {
  LC_ALL=C "$PGBIN/pg_controldata" "$PGDATA" | sed -n 's/^Database cluster state: *//p'
}

prepare_dirs() {
  install -d -o postgres -g postgres -m 0755 "$PGHOME" "$PG_LOGDIR"
  install -d -o postgres -g postgres -m 2775 "$PG_SOCKDIR"
}

cmd_primary() {
  local name=$1 addr=$2
  prepare_dirs
  [ ! -e "$PGDATA/PG_VERSION" ] || die "$PGDATA already holds a cluster"
  local nosync=(); [ "$PG_NOSYNC" = 1 ] && nosync=(--no-sync)
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 "${nosync[@]}" >/dev/null
  write_common_conf
  rm -f "$PGDATA/pg_hba.conf"          # unused (hba_file points outside); avoids confusion
  write_node_files "$name" "$addr" "${PG_UPSTREAM:-$addr}"
  pg_start
}

basebackup() {
  local name=$1 addr=$2 source=$3
  prepare_dirs
  [ ! -e "$PGDATA/PG_VERSION" ] || die "$PGDATA already holds a cluster"
  # -R writes standby.signal (and a primary_conninfo into postgresql.auto.conf, removed
  # below: ours, with this node's application_name, comes from pgha-node.conf).
  local nosync=(); [ "$PG_NOSYNC" = 1 ] && nosync=(--no-sync)
  as_pg "$PGBIN/pg_basebackup" -h "$source" -p "$PGPORT" -U postgres -D "$PGDATA" -X stream -R -c fast "${nosync[@]}"
  as_pg sed -i '/^primary_conninfo/d' "$PGDATA/postgresql.auto.conf"
  write_node_files "$name" "$addr" "${PG_UPSTREAM:-$source}"
}

cmd_standby() { basebackup "$@"; pg_start; }

cmd_rebuild() {
  case $PGDATA in ""|/) die "refusing to wipe PGDATA='$PGDATA'" ;; esac
  if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then die "instance is running"; fi
  rm -rf "$PGDATA"
  basebackup "$@"
}

cmd_stop() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  state
}

c=${1:-}; shift || true
case $c in
  primary)  [ $# = 2 ] || die "usage: primary NAME ADDR"; cmd_primary "$@" ;;
  standby)  [ $# = 3 ] || die "usage: standby NAME ADDR SOURCE"; cmd_standby "$@" ;;
  rebuild)  [ $# = 3 ] || die "usage: rebuild NAME ADDR SOURCE"; cmd_rebuild "$@" ;;
  upstream) [ $# = 2 ] || die "usage: upstream NAME HOST"; set_upstream "$@" ;;
  stop)     cmd_stop ;;
  state)    state ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
