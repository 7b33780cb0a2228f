#!/bin/bash
# build.sh - the Debian package of pgha, made with dpkg's own tools (`make deb` runs it):
# dpkg-shlibdeps computes Depends from the binary's libraries, dpkg-gencontrol writes the
# control file from debian/control and debian/changelog, dpkg-deb builds the archive.
#
#   debian/build.sh BINARY OUTDIR [SRCDIR]
#
# packages BINARY (a release build of pgha) as OUTDIR/pgha_VERSION_amd64.deb, VERSION being
# what `BINARY --version` says; debian/changelog must have an entry for VERSION, and the
# package's changelog starts there. SRCDIR (default: this repository) gives the README: the
# previous version's package (tests/deb/test.sh) is built from that version's tree. The man
# pages come from examples/man.rs of this tree, fed with BINARY's version and meta-data:
#   /usr/sbin/pgha                               the binary (stripped)
#   /usr/lib/ocf/resource.d/pgha/pgsqlms         -> ../../../../sbin/pgha (= /usr/sbin/pgha)
#   /usr/share/man/man8/pgha.8.gz, pgha-SUBCOMMAND.8.gz   (clap definitions, clap_mangen)
#   /usr/share/man/man7/ocf_pgha_pgsqlms.7.gz    (the agent's meta-data)
#   /usr/share/doc/pgha/{README.md.gz,changelog.gz,copyright}
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
[ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
BIN=$(readlink -f "$1") OUT=$2 SRC=${3:-$REPO}
CARGO=${CARGO:-cargo}

version=$("$BIN" --version | awk '$1 == "pgha" { print $2 }')
[ -n "$version" ] || { echo "build.sh: $BIN --version does not say 'pgha VERSION'" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/debian/pgha doc=$stage/debian/pgha/usr/share/doc/pgha   # where dpkg-shlibdeps wants it

# debian/ as dpkg-gencontrol reads it, with the changelog from VERSION's entry down
mkdir -p "$stage/debian"
cp "$HERE/control" "$stage/debian/control"
awk -v head="pgha ($version)" 'index($0, head) == 1 { on = 1 } on' "$HERE/changelog" > "$stage/debian/changelog"
[ -s "$stage/debian/changelog" ] || { echo "build.sh: debian/changelog has no entry for $version" >&2; exit 1; }
# file dates: the changelog entry's (reproducible archives); not exported: cargo would
# rebuild openssl-sys, whose build script watches SOURCE_DATE_EPOCH
date=$(dpkg-parsechangelog -l "$stage/debian/changelog" -S Timestamp)

install -D -m 0755 "$BIN" "$pkg/usr/sbin/pgha"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/sbin/pgha"
install -d "$pkg/usr/lib/ocf/resource.d/pgha" "$pkg/usr/share/man/man7" "$pkg/usr/share/man/man8" "$doc"
ln -s ../../../../sbin/pgha "$pkg/usr/lib/ocf/resource.d/pgha/pgsqlms"

"$BIN" meta-data > "$stage/metadata.xml"
mkdir "$stage/man"
(cd "$REPO" && "$CARGO" run --quiet --release --locked --example man -- "$stage/man" "$version" "$stage/metadata.xml") >/dev/null
install -m 0644 "$stage"/man/*.8 "$pkg/usr/share/man/man8/"
install -m 0644 "$stage"/man/*.7 "$pkg/usr/share/man/man7/"
install -m 0644 "$SRC/README.md" "$doc/README.md"
install -m 0644 "$stage/debian/changelog" "$doc/changelog"    # a native package's name for it
install -m 0644 "$HERE/copyright" "$doc/copyright"
gzip -9n "$pkg"/usr/share/man/man*/* "$doc/README.md" "$doc/changelog"

mkdir "$pkg/DEBIAN"
(cd "$stage" && dpkg-shlibdeps -Tdebian/substvars debian/pgha/usr/sbin/pgha &&
  dpkg-gencontrol -ppgha -Pdebian/pgha -Tdebian/substvars -fdebian/files -v"$version")
(cd "$pkg" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$date" {} +
mkdir -p "$OUT"
deb=$OUT/pgha_${version}_amd64.deb
SOURCE_DATE_EPOCH=$date dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
