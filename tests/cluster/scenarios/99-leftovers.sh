#!/bin/bash
# 99-leftovers: nothing is left behind. Runs last: first checks that the previous scenarios
# left nothing (no network namespace, no process in a node PID namespace, no mount, no state
# directory), then brings up a full cluster with PostgreSQL running on every node, takes it
# down, and checks again. Needs promotion: no.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
check "nothing left by earlier runs" h leftovers
cluster_up
h pg-init || ko "pg-init"
check "postgres runs in the nodes" quiet h exec node2 pgrep -x postgres
t0=$(now)
h down; CLUSTER_STARTED=0
say "down in $(since "$t0") s"
check "nothing left after down (namespaces, processes, mounts, state)" h leftovers
check "no test address on the host" bash -c "! ip -o addr | grep -q ' $NET\\.'"
scenario_end
