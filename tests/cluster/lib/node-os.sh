# shellcheck shell=bash
# shellcheck disable=SC2034 # (whole file) variables meant for the files that source it
# node-os.sh - sourced by harness.sh and lib/common.sh: which Debian release the cluster's
# nodes run, and the PostgreSQL major that comes with it.
#
# The nodes run the system the harness runs on (their namespaces share its root): the host's
# Debian 12 (Pacemaker 2.1.5, pcs 0.11, crmsh 4.4, PostgreSQL 15), or the Debian 13 root built
# by debian13-root.sh (Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 17), which run.sh and
# demo.sh enter by themselves when asked for it.
#
# Settings (environment): PGHA_NODE_OS=debian12|debian13 (default: the running system)
#   PGHA_PG_MAJOR (default: the release's own PostgreSQL, 15 on Debian 12, 17 on Debian 13)

# The running system, from os-release: debian12, debian13, or empty when it is neither.
running_os() {
  local id="" v=""
  # shellcheck disable=SC1091 # the system's file
  id=$(. /etc/os-release && echo "${ID:-}") v=$(. /etc/os-release && echo "${VERSION_ID:-}")
  case $id:$v in debian:12|debian:13) echo "debian$v" ;; esac
}

NODE_OS=${PGHA_NODE_OS:-$(running_os)}
case $NODE_OS in
  debian12) PG_MAJOR=${PGHA_PG_MAJOR:-15} ;;
  debian13) PG_MAJOR=${PGHA_PG_MAJOR:-17} ;;
  *) echo "node-os.sh: PGHA_NODE_OS='$NODE_OS': the nodes run debian12 or debian13" >&2; exit 2 ;;
esac
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PGHOME=/var/lib/postgresql/$PG_MAJOR     # the parent of PGDATA: node files, rewind folders
PGDATA=$PGHOME/data

# enter_node_os SCRIPT ARGS...: re-run SCRIPT inside the Debian 13 root when the nodes must run
# Debian 13 and this is not it (run.sh, demo.sh: one process tree, one root for the whole run).
enter_node_os() {
  [ "$NODE_OS" = "$(running_os)" ] && return 0
  [ "$NODE_OS" = debian13 ] || { echo "$1: nodes on $NODE_OS need a $NODE_OS host" >&2; exit 2; }
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  exec "$here/debian13-root.sh" run env PGHA_NODE_OS=debian13 bash "$(readlink -f "$1")" "${@:2}"
}

# require_node_os SCRIPT: the harness itself is not re-entered (every verb would get its own
# mount namespace, and the cluster's names live in one): it must already run on the nodes' OS.
require_node_os() {
  [ "$NODE_OS" = "$(running_os)" ] && return 0
  echo "$1: nodes on $NODE_OS: run it inside that root, e.g. tests/cluster/debian13-root.sh run bash" >&2
  exit 2
}
