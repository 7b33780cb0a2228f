#!/bin/bash
# 01-harness-fencing: the harness itself, with Pacemaker's own ocf:pacemaker:Stateful (no
# PostgreSQL, independent of pgha): 3 nodes online with fencing, a promotable clone gives
# 1 Promoted + 2 Unpromoted, a power cut of the Promoted node is fenced (powered off) and
# another node is promoted, the node boots back and rejoins, an isolated node is fenced by
# the quorate side, the syslog sink keeps agent log lines; a power cut during a power-on of
# the same node (the fence daemon's "off" while a node boots) leaves it either off or up with
# its address, never up without it (found by the soak, seed 1101).
# Needs promotion: no (Stateful promotes by itself).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
RSC=st

scenario_begin
cluster_up

h exec node1 pcs resource create st ocf:pacemaker:Stateful promotable \
  op monitor interval=5s role=Promoted op monitor interval=6s role=Unpromoted >/dev/null 2>&1 \
  || fatal "create the Stateful clone"
check "Stateful clone: 1 Promoted + 2 Unpromoted" wait_roles 1 2
check "fence device started" h wait-mon "fence-harness started" \
  "//resource[@id='fence-harness' and @role='Started']"

# power cut of the Promoted node: fenced by the survivors, another one promoted
p=$(promoted_node); t0=$(now)
h crash "$p"
check "crash of $p: another node promoted" h wait-mon "a node other than $p Promoted" \
  "//resource[@id='st' and @role='Promoted']/node[@name!='$p']"
say "failover after the crash of $p: $(since "$t0") s"
check "$p seen offline, clean (fenced)" h wait-offline "$p"
check "fence daemon powered $p off" fenced "$p"
check "$p stays off (pcmk_reboot_action=off)" bash -c "! '$H' exec $p true 2>/dev/null"

t0=$(now)
h boot "$p"
check "$p boots and rejoins" h wait-online
check "$p runs Stateful again: 1 Promoted + 2 Unpromoted" wait_roles 1 2
say "rejoin of $p: $(since "$t0") s"

# network isolation of a non-promoted node: it loses quorum, the others fence it
p=$(promoted_node); v=$(other_nodes "$p" | cut -d' ' -f1); t0=$(now); f0=$(fence_count "$v")
h isolate "$v"
check "isolated $v is fenced by the quorate side" h wait-offline "$v"
check "fence daemon powered $v off" fenced "$v" "$f0"
check "$p still Promoted during the isolation of $v" h wait-mon "$p Promoted" \
  "//resource[@id='st' and @role='Promoted']/node[@name='$p']" 5
say "isolation of $v to fenced: $(since "$t0") s"
h heal "$v"
h boot "$v"
check "$v healed, rebooted and back" wait_roles 1 2

# a power cut racing a power-on: the node ends off, or up with its address
h crash "$v"
require "$v fenced after its power cut" h wait-offline "$v"
h boot-ns "$v" & sleep 0.1; h crash "$v"; wait $! || true
if h exec "$v" true 2>/dev/null; then
  check "$v, powered on and cut at once: up, so with its address" \
    bash -c "ip -n ${PGHA_NS_PREFIX:-pgha}-$v -o addr show dev eth0 | grep -q ' $NET\\.'"
else
  check "$v, powered on and cut at once: off, so without an address" \
    bash -c "! ip -n ${PGHA_NS_PREFIX:-pgha}-$v -o addr show dev eth0 | grep -q ' $NET\\.'"
fi
h crash "$v"; h boot "$v"
check "$v back after the race" wait_roles 1 2

# the syslog sink: the agent's (and any program's) syslog lines are kept per node
h exec node1 logger -t harness-check "sink works"
sleep 0.3
check "agents.log has the test line" grep -q "harness-check: sink works" "$PGHA_CLUSTER_ROOT/nodes/node1/agents.log"
# shellcheck disable=SC2016 # expanded inside the node
check "agents get a syslog facility (HA_LOGFACILITY=daemon)" \
  h exec node1 bash -c 'tr "\0" "\n" < /proc/$(pgrep -x pacemaker-execd)/environ | grep -qx HA_LOGFACILITY=daemon'
scenario_end
