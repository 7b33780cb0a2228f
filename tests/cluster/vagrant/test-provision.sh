#!/bin/bash
# test-provision.sh - the Vagrant cluster's provisioning (provision.sh) run for real in fresh
# Debian 12 and 13 systems, up to the point where it would start the cluster
# (make test-vagrant-provision). The Vagrant VMs cannot boot here; this is what CI proves of
# them.
#
# Each release: a throwaway overlay of the cached minbase root (tests/cluster/node-root.sh
# RELEASE-minbase scratch), two network namespaces joined by a veth pair for node1 and node2
# (addresses $NET.11 and .12, not the harness's), and, in the root:
#   provision.sh system node1; pgsql node1        packages with apt, the pgha package, the primary
#   provision.sh system node2; pgsql node2        (node2's PostgreSQL directories its own) a
#                                                  standby cloned from node1 over the veth, stopped
#   provision.sh handover                         node1's primary stopped cleanly, then again
# and checks after each step. Stubbed, because a chroot has no systemd: systemctl and
# hostnamectl (they log their arguments, which the checks read). Not run: `provision.sh
# cluster` (pcs cluster setup/start need systemd, pcsd, corosync and pacemaker daemons),
# the Vagrantfile itself, the fence key and the host-side triggers.
#
#   tests/cluster/vagrant/test-provision.sh   (as root; after make deb)
# Settings (environment): PGHA_DEB=target/debian/current.deb
#   PGHA_PROVISION_RELEASES="debian12 debian13"  PGHA_PROVISION_NET=10.201.0
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
NET=${PGHA_PROVISION_NET:-10.201.0}
PROVISION=$HERE/provision.sh
STUBS=/var/log/pgha-stubs.log

