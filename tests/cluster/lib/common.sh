#!/bin/bash
# shellcheck disable=SC2034 # (whole file) variables meant for the scenarios that source it
# common.sh - sourced by every tests/cluster/scenarios/NN-name.sh (and demo.sh).
#
# A scenario: `source lib/common.sh; scenario_begin; pgha_cluster_up; ...checks...; scenario_end`
# (pgha_cluster_up = cluster_up + pg_ready + create_resources_pcs + 1 Promoted + 2 streaming).
# Each check prints PASS/FAIL; the scenario exits non-zero if any check failed. Whatever
# happens (failure, Ctrl-C, timeout), the EXIT trap keeps the nodes' logs in
# artifacts/<scenario>-<time>/ when something failed, then takes the cluster down.
#
# Settings (environment): PGHA_AGENT=ocf:pgha:pgsqlms (ocf:heartbeat:pgsqlms = PAF)
#   PGHA_KEEP_ARTIFACTS=1 keep logs even when the scenario passed. Harness settings: harness.sh.
#   A script sourcing this may set ARTIFACTS_DIR (where the logs go; the soak does).
#   The nodes' OS and PostgreSQL major (PGBIN, PGHOME, PGDATA): lib/node-os.sh.

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$CLUSTER_DIR/../.." && pwd)
H=$CLUSTER_DIR/harness.sh
export PGHA_CLUSTER_ROOT=${PGHA_CLUSTER_ROOT:-/var/tmp/pgha-cluster}
AGENT=${PGHA_AGENT:-ocf:pgha:pgsqlms}
NET=${PGHA_NET:-10.200.0}
VIP=$NET.10
RSC=pgsqld               # the clone's primitive (crm_mon reports instances under this id)
CLONE=pgsqld-clone
# shellcheck source=node-os.sh
source "$CLUSTER_DIR/lib/node-os.sh"
SCENARIO=$(basename "${0%.sh}")
PASS=0
FAIL=0
T_BEGIN=$(date +%s.%N)
CLUSTER_STARTED=0

h() { "$H" "$@"; }
# quiet CMD...: run CMD, show its output only if it fails (pcs is chatty)
quiet() { local out rc=0; out=$("$@" 2>&1) || rc=$?; [ "$rc" = 0 ] || printf '%s\n' "$out" >&2; return "$rc"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[$SCENARIO +$(since "$T_BEGIN")s] $*"; }
ok() { PASS=$((PASS + 1)); say "PASS: $*"; }
ko() { FAIL=$((FAIL + 1)); say "FAIL: $*"; }
check() { local desc=$1; shift; if "$@"; then ok "$desc"; else ko "$desc"; fi; }
# require: a check the rest of the scenario depends on (stops the scenario when it fails)
require() { local desc=$1; shift; if "$@"; then ok "$desc"; else fatal "$desc"; fi; }
# fatal: the scenario cannot go on (its remaining checks would only repeat the failure)
fatal() { ko "$*"; exit 1; }

on_exit() {            # [RC]: the exit code (default $?: when it is the trap itself)
  local rc=${1:-$?} dest t0
  trap - EXIT INT TERM
  if [ "$CLUSTER_STARTED" = 1 ]; then
    if [ "$rc" != 0 ] || [ "$FAIL" -gt 0 ] || [ "${PGHA_KEEP_ARTIFACTS:-0}" = 1 ]; then
      dest=${ARTIFACTS_DIR:-$REPO/artifacts/$SCENARIO-$(date +%Y%m%d-%H%M%S)}
      h collect "$dest" >/dev/null 2>&1 || true
      say "logs of every node kept in ${dest#"$REPO"/}"
    fi
    t0=$(now)
    h down || say "WARNING: harness down failed"
    say "cluster down ($(since "$t0") s)"
  fi
  if [ "$rc" != 0 ] && [ "$FAIL" = 0 ]; then FAIL=1; say "FAIL: aborted (exit code $rc)"; fi
  say "$PASS checks passed, $FAIL failed ($(since "$T_BEGIN") s)"
  [ "$FAIL" = 0 ] || exit 1
  exit 0
}

scenario_begin() {
  trap on_exit EXIT
  trap 'exit 130' INT TERM
  say "agent: $AGENT"
}
scenario_end() { exit 0; }   # the EXIT trap reports and cleans up

# A scenario that needs the agent's promotion says so; it FAILS (never skips) without it.
needs_promotion() { say "this scenario needs the agent's promote action"; }

# Fails early and clearly if the agent under test is not there.
require_agent() {
  case $AGENT in
    ocf:pgha:*) [ -f "${PGHA_DEB:-$REPO/target/debian/current.deb}" ] \
                  || fatal "${PGHA_DEB:-target/debian/current.deb} is not built (make deb)" ;;
    ocf:heartbeat:pgsqlms) [ -x /usr/lib/ocf/resource.d/heartbeat/pgsqlms ] \
                             || fatal "PAF is not installed (apt-get install resource-agents-paf)" ;;
  esac
}

