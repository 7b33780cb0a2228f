#!/bin/bash
# node-root.sh - the roots the cluster harness's nodes run on besides the host's Debian 12,
# built once per machine with debootstrap from Debian's archive and cached outside the
# repository; and the way to run the harness (or anything) inside one.
#
#   debian13   Debian 13 (trixie): Pacemaker 3.0, Corosync 3.1, pcs 0.12, crmsh 5,
#              PostgreSQL 17 (Debian 13's own)
#   sid        Debian unstable: Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 18 (sid's own)
#              and PostgreSQL 19 (19~rc1 from experimental; it needs glibc 2.43, which
#              neither Debian 12 nor 13 has, so PostgreSQL 19 nodes run here)
#   debian12-minbase, debian13-minbase
#              fresh minimal systems (debootstrap --variant=minbase, nothing installed), for
#              the package tests (tests/deb/test.sh) and the Vagrant provisioning test
#              (tests/cluster/vagrant/test-provision.sh); what those install is downloaded
#              into the root's apt cache beforehand (man-db, and the packages of
#              `provision.sh packages`), so that a test run does not depend on the network
#
#   node-root.sh RELEASE build          make the root unless the cache holds a complete one
#   node-root.sh RELEASE path           print the root's directory (builds nothing)
#   node-root.sh RELEASE run CMD...     run CMD inside the root (builds it first if needed)
#   node-root.sh RELEASE scratch CMD... the same in a throwaway overlay of the root: what CMD
#                                       changes is gone when it ends, the cache never changes
#
# `run` works in a private mount namespace, so nothing it mounts outlives it: the root is
# bind-mounted onto itself (`ip netns add` remounts /, which must be a mount point), gets its
# own proc, sys, /dev (rbind, slave) and a tmpfs /run, the repository is bind-mounted at the
# same path inside, and CMD runs under chroot. Nodes that the harness starts there see the
# root's binaries; commands entered into them must take the node's root too (harness.sh's
# `nsenter --root`).
#
# Settings (environment): PGHA_ROOT_CACHE=/var/cache/pgha/roots (a root is its SUITE/)
#   PGHA_DEBIAN_MIRROR=http://deb.debian.org/debian
set -euo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
CACHE=${PGHA_ROOT_CACHE:-/var/cache/pgha/roots}
MIRROR=${PGHA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the harness runs on a node, and the harness's own tools (it runs inside the root too:
# e2fsprogs makes the disks of PGHA_PGDISK);
# no fence-agents: the harness fences with its own fence_harness (fence-agents pulls 1.7 GB of
# cloud SDKs).
COMMON="pacemaker pacemaker-cli-utils corosync pcs crmsh resource-agents iproute2 procps \
psmisc util-linux e2fsprogs python3 libxml2-utils shellcheck ca-certificates"

log() { echo "[node-root $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

release=${1:-}; shift || true
DOWNLOAD_ONLY="" EXPERIMENTAL=""
case $release in
  debian13) SUITE=trixie PACKAGES="$COMMON postgresql-17 postgresql-client-17 resource-agents-paf" ;;
  sid) SUITE=sid PACKAGES="$COMMON postgresql-18 postgresql-client-18"
       EXPERIMENTAL="postgresql-19 postgresql-client-19" ;;
  debian12-minbase|debian13-minbase)
    case $release in debian12-*) SUITE=bookworm ;; *) SUITE=trixie ;; esac
    DOWNLOAD_ONLY=1
    PACKAGES="man-db $(PGHA_NODE_OS=${release%-minbase} bash "$REPO/tests/cluster/vagrant/provision.sh" packages)" ;;
  *) sed -n '2,34p' "$SELF"; exit 2 ;;
esac
NAME=$SUITE${DOWNLOAD_ONLY:+-minbase}
DIR=$CACHE/$NAME
# The stamp names the package lists: a changed list rebuilds the root.
STAMP=$DIR/.pgha-root-complete
WANTED="$PACKAGES${EXPERIMENTAL:+ experimental: $EXPERIMENTAL}${DOWNLOAD_ONLY:+ download-only}"

# The stamp's words compared as a set: the same packages in another order are the same root.
words() { tr ' ' '\n' | grep -v '^$' | LC_ALL=C sort; }
is_built() { [ -f "$STAMP" ] && [ "$(words < "$STAMP")" = "$(echo "$WANTED" | words)" ]; }

