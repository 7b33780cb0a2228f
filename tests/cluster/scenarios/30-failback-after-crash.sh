#!/bin/bash
# 30-failback-after-crash: a crashed former primary comes back by itself. The primary P
# commits rows its standbys never get (its walsenders are stopped with SIGSTOP first, so the
# standbys keep their promotion scores), then its node loses power: fenced, a standby N is
# promoted, rows are written on N. P's node is then booted with nothing done by hand: the
# agent's start sees a crashed primary, rewinds it (rewind_fallback=false; rewind_engine from
# PGHA_REWIND_ENGINE, default auto: the native engine, checked in the agent's log; pg_rewind
# when set to pg_rewind) against N (the current primary, from the
# notification variables) and starts it as a standby. Checked: P streams from N, every row
# committed on N is on P, P's rows from after the fork are gone from its data but kept in the
# forensics folder (rewind_keep_dir, default <datadir>/../pgha-rewind/<node>-<time>/, with
# the WAL pg_waldump shows them in). The time from boot to streaming is printed.
# NEEDS THE REWIND (the agent's start on a crashed former primary).
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
say "this scenario needs the agent's rewind of a crashed former primary"
pgha_cluster_up_eligible
# A rewind, not its fallback: on a database this small a re-clone is cheaper (pg_rewind copies
# every WAL segment the primary keeps), and the agent would re-clone (scenario 31 and the demo
# run with the default). rewind_fallback and rewind_engine are reloadable: no restart.
engine=${PGHA_REWIND_ENGINE:-auto}
quiet h exec node1 pcs resource update "$RSC" rewind_fallback=false rewind_engine="$engine" \
  || fatal "pcs resource update $RSC rewind_fallback=false rewind_engine=$engine"
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1)
rows_before_fork "$s" t30

# the fork: P's walsenders stopped, P commits 10 rows nobody else receives
pids=$(psql_on "$p" "select pid from pg_stat_replication" | tr '\n' ' ')
# shellcheck disable=SC2086 # one argument per pid
h exec "$p" kill -STOP $pids || fatal "SIGSTOP the walsenders of $p ($pids)"
psql_on "$p" "insert into t30 select -i, 'fork: only on the old primary' from generate_series(1, 10) i" \
  || fatal "write the fork rows on $p"
fork_lsn=$(current_lsn "$p")
check "the standbys did not get the 10 fork rows" \
  bash -c "for n in $STANDBYS; do [ \"\$('$H' exec \$n runuser -u postgres -- psql -h /run/postgresql -X -At -c 'select count(*) from t30 where v < 0')\" = 0 ] || exit 1; done"
t0=$(now)
h crash "$p"
say "power cut of $p (its WAL ends at $fork_lsn)"
check "$p fenced and seen offline" h wait-offline "$p"
require "a standby promoted" h wait-mon "new primary" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and $(xp_roles 1 1)" 45
n=$(promoted_node); o=$(other_nodes "$n" | tr ' ' '\n' | grep -vx "$p")
say "crash of $p -> $n promoted: $(since "$t0") s"
sql_vip "$o" "insert into t30 select i, 'after the failover' from generate_series(1001, 1500) i" \
  || ko "write on the new primary $n"

t0=$(now)
h boot "$p"
say "$p booted (its stack starts; no manual step)"
require "$p back as a standby: 1 Promoted ($n) + 2 Unpromoted" h wait-mon "$p Unpromoted, $n Promoted" \
  "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$p'] and //resource[@id='$RSC' and @role='Promoted']/node[@name='$n'] and $(xp_roles 1 2)" 50
check "$p streams from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
say "boot of $p -> streaming from $n: $(since "$t0") s"
show_agent_log "$p" "bringing|Rewound|Recloned|discarded|rewind" 6
check "$p was rewound by the agent's start" in_agent_log "$p" "bringing .* in line with the primary $n"
if [ "$engine" = pg_rewind ]; then
  check "$p was rewound by pg_rewind" in_agent_log "$p" "pg_rewind done in"
else
  show_agent_log "$p" "engine: |native rewind" 3
  check "$p was rewound by the native engine ($engine)" in_agent_log "$p" "native rewind: .* fetched"
fi
check_rejoined "$p" "$n" "$o" t30 "the 10 fork rows"

check_kept_folder "$p"
dir=$KEPT
if [ -n "$dir" ]; then
  say "kept in $dir: $(h exec "$p" bash -c "cd $dir && ls -m && du -sh . | cut -f1")"
  # the fork rows: 10 INSERTs into t30 past the point where the new timeline forked off
  fork_from=$(h exec "$p" sed -n 's/.*fork point[^0-9A-F]*\([0-9A-F]*\/[0-9A-F]*\).*/\1/Ip' "$dir/README" | head -1)
  tl=$(h exec "$p" bash -c "ls $dir/pg_wal | grep -E '^[0-9A-F]{24}\$' | tail -1 | cut -c1-8")
  say "fork point from the README: ${fork_from:-?}, old primary's timeline: $((16#${tl:-1}))"
  ins=$(h exec "$p" bash -c "$PGBIN/pg_waldump -p $dir/pg_wal -t $((16#${tl:-1})) ${fork_from:+-s $fork_from} -e $fork_lsn 2>&1 | grep -c 'Heap .*INSERT'" || true)
  check "pg_waldump finds the 10 fork INSERTs in the kept WAL (got ${ins:-0})" test "${ins:-0}" -ge 10
fi
scenario_end
