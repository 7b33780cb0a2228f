#!/bin/bash
# pcs-maintenance.sh on|off|node-on NODE|node-off NODE - stop/resume Pacemaker's management.
# Run as root on any node of a cluster built by pcs-3nodes-vip.sh (pcs 0.11 or 0.12).
#
# In maintenance mode Pacemaker neither starts, stops, promotes nor monitors anything:
# PostgreSQL keeps running as it is. Use it to upgrade the agent or PostgreSQL minor
# versions, or to run pg_ctl by hand. Never start/stop a managed instance by hand outside it.
set -euo pipefail
case ${1:-} in
  on)       pcs property set maintenance-mode=true ;;          # whole cluster
  off)      # Re-probe first so the cluster learns what changed while unmanaged, then resume.
            crm_resource --cleanup --resource pgsqld-clone >/dev/null
            pcs property set maintenance-mode=false ;;
  node-on)  pcs node maintenance "${2:?node}" ;;               # one node only
  node-off) pcs node unmaintenance "${2:?node}" ;;
  *) echo "usage: pcs-maintenance.sh on|off|node-on NODE|node-off NODE" >&2; exit 2 ;;
esac
