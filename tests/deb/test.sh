#!/bin/bash
# test.sh - the Debian package on fresh minimal Debian 12 and 13 systems (make test-deb).
#
# In a throwaway overlay of each cached minbase root (tests/cluster/node-root.sh
# debian12-minbase|debian13-minbase scratch): install the previous version with apt (which
# must resolve its Depends in the root), check it, upgrade to this tree's package, check again,
# purge, and check that nothing of the package is left. Checked each time: the version that
# dpkg, `pgha --version` and the agent's meta-data give, the OCF link resolving to
# /usr/sbin/pgha, and the man pages (`man -w pgha`, `man -w ocf_pgha_pgsqlms`). Recommends
# are not installed (they would bring a whole cluster stack); Depends are.
#
# The previous version is built from its git commit (git archive, cargo build, this tree's
# debian/build.sh) once per machine, cached in /var/cache/pgha/debs/ by commit.
#
#   tests/deb/test.sh                  (as root; after make deb)
#   tests/deb/test.sh inside OLD NEW   (internal: the checks inside a root)
# Settings (environment): PGHA_DEB=target/debian/current.deb (the package under test)
#   PGHA_DEB_PREVIOUS=2eeb57d (the commit of the previous version, 0.1.0)
#   PGHA_DEB_RELEASES="debian12 debian13"  PGHA_DEB_CACHE=/var/cache/pgha/debs
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

log() { echo "[test-deb $(date +%T)] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# ---------------------------------------------------------------- inside a root

# check_installed VERSION: the package as a user sees it once installed.
check_installed() {
  local v=$1 link=/usr/lib/ocf/resource.d/pgha/pgsqlms page meta
  [ "$(dpkg-query -W -f='${Status} ${Version}' pgha)" = "install ok installed $v" ] \
    || die "dpkg: $(dpkg-query -W -f='${Status} ${Version}' pgha 2>&1)"
  [ "$(/usr/sbin/pgha --version)" = "pgha $v" ] || die "pgha --version: $(/usr/sbin/pgha --version 2>&1)"
  [ "$(readlink -f "$link")" = /usr/sbin/pgha ] || die "$link -> $(readlink -f "$link")"
  meta=$("$link" meta-data) || die "$link meta-data failed"
  [[ $meta == *"<resource-agent name=\"pgsqlms\" version=\"$v\">"* ]] || die "meta-data of $link does not say version $v"
  for page in pgha pgha-rewind ocf_pgha_pgsqlms; do
    man -w "$page" >/dev/null || die "man -w $page"
  done
  page=$(man ocf_pgha_pgsqlms 2>/dev/null) || die "man ocf_pgha_pgsqlms failed"
  [[ $page == *"SUPPORTED PARAMETERS"* ]] || die "man ocf_pgha_pgsqlms does not render"
  log "ok: pgha $v installed: binary, OCF link, meta-data, man pages ($(man -w pgha))"
}

deb_version() { dpkg-deb -f "$1" Version; }

cmd_inside() {
  local old=$1 new=$2 files left
  export DEBIAN_FRONTEND=noninteractive
  log "$(. /etc/os-release && echo "$PRETTY_NAME"): $(dpkg-query -W -f='${binary:Package}\n' | wc -l) packages"
  apt-get install -y -q --no-install-recommends man-db >/dev/null   # the user's man command
  apt-get install -y -q --no-install-recommends "$old" >/dev/null
  check_installed "$(deb_version "$old")"
  apt-get install -y -q --no-install-recommends "$new" >/dev/null
  check_installed "$(deb_version "$new")"
  files=$(dpkg -L pgha)
  apt-get purge -y -q pgha >/dev/null
  dpkg-query -W -f='${Status}' pgha 2>/dev/null | grep -q installed && die "pgha still known to dpkg after purge"
  # what the package alone owned is gone; the directories it shares (/usr/share/man/man8...) stay
  left=$(while read -r f; do
           if [ -L "$f" ] || [ -f "$f" ]; then echo "$f"; fi
         done <<< "$files")
  for f in /usr/lib/ocf/resource.d/pgha /usr/share/doc/pgha; do [ ! -e "$f" ] || left="$left $f"; done
  [ -z "$left" ] || die "left after purge: $left"
  log "ok: purged, nothing of the package left ($(wc -l <<< "$files") paths checked)"
}

# ---------------------------------------------------------------- on the host

# The previous version's package, built once from its commit and cached by it.
previous_deb() {
  local commit cache=${PGHA_DEB_CACHE:-/var/cache/pgha/debs} tmp deb
  commit=$(git -C "$REPO" rev-parse --verify --short=12 "${PGHA_DEB_PREVIOUS:-2eeb57d}^{commit}") \
    || die "commit ${PGHA_DEB_PREVIOUS:-2eeb57d} not in this clone's history"
  deb=$cache/pgha-$commit.deb
  if [ ! -f "$deb" ]; then
    log "building the previous version from $commit (once; cached as $deb)"
    mkdir -p "$cache"; tmp=$(mktemp -d)
    git -C "$REPO" archive "$commit" | tar -x -C "$tmp"
    (cd "$tmp" && CARGO_TARGET_DIR=$cache/target cargo build --release --locked --quiet) \
      || { rm -rf "$tmp"; die "cargo build of $commit failed"; }
    "$REPO/debian/build.sh" "$cache/target/release/pgha" "$tmp/out" "$tmp" >/dev/null \
      || { rm -rf "$tmp"; die "debian/build.sh of $commit failed"; }
    mv "$tmp"/out/pgha_*_amd64.deb "$deb.tmp" && mv "$deb.tmp" "$deb"
    rm -rf "$tmp"
  fi
  echo "$deb"
}

main() {
  local new=${PGHA_DEB:-$REPO/target/debian/current.deb} old work rel t0
  [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, overlays, chroot)"
  [ -f "$new" ] || die "$new is not built (make deb)"
  old=$(previous_deb)
  [ "$(deb_version "$old")" != "$(deb_version "$new")" ] || die "the previous version is this one ($(deb_version "$new"))"
  # the roots see the repository only: the packages go there for the run
  work=$REPO/target/deb-test; rm -rf "$work"; mkdir -p "$work"
  cp "$old" "$work/old.deb"; cp "$new" "$work/new.deb"
  for rel in ${PGHA_DEB_RELEASES:-debian12 debian13}; do
    t0=$SECONDS
    "$REPO/tests/cluster/node-root.sh" "$rel-minbase" build
    log "$rel: install $(deb_version "$old"), upgrade to $(deb_version "$new"), purge"
    "$REPO/tests/cluster/node-root.sh" "$rel-minbase" scratch bash "$HERE/test.sh" inside "$work/old.deb" "$work/new.deb" \
      || die "$rel: the package test failed"
    log "$rel: passed in $((SECONDS - t0)) s"
  done
  rm -rf "$work"
  log "passed: ${PGHA_DEB_RELEASES:-debian12 debian13}"
}

case ${1:-} in
  inside) shift; cmd_inside "$@" ;;
  "") main ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
