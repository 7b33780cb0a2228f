#!/bin/bash
# 31-failback-after-isolation: a primary that kept writing while isolated comes back by itself
# once the network heals, through a demote instead of a crash.
# With fencing on, the quorate side powers an isolated node off within seconds (01 checks
# that): it comes back through a boot, which is scenario 30. The demote path only exists
# without fencing, so this scenario runs with stonith-enabled=false (lab only; PAF and pgha
# need fencing in production) and no-quorum-policy=stop: the primary P's network cable is
# pulled, P commits rows nobody receives (its standbys are cut off), P's partition has no
# quorum so Pacemaker demotes and stops P (demote = clean stop + start as a standby: the
# instance ends "shut down in recovery", ahead of the fork), while the quorate side promotes
# a standby N, which gets rows of its own. Healed: Pacemaker starts P's instance again, the
# agent's start sees it diverged from N and brings it back in line (rewind or re-clone,
# whichever copies less: the default), and P streams from N; the rows P wrote alone are gone
# from its data and kept in the forensics folder. Timings printed.
# NEEDS THE REWIND (the agent's start on a diverged former primary).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
say "this scenario needs the agent's rewind of a diverged former primary"
pgha_cluster_up_eligible
quiet h exec node1 pcs property set "$(fencing_option enabled)=false" || fatal "$(fencing_option enabled)=false"
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1)
# A primary's shutdown waits until its WAL senders delivered the shutdown checkpoint: with
# the standbys unreachable, until wal_sender_timeout (60 s by default). 5 s keeps the demote
# of the isolated primary short (PAF's demote waits the same).
{ psql_on "$p" "alter system set wal_sender_timeout = '5s'" && psql_on "$p" "select pg_reload_conf()" >/dev/null; } \
  || fatal "wal_sender_timeout = 5s on $p"
rows_before_fork "$s" t31

t0=$(now)
h isolate "$p"
# P still runs as a primary for a few seconds (until its partition sees it lost quorum)
fork=0
if psql_on "$p" "insert into t31 select -i, 'fork: written on the isolated primary' from generate_series(1, 10) i"; then fork=10; fi
say "$p isolated; it committed $fork rows alone"
check "$p's partition lost quorum: its instance demoted and stopped, the VIP too (as $p sees it)" \
  wait_mon_on "$p" "$RSC and the VIP stopped on $p" \
  "//current_dc[@with_quorum='false'] and not(//resource[@id='$RSC']/node[@name='$p']) and not(//resource[@id='pgsql-vip']/node[@name='$p'])" 30
say "$p stopped its instance ($(h pg-state "$p")) and the VIP after $(since "$t0") s"
require "the quorate side promoted a standby" wait_mon_on "$s" "a primary on the quorate side" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and $(xp_roles 1 1)" 45
n=$(promoted_on "$s"); o=$(other_nodes "$n" | tr ' ' '\n' | grep -vx "$p")
say "isolation of $p -> $n promoted: $(since "$t0") s"
sql_vip "$o" "insert into t31 select i, 'on the new primary' from generate_series(1001, 1500) i" \
  || ko "write on the new primary $n"

t0=$(now)
h heal "$p"
say "$p healed (network back; nothing done by hand)"
require "$p back as a standby: 1 Promoted ($n) + 2 Unpromoted" wait_mon_on "$o" "$p Unpromoted, $n Promoted" \
  "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$p'] and //resource[@id='$RSC' and @role='Promoted']/node[@name='$n'] and $(xp_roles 1 2)" 50
# The healed network may deliver P's last WAL, queued in its kernel, to the other standby
# after N's promotion: that standby replays past the fork and can never stream from N. Its
# monitor (every 16 s) sees it, and start brings it back in line: within 60 s.
check "$p streams from $n" wait_streaming "$n" "$(other_nodes "$n")" 60
say "heal of $p -> streaming from $n: $(since "$t0") s"
# issue 10: the rejoined node gets its score at the primary's next monitor (interval 15 s),
# not when the primary's memory of what it wrote expires (300 s)
t1=$(now)
check "$p has a positive promotion score within one monitor interval of streaming" \
  wait_mon_on "$o" "a positive promotion score on $p" \
  "//node_attributes/node[@name='$p']/attribute[@name='master-$RSC' and number(@value) > 0]" 20
say "streaming -> promotion score on $p: $(since "$t1") s"
show_agent_log "$p" "bringing|Rewound|Recloned|diverged" 4
if [ "$fork" = 10 ]; then
  check "$p was brought in line by the agent's start" in_agent_log "$p" "bringing .* in line with the primary $n"
fi
check_rejoined "$p" "$n" "$o" t31 "the rows $p wrote alone"
if [ "$fork" = 10 ]; then
  check_kept_folder "$p"
fi
failures=$(mon_on "$o" | xmllint --xpath "//failures/failure[@node='$p']" - 2>/dev/null \
  | sed -n 's/.*op_key="\([^"]*\)" node="\([^"]*\)" exitstatus="\([^"]*\)".*/\1 on \2: \3/p' | tr '\n' ';' || true)
say "failed actions on $p: ${failures:-none}"
scenario_end