cluster_up() {
  local t0; t0=$(now)
  if h status >/dev/null; then fatal "a previous cluster is still up: run $H down"; fi
  CLUSTER_STARTED=1
  h up || fatal "cluster up"
  ok "cluster up: $(h mon | xmllint --xpath 'count(//node[@online="true"])' -) nodes online, fencing on ($(since "$t0") s)"
}

# PostgreSQL: primary on node1 + streaming standbys, then handed over (clean shutdowns).
pg_ready() {
  local t0; t0=$(now)
  h pg-init || fatal "pg-init: primary + streaming standbys"
  h pg-handover || fatal "pg-handover: clean shutdowns"
  ok "PostgreSQL primary + $(( ${PGHA_NODES:-3} - 1 )) streaming standbys built, shut down cleanly ($(since "$t0") s)"
}

# The resources, exactly as the user example does it.
create_resources_pcs() {
  local t0; t0=$(now)
  require_agent
  local out
  out=$(h exec node1 env PGHA_AGENT="$AGENT" PGHA_VIP="$VIP" PGBIN="$PGBIN" PGDATA="$PGDATA" \
    bash "$PGHA_CLUSTER_ROOT/crm-examples/pcs-3nodes-vip.sh" 2>&1) \
    || { printf '%s\n' "$out" >&2; fatal "crm-examples/pcs-3nodes-vip.sh"; }
  ok "resources created by crm-examples/pcs-3nodes-vip.sh ($(since "$t0") s)"
  # pcs 0.12 warns about syntax it will drop (bare scores, legacy role names)
  if grep -i deprecat <<<"$out" >&2; then ko "pcs-3nodes-vip.sh uses syntax this pcs deprecates"; fi
}

# XPath pieces on crm_mon --output-as=xml
xp_role_count() { echo "count(//resource[@id='$RSC' and @role='$1' and @failed='false'])"; }
xp_roles() { echo "$(xp_role_count Promoted)=$1 and $(xp_role_count Unpromoted)=$2"; }
xp_vip_on() { echo "//resource[@id='pgsql-vip' and @role='Started']/node[@name='$1']"; }

wait_roles() {         # wait_roles NPROMOTED NUNPROMOTED [TIMEOUT]
  h wait-mon "$1 Promoted + $2 Unpromoted $RSC" "$(xp_roles "$1" "$2")" "${3:-}"
}
promoted_node() { h promoted "$RSC"; }

psql_on() {            # psql_on NODE SQL: local socket, unaligned, quiet
  h exec "$1" runuser -u postgres -- psql -h /run/postgresql -X -q -At -c "$2"
}
streaming_names() {    # application_names streaming from NODE's instance, sorted, one line
  psql_on "$1" "select application_name from pg_stat_replication where state='streaming' order by 1" \
    2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}
wait_streaming() {     # wait_streaming PRIMARY "node2 node3" [TIMEOUT]
  local deadline=$(( $(date +%s) + ${3:-60} )) got=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    got=$(streaming_names "$1") || got=""
    [ "$got" = "$2" ] && return 0
    sleep 0.5
  done
  say "streaming from $1: '$got', wanted '$2'"; return 1
}
other_nodes() { local n; for n in node1 node2 node3; do [ "$n" = "$1" ] || echo "$n"; done | tr '\n' ' ' | sed 's/ $//'; }

