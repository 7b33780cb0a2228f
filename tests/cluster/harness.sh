#!/bin/bash
# harness.sh - a real multi-node Pacemaker + Corosync + PostgreSQL cluster on ONE machine,
# for pgha's tests and demo. The nodes run the system the harness runs on (lib/node-os.sh):
# the host's Debian 12 (PostgreSQL 15) or, inside a root of node-root.sh, Debian 13
# (Pacemaker 3.0, PostgreSQL 17) or sid (Pacemaker 3.0.3, PostgreSQL 18 or 19). Adapted from the team's fakecluster.sh recipe
# (shared/reference/cluster-harness.md).
#
# Each node lives in its own network, mount, PID, UTS and IPC namespaces. The nodes' eth0
# are veths plugged into a bridge that sits in a private "hub" namespace, on test addresses
# ($NET.0/24) that exist only inside those namespaces: the host gets no address and no route,
# and the nodes have no default route. PID 1 of a node is `harness.sh node-init NODE`;
# killing it is a power cut. The fence agent fence_harness asks the host-side fence daemon
# to power a node off (kill its PID namespace, drop its addresses), so clusters run with
# fencing enabled. The agent is the Debian package users install (make deb): its files,
# extracted with dpkg-deb, appear in every node through read-only overlays, /usr/sbin/pgha
# and ocf:pgha:pgsqlms (nothing is written to the host's /usr).
#
#   harness.sh up                  network + nodes + corosync + pacemaker (+ fencing); waits online
#   harness.sh down                kill everything, remove namespaces and the state directory
#   harness.sh status              is a cluster up? (exit 0 if yes)
#   harness.sh exec NODE CMD...    run CMD inside NODE (crm_mon, pcs, psql, bash ...)
#   harness.sh crash NODE          power-cut NODE (SIGKILL its PID 1, flush its addresses)
#   harness.sh boot NODE           power NODE on: namespaces + syslog sink + corosync + pacemaker
#   harness.sh boot-ns NODE        power on without the cluster stack (then: start-stack NODE)
#   harness.sh start-stack|stop-stack NODE   start / gracefully stop corosync + pacemaker
#   harness.sh isolate|heal NODE   unplug / replug NODE's network cable (bridge port down/up)
#   harness.sh pg-init             PostgreSQL: primary on node1, streaming standbys elsewhere
#   harness.sh pg-handover         stop all instances cleanly, point them at the VIP, check states
#   harness.sh pg-rebuild NODE SRC re-clone NODE's PGDATA from SRC (a node name or address)
#   harness.sh pg-state NODE       "Database cluster state" of NODE's instance (pg_controldata)
#   harness.sh mon                 crm_mon --output-as=xml, from the first live node
#   harness.sh wait-online [N...]  wait until these nodes (default all) are online with a DC
#   harness.sh wait-offline NODE   wait until the live nodes see NODE offline (fenced or gone)
#   harness.sh wait-gone NODE      wait until no live node has NODE in its corosync membership
#   harness.sh wait-mon DESC XPATH wait until boolean(XPATH) holds on crm_mon's XML
#   harness.sh promoted RSC        print the node where RSC (a clone's primitive) is Promoted
#   harness.sh collect DIR         copy every node's logs (and fence log, pe-inputs) to DIR
#   harness.sh leftovers           exit 1 and list what a previous cluster left behind
#   harness.sh client up|down      a client machine on the bridge: netns $PFX-client, $NET.100
#   harness.sh client exec CMD...  run CMD on the client (the host's file system, its network)
#
# Settings (environment):
#   PGHA_CLUSTER_ROOT=/var/tmp/pgha-cluster  state directory (nodes' disks, logs, seed files)
#   PGHA_NODES=3  PGHA_NET=10.200.0 (node i = .1i, VIP = .10)  PGHA_NS_PREFIX=pgha
#   PGHA_FENCING=1 (0: fencing disabled)  PGHA_TOKEN=1000 (corosync token, ms)
#   PGHA_DEB=<repo>/target/debian/current.deb (the package)  PGHA_WAIT=60 (default deadline of waits, s)
#   PGHA_NODE_OS, PGHA_PG_MAJOR: see lib/node-os.sh
#   PGHA_SYNC=1: synchronous replication, 'ANY 1 (node1, node2, node3)' in every node's own
#     pgha-node.conf (outside PGDATA: kept across rewinds and re-clones)
#   PGHA_PGDISK=3G: each node's /var/lib/postgresql is a file system of its own of that size
#     (an ext4 image on a loop device), so that a disk can be filled; default: a directory
# A second instance runs next to the default one with other values of PGHA_CLUSTER_ROOT,
# PGHA_NET and PGHA_NS_PREFIX (everything else follows them: tests/cluster/README.md).
set -euo pipefail