log() { echo "[test-provision $(date +%T)] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# ---------------------------------------------------------------- inside the root

# on NODE CMD...: CMD in NODE's network namespace; node2 has its own PostgreSQL directories
# (bind mounts in a private mount namespace), node1 those of the root.
on() {
  local node=$1 pid; shift
  pid=$(cat "/run/pgha-$node.pid")
  if [ "$node" = node1 ]; then nsenter --net="/proc/$pid/ns/net" "$@"; return; fi
  # shellcheck disable=SC2016 # expanded in the new mount namespace
  nsenter --net="/proc/$pid/ns/net" unshare --mount --propagation private bash -c '
    set -e; d=/var/lib/pgha-node2
    for pair in lib:/var/lib/postgresql log:/var/log/postgresql run:/run/postgresql; do
      install -d -o postgres -g postgres "$d/${pair%%:*}" "${pair#*:}"
      mount --bind "$d/${pair%%:*}" "${pair#*:}"
    done
    exec "$@"' _ "$@"
}

provision() { local node=$1; shift; log "$node: provision.sh $*"; on "$node" bash "$PROVISION" "$@"; }
state() { on "$1" bash "$REPO/tests/cluster/lib/pg-setup.sh" state; }
stubbed() { grep -qxF "$1" "$STUBS" || die "provision.sh did not run '$1' (stub log: $(tr '\n' ';' < "$STUBS"))"; }
upstream_of() { on "$1" sed -n "s/^primary_conninfo = 'host=\([^ ]*\) .*/\1/p" "$PGHOME/pgha-node.conf"; }

# What a Vagrant box has and a minbase root lacks: /etc/hosts as Vagrant leaves it once it has
# set the host name (node1 on 127.0.1.1). And what a chroot cannot do, stubbed: they record
# their arguments.
fake_vm() {
  local c
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tnode1 node1\n' > /etc/hosts
  # a throwaway root needs no fsync from dpkg (same packages, same scripts, much faster)
  echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/pgha-test-unsafe-io
  # nor man-db's index, rebuilt after every package with a man page
  echo 'man-db man-db/auto-update boolean false' | debconf-set-selections
  for c in systemctl hostnamectl; do
    printf '#!/bin/sh\necho "%s $*" >> %s\n' "$c" "$STUBS" > "/usr/local/sbin/$c"
    chmod 0755 "/usr/local/sbin/$c"
  done
}

stop_all() {        # a failed check must not leave servers keeping the overlay busy
  local n
  for n in node1 node2; do
    on "$n" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  done
}

cmd_inside() {
  local deb=$1 version n meta
  export PGHA_NODES="node1:$NET.11 node2:$NET.12" PGHA_VIP=$NET.10 PGHA_FENCE_AGENT=none
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck source=../lib/node-os.sh
  source "$REPO/tests/cluster/lib/node-os.sh"      # PG_MAJOR, PGBIN, PGHOME, PGDATA
  export PGBIN PGDATA                               # for pg-setup.sh state
  log "$(. /etc/os-release && echo "$PRETTY_NAME"), PostgreSQL $PG_MAJOR"
  version=$(dpkg-deb -f "$deb" Version)
  fake_vm
  trap stop_all EXIT

  for n in node1 node2; do     # apt needs the network: in the root's, not the node's
    log "$n: provision.sh system $n"
    bash "$PROVISION" system "$n" > "/var/log/pgha-provision-system-$n.log" 2>&1 \
      || { tail -20 "/var/log/pgha-provision-system-$n.log" >&2; die "$n: provision.sh system"; }
    stubbed "hostnamectl set-hostname $n"
  done
  [ "$(dpkg-query -W -f='${Status} ${Version}' pgha)" = "install ok installed $version" ] \
    || die "the pgha package $version is not installed"
  [ "$(readlink -f /usr/lib/ocf/resource.d/pgha/pgsqlms)" = /usr/sbin/pgha ] || die "ocf:pgha:pgsqlms"
  meta=$(crm_resource --show-metadata ocf:pgha:pgsqlms) || die "crm_resource does not find ocf:pgha:pgsqlms"
  [[ $meta == *"<resource-agent name=\"pgsqlms\" version=\"$version\">"* ]] \
    || die "crm_resource shows another ocf:pgha:pgsqlms than $version"
  for c in "systemctl disable --now postgresql" "systemctl disable corosync pacemaker" "systemctl enable --now pcsd"; do
    stubbed "$c"
  done
  [ "$(getent hosts node1 | awk '{print $1}')" = "$NET.11" ] || die "node1 resolves to $(getent hosts node1)"
  grep -q "^$NET.12 node2\$" /etc/hosts || die "/etc/hosts does not name node2"
  [ -z "$(pg_lsclusters -h)" ] || die "Debian's own cluster is still there: $(pg_lsclusters -h)"
  [ "$(getent shadow hacluster | cut -d: -f2 | cut -c1)" = '$' ] || die "hacluster has no password"
  log "ok: system: packages, pgha $version as ocf:pgha:pgsqlms, services left to Pacemaker, hosts, hacluster"

  provision node1 pgsql node1
  [ "$(state node1)" = "in production" ] || die "node1: $(state node1)"
  provision node2 pgsql node2
  [ "$(state node2)" = "shut down in recovery" ] || die "node2: '$(state node2)', not a cleanly stopped standby"
  [ "$(upstream_of node2)" = "$NET.10" ] || die "node2 streams from '$(upstream_of node2)', not the VIP"
  log "ok: pgsql: primary on node1, node2 cloned from it over the network and stopped in recovery"

  # Regression (handover_stops_the_primary_despite_debians_corosync_conf): Debian's corosync
  # package ships a sample corosync.conf, which handover took for "the cluster exists" and
  # then left the primary running, outside Pacemaker.
  [ -f /etc/corosync/corosync.conf ] || die "no sample corosync.conf: the regression check proves nothing"
  provision node1 handover
  [ "$(state node1)" = "shut down" ] || die "handover left node1 in state '$(state node1)'"
  [ "$(upstream_of node1)" = "$NET.10" ] || die "node1 streams from '$(upstream_of node1)' once a standby"
  provision node1 handover >/dev/null
  [ "$(state node1)" = "shut down" ] || die "a second handover changed node1: $(state node1)"
  log "ok: handover: primary cleanly shut down, pointed at the VIP; again: no change"
  log "not run: provision.sh cluster (pcs cluster setup/start need systemd and the daemons)"
}

# ---------------------------------------------------------------- on the host

NSS=() SLEEPERS=()
cleanup() {
  local p ns
  for p in "${SLEEPERS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  NSS=() SLEEPERS=()
}

# Two network namespaces on a veth pair; a sleeper in each, whose PID the root enters.
net_up() {
  local run=$1 i ns
  for i in 1 2; do
    ns=pgha-vp$i-$$; NSS+=("$ns")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "${NSS[0]}" link add eth0 type veth peer name eth0 netns "${NSS[1]}"
  for i in 1 2; do
    ip -n "${NSS[i - 1]}" addr add "$NET.1$i/24" dev eth0
    ip -n "${NSS[i - 1]}" link set eth0 up
    ip netns exec "${NSS[i - 1]}" sleep infinity &
    SLEEPERS+=($!)
    echo $! > "$run/pgha-node$i.pid"
  done
}

main() {
  local deb=${PGHA_DEB:-$REPO/target/debian/current.deb} rel t0 work
  [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, namespaces, chroot)"
  [ -f "$deb" ] || die "$deb is not built (make deb)"
  work=$REPO/target/provision-test; rm -rf "$work"; mkdir -p "$work"
  cp "$deb" "$work/pgha.deb"      # the roots see the repository only
  trap cleanup EXIT
  for rel in ${PGHA_PROVISION_RELEASES:-debian12 debian13}; do
    t0=$SECONDS
    "$REPO/tests/cluster/node-root.sh" "$rel-minbase" build
    net_up "$work"
    # shellcheck disable=SC2016 # expanded in the root
    "$REPO/tests/cluster/node-root.sh" "$rel-minbase" scratch bash -c \
      'cp "$1"/pgha-node*.pid /run/ && PGHA_DEB=$1/pgha.deb exec bash "$2" inside "$1/pgha.deb"' \
      _ "$work" "$HERE/test-provision.sh" \
      || die "$rel: the provisioning test failed"
    cleanup
    log "$rel: passed in $((SECONDS - t0)) s"
  done
  rm -rf "$work"
}

case ${1:-} in
  inside) shift; cmd_inside "$@" ;;
  "") main ;;
  *) sed -n '2,24p' "$0"; exit 2 ;;
esac
