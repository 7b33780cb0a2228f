# shellcheck shell=bash
# shellcheck disable=SC2034 # (whole file) variables meant for the files that source it
# node-os.sh - sourced by harness.sh and lib/common.sh: which Debian release the cluster's
# nodes run, and the PostgreSQL major that comes with it.
#
# The nodes run the system the harness runs on (their namespaces share its root): the host's
# Debian 12 (Pacemaker 2.1.5, pcs 0.11, crmsh 4.4, PostgreSQL 15), or a root built by
# node-root.sh: Debian 13 (Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 17) or Debian sid
# (Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 18, and 19 from experimental), which run.sh and
# demo.sh enter by themselves when asked for it.
#
# Settings (environment): PGHA_NODE_OS=debian12|debian13|sid (default: the release of
#   PGHA_PG_MAJOR when it is given, else the running system)
#   PGHA_PG_MAJOR (default: the release's own PostgreSQL: 15 on Debian 12, 17 on Debian 13,
#   18 on sid; 19 on sid too)

# The running system, from os-release: debian12, debian13, sid, or empty when it is none.
running_os() {
  local id="" v=""
  # shellcheck disable=SC1091 # the system's file
  id=$(. /etc/os-release && echo "${ID:-}") v=$(. /etc/os-release && echo "${VERSION_ID:-}")
  case $id:$v in
    debian:12|debian:13) echo "debian$v" ;;
    debian:) case $(cat /etc/debian_version 2>/dev/null) in */sid) echo sid ;; esac ;;
  esac
}

# The release whose nodes run a given major, for PGHA_PG_MAJOR alone (make demo PG=17).
release_of_major() {
  case $1 in 15) echo debian12 ;; 17) echo debian13 ;; 18|19) echo sid ;; *) echo "none-for-$1" ;; esac
}

if [ -n "${PGHA_NODE_OS:-}" ]; then NODE_OS=$PGHA_NODE_OS
elif [ -n "${PGHA_PG_MAJOR:-}" ]; then NODE_OS=$(release_of_major "$PGHA_PG_MAJOR")
else NODE_OS=$(running_os)
fi
case $NODE_OS:${PGHA_PG_MAJOR:-} in
  debian12:|debian12:15) PG_MAJOR=15 ;;
  debian13:|debian13:17) PG_MAJOR=17 ;;
  sid:|sid:18) PG_MAJOR=18 ;;
  sid:19) PG_MAJOR=19 ;;
  *) echo "node-os.sh: PGHA_NODE_OS='$NODE_OS' PGHA_PG_MAJOR='${PGHA_PG_MAJOR:-}': the nodes" \
          "run debian12 (PostgreSQL 15), debian13 (17) or sid (18 or 19)" >&2; exit 2 ;;
esac
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PGHOME=/var/lib/postgresql/$PG_MAJOR     # the parent of PGDATA: node files, rewind folders
PGDATA=$PGHOME/data

# enter_node_os SCRIPT ARGS...: re-run SCRIPT inside the nodes' root when the nodes must run
# another release than this one (run.sh, demo.sh: one process tree, one root for the run).
enter_node_os() {
  [ "$NODE_OS" = "$(running_os)" ] && return 0
  [ "$NODE_OS" != debian12 ] || { echo "$1: nodes on $NODE_OS need a $NODE_OS host" >&2; exit 2; }
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  exec "$here/node-root.sh" "$NODE_OS" run env PGHA_NODE_OS="$NODE_OS" PGHA_PG_MAJOR="$PG_MAJOR" \
    bash "$(readlink -f "$1")" "${@:2}"
}

# require_node_os SCRIPT: the harness itself is not re-entered (every verb would get its own
# mount namespace, and the cluster's names live in one): it must already run on the nodes' OS.
require_node_os() {
  [ "$NODE_OS" = "$(running_os)" ] && return 0
  echo "$1: nodes on $NODE_OS: run it inside that root, e.g. tests/cluster/node-root.sh $NODE_OS run bash" >&2
  exit 2
}

# fencing_option SUFFIX: the cluster option's name in this Pacemaker: fencing-SUFFIX where the
# scheduler knows it (Pacemaker 3.0.2 renamed them and warns about the old names), else
# stonith-SUFFIX (Pacemaker 2.1, 3.0.0).
fencing_option() {
  local options; options=$(/usr/lib/pacemaker/pacemaker-schedulerd metadata 2>/dev/null || true)
  if [[ $options == *"name=\"fencing-$1\""* ]]; then
    echo "fencing-$1"
  else
    echo "stonith-$1"
  fi
}
