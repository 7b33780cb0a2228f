#!/bin/bash
# pcs-debug.sh [monitor|start|stop|promote|demote] - run ONE agent action on THIS node, by hand,
# outside the cluster's decisions, and show the agent's output and return code.
# Run as root on a node of a cluster built by pcs-3nodes-vip.sh (pcs 0.11 or 0.12).
#
# Return codes (OCF): 0 = running as a standby (or action succeeded), 8 = running as the
# primary, 7 = not running, anything else = error (see the agent's log in syslog).
# Careful: start/stop/promote/demote really act; the cluster does not know. Use them on a
# node in maintenance or where the resource is banned, then clean up
# (crm_resource --cleanup --resource pgsqld-clone).
set -euo pipefail
action=${1:-monitor}
case $action in
  monitor|start|stop|promote|demote) ;;
  *) echo "usage: pcs-debug.sh [monitor|start|stop|promote|demote]" >&2; exit 2 ;;
esac
# pcs debug-ACTION runs the agent through crm_resource --force-ACTION with the resource's
# configured parameters; --full adds the agent's trace. Its exit code is the OCF code.
rc=0
pcs resource "debug-$action" pgsqld --full || rc=$?
echo "pgsqld $action on $(crm_node -n): rc=$rc"
exit "$rc"
