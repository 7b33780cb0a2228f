#!/bin/bash
# pcs-3nodes-vip.sh - create pgha's PostgreSQL resources on a running Pacemaker cluster
# (tested with pcs 0.11.5 / Pacemaker 2.1.5 on Debian 12 and pcs 0.12.0.2 / Pacemaker 3.0.0 on
# Debian 13; role names Promoted/Unpromoted only: pcs 0.12 refuses Master/Slave).
#
# Run as root on ANY one node, once PostgreSQL streaming replication works and every
# instance is shut down cleanly (the primary as a primary, standbys "shut down in recovery"),
# and fencing is configured (pgha, like PAF, relies on fencing).
#
# Result: a promotable clone pgsqld-clone (one Promoted = the PostgreSQL primary, the others
# Unpromoted = streaming standbys) and a virtual IP pgsql-vip that follows the Promoted role.
# Clients and standbys connect to the VIP.
#
# Settings (environment) and their defaults:
#   PGHA_AGENT=ocf:pgha:pgsqlms   the agent (ocf:heartbeat:pgsqlms = PAF, same parameters)
#   PGHA_VIP=10.200.0.10  PGHA_VIP_PREFIX=24    the virtual IP of the primary
#   PGBIN=/usr/lib/postgresql/15/bin  PGDATA=/var/lib/postgresql/15/data  PGHOST=/run/postgresql
#   PGPORT=5432
set -euo pipefail

AGENT=${PGHA_AGENT:-ocf:pgha:pgsqlms}
VIP=${PGHA_VIP:-10.200.0.10}
VIP_PREFIX=${PGHA_VIP_PREFIX:-24}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA=${PGDATA:-/var/lib/postgresql/15/data}
PGHOST=${PGHOST:-/run/postgresql}
PGPORT=${PGPORT:-5432}

# Work on an offline copy of the CIB and push all changes at once: the cluster never sees a
# half-built configuration (e.g. the VIP without its colocation).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pcs cluster cib "$work/orig.xml"
cp "$work/orig.xml" "$work/new.xml"

# Stickiness keeps resources where they are after a node comes back (no needless
# switchover); migration-threshold moves a resource away after 5 failures on a node.
# failure-timeout forgets a node's failures 60 s after the last one, so Pacemaker tries again
# by itself: a failed start counts as infinite failures, and without it a standby whose start
# failed once (its disk full for a while, say) stays stopped until someone runs `pcs resource
# cleanup`, one candidate fewer for the next failover (scenario 27).
pcs -f "$work/new.xml" resource defaults update resource-stickiness=10 migration-threshold=5 \
    failure-timeout=60s

# The PostgreSQL instances. Parameter names are PAF's. Timeouts are the agent's recommended
# minimums (its meta-data): demote must cover a stop plus a start. The two monitors need
# different intervals (Pacemaker identifies an operation by name + interval).
# 'promotable' makes it a promotable clone (pgsqld-clone); notify=true (below) gives its
# instances pre/post notifications: the agent needs them to elect the best standby on failover.
pcs -f "$work/new.xml" resource create pgsqld "$AGENT" \
    bindir="$PGBIN" pgdata="$PGDATA" pghost="$PGHOST" pgport="$PGPORT" \
    op start timeout=60s \
    op stop timeout=60s \
    op promote timeout=30s \
    op demote timeout=120s \
    op monitor interval=15s timeout=10s role=Promoted \
    op monitor interval=16s timeout=10s role=Unpromoted \
    op notify timeout=60s \
    promotable
# The clone's meta-attribute in a command of its own: `promotable notify=true` is deprecated by
# pcs 0.12, and `promotable meta notify=true` sets it on the clone in 0.12 but on the primitive
# in 0.11. This form means the same to both.
pcs -f "$work/new.xml" resource meta pgsqld-clone notify=true

# The virtual IP of the primary.
pcs -f "$work/new.xml" resource create pgsql-vip ocf:heartbeat:IPaddr2 \
    ip="$VIP" cidr_netmask="$VIP_PREFIX" op monitor interval=10s

# The VIP runs only where PostgreSQL is Promoted ...
# (score=INFINITY: pcs 0.12 deprecates a bare score; pcs 0.11 takes both forms)
pcs -f "$work/new.xml" constraint colocation add pgsql-vip with Promoted pgsqld-clone score=INFINITY
# ... it starts after the promotion (clients never reach a standby through it) ...
# shellcheck disable=SC1010 # 'then' is a pcs keyword here
pcs -f "$work/new.xml" constraint order promote pgsqld-clone then start pgsql-vip \
    symmetrical=false kind=Mandatory
# ... and it stops only after the demotion: standbys, which stream from the VIP, receive
# everything up to the old primary's shutdown checkpoint during a switchover.
# shellcheck disable=SC1010 # 'then' is a pcs keyword here
pcs -f "$work/new.xml" constraint order demote pgsqld-clone then stop pgsql-vip \
    symmetrical=false kind=Mandatory

# Push only the difference against the CIB we started from.
pcs cluster cib-push "$work/new.xml" diff-against="$work/orig.xml"