# fenced NODE [BEFORE]: the fence daemon has powered NODE off more than BEFORE times
fence_count() {
  local c; c=$(grep -c "off $1 -> rc=0" "$PGHA_CLUSTER_ROOT/fence/daemon.log" 2>/dev/null) || true
  echo "${c:-0}"
}
fenced() { [ "$(fence_count "$1")" -gt "${2:-0}" ]; }

show_mon() { h exec "${1:-node1}" crm_mon -1 -r 2>/dev/null | sed -n '/Node List/,$p'; }

# Dump the last agent log lines of each node (for a failure's context in the test output).
agent_log_tail() {
  local nd
  for nd in "$PGHA_CLUSTER_ROOT"/nodes/*; do
    echo "--- ${nd##*/} agents.log (last ${1:-10})"; tail -n "${1:-10}" "$nd/agents.log" 2>/dev/null
  done
}

# xpath_ok XML XPATH: boolean(XPATH) on an XML document (a CIB, a crm_mon output)
xpath_ok() { [ "$(xmllint --xpath "boolean($2)" - <<<"$1" 2>/dev/null)" = true ]; }

# wait_scores_positive NODE... [--timeout T]: the primary's monitor has given these standbys a
# positive promotion score (master-pgsqld): only then can one of them be promoted. Right after
# a promotion the standbys are not connected yet and get -1000 until the next monitor (15 s).
wait_scores_positive() {
  local xp="true()" n
  for n in "$@"; do
    xp="$xp and //node_attributes/node[@name='$n']/attribute[@name='master-$RSC' and number(@value) > 0]"
  done
  h wait-mon "positive promotion scores on $*" "$xp" 40
}

# ---------------------------------------------------------------- pgha scenarios (2x, 3x)

# pgha_cluster_up: the preamble of every scenario that runs pgha's resources: a
# fresh 3-node cluster with fencing, PostgreSQL built and handed over, the resources created
# by crm-examples/pcs-3nodes-vip.sh, 1 Promoted + 2 Unpromoted, both standbys streaming.
# Sets PRIMARY (the Promoted node) and STANDBYS ("nodeX nodeY").
# pgha_cluster_up_eligible: the same, then waits until the primary's monitor gave both
# standbys a positive promotion score (needed before a failover or a switchover: right after
# a promotion they have -1000 until the primary's next monitor, up to 15 s later).
PRIMARY="" STANDBYS=""
pgha_cluster_up() {
  local t0
  needs_promotion
  require_agent
  cluster_up
  pg_ready
  create_resources_pcs
  t0=$(now)
  require "1 Promoted + 2 Unpromoted" wait_roles 1 2
  PRIMARY=$(promoted_node); STANDBYS=$(other_nodes "$PRIMARY")
  say "resources created -> roles settled, $PRIMARY primary: $(since "$t0") s"
  require "standbys $STANDBYS streaming from $PRIMARY" wait_streaming "$PRIMARY" "$STANDBYS" 30
}
pgha_cluster_up_eligible() {
  pgha_cluster_up
  # shellcheck disable=SC2086 # one argument per node
  require "standbys $STANDBYS have positive promotion scores" wait_scores_positive $STANDBYS
}