ROOT=${PGHA_CLUSTER_ROOT:-/var/tmp/pgha-cluster}
NODES=${PGHA_NODES:-3}
NET=${PGHA_NET:-10.200.0}
PFX=${PGHA_NS_PREFIX:-pgha}
FENCING=${PGHA_FENCING:-1}
TOKEN=${PGHA_TOKEN:-1000}
SYNC=${PGHA_SYNC:-0}
PGDISK=${PGHA_PGDISK:-}
WAIT=${PGHA_WAIT:-60}
SELF=$(readlink -f "$0")
HERE=$(dirname "$SELF")
REPO=$(cd "$HERE/../.." && pwd)
PGHA_DEB=${PGHA_DEB:-$REPO/target/debian/current.deb}
VIP=$NET.10
# shellcheck source=lib/node-os.sh
source "$HERE/lib/node-os.sh"
require_node_os "$SELF"

node_names() { local i; for i in $(seq 1 "$NODES"); do echo "node$i"; done; }
ip_of() { case $1 in node*) echo "$NET.$((10 + ${1#node}))" ;; *) echo "$1" ;; esac; }
pid1_of() { cat "$ROOT/nodes/$1/pid1" 2>/dev/null; }
# A recorded PID is only trusted if it is still our node-init: PIDs wrap around, and
# nsenter into a recycled PID would run the command on the host.
is_node_pid() { [ -n "${2:-}" ] && tr '\0' ' ' 2>/dev/null < "/proc/$2/cmdline" | grep -q "node-init $1 "; }
is_fence_daemon() { tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline" | grep -qF "harness.sh fence-daemon $ROOT "; }
alive() { local p; p=$(pid1_of "$1") && is_node_pid "$1" "$p"; }
log() { echo "[harness $(date +%T.%3N)] $*" >&2; }
die() { log "$*"; exit 1; }
our_netns() { ip netns list | awk '{print $1}' | grep -E "^$PFX-(hub|node[0-9]+|client)\$" || true; }
CLIENT_IP=$NET.100

# ---------------------------------------------------------------- network

cmd_net_up() {
  local n
  ip netns add "$PFX-hub"
  ip -n "$PFX-hub" link set lo up
  ip -n "$PFX-hub" link add br0 type bridge
  ip -n "$PFX-hub" link set br0 up
  for n in $(node_names); do
    ip netns add "$PFX-$n"
    ip -n "$PFX-hub" link add "v$n" type veth peer name eth0 netns "$PFX-$n"
    ip -n "$PFX-hub" link set "v$n" master br0 up
    ip -n "$PFX-$n" link set lo up
    ip -n "$PFX-$n" addr add "$(ip_of "$n")/24" dev eth0
    ip -n "$PFX-$n" link set eth0 up
  done
}

cmd_net_down() {
  local ns
  for ns in $(our_netns); do ip netns del "$ns"; done
}

# A client machine outside the nodes, on the same bridge: the soak's writers reach the VIP
# from there as an application server would. Its commands run with the host's file system.
cmd_client() {
  local verb=${1:-}; shift || true
  case $verb in
    up)
      ip netns list | grep -qx "$PFX-hub.*" || die "client up: no cluster network ($PFX-hub)"
      ip netns add "$PFX-client"
      ip -n "$PFX-client" link set lo up
      ip -n "$PFX-hub" link add vclient type veth peer name eth0 netns "$PFX-client"
      ip -n "$PFX-hub" link set vclient master br0 up
      ip -n "$PFX-client" addr add "$CLIENT_IP/24" dev eth0
      ip -n "$PFX-client" link set eth0 up ;;
    down) if ip netns list | grep -q "^$PFX-client\b"; then ip netns del "$PFX-client"; fi ;;
    exec) exec ip netns exec "$PFX-client" "$@" ;;
    *) die "usage: client up|down|exec CMD..." ;;
  esac
}

# ---------------------------------------------------------------- seed files

write_corosync_conf() {
  local n
  {
    printf 'totem {\n    version: 2\n    cluster_name: pgha\n    transport: knet\n'
    printf '    crypto_cipher: none\n    crypto_hash: none\n    token: %s\n}\n' "$TOKEN"
    echo "nodelist {"
    for n in $(node_names); do
      printf '    node {\n        name: %s\n        nodeid: %s\n        ring0_addr: %s\n    }\n' \
        "$n" "${n#node}" "$(ip_of "$n")"
    done
    echo "}"
    echo "quorum {"
    echo "    provider: corosync_votequorum"
    if [ "$NODES" = 2 ]; then echo "    two_node: 1"; fi
    echo "}"
    printf 'logging {\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n'
    printf '    to_stderr: no\n    to_syslog: no\n    timestamp: hires\n}\n'
  } > "$ROOT/seed/corosync.conf"
}