# Packages of the root must not start their services while they are installed (its postinsts
# run invoke-rc.d), and the resolver of debootstrap stumbles on virtual packages (pcs needs
# python3-cffi-backend-api-*): debootstrap installs the base, apt inside finishes the job.
# sid's Release file may be past its Valid-Until date: apt is told not to check it there.
# A minbase root only downloads its packages (with their Recommends, as a plain apt-get
# install on a Vagrant box takes them) and keeps apt's lists and cache.
cmd_build() {
  local tmp=$DIR.tmp
  is_built && return 0
  [ "$(id -u)" = 0 ] || die "must run as root"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps)"
  rm -rf "$tmp"; mkdir -p "$CACHE"
  log "debootstrap $SUITE into $tmp (from $MIRROR)"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tmp" "$MIRROR" >"$CACHE/$NAME-debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/$NAME-debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/$NAME-debootstrap.log)"; }
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  echo 'Acquire::Check-Valid-Until "false";' > "$tmp/etc/apt/apt.conf.d/99pgha-no-valid-until"
  [ -z "$EXPERIMENTAL" ] || echo "deb $MIRROR experimental main" > "$tmp/etc/apt/sources.list.d/experimental.list"
  log "${DOWNLOAD_ONLY:+downloading, not }installing: $WANTED"
  # shellcheck disable=SC2016 # expanded in the root
  unshare --mount --propagation private bash -c '
    set -e; mount -t proc proc "$1/proc"
    chroot "$1" apt-get update -q
    if [ -n "$4" ]; then
      DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -q --download-only $2; exit
    fi
    DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -q --no-install-recommends $2
    [ -z "$3" ] || DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -q --no-install-recommends -t experimental $3' \
    _ "$tmp" "$PACKAGES" "$EXPERIMENTAL" "$DOWNLOAD_ONLY" >"$CACHE/$NAME-apt.log" 2>&1 \
    || { tail -20 "$CACHE/$NAME-apt.log" >&2; die "apt-get in the root failed (log: $CACHE/$NAME-apt.log)"; }
  [ -n "$DOWNLOAD_ONLY" ] || chroot "$tmp" apt-get clean
  rm -rf "$DIR"; mv "$tmp" "$DIR"
  echo "$WANTED" > "$STAMP"
  log "root ready: $DIR ($(du -sh "$DIR" | cut -f1))"
}

# run CMD...: inside the root, in a private mount namespace (see the header), in the current
# directory if it is in the repository (the only host directory the root sees), else in it.
# scratch CMD...: the same on an overlay of the root whose upper layer is a temporary folder,
# removed afterwards (CMD must not leave processes behind: they would keep it busy).
# The mounts and the chroot of run and scratch (arguments: ROOT REPO CWD SCRATCH CMD...).
# shellcheck disable=SC2016 # expanded in the new mount namespace
INNER='
  set -e; r=$1 repo=$2 cwd=$3 scratch=$4; shift 4
  if [ -n "$scratch" ]; then
    mount -t overlay pgha-scratch -o "lowerdir=$r,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
    r=$scratch/root
  else
    mount --bind "$r" "$r"
  fi
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys"; mount --make-rslave "$r/sys"
  mount --rbind /dev "$r/dev"; mount --make-rslave "$r/dev"
  mount -t tmpfs -o mode=0755 run "$r/run"
  mkdir -p "$r$repo"; mount --bind "$repo" "$r$repo"
  exec chroot "$r" env -C "$cwd" "$@"'

cmd_run() {
  local mode=$1 cwd=$PWD scratch rc=0; shift
  case $cwd/ in "$REPO"/*) ;; *) cwd=$REPO ;; esac
  cmd_build
  [ "$mode" = scratch ] || exec unshare --mount --propagation private bash -c "$INNER" _ "$DIR" "$REPO" "$cwd" "" "$@"
  scratch=$(mktemp -d /var/tmp/pgha-scratch-XXXXXX)
  mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
  unshare --mount --propagation private bash -c "$INNER" _ "$DIR" "$REPO" "$cwd" "$scratch" "$@" || rc=$?
  rm -rf "$scratch"
  return "$rc"
}

c=${1:-}; shift || true
case $c in
  build) cmd_build ;;
  path) echo "$DIR" ;;
  run|scratch) [ $# -gt 0 ] || die "usage: $c CMD..."; cmd_run "$c" "$@" ;;
  *) sed -n '2,34p' "$SELF"; exit 2 ;;
esac
