#!/bin/bash
# paf-to-pgha.sh [RSC] - switch a running PAF cluster (ocf:heartbeat:pgsqlms) to pgha
# (ocf:pgha:pgsqlms) in place, and remove the promotion scores PAF left in the CIB.
# Run as root on any one node, with pgha installed on every node. RSC is the clone's primitive
# (default pgsqld). Pacemaker's own tools only: the same with pcs (0.11, 0.12) or crmsh (4, 5).
#
# Why the cleaning: PAF writes its promotion scores `master-RSC` with `crm_master --lifetime
# forever`, as PERMANENT node attributes (the CIB's nodes section); pgha writes them with
# lifetime reboot (transient, the status section). Pacemaker takes the transient value when a
# node has both, and PAF's old permanent value whenever the node has no transient one: after
# the node rebooted or rejoined, or after a full cluster restart, until pgha's next monitor.
# pgha does not see those values (it reads the transient ones), so Pacemaker would choose whom
# to promote from scores that describe the cluster as it was under PAF.
# (Shown on a live cluster by tests/cluster/scenarios/40-paf-switch.sh.)
#
# Steps: maintenance mode (nothing is stopped or started), the primitive's provider changed
# (same type, same parameters: pgha reads PAF's), PAF's permanent scores deleted on every
# node, a cleanup so that pgha probes every instance, maintenance mode off.
set -euo pipefail
rsc=${1:-pgsqld}

crm_attribute -t crm_config -n maintenance-mode -v true
cibadmin --modify --xml-text "<primitive id=\"$rsc\" class=\"ocf\" provider=\"pgha\" type=\"pgsqlms\"/>"
for node in $(crm_node -l | awk '{print $2}'); do
  crm_attribute --node "$node" --name "master-$rsc" --lifetime forever --delete
done
crm_resource --cleanup --resource "$rsc" >/dev/null
crm_attribute -t crm_config -n maintenance-mode -v false