# The CIB every node starts with. dc-deadtime=2s: the default 20 s would delay the first DC
# election by ~20 s. The fence device uses pcmk_reboot_action=off: a fenced node stays off
# (a crashed primary must be rebuilt or rewound before it rejoins, or it is fenced again).
write_seed_cib() {
  local f=$ROOT/seed/cib.xml hosts
  hosts=$(node_names | tr '\n' ' ' | sed 's/ $//')
  cibadmin --empty > "$f"
  CIB_file=$f crm_attribute -t crm_config -n dc-deadtime -v 2s
  CIB_file=$f crm_attribute -t crm_config -n no-quorum-policy -v stop
  CIB_file=$f crm_attribute -t crm_config -n cluster-recheck-interval -v 1min
  if [ "$FENCING" = 1 ]; then
    CIB_file=$f crm_attribute -t crm_config -n "$(fencing_option enabled)" -v true
    CIB_file=$f crm_attribute -t crm_config -n "$(fencing_option timeout)" -v 30s
    CIB_file=$f cibadmin -C -o resources -X "<primitive id=\"fence-harness\" class=\"stonith\" type=\"fence_harness\">
      <instance_attributes id=\"fence-harness-ia\">
        <nvpair id=\"fence-harness-hl\" name=\"pcmk_host_list\" value=\"$hosts\"/>
        <nvpair id=\"fence-harness-hc\" name=\"pcmk_host_check\" value=\"static-list\"/>
        <nvpair id=\"fence-harness-ra\" name=\"pcmk_reboot_action\" value=\"off\"/>
      </instance_attributes>
      <operations><op id=\"fence-harness-mon\" name=\"monitor\" interval=\"60s\"/></operations></primitive>"
  else
    CIB_file=$f crm_attribute -t crm_config -n "$(fencing_option enabled)" -v false
  fi
}

# ---------------------------------------------------------------- fencing

# RHCS-style fence agent, overlaid on /usr/sbin in every node. It runs inside a node's PID
# namespace, so it cannot kill another node itself: it drops a request file into a directory
# all nodes see and waits for the host-side daemon (harness.sh fence-daemon) to answer.
write_fence_agent() {
  mkdir -p "$ROOT/extra-sbin" "$ROOT/fence/req" "$ROOT/fence/done"
  sed "s#@FENCEDIR@#$ROOT/fence#; s#@NODES@#$(node_names | tr '\n' ' ')#" \
    > "$ROOT/extra-sbin/fence_harness" <<'AGENT'
#!/bin/bash
# fence_harness: fence agent of the pgha test harness (see tests/cluster/harness.sh).
action=reboot target=""
while [ $# -gt 0 ]; do
  case $1 in
    -o|--action) action=$2; shift ;; --action=*) action=${1#*=} ;;
    -n|--plug|--port) target=$2; shift ;; --plug=*|--port=*) target=${1#*=} ;;
  esac; shift
done
if [ ! -t 0 ]; then
  while IFS='=' read -r k v; do
    case $k in action|option) action=$v ;; port|plug|nodename) [ -z "$target" ] && target=$v ;; esac
  done
fi
D=@FENCEDIR@
case $action in
  metadata|meta-data) cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_harness" shortdesc="Power off a node of the pgha one-machine test cluster">
<longdesc>Asks the host side of tests/cluster/harness.sh to kill the target node's namespaces and drop its addresses.</longdesc>
<vendor-url>none</vendor-url>
<parameters>
  <parameter name="action" unique="0" required="1"><getopt mixed="-o, --action=[action]" /><content type="string" default="reboot" /><shortdesc lang="en">Fencing action</shortdesc></parameter>
  <parameter name="plug" unique="0" required="0" obsoletes="port"><getopt mixed="-n, --plug=[id]" /><content type="string" /><shortdesc lang="en">Node name to fence</shortdesc></parameter>
  <parameter name="port" unique="0" required="0" deprecated="1"><getopt mixed="-n, --plug=[id]" /><content type="string" /><shortdesc lang="en">Node name to fence</shortdesc></parameter>
</parameters>
<actions>
  <action name="on" automatic="0" /><action name="off" /><action name="reboot" /><action name="status" />
  <action name="list" /><action name="monitor" /><action name="metadata" /><action name="validate-all" />
</actions>
</resource-agent>
XML
    exit 0 ;;
  monitor|validate-all) [ -d "$D/req" ]; exit $? ;;
  list) for n in @NODES@; do echo "$n"; done; exit 0 ;;
  status|off|on|reboot)
    [ -n "$target" ] || { echo "no target" >&2; exit 1; }
    id=$target.$action.$(date +%s%N).$$
    echo "$action $target" > "$D/req/.$id" && mv "$D/req/.$id" "$D/req/$id"
    for _ in $(seq 600); do
      if [ -f "$D/done/$id" ]; then r=$(cat "$D/done/$id"); rm -f "$D/done/$id"; exit "$r"; fi
      sleep 0.1
    done
    echo "host fence daemon did not answer within 60 s" >&2; exit 1 ;;
  *) echo "unsupported action $action" >&2; exit 1 ;;
esac
AGENT
  chmod 0755 "$ROOT/extra-sbin/fence_harness"
}

