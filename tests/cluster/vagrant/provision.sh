#!/bin/bash
# provision.sh - provisioning of the Vagrant cluster (see /Vagrantfile and tests/cluster/README.md).
# Runs as root inside a Debian 12 (or 13) VM, with the source tree at /vagrant. It reuses the
# test harness's scripts: tests/cluster/lib/pg-setup.sh builds PostgreSQL exactly as the
# harness does, and crm-examples/pcs-3nodes-vip.sh creates the resources exactly as the demo
# does; lib/node-os.sh gives the release's PostgreSQL major (15 on Debian 12, 17 on 13).
# tests/cluster/vagrant/test-provision.sh runs it in fresh Debian roots, up to `cluster`.
#
#   provision.sh system NODE     packages, /etc/hosts, the pgha package (ocf:pgha:pgsqlms), pcsd
#   provision.sh pgsql NODE      node1: primary; others: standby cloned from node1, then stopped
#   provision.sh handover        (node1) stop the primary cleanly, stream from the VIP from now on
#   provision.sh cluster         (last node) pcs cluster setup + start, fencing, the resources
#   provision.sh packages        print the Debian packages `system` installs
#
# Settings (environment, passed by the Vagrantfile): PGHA_NODES="node1:10.200.0.11 ..."
#   PGHA_VIP=10.200.0.10  PGHA_HACLUSTER_PASSWORD  PGHA_FENCE_AGENT=fence_virsh|fence_vbox|none
#   PGHA_FENCE_HOST PGHA_FENCE_LOGIN PGHA_FENCE_PLUG_PREFIX (VM name = prefix + node name)
#   PGHA_DEB=$SRC/target/debian/current.deb (the package; built in the VM when missing)
#   (the fence SSH key is copied by the Vagrantfile to /root/.ssh/pgha_fence_key)
set -euo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/../../.." && pwd)   # /vagrant in the VMs
NODES=${PGHA_NODES:-node1:10.200.0.11 node2:10.200.0.12 node3:10.200.0.13}
VIP=${PGHA_VIP:-10.200.0.10}
PASSWORD=${PGHA_HACLUSTER_PASSWORD:-pgha-lab}
PGSETUP=$SRC/tests/cluster/lib/pg-setup.sh
# shellcheck source=../lib/node-os.sh
source "$SRC/tests/cluster/lib/node-os.sh"   # PG_MAJOR, PGBIN, PGDATA of this release
export PG_VIP=$VIP PG_SUBNET=${VIP%.*}.0/24 PGBIN PGDATA

names() { local e; for e in $NODES; do echo "${e%%:*}"; done; }
addr_of() { local e; for e in $NODES; do [ "${e%%:*}" = "$1" ] && echo "${e#*:}"; done; }
first() { names | head -1; }

packages() {
  echo pacemaker pacemaker-cli-utils corosync pcs crmsh resource-agents fence-agents \
    "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" libxml2-utils
}

# Debian's corosync package ships a sample /etc/corosync/corosync.conf (cluster_name:
# debian): only pcs's, with our cluster's name, says that the cluster was created.
cluster_created() { grep -qs '^[[:space:]]*cluster_name:[[:space:]]*pgha[[:space:]]*$' /etc/corosync/corosync.conf; }

cmd_system() {
  local node=$1 n
  hostnamectl set-hostname "$node"
  # node names must resolve to the cluster network, not to 127.0.1.1
  sed -i "/[[:space:]]$node\$/d" /etc/hosts
  for n in $(names); do grep -q "[[:space:]]$n\$" /etc/hosts || echo "$(addr_of "$n") $n" >> /etc/hosts; done
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2046 # one argument per package
  apt-get install -y -q $(packages)
  # PostgreSQL is managed by Pacemaker only: no Debian cluster, no service at boot
  systemctl disable --now postgresql
  if pg_lsclusters -h | grep -q "^$PG_MAJOR *main"; then pg_dropcluster --stop "$PG_MAJOR" main; fi
  # Pacemaker and Corosync are NOT started at boot (PAF's advice): after a fence, an admin
  # looks at the node before it rejoins.
  systemctl disable corosync pacemaker
  install_pgha
  echo "hacluster:$PASSWORD" | chpasswd
  systemctl enable --now pcsd
}

