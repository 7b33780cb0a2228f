#!/bin/bash
# debian13-root.sh - a Debian 13 (trixie) root for the cluster harness's nodes: Pacemaker 3.0,
# Corosync 3.1, pcs 0.12, crmsh 5, PostgreSQL 17, built once per machine with debootstrap
# from Debian's archive and cached outside the repository; and the way to run the harness
# (or anything) inside it.
#
#   debian13-root.sh build        make the root unless the cache already holds a complete one
#   debian13-root.sh path         print the root's directory (builds nothing)
#   debian13-root.sh run CMD...   run CMD inside the root (builds it first if needed)
#
# `run` works in a private mount namespace, so nothing it mounts outlives it: the root is
# bind-mounted onto itself (`ip netns add` remounts /, which must be a mount point), gets its
# own proc, sys, /dev (rbind, slave) and a tmpfs /run, the repository is bind-mounted at the
# same path inside, and CMD runs under chroot. Nodes that the harness starts there see the
# root's binaries; commands entered into them must take the node's root too (harness.sh's
# `nsenter --root`).
#
# Settings (environment): PGHA_ROOT_CACHE=/var/cache/pgha/roots (the root is its trixie/)
#   PGHA_DEBIAN_MIRROR=http://deb.debian.org/debian
set -euo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
CACHE=${PGHA_ROOT_CACHE:-/var/cache/pgha/roots}
DIR=$CACHE/trixie
MIRROR=${PGHA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the harness runs on a node, and the harness's own tools (it runs inside the root too);
# no fence-agents: the harness fences with its own fence_harness (fence-agents pulls 1.7 GB of
# cloud SDKs).
PACKAGES="pacemaker pacemaker-cli-utils corosync pcs crmsh resource-agents \
postgresql-17 postgresql-client-17 resource-agents-paf iproute2 procps psmisc util-linux \
python3 libxml2-utils shellcheck ca-certificates"
# The stamp names the package list: a changed list rebuilds the root.
STAMP=$DIR/.pgha-root-complete

log() { echo "[debian13-root $(date +%T)] $*" >&2; }
die() { log "$*"; exit 1; }

is_built() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ]; }

# Packages of the root must not start their services while they are installed (its postinsts
# run invoke-rc.d), and the resolver of debootstrap stumbles on virtual packages (pcs needs
# python3-cffi-backend-api-*): debootstrap installs the base, apt inside finishes the job.
cmd_build() {
  local tmp=$DIR.tmp
  is_built && return 0
  [ "$(id -u)" = 0 ] || die "must run as root"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps)"
  rm -rf "$tmp"; mkdir -p "$CACHE"
  log "debootstrap trixie into $tmp (from $MIRROR)"
  debootstrap --variant=minbase --include=ca-certificates trixie "$tmp" "$MIRROR" >"$CACHE/trixie-debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/trixie-debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/trixie-debootstrap.log)"; }
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  log "installing: $PACKAGES"
  # shellcheck disable=SC2016 # expanded in the root
  unshare --mount --propagation private bash -c '
    set -e; mount -t proc proc "$1/proc"
    chroot "$1" apt-get update -q
    DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -q --no-install-recommends $2' \
    _ "$tmp" "$PACKAGES" >"$CACHE/trixie-apt.log" 2>&1 \
    || { tail -20 "$CACHE/trixie-apt.log" >&2; die "apt-get install in the root failed (log: $CACHE/trixie-apt.log)"; }
  chroot "$tmp" apt-get clean
  rm -rf "$DIR"; mv "$tmp" "$DIR"
  echo "$PACKAGES" > "$STAMP"
  log "root ready: $DIR ($(du -sh "$DIR" | cut -f1))"
}

# run CMD...: inside the root, in a private mount namespace (see the header), in the current
# directory if it is in the repository (the only host directory the root sees), else in it.
cmd_run() {
  local cwd=$PWD
  case $cwd/ in "$REPO"/*) ;; *) cwd=$REPO ;; esac
  cmd_build
  # shellcheck disable=SC2016 # expanded in the new mount namespace
  exec unshare --mount --propagation private bash -c '
    set -e; r=$1 repo=$2 cwd=$3; shift 3
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"; mount --make-rslave "$r/sys"
    mount --rbind /dev "$r/dev"; mount --make-rslave "$r/dev"
    mount -t tmpfs -o mode=0755 run "$r/run"
    mkdir -p "$r$repo"; mount --bind "$repo" "$r$repo"
    exec chroot "$r" env -C "$cwd" "$@"' _ "$DIR" "$REPO" "$cwd" "$@"
}

c=${1:-}; shift || true
case $c in
  build) cmd_build ;;
  path) echo "$DIR" ;;
  run) [ $# -gt 0 ] || die "usage: run CMD..."; cmd_run "$@" ;;
  *) sed -n '2,20p' "$SELF"; exit 2 ;;
esac