cmd_fence_daemon() {   # host side of fence_harness; runs until $ROOT/fence/stop exists
  local D=$ROOT/fence f id action target rc
  while [ ! -e "$D/stop" ]; do
    for f in "$D"/req/*; do
      [ -e "$f" ] || continue
      id=${f##*/}; read -r action target < "$f"; rm -f "$f"; rc=1
      case $action in
        status) if alive "$target"; then rc=0; else rc=2; fi ;;
        off)    cmd_crash "$target"; rc=0 ;;
        reboot) cmd_crash "$target"; rc=0
                # power back on only once the survivors saw it go (else: "We were allegedly
                # just fenced" and the node shuts itself down for good)
                ( "$SELF" wait-gone "$target"; sleep 2; "$SELF" boot "$target" ) >>"$D/daemon.log" 2>&1 & ;;
        on)     if ! alive "$target"; then "$SELF" boot "$target" >>"$D/daemon.log" 2>&1; fi; rc=0 ;;
      esac
      echo "$(date +%T.%3N) $action $target -> rc=$rc" >> "$D/daemon.log"
      echo $rc > "$D/done/.$id" && mv "$D/done/.$id" "$D/done/$id"
    done
    sleep 0.1
  done
}

# ---------------------------------------------------------------- the agent under test

# The package's files, as `apt install` puts them: /usr/sbin/pgha and the OCF link
# /usr/lib/ocf/resource.d/pgha/pgsqlms -> ../../../../sbin/pgha, under $ROOT/pkg, which the
# nodes' overlays put over /usr/sbin and /usr/lib/ocf/resource.d.
cmd_agent_dir() {
  rm -rf "$ROOT/pkg"; mkdir -p "$ROOT/pkg/usr/sbin" "$ROOT/pkg/usr/lib/ocf/resource.d"
  if [ -f "$PGHA_DEB" ]; then
    dpkg-deb -x "$PGHA_DEB" "$ROOT/pkg"
  else
    log "note: $PGHA_DEB not built (make deb): ocf:pgha:pgsqlms will not work in this cluster"
  fi
}

# ---------------------------------------------------------------- nodes

prep_node_dir() {      # the node's "disk", kept across crashes and reboots
  local nd=$ROOT/nodes/$1 d
  [ -d "$nd/var-lib-pacemaker" ] && return 0
  mkdir -p "$nd"
  for d in etc-corosync var-lib-corosync var-log-corosync; do install -d -m 0755 "$nd/$d"; done
  mkdir -p "$nd/var-lib-pacemaker"
  cp -a /var/lib/pacemaker/. "$nd/var-lib-pacemaker/"          # keeps hacluster:haclient modes
  install -d -o hacluster -g haclient -m 0770 "$nd/var-log-pacemaker" "$nd/var-log-pacemaker/bundles"
  install -d -o postgres -g postgres -m 0755 "$nd/var-lib-postgresql" "$nd/var-log-postgresql"
  if [ -n "$PGDISK" ]; then     # sparse: only what PostgreSQL writes takes space
    truncate -s "$PGDISK" "$nd/pgdisk.img"
    mkfs.ext4 -q -F -m 0 -E root_owner="$(id -u postgres):$(id -g postgres)" "$nd/pgdisk.img"
  fi
  cp "$ROOT/seed/corosync.conf" "$nd/etc-corosync/corosync.conf"
  install -o hacluster -g haclient -m 0600 "$ROOT/seed/cib.xml" "$nd/var-lib-pacemaker/cib/cib.xml"
}

# A private /dev: the node needs its own /dev/log (syslog sink) without creating anything in
# the host's /dev. A tmpfs gets bind mounts of the few device files the stack uses.
private_dev() {
  local name=$1 f
  install -d /run/.hostdev
  mount --rbind /dev /run/.hostdev
  mount -t tmpfs -o mode=0755,nosuid "dev-$name" /dev
  for f in null zero full random urandom tty; do
    touch "/dev/$f"; mount --bind "/run/.hostdev/$f" "/dev/$f"
  done
  install -d /dev/pts /dev/shm
  mount --bind /run/.hostdev/pts /dev/pts
  ln -s pts/ptmx /dev/ptmx
  ln -s /proc/self/fd /dev/fd
  ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
  mount -t tmpfs -o mode=1777 "shm-$name" /dev/shm
  umount -l /run/.hostdev; rmdir /run/.hostdev
}

