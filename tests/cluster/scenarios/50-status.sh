#!/bin/bash
# 50-status: `pgha status --json` run on every live node, parsed, matches the cluster in each
# state: healthy (1 primary, 2 streaming standbys, the VIP, no flag, no source missing, also
# as a member of haclient); a standby lagging (its replay paused with pg_wal_replay_pause():
# lag in bytes on the primary's view and its own, the replay-paused flag); the primary's node
# crashed and fenced (run from the others while it is off: offline, Stopped, the failover
# dated from the fence history); the node booted and brought back by the agent (its kept
# folder, the last rewind); a rewind marker present (flag and event). Timings printed.
# NEEDS PROMOTION (the failover) and the agent's rejoin of a crashed former primary.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
pgha_cluster_up_eligible
p=$PRIMARY; s=$(echo "$STANDBYS" | cut -d' ' -f1); o=$(echo "$STANDBYS" | cut -d' ' -f2)

# --- healthy
t0=$(now)
for node in node1 node2 node3; do
  status_json "$node" || ko "pgha status --json on $node exited non-zero"
  status_is "$node" "healthy: 3 nodes online, $p Promoted, 2 Unpromoted, the VIP on $p, nothing missing" \
    "len(n) == 3 and all(x['pacemaker_state'] == 'online' for x in n.values())
     and n['$p']['role'] == 'Promoted' and [x['role'] for x in n.values()].count('Unpromoted') == 2
     and d['vip']['node'] == '$p' and d['vip']['address'] == '$VIP' and d['unavailable'] == []
     and d['schema_version'] == 1 and d['resource'] == '$RSC'"
  status_is "$node" "healthy: no flag on any node, the standbys' scores positive" \
    "all(x['flags'] == [] for x in n.values()) and all(n[x]['promotion_score'] > 0 for x in '$STANDBYS'.split())"
done
status_is "$p" "healthy: the primary's own line and both standbys streaming, nothing to replay" \
  "me['postgres_role'] == 'primary' and me['current_lsn'] and me['timeline'] >= 1
   and all(n[x]['replication_state'] == 'streaming' and n[x]['lag_bytes'] == 0 for x in '$STANDBYS'.split())"
status_is "$s" "healthy: a standby's own line, received and replayed" \
  "me['postgres_role'] == 'standby' and me['received_lsn'] and me['replayed_lsn'] and me['replication_state'] == 'streaming'"
gid=$(h exec "$s" getent group haclient | cut -d: -f3)
status_json "$s" setpriv --reuid=65534 --regid=65534 --groups="$gid" \
  || ko "pgha status --json as a member of haclient exited non-zero"
status_is "$s" "as a member of haclient: the cluster's view" \
  "len(n) == 3 and n['$p']['role'] == 'Promoted' and d['vip']['node'] == '$p'"
say "healthy: checked on 3 nodes in $(since "$t0") s"

# --- a standby lagging: replay paused, rows on the primary
# a commit replayed first: the standby's lag in seconds is the age of its last replayed one
psql_on "$p" "create table t50(v text)" || fatal "create a table on $p"
wait_replayed "$s" "$(current_lsn "$p")" || ko "$s replayed the table's creation"
psql_on "$s" "select pg_wal_replay_pause()" >/dev/null || fatal "pg_wal_replay_pause() on $s"
sleep 1
psql_on "$p" "insert into t50 select repeat('x', 100) from generate_series(1, 20000)" || fatal "write on $p"
wait_replayed "$o" "$(current_lsn "$p")" || ko "$o replayed the rows"
status_json "$p"; status_json "$s"
status_is "$p" "lagging: $s has WAL to replay (bytes), $o has none" \
  "n['$s']['lag_bytes'] > 1000000 and n['$o']['lag_bytes'] == 0 and n['$s']['replication_state'] == 'streaming'"
status_is "$s" "lagging: its own view, received ahead of replayed, lag in seconds, replay-paused" \
  "me['lag_bytes'] > 1000000 and me['lag_seconds'] > 0 and 'replay-paused' in me['flags']"
psql_on "$s" "select pg_wal_replay_resume()" >/dev/null || ko "pg_wal_replay_resume() on $s"
check "$s caught up" wait_replayed "$s" "$(current_lsn "$p")"

# --- the primary's node crashed and fenced: asked from the others while it is off
t0=$(now)
h crash "$p"
check "$p fenced and seen offline" h wait-offline "$p"
require "a standby promoted" h wait-mon "new primary" \
  "//resource[@id='$RSC' and @role='Promoted']/node[@name!='$p'] and $(xp_roles 1 1)" 45
n=$(promoted_node)
say "crash of $p -> $n promoted: $(since "$t0") s"
check "the VIP on $n" h wait-mon "VIP on $n" "$(xp_vip_on "$n")"
t1=$(now)
for node in $STANDBYS; do
  status_json "$node" || ko "pgha status --json on $node while $p is off"
  status_is "$node" "fenced: $p offline and Stopped, $n Promoted, the VIP on $n" \
    "n['$p']['pacemaker_state'] == 'offline' and n['$p']['role'] == 'Stopped'
     and n['$n']['role'] == 'Promoted' and d['vip']['node'] == '$n'"
  status_is "$node" "fenced: the failover to $n dated, read from the fence history" \
    "d['events']['last_failover']['node'] == '$n' and '$p was fenced' in d['events']['last_failover']['detail']"
done
status_is "$n" "fenced: the new primary's own line" "me['postgres_role'] == 'primary' and me['timeline'] >= 2"
say "status while $p is off: 2 nodes in $(since "$t1") s"

# --- the node back: the agent rewinds or re-clones it, keeps what it discarded
t0=$(now)
h boot "$p"
seen_marker=0
until xpath_ok "$(mon_on "$n")" "//resource[@id='$RSC' and @role='Unpromoted']/node[@name='$p'] and $(xp_roles 1 2)"; do
  if status_json "$p" 2>/dev/null && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["nodes"] and "rewind-marker" in {x["name"]: x for x in d["nodes"]}.get(d["local_node"], {}).get("flags", []) else 1)' "$STATUS_DIR/$p.json" 2>/dev/null; then
    seen_marker=1
  fi
  [ "$(since "$t0" | cut -d. -f1)" -lt 60 ] || { ko "$p back as a standby within 60 s"; break; }
  sleep 0.3
done
say "boot of $p -> Unpromoted: $(since "$t0") s (rewind marker seen by pgha status while it ran: $seen_marker)"
check "$p streams from $n" wait_streaming "$n" "$(other_nodes "$n")" 30
status_json "$p"
status_is "$p" "back: its kept folder (kept-wal) and the last rewind, from this node's files" \
  "'kept-wal' in me['flags'] and me['kept_folders'] and d['events']['last_rewind']['node'] == '$p'
   and me['postgres_role'] == 'standby' and me['replication_state'] == 'streaming'"

# --- a rewind marker present (as a rewind killed half-way leaves it)
marker=$PGDATA.pgha-rewind
h exec "$o" bash -c "printf 'operation=pg_rewind\nstarted=2026-01-02T03:04:05Z\nnode=$o\n' > $marker" \
  || fatal "write a marker on $o"
status_json "$o"
status_is "$o" "marker: the rewind-marker flag, the rewind in progress dated from it" \
  "'rewind-marker' in me['flags'] and d['events']['last_rewind']['time'] == '2026-01-02T03:04:05Z'
   and 'pg_rewind in progress' in d['events']['last_rewind']['detail']"
h exec "$o" rm -f "$marker"
status_json "$o"
status_is "$o" "marker removed: no flag" "'rewind-marker' not in me['flags']"
scenario_end