# sql_vip FROM SQL: psql through the VIP, run from node FROM (unaligned, quiet)
sql_vip() { h exec "$1" runuser -u postgres -- psql -h "$VIP" -X -q -At -v ON_ERROR_STOP=1 -c "$2"; }
# count_rows NODE TABLE: rows of TABLE on NODE's local instance ("" if it cannot be read)
count_rows() { psql_on "$1" "select count(*) from $2" 2>/dev/null || true; }
# sod EPOCH: seconds of the day (UTC) of an epoch time, as pacemaker.log's clock shows it
sod() { date -u -d "@$1" +%H:%M:%S.%N | awk -F: '{ printf "%.3f\n", $1 * 3600 + $2 * 60 + $3 }'; }
# pacemaker_log_time EPOCH REGEX: seconds of the day of the first pacemaker.log line (any
# node) at or after EPOCH matching REGEX (awk ERE); empty if none
pacemaker_log_time() {
  cat "$PGHA_CLUSTER_ROOT"/nodes/*/var-log-pacemaker/pacemaker.log 2>/dev/null \
    | awk -v t0="$(sod "$1")" -v re="$2" '
        { split($3, a, ":"); t = a[1] * 3600 + a[2] * 60 + a[3]
          if (t + 0.0005 < t0 || $0 !~ re) next
          if (!f || t < best) { best = t; f = 1 } }
        END { if (f) printf "%.3f\n", best }'
}
agent_log() { echo "$PGHA_CLUSTER_ROOT/nodes/$1/agents.log"; }
# in_agent_log NODE REGEX: the agent logged a line matching REGEX (grep -E) on NODE
in_agent_log() { grep -qE "$2" "$(agent_log "$1")" 2>/dev/null; }
# show_agent_log NODE REGEX: print the matching lines (for the test output)
show_agent_log() { grep -E "$2" "$(agent_log "$1")" 2>/dev/null | sed "s/^/    $1: /" | tail -n "${3:-6}" || true; }
current_lsn() { psql_on "$1" "select pg_current_wal_lsn()"; }
# wait_replayed NODE LSN [TIMEOUT]: NODE's standby has replayed up to LSN
wait_replayed() {
  local deadline=$(( $(date +%s) + ${3:-20} )) got=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    got=$(psql_on "$1" "select pg_last_wal_replay_lsn() >= '$2'::pg_lsn" 2>/dev/null) || got=""
    [ "$got" = t ] && return 0
    sleep 0.2
  done
  say "$1 did not replay up to $2 in ${3:-20} s"; return 1
}

# standby_upstream_port NODE PORT: point NODE's primary_conninfo (pgha-node.conf, outside
# PGDATA) at PORT and reload: a closed port (5999) stops its WAL receiver for good (unlike a
# SIGSTOP, it cannot catch up from its socket buffer later); 5432 reattaches it.
NODE_CONF=$PGHOME/pgha-node.conf
# stale_standby PRIMARY STALE OTHER TABLE: TABLE gets 100 rows through the VIP (from OTHER),
# STALE replays them and is detached (primary_conninfo at a closed port), then 1000 more
# rows go to the primary: STALE is left with 100 of 1100
stale_standby() {
  local p=$1 l=$2 g=$3 t=$4
  sql_vip "$g" "create table $t(v int); insert into $t select generate_series(1, 100)" \
    || fatal "write through the VIP"
  require "$l replayed the first 100 rows" wait_replayed "$l" "$(current_lsn "$p")"
  require "$l detached (primary_conninfo at a closed port)" detach_standby "$p" "$l"
  sql_vip "$g" "insert into $t select generate_series(101, 1100)" || fatal "write 1000 rows on $p"
}
standby_upstream_port() {    # (a stopped instance reads it at its next start)
  h exec "$1" sed -i "s/port=[0-9]*/port=$2/" "$NODE_CONF" || return 1
  if h exec "$1" test -S /run/postgresql/.s.PGSQL.5432; then psql_on "$1" "select pg_reload_conf()" >/dev/null; fi
}
# detach_standby PRIMARY NODE: NODE stops receiving WAL (closed port), PRIMARY sees it gone
detach_standby() {
  standby_upstream_port "$2" 5999 || return 1
  local deadline=$(( $(date +%s) + 20 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(psql_on "$1" "select count(*) from pg_stat_replication where application_name='$2'" 2>/dev/null)" = 0 ] \
      && [ "$(psql_on "$2" "select count(*) from pg_stat_wal_receiver" 2>/dev/null)" = 0 ] && return 0
    sleep 0.2
  done
  say "$2 still replicating from $1"; return 1
}
attach_standby() { standby_upstream_port "$1" 5432; }

# pgha_cluster_with_stale_standby TABLE: pgha_cluster_up, then stale_standby: STALE, the first
# standby, has 100 of TABLE's 1100 rows and no longer receives WAL; GOOD, the other, has all
# of them. Sets STALE and GOOD (and what pgha_cluster_up sets).
STALE="" GOOD=""
pgha_cluster_with_stale_standby() {
  pgha_cluster_up
  STALE=${STANDBYS%% *} GOOD=${STANDBYS##* }
  stale_standby "$PRIMARY" "$STALE" "$GOOD" "$1"
  require "$GOOD replayed the 1000 new rows" wait_replayed "$GOOD" "$(current_lsn "$PRIMARY")"
  check "$STALE is stale: 100 rows" test "$(count_rows "$STALE" "$1")" = 100
}

# kill_postmaster NODE [WHO]: SIGKILL to the postmaster of NODE's instance (WHO names it in
# the output). Sets KILLED (its pid) and T_KILLED (the time of the kill).
KILLED="" T_KILLED=""
kill_postmaster() {
  KILLED=$(h exec "$1" head -1 "$PGDATA/postmaster.pid")
  T_KILLED=$(now)
  h exec "$1" kill -KILL "$KILLED"
  say "SIGKILL to the postmaster of ${2:-$1} (pid $KILLED)"
}

# ---------------------------------------------------------------- failback (30, 31)

# rows_before_fork FROM TABLE: TABLE(v, note) with rows 1..1000 written through the VIP (from
# node FROM), replayed by both standbys.
rows_before_fork() {
  sql_vip "$1" "create table $2(v int, note text); insert into $2 select i, 'before' from generate_series(1, 1000) i" \
    || fatal "write through the VIP"
  local n
  for n in $STANDBYS; do require "$n replayed the first 1000 rows" wait_replayed "$n" "$(current_lsn "$PRIMARY")"; done
}

# check_rejoined OLD NEW FROM TABLE GONE: OLD, the former primary, back as a standby of NEW,
# replayed all NEW has: it holds the 1500 rows (v > 0) committed on NEW and none of the
# rows (v < 0) it wrote alone (GONE names them), and no row is lost through the VIP (asked
# from node FROM).
check_rejoined() {
  local old=$1 new=$2 from=$3 t=$4 rows
  check "$old replayed everything $new has" wait_replayed "$old" "$(current_lsn "$new")"
  check "every row committed on $new is on $old (1500)" test "$(count_rows "$old" "$t where v > 0")" = 1500
  check "$5 are gone from $old's data" test "$(count_rows "$old" "$t where v < 0")" = 0
  rows=$(sql_vip "$from" "select count(*) from $t" 2>/dev/null || true)
  check "no row committed on $new lost: $rows of 1500 through the VIP" test "$rows" = 1500
}

# check_kept_folder NODE: the agent's forensics folder for NODE (the latest under KEEP_DIR, the
# rewind_keep_dir) exists and holds the discarded WAL and its README. Sets KEPT (the folder,
# "" if none).
KEEP_DIR=$PGHOME/pgha-rewind
KEPT=""
check_kept_folder() {
  KEPT=$(h exec "$1" bash -c "ls -d $KEEP_DIR/$1-* 2>/dev/null | tail -1" || true)
  check "forensics folder kept on $1: ${KEPT:-none}" test -n "$KEPT"
  [ -n "$KEPT" ] || return 0
  check "it holds the discarded WAL and the README" h exec "$1" bash -c "ls $KEPT/pg_wal/0000* >/dev/null && test -s $KEPT/README"
}

# ---------------------------------------------------------------- the examples (02, 03)

# check_examples_config HOW: crm_verify -L accepts the CIB after HOW (an example applied),
# and its configuration ties the VIP to the Promoted instance as every example does.
# Sets CIB_CONFIG (the configuration section) for the example's own checks.
CIB_CONFIG=""
check_examples_config() {
  check "crm_verify -L after $1" h exec node1 crm_verify -L
  CIB_CONFIG=$(h exec node1 cibadmin -Q -o configuration)
  check "VIP colocated with Promoted, ordered promote->start and demote->stop" xpath_ok "$CIB_CONFIG" \
    "//rsc_colocation[@rsc='pgsql-vip' and @with-rsc='pgsqld-clone' and @with-rsc-role='Promoted'] and //rsc_order[@first-action='promote' and @then-action='start'] and //rsc_order[@first-action='demote' and @then-action='stop']"
}

# check_vip_and_standbys PRIMARY: the VIP runs on PRIMARY, and both other nodes stream from it.
check_vip_and_standbys() {
  check "VIP on the primary $1" h wait-mon "VIP on $1" "$(xp_vip_on "$1")"
  check "2 standbys streaming from $1" wait_streaming "$1" "$(other_nodes "$1")"
}

# set_promotion_score ON NODE SCORE: run on node ON, set NODE's promotion score (what the
# primary's monitor writes: master-<rsc>, transient)
set_promotion_score() { h exec "$1" crm_attribute -N "$2" -n "master-$RSC" -l reboot -v "$3" >/dev/null; }
promotion_score() {
  h mon | xmllint --xpath "string(//node_attributes/node[@name='$1']/attribute[@name='master-$RSC']/@value)" - 2>/dev/null
}

# The views of one node (`h mon` asks the first live node with a DC: during an isolation that
# may be the isolated node, the DC of its own partition).
mon_on() { h exec "$1" crm_mon -1 --output-as=xml 2>/dev/null; }
wait_mon_on() {        # wait_mon_on NODE DESC XPATH [TIMEOUT]
  local deadline=$(( $(date +%s) + ${4:-60} )) x
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if x=$(mon_on "$1") && xpath_ok "$x" "$3"; then return 0; fi
    sleep 0.25
  done
  say "timeout (${4:-60}s) waiting, as seen from $1, for: $2"; return 1
}
promoted_on() {        # promoted_on NODE: where the Promoted instance runs, as NODE sees it
  mon_on "$1" | xmllint --xpath "//resource[@id='$RSC' and @role='Promoted']/node/@name" - 2>/dev/null \
    | sed -n 's/.*name="\([^"]*\)".*/\1/p'
}

# ---------------------------------------------------------------- PAF's leftovers (40, 41)

# permanent_score NODE: the permanent master-<rsc> of NODE (what PAF writes with crm_master
# --lifetime forever, in the CIB's nodes section); "" if none
permanent_score() { h exec node1 crm_attribute -N "$1" -n "master-$RSC" -l forever -G -q 2>/dev/null || true; }
# scheduler_score NODE: the promotion score the scheduler gives NODE's instance ("" if none);
# Pacemaker 3's crm_simulate puts "  * " before the line
scheduler_score() {
  h exec node1 crm_simulate -Ls 2>/dev/null | sed -n "s/^[ *]*$RSC:[0-9]* promotion score on $1: *//p"
}
# pgha_reads NODE: NODE's promotion score as pgha reads it (crm_attribute --promotion: the
# transient one), "unset" if none
pgha_reads() { h exec node1 crm_attribute --promotion="$RSC" -N "$1" -G -q 2>/dev/null || echo unset; }
scores_of() { echo "permanent ${2:-$(permanent_score "$1")}, pgha reads $(pgha_reads "$1"), scheduler $(scheduler_score "$1")"; }
# wait_pgha_scores NODE...: pgha's monitor gave these nodes a positive transient score (not
# wait_scores_positive: crm_mon shows PAF's permanent value where there is no transient one)
wait_pgha_scores() {
  local deadline=$(( $(date +%s) + 40 )) n v ok
  while [ "$(date +%s)" -lt "$deadline" ]; do
    ok=1
    for n in "$@"; do v=$(pgha_reads "$n"); [ "$v" != unset ] && [ "$v" -gt 0 ] || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 1
  done
  say "no positive transient score on all of $*"; return 1
}

# paf_cluster_switched: a fresh cluster whose resources crm-examples/pcs-3nodes-vip.sh created
# with PAF (ocf:heartbeat:pgsqlms), running until PAF wrote its permanent scores, then switched
# to pgha the way a user who only changes the agent does (maintenance mode, the primitive's
# provider, a cleanup): PAF's scores stay. Sets PRIMARY, STANDBYS and PAF_SCORE[node].
declare -A PAF_SCORE=()
paf_cluster_switched() {
  local t0 n xp
  needs_promotion
  require_agent
  [ -x /usr/lib/ocf/resource.d/heartbeat/pgsqlms ] || fatal "PAF is not installed (resource-agents-paf)"
  cluster_up
  pg_ready
  t0=$(now)
  AGENT=ocf:heartbeat:pgsqlms create_resources_pcs
  require "PAF: 1 Promoted + 2 Unpromoted" wait_roles 1 2
  PRIMARY=$(promoted_node); STANDBYS=$(other_nodes "$PRIMARY")
  require "PAF: standbys $STANDBYS streaming" wait_streaming "$PRIMARY" "$STANDBYS" 30
  xp="true()"
  for n in node1 node2 node3; do xp="$xp and //nodes/node[@uname='$n']/instance_attributes/nvpair[@name='master-$RSC' and number(@value) > 0]"; done
  local deadline=$(( $(date +%s) + 40 ))
  until xpath_ok "$(h exec node1 cibadmin -Q -o nodes)" "$xp" || [ "$(date +%s)" -ge "$deadline" ]; do sleep 1; done
  for n in node1 node2 node3; do PAF_SCORE[$n]=$(permanent_score "$n"); done
  require "PAF's permanent scores: node1 ${PAF_SCORE[node1]}, node2 ${PAF_SCORE[node2]}, node3 ${PAF_SCORE[node3]}" \
    xpath_ok "$(h exec node1 cibadmin -Q -o nodes)" "$xp"
  say "PAF cluster ready, $PRIMARY primary ($(since "$t0") s)"
  t0=$(now)
  h exec node1 crm_attribute -t crm_config -n maintenance-mode -v true
  h exec node1 cibadmin --modify --xml-text "<primitive id=\"$RSC\" provider=\"pgha\"/>"
  quiet h exec node1 crm_resource --cleanup --resource "$RSC"
  h exec node1 crm_attribute -t crm_config -n maintenance-mode -v false
  require "pgha runs the clone, $PRIMARY still the primary" h wait-mon "pgha, same roles" \
    "//resource[@id='$RSC' and @resource_agent='ocf:pgha:pgsqlms' and @role='Promoted']/node[@name='$PRIMARY'] and $(xp_roles 1 2)" 30
  require "standbys $STANDBYS streaming from $PRIMARY" wait_streaming "$PRIMARY" "$STANDBYS" 30
  # shellcheck disable=SC2086 # one argument per node
  require "pgha's monitor gave both standbys a transient score" wait_pgha_scores $STANDBYS
  say "switched to pgha by changing the agent only ($(since "$t0") s)"
  for n in node1 node2 node3; do say "  $n: $(scores_of "$n")"; done
}

# ---------------------------------------------------------------- pgha status (50, demo)

# status_json NODE [USER-OPTIONS...]: `pgha status --json` run on NODE, kept in
# $STATUS_DIR/NODE.json (setpriv options first, e.g. to run it as a member of haclient).
STATUS_DIR=${STATUS_DIR:-$PGHA_CLUSTER_ROOT/status}
status_json() {
  local node=$1; shift
  mkdir -p "$STATUS_DIR"
  h exec "$node" "$@" pgha status --json --timeout 5 > "$STATUS_DIR/$node.json"
}
# status_is NODE DESC PYTHON-EXPR: DESC holds for the JSON NODE's `pgha status --json` gave
# (status_json first). In EXPR: d the document, n its nodes by name, me the local node's
# entry; when it does not hold, the document is shown.
status_is() {
  check "$2 (pgha status on $1)" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
n = {x["name"]: x for x in d["nodes"]}
me = n.get(d["local_node"])
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print(json.dumps(d, indent=1)[:4000], file=sys.stderr)
sys.exit(0 if ok else 1)' "$STATUS_DIR/$1.json" "$3"
}