cmd_node_init() {      # internal: PID 1 of a node (inside new pid/mount/uts/ipc namespaces)
  local name=$1 nd=$ROOT/nodes/$1 pair src dst i
  hostname "$name"
  mount -t tmpfs -o mode=0755 "run-$name" /run
  install -d -m 1777 /run/lock
  install -d -o postgres -g postgres -m 2775 /run/postgresql
  install -d -m 0755 /run/resource-agents
  # its own disk (PGHA_PGDISK), mounted while the host's /dev (loop-control) is still here
  if [ -f "$nd/pgdisk.img" ]; then mount -o loop "$nd/pgdisk.img" /var/lib/postgresql; fi
  private_dev "$name"
  # read-only overlays add the fence agent and the package's pgha to /usr/sbin, and its OCF
  # directory to /usr/lib/ocf/resource.d, in this node only
  mount -t overlay "sbin-$name" -o "lowerdir=$ROOT/extra-sbin:$ROOT/pkg/usr/sbin:/usr/sbin" /usr/sbin
  mount -t overlay "ocf-$name" -o "lowerdir=$ROOT/pkg/usr/lib/ocf/resource.d:/usr/lib/ocf/resource.d" \
    /usr/lib/ocf/resource.d
  case $ROOT in /tmp/*)             # private /tmp, but keep $ROOT visible at the same path
    install -d /run/.root; mount --bind "$ROOT" /run/.root
    mount -t tmpfs -o mode=1777 "tmp-$name" /tmp
    mkdir -p "$ROOT"; mount --bind /run/.root "$ROOT"; umount /run/.root; rmdir /run/.root ;;
  *) mount -t tmpfs -o mode=1777 "tmp-$name" /tmp ;;
  esac
  for pair in etc-corosync:/etc/corosync var-lib-corosync:/var/lib/corosync \
              var-lib-pacemaker:/var/lib/pacemaker var-log-pacemaker:/var/log/pacemaker \
              var-log-corosync:/var/log/corosync var-lib-postgresql:/var/lib/postgresql \
              var-log-postgresql:/var/log/postgresql; do
    src=$nd/${pair%%:*} dst=${pair#*:}
    mkdir -p "$dst"   # sid's corosync leaves its state and log folders to systemd
    if [ "$src" = "$nd/var-lib-postgresql" ] && [ -f "$nd/pgdisk.img" ]; then continue; fi
    mount --bind "$src" "$dst"
  done
  mount --bind "$ROOT/seed/hosts" /etc/hosts   # node names resolve to test addresses
  cd /
  # syslog sink on this node's /dev/log: keeps the agent's log lines (agents log to syslog)
  python3 "$ROOT/bin/syslog-sink.py" /dev/log "$nd/syslog.log" "$nd/agents.log" \
    >>"$nd/syslog-sink.out" 2>&1 </dev/null &
  for i in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
  [ -S /dev/log ] || echo "warning: syslog sink did not start" >&2
  echo "node $name up"
  trap 'exit 0' TERM INT
  while :; do sleep 3600 & wait $! || true; done   # bash reaps re-parented orphans (postmaster...)
}

# A powered-off node's disk image stays attached until the kernel has unmounted its file
# system (the node's mount namespace is freed after its last process): mounting it again
# before would put two ext4 instances on one image.
wait_disk_released() {
  local img=$ROOT/nodes/$1/pgdisk.img i
  [ -f "$img" ] || return 0
  for i in $(seq 200); do
    [ -z "$(losetup -j "$img")" ] && return 0
    sleep 0.05
  done
  return 1
}

# power_locked NODE CMD...: CMD (a power-on or a power cut of NODE) while no other one of
# NODE runs. Found by the soak (seed 1101): the fence daemon's "off" of a node that was being
# booted at that moment found no node to kill yet, then flushed the address the boot had just
# given it: the node ran on, alone with no address, and the cluster counted it fenced.
power_locked() {
  local n=$1; shift
  mkdir -p "$ROOT/nodes/$n"
  ( flock 9; "$@" ) 9>"$ROOT/nodes/$n/power.lock"
}

cmd_node_boot() { power_locked "$1" node_boot "$1"; }
node_boot() {          # namespaces only
  local n=$1 nd=$ROOT/nodes/$1 u c i
  [ -d "$ROOT/seed" ] || die "no cluster state in $ROOT (run: harness.sh up)"
  if alive "$n"; then die "$n is already running"; fi
  prep_node_dir "$n"
  wait_disk_released "$n" || die "$n: its disk is still attached to the powered-off node"
  rm -f "$nd/init.log"
  ip -n "$PFX-$n" addr flush dev eth0               # a power-on starts with no stale address
  ip -n "$PFX-$n" addr add "$(ip_of "$n")/24" dev eth0
  setsid ip netns exec "$PFX-$n" unshare --pid --fork --mount-proc --mount --uts --ipc \
      --propagation private "$SELF" node-init "$n" >"$nd/init.log" 2>&1 </dev/null 9>&- &
  u=$!
  for i in $(seq 200); do
    grep -q "node $n up" "$nd/init.log" 2>/dev/null && break
    sleep 0.05
  done
  grep -q "node $n up" "$nd/init.log" || { cat "$nd/init.log" >&2; die "$n did not boot within 10 s"; }
  # host PID of the node's PID 1: the child of the unshare process
  c=$(cat /proc/$u/task/*/children | awk '{print $1}')
  if [ "$(cat "/proc/$c/comm")" = unshare ]; then c=$(cat /proc/"$c"/task/*/children | awk '{print $1}'); fi
  echo "$c" > "$nd/pid1"
}

node_pid_or_die() {
  local p; p=$(pid1_of "$1") || true
  is_node_pid "$1" "$p" || { log "node $1 is not running"; return 1; }
  echo "$p"
}
# --root: the node's root, not the mount namespace's: in the Debian 13 root (a chroot) the
# namespace's root is the host's, whose binaries and /var/lib/pacemaker are not the node's.
nsenter_args() { echo --mount --root --uts --ipc --net --pid --wd=/; }
cmd_exec() {
  local n=$1 p; shift
  p=$(node_pid_or_die "$n") || exit 1
  # shellcheck disable=SC2046 # fixed word list
  exec nsenter --target "$p" $(nsenter_args) -- "$@"
}
in_node() {
  local n=$1 p; shift
  p=$(node_pid_or_die "$n") || return 1
  # shellcheck disable=SC2046 # fixed word list
  nsenter --target "$p" $(nsenter_args) -- "$@"
}

# PCMK_logfacility=daemon: pacemaker-execd passes the facility on to agents (HA_LOGFACILITY),
# so agents log to syslog (our sink); PCMK_logfile keeps pacemaker's own detailed log too.
cmd_start_stack() {
  in_node "$1" bash -c '
    corosync -f >>/var/log/corosync/stdout.log 2>&1 </dev/null &
    PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=daemon \
      pacemakerd >>/var/log/pacemaker/stdout.log 2>&1 </dev/null &'
}

cmd_stop_stack() {     # graceful: pacemaker moves/stops resources, then corosync leaves
  # shellcheck disable=SC2016 # expanded inside the node
  in_node "$1" timeout "$WAIT" bash -c 'p=$(pgrep -x pacemakerd) && kill -TERM $p
    while pgrep -x pacemakerd >/dev/null; do sleep 0.2; done
    corosync-cfgtool -H --force >/dev/null 2>&1 || true
    while pgrep -x corosync >/dev/null; do sleep 0.2; done' \
    || die "stop-stack $1: pacemaker/corosync did not stop within ${WAIT}s"
}

cmd_boot() { cmd_node_boot "$1"; cmd_start_stack "$1"; }

cmd_crash() { power_locked "$1" crash "$1"; }
crash() {              # power cut: every process of the node dies at once, volatile state too
  local n=$1 p
  p=$(pid1_of "$n") || true
  if is_node_pid "$n" "$p"; then
    kill -KILL "$p"
    while is_node_pid "$n" "$p"; do sleep 0.05; done
  fi
  ip -n "$PFX-$n" addr flush dev eth0 2>/dev/null || true   # a power cycle loses the VIP
}

cmd_isolate() { ip -n "$PFX-hub" link set "v$1" down; }
cmd_heal() { ip -n "$PFX-hub" link set "v$1" up; }

# ---------------------------------------------------------------- observing the cluster

live_nodes() { local n; for n in $(node_names); do if alive "$n"; then echo "$n"; fi; done; }

cmd_mon() {            # crm_mon XML as seen by the first live node that has a DC
  local n x
  for n in $(live_nodes); do
    x=$(in_node "$n" crm_mon -1 --output-as=xml 2>/dev/null) || continue
    echo "$x" | grep -q '<current_dc present="true"' || continue
    echo "$x"; return 0
  done
  return 1
}

xpath_true() { [ "$(xmllint --xpath "boolean($2)" - <<<"$1" 2>/dev/null)" = true ]; }

# wait-mon DESC XPATH [TIMEOUT]: poll crm_mon XML until boolean(XPATH) is true
cmd_wait_mon() {
  local desc=$1 xp=$2 t=${3:-$WAIT} deadline x
  deadline=$(( $(date +%s) + t ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if x=$(cmd_mon) && xpath_true "$x" "$xp"; then return 0; fi
    sleep 0.25
  done
  log "timeout (${t}s) waiting for: $desc"; return 1
}

cmd_wait_online() {
  local want=("$@") xp="//current_dc[@present='true']" m
  [ ${#want[@]} -gt 0 ] || mapfile -t want < <(node_names)
  for m in "${want[@]}"; do xp="$xp and //node[@name='$m' and @online='true']"; done
  cmd_wait_mon "nodes online with a DC: ${want[*]}" "$xp"
}

cmd_wait_offline() {
  cmd_wait_mon "$1 seen offline (and not unclean) by the survivors" \
    "//node[@name='$1' and @online='false' and @unclean='false']"
}

cmd_wait_gone() {      # until no live peer has NODE in its corosync membership
  local v=$1 n deadline seen
  deadline=$(( $(date +%s) + WAIT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    seen=0
    for n in $(live_nodes); do
      [ "$n" = "$v" ] && continue
      if in_node "$n" corosync-quorumtool -l 2>/dev/null | grep -qw "$v"; then seen=1; fi
    done
    [ $seen = 0 ] && return 0
    sleep 0.25
  done
  log "timeout (${WAIT}s) waiting for $v to leave the membership"; return 1
}

cmd_promoted() {       # promoted RSC: node name(s) where RSC is Promoted
  local x
  x=$(cmd_mon) || return 1
  xmllint --xpath "//resource[@id='$1' and @role='Promoted']/node/@name" - <<<"$x" 2>/dev/null \
    | sed -n 's/.*name="\([^"]*\)".*/\1/p'
}

