#!/bin/bash
# 02-examples-pcs: every pcs example of crm-examples/ applied to a live cluster, each followed
# by crm_verify -L: pcs-3nodes-vip.sh (promotable clone + VIP + constraints),
# pcs-switchover.sh (move --promoted + clear), pcs-maintenance.sh (on/off), pcs-debug.sh; the
# agent's meta-data against the node's pcs schema (pcs 0.11 or 0.12) and `pcs resource describe`.
# NEEDS PROMOTION (the agent's promote action): 1 Promoted + 2 Unpromoted, switchover.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
EX=$PGHA_CLUSTER_ROOT/crm-examples

scenario_begin
pgha_cluster_up
p=$PRIMARY
check_examples_config pcs-3nodes-vip.sh
x=$CIB_CONFIG
check "pgsqld-clone is promotable with notify=true" xpath_ok "$x" \
  "//clone[@id='pgsqld-clone']/meta_attributes[nvpair[@name='promotable' and @value='true'] and nvpair[@name='notify' and @value='true']]"
check "monitor ops: 15s Promoted / 16s Unpromoted" xpath_ok "$x" \
  "//primitive[@id='pgsqld']/operations[op[@name='monitor' and @interval='15s' and @role='Promoted'] and op[@name='monitor' and @interval='16s' and @role='Unpromoted']]"

check_vip_and_standbys "$p"

# debug runs of the monitor: rc 8 on the primary, 0 on a standby
s=$(other_nodes "$p" | cut -d' ' -f1)
rc=0; h exec "$p" bash "$EX/pcs-debug.sh" monitor >/dev/null 2>&1 || rc=$?
check "pcs-debug.sh monitor on the primary $p: rc 8 (got $rc)" test "$rc" = 8
rc=0; h exec "$s" bash "$EX/pcs-debug.sh" monitor >/dev/null 2>&1 || rc=$?
check "pcs-debug.sh monitor on the standby $s: rc 0 (got $rc)" test "$rc" = 0
# maintenance on/off
check "pcs-maintenance.sh on" quiet h exec node1 bash "$EX/pcs-maintenance.sh" on
check "cluster in maintenance, resources unmanaged" h wait-mon "maintenance" \
  "//cluster_options[@maintenance-mode='true'] and //resource[@id='$RSC' and @managed='false']" 20
check "crm_verify -L in maintenance" h exec node1 crm_verify -L
check "pcs-maintenance.sh off" quiet h exec node1 bash "$EX/pcs-maintenance.sh" off
check "managed again, roles kept" h wait-mon "managed, 1+2" \
  "//cluster_options[@maintenance-mode='false'] and //resource[@id='$RSC' and @managed='true'] and //resource[@id='$RSC' and @role='Promoted']/node[@name='$p'] and $(xp_roles 1 2)" 30

# (last: the standbys need the primary's monitor to give them a promotion score first)
# switchover to a standby (once the primary's monitor gave it a positive promotion score)
# shellcheck disable=SC2046 # one argument per node
require "standbys $(other_nodes "$p") have positive promotion scores" wait_scores_positive $(other_nodes "$p")
target=$(other_nodes "$p" | cut -d' ' -f2); t0=$(now)
check "pcs-switchover.sh $target" quiet h exec node1 env PGHA_SWITCHOVER_WAIT=40 bash "$EX/pcs-switchover.sh" "$target"
check "$target is the primary after the switchover" h wait-mon "$target Promoted" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$target'] and $(xp_roles 1 2)" 20
say "switchover $p -> $target: $(since "$t0") s"
check "VIP followed to $target" h wait-mon "VIP on $target" "$(xp_vip_on "$target")"
check "old primary $p streams from $target" wait_streaming "$target" "$(other_nodes "$target")"
check "no move constraint left" bash -c "! '$H' exec node1 cibadmin -Q -o constraints | grep -q cli-"
check "crm_verify -L after pcs-switchover.sh" h exec node1 crm_verify -L

check "crm_verify -L at the end" h exec node1 crm_verify -L

# the agent's meta-data as this node's Pacemaker and pcs read it (pcs 0.11 on Debian 12, 0.12
# on Debian 13: each its own OCF 1.1 schema)
case $AGENT in ocf:pgha:*)
  check "meta-data (crm_resource --show-metadata) validates against this pcs's ocf-1.1.rng" \
    h exec node1 bash -c "crm_resource --show-metadata $AGENT | xmllint --noout --relaxng /usr/share/pcs/data/ocf-1.1.rng -"
  check "pcs resource describe $AGENT" quiet h exec node1 pcs resource describe "$AGENT" ;;
esac
scenario_end
