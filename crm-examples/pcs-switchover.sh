#!/bin/bash
# pcs-switchover.sh NODE - move the PostgreSQL primary to NODE (a planned switchover).
# Run as root on any node of a cluster built by pcs-3nodes-vip.sh (pcs 0.11 or 0.12).
set -euo pipefail
target=${1:?usage: pcs-switchover.sh NODE}
WAIT=${PGHA_SWITCHOVER_WAIT:-120}

# --promoted: move the Promoted role only (the clone keeps running everywhere): the current
# primary is demoted (clean shutdown, restarted as a standby) and NODE's standby promoted.
# pcs (0.11 and 0.12) adds a temporary location constraint and removes it by itself once the move is
# done; --wait returns when the cluster is settled (non-zero if it could not move).
pcs resource move pgsqld-clone "$target" --promoted --wait="$WAIT"

# Make sure no move/ban constraint is left behind (a no-op when pcs already removed it; after
# 'pcs resource ban' or 'move-with-constraint' this is the step that releases the resource).
pcs resource clear pgsqld-clone