# ---------------------------------------------------------------- PostgreSQL

pgsetup() {
  local n=$1; shift
  local sync=""
  [ "$SYNC" = 1 ] && sync="ANY 1 ($(node_names | paste -sd, | sed 's/,/, /g'))"
  in_node "$n" env PGBIN="$PGBIN" PGDATA="$PGDATA" PG_SUBNET="$NET.0/24" PG_VIP="$VIP" PG_NOSYNC=1 \
    PG_SYNC_NAMES="$sync" bash "$ROOT/bin/pg-setup.sh" "$@"
}
psql_on() { local n=$1; shift; in_node "$n" runuser -u postgres -- psql -h /run/postgresql -X -q -At "$@"; }

cmd_pg_init() {        # node1 = primary, all others stream from it; left running
  local n deadline nwant=$((NODES - 1)) got=0
  pgsetup node1 primary node1 "$(ip_of node1)"
  for n in $(node_names); do
    [ "$n" = node1 ] && continue
    pgsetup "$n" standby "$n" "$(ip_of "$n")" "$(ip_of node1)"
  done
  deadline=$(( $(date +%s) + WAIT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    got=$(psql_on node1 -c "select count(*) from pg_stat_replication where state='streaming'" 2>/dev/null) || got=0
    [ "$got" = "$nwant" ] && return 0
    sleep 0.25
  done
  die "pg-init: $got of $nwant standbys streaming after ${WAIT}s"
}

# Hand the instances over to the agent: the primary shut down cleanly as a primary, every
# standby shut down cleanly in recovery (the agent promotes the one clean primary at its first
# start), and every node streams from the VIP from now on.
cmd_pg_handover() {
  local n s
  for n in $(node_names); do        # primary first: its walsenders ship the shutdown checkpoint
    s=$(pgsetup "$n" stop)
    case $n:$s in
      node1:"shut down"|node*:"shut down in recovery") ;;
      *) die "pg-handover: $n stopped in state '$s'" ;;
    esac
    pgsetup "$n" upstream "$n" "$VIP"
  done
}

