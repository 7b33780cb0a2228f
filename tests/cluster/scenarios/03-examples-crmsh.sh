#!/bin/bash
# 03-examples-crmsh: crm-examples/crmsh-3nodes-vip.crm loaded into a live cluster with
# `crm configure load update`, then crm_verify -L; the result is a promotable clone (never a
# <master>), and the cluster runs it: 1 Promoted + 2 Unpromoted, VIP on the primary.
# NEEDS PROMOTION (the agent's promote action) for the last checks.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
needs_promotion
require_agent
cluster_up
pg_ready
t0=$(now)
# the example names ocf:pgha:pgsqlms, the default instance's VIP and Debian 12's PostgreSQL 15 paths; PGHA_AGENT may select
# PAF for a comparison run, and the nodes' PostgreSQL follows their OS (lib/node-os.sh)
h exec node1 bash -c "sed -e 's/ocf:pgha:pgsqlms/$AGENT/' -e 's/10\.200\.0\.10/$VIP/' -e 's#/usr/lib/postgresql/15/bin#$PGBIN#' \
    -e 's#/var/lib/postgresql/15/data#$PGDATA#' '$PGHA_CLUSTER_ROOT/crm-examples/crmsh-3nodes-vip.crm' > /tmp/example.crm &&
  crm configure load update /tmp/example.crm" >/dev/null || fatal "crm configure load update crmsh-3nodes-vip.crm"
ok "crmsh-3nodes-vip.crm loaded ($(since "$t0") s)"
check_examples_config "loading the crmsh example"
x=$CIB_CONFIG
check "a promotable clone with notify=true, no <master>" xpath_ok "$x" \
  "//clone[@id='pgsqld-clone']/meta_attributes[nvpair[@name='promotable' and @value='true'] and nvpair[@name='notify' and @value='true']] and not(//master)"
check "ops: start 60s, stop 60s, promote 30s, demote 120s, notify 60s, monitors 15s/16s" xpath_ok "$x" \
  "//primitive[@id='pgsqld']/operations[op[@name='start' and @timeout='60s'] and op[@name='stop' and @timeout='60s'] and op[@name='promote' and @timeout='30s'] and op[@name='demote' and @timeout='120s'] and op[@name='notify' and @timeout='60s'] and op[@name='monitor' and @interval='15s' and @role='Promoted'] and op[@name='monitor' and @interval='16s' and @role='Unpromoted']]"
require "1 Promoted + 2 Unpromoted" wait_roles 1 2
p=$(promoted_node)
check_vip_and_standbys "$p"
scenario_end