# The agent: the Debian package built from the source tree (make deb, on the host or here),
# installed as users install it.
install_pgha() {
  local deb=${PGHA_DEB:-$SRC/target/debian/current.deb}
  if [ ! -f "$deb" ]; then
    echo "target/debian/current.deb not in the source tree: building it in the VM (rustup + cargo)"
    apt-get install -y -q curl build-essential pkg-config libssl-dev dpkg-dev
    [ -x /root/.cargo/bin/cargo ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    rm -rf /root/pgha-src && cp -r "$SRC" /root/pgha-src && rm -rf /root/pgha-src/target
    (cd /root/pgha-src && PATH=/root/.cargo/bin:$PATH && cargo build --release --locked &&
      debian/build.sh target/release/pgha target/debian)
    deb=$(ls /root/pgha-src/target/debian/pgha_*_amd64.deb)
  fi
  apt-get install -y -q "$deb"
}

cmd_pgsql() {
  local node=$1 primary; primary=$(first)
  if [ -e "$PGDATA/PG_VERSION" ]; then echo "PostgreSQL already set up on $node"; return; fi
  if [ "$node" = "$primary" ]; then
    bash "$PGSETUP" primary "$node" "$(addr_of "$node")"
  else
    PG_UPSTREAM=$(addr_of "$primary") bash "$PGSETUP" standby "$node" "$(addr_of "$node")" "$(addr_of "$primary")"
    # a standby handed to the agent must be shut down cleanly, in recovery
    bash "$PGSETUP" stop
    bash "$PGSETUP" upstream "$node" "$VIP"
  fi
}

cmd_handover() {       # on the primary, once every standby has been cloned
  local state
  if cluster_created; then echo "the cluster exists: PostgreSQL is Pacemaker's now"; return; fi
  state=$(bash "$PGSETUP" state)
  [ "$state" = "shut down" ] || state=$(bash "$PGSETUP" stop)
  [ "$state" = "shut down" ] || { echo "primary stopped in state '$state'" >&2; exit 1; }
  bash "$PGSETUP" upstream "$(first)" "$VIP"
}

cmd_cluster() {
  local args=() n
  if cluster_created && crm_mon -1 >/dev/null 2>&1; then
    echo "cluster already running"; crm_mon -1 -r; return
  fi
  for n in $(names); do args+=("$n" "addr=$(addr_of "$n")"); done
  # shellcheck disable=SC2046 # one argument per node
  pcs host auth $(names) -u hacluster -p "$PASSWORD"
  pcs cluster setup pgha "${args[@]}" --force
  pcs cluster start --all --wait=120
  pcs property set no-quorum-policy=stop
  setup_fencing
  PGHA_VIP=$VIP bash "$SRC/crm-examples/pcs-3nodes-vip.sh"
  crm_mon -1 -r
}

setup_fencing() {
  local agent=${PGHA_FENCE_AGENT:-none} n
  if [ "$agent" = none ] || [ ! -f /root/.ssh/pgha_fence_key ]; then
    echo "WARNING: no fencing configured (PGHA_FENCE_AGENT/PGHA_FENCE_KEY unset):" \
         "stonith-enabled=false. pgha, like PAF, needs fencing: lab use only." >&2
    pcs property set stonith-enabled=false
    return
  fi
  for n in $(names); do
    # one device per node, never run on the node it fences; pcmk_reboot_action=off: a fenced
    # node stays off until an admin (or the rewind) brings it back
    pcs stonith create "fence-$n" "$agent" pcmk_host_list="$n" pcmk_reboot_action=off \
      ip="$PGHA_FENCE_HOST" username="$PGHA_FENCE_LOGIN" identity_file=/root/.ssh/pgha_fence_key \
      ssh=1 plug="${PGHA_FENCE_PLUG_PREFIX:-}$n" op monitor interval=60s
    pcs constraint location "fence-$n" avoids "$n=INFINITY"
  done
  pcs property set stonith-enabled=true
}

c=${1:-}; shift || true
case $c in
  system) cmd_system "$1" ;;
  pgsql) cmd_pgsql "$1" ;;
  handover) cmd_handover ;;
  cluster) cmd_cluster ;;
  packages) packages ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