cmd_pg_rebuild() { pgsetup "$1" rebuild "$1" "$(ip_of "$1")" "$(ip_of "$2")"; pgsetup "$1" upstream "$1" "$VIP"; }

# ---------------------------------------------------------------- lifecycle

cmd_status() {
  local ns; ns=$(our_netns)
  if [ -n "$ns" ] || [ -e "$ROOT" ]; then
    echo "cluster state present: root=$ROOT namespaces: $(echo "$ns" | tr '\n' ' ')"; return 0
  fi
  echo "no cluster"; return 1
}

cmd_up() {
  local n t0=$SECONDS
  if cmd_status >/dev/null; then
    die "a previous cluster is still up ($(cmd_status)); run: $SELF down"
  fi
  mkdir -p "$ROOT/seed" "$ROOT/nodes" "$ROOT/bin" "$ROOT/extra-sbin"
  # copies inside $ROOT: the repository may be under /tmp, which every node replaces
  cp "$HERE/lib/pg-setup.sh" "$HERE/lib/syslog-sink.py" "$ROOT/bin/"
  cp -r "$REPO/crm-examples" "$ROOT/crm-examples"
  { cat /etc/hosts; for n in $(node_names); do echo "$(ip_of "$n") $n"; done; echo "$VIP pgha-vip"; } \
    > "$ROOT/seed/hosts"
  write_corosync_conf
  write_seed_cib
  cmd_agent_dir
  if [ "$FENCING" = 1 ]; then
    write_fence_agent
    setsid "$SELF" fence-daemon "$ROOT" >"$ROOT/fence/daemon.out" 2>&1 </dev/null &
    echo $! > "$ROOT/fence/daemon.pid"
  fi
  cmd_net_up
  for n in $(node_names); do cmd_boot "$n"; done
  cmd_wait_online
  log "cluster up: $NODES nodes online in $((SECONDS - t0)) s (fencing=$FENCING, token=${TOKEN}ms," \
    "$NODE_OS, $(in_node node1 pacemakerd --version | head -1), PostgreSQL $PG_MAJOR)"
}

