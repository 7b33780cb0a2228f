#!/bin/bash
# 12-node-standby: Pacemaker's node standby mode. A standby node in standby mode: its
# instance is stopped cleanly ("shut down in recovery"), the others keep running; back
# (unstandby): it runs and streams again. Then the primary's node in standby mode: the
# instance is demoted and stopped, another node is promoted and the VIP follows; back: the
# old primary rejoins as a streaming standby.
# NEEDS PROMOTION (the agent's promote and demote actions).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f2)

h exec node1 pcs node standby "$s"
check "$s in standby: its instance stopped, 1 Promoted + 1 Unpromoted" h wait-mon "$s standby" \
  "//node[@name='$s' and @standby='true'] and not(//resource[@id='$RSC']/node[@name='$s']) and $(xp_roles 1 1)" 40
check "$s shut down cleanly (shut down in recovery)" \
  test "$(h pg-state "$s")" = "shut down in recovery"
h exec node1 pcs node unstandby "$s"
check "$s back: 1 Promoted + 2 Unpromoted" wait_roles 1 2 40
check "$s streams again" wait_streaming "$p" "$(other_nodes "$p")" 30

# a standby can only be promoted once the primary's monitor gave it a positive score
# shellcheck disable=SC2046 # one argument per node
require "standbys $(other_nodes "$p") have positive promotion scores" wait_scores_positive $(other_nodes "$p")
t0=$(now)
h exec node1 pcs node standby "$p"
require "primary's node $p in standby: another node promoted" h wait-mon "new primary" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and not(//resource[@id='$RSC']/node[@name='$p']) and $(xp_roles 1 1)" 50
n=$(promoted_node)
say "switchover $p -> $n by standby mode: $(since "$t0") s"
check "VIP followed to $n" h wait-mon "VIP on $n" "$(xp_vip_on "$n")"
# demote = clean stop + start as a standby, then the stop: "shut down in recovery"
check "old primary $p shut down cleanly" \
  test "$(h pg-state "$p")" = "shut down in recovery"
h exec node1 pcs node unstandby "$p"
check "$p back as a standby: 1 Promoted + 2 Unpromoted, $n still primary" h wait-mon "$p back" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name='$n'] and $(xp_roles 1 2)" 40
check "$p streams from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
scenario_end