cmd_down() {
  local nd n p
  if [ -f "$ROOT/fence/daemon.pid" ]; then   # daemon is a setsid group leader: kill its group
    touch "$ROOT/fence/stop"                  # (includes pending "reboot" subshells)
    p=$(cat "$ROOT/fence/daemon.pid")
    if is_fence_daemon "$p"; then
      kill -TERM -- "-$p" 2>/dev/null || true
      # not `kill -0`: the daemon's parent is gone, so it stays a zombie until the host's
      # init reaps it (seconds, on some machines); a zombie has an empty cmdline
      while is_fence_daemon "$p"; do sleep 0.05; done
    fi
  fi
  for nd in "$ROOT"/nodes/*; do
    n=${nd##*/}; p=$(pid1_of "$n") || continue
    if is_node_pid "$n" "$p"; then kill -KILL "$p"; fi
  done
  for nd in "$ROOT"/nodes/*; do
    n=${nd##*/}; p=$(pid1_of "$n") || continue
    while is_node_pid "$n" "$p"; do sleep 0.05; done
  done
  for nd in "$ROOT"/nodes/*; do wait_disk_released "${nd##*/}" || log "${nd##*/}: disk image still attached"; done
  cmd_net_down
  rm -rf "$ROOT"
}

cmd_collect() {        # collect DIR: logs of every node (also of powered-off ones: the disk stays)
  local dest=$1 nd n
  mkdir -p "$dest"
  for nd in "$ROOT"/nodes/*; do
    [ -d "$nd" ] || continue
    n=${nd##*/}
    mkdir -p "$dest/$n"
    cp -r "$nd"/var-log-* "$dest/$n/" 2>/dev/null || true
    cp "$nd"/*.log "$nd"/*.out "$dest/$n/" 2>/dev/null || true
    cp -r "$nd/var-lib-pacemaker/pengine" "$dest/$n/pengine" 2>/dev/null || true
    cp "$nd/var-lib-pacemaker/cib/cib.xml" "$dest/$n/cib.xml" 2>/dev/null || true
  done
  cp "$ROOT"/fence/daemon.* "$dest/" 2>/dev/null || true
  if x=$(cmd_mon 2>/dev/null); then echo "$x" > "$dest/crm_mon.xml"; fi
}

# What a previous run of THIS instance may leave behind: namespaces, processes, mounts, the
# state directory. Our daemons run in the nodes' PID namespaces, so they are found by name
# outside the host's; they belong to this instance when their mounts come from $ROOT/nodes
# (another instance, with another root, may be running next to this one).
cmd_leftovers() {
  local bad=0 hostns p ns comm cmdline
  hostns=$(readlink /proc/self/ns/pid)
  if [ -n "$(our_netns)" ]; then echo "network namespaces: $(our_netns | tr '\n' ' ')"; bad=1; fi
  for p in /proc/[0-9]*; do
    ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
    comm=$(cat "$p/comm" 2>/dev/null) || continue
    cmdline=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
    case $comm in
      corosync|pacemakerd|pacemaker-*|postgres|postmaster|bash)
        if [ "$ns" != "$hostns" ] && grep -qF "$ROOT/nodes/" "$p/mountinfo" 2>/dev/null; then
          echo "process: ${p#/proc/} $comm $cmdline(in a node PID namespace)"; bad=1
        fi ;;
    esac
    case $cmdline in *"harness.sh fence-daemon $ROOT "*|*"$ROOT/bin/syslog-sink.py "*)
      echo "process: ${p#/proc/} $cmdline"; bad=1 ;;
    esac
  done
  if grep -qF "$ROOT/" /proc/self/mountinfo; then echo "mounts under $ROOT"; bad=1; fi
  if [ -e "$ROOT" ]; then echo "state directory $ROOT"; bad=1; fi
  return $bad
}

c=${1:-}; shift || true
case $c in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  crash) cmd_crash "$1" ;;
  boot) cmd_boot "$1" ;;
  boot-ns) cmd_node_boot "$1" ;;
  start-stack) cmd_start_stack "$1" ;;
  stop-stack) cmd_stop_stack "$1" ;;
  isolate) cmd_isolate "$1" ;;
  heal) cmd_heal "$1" ;;
  pg-init) cmd_pg_init ;;
  pg-handover) cmd_pg_handover ;;
  pg-rebuild) cmd_pg_rebuild "$1" "$2" ;;
  pg-state) pgsetup "$1" state ;;
  mon) cmd_mon ;;
  wait-online) cmd_wait_online "$@" ;;
  wait-offline) cmd_wait_offline "$1" ;;
  wait-gone) cmd_wait_gone "$1" ;;
  wait-mon) cmd_wait_mon "$@" ;;
  promoted) cmd_promoted "$1" ;;
  collect) cmd_collect "$1" ;;
  leftovers) cmd_leftovers ;;
  node-init) cmd_node_init "$@" ;;
  fence-daemon) cmd_fence_daemon ;;   # its argument, $ROOT, only names the instance in ps
  client) cmd_client "$@" ;;
  net-up) cmd_net_up ;;
  net-down) cmd_net_down ;;
  *) sed -n '2,40p' "$SELF"; exit 2 ;;
esac
