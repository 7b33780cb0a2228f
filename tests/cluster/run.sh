#!/bin/bash
# run.sh - the cluster scenario suite (make test-cluster). Runs every
# tests/cluster/scenarios/NN-name.sh in order, each on its own fresh cluster, never two
# clusters at once, and ends with the line "N passed, N failed" (exit 1 if any failed).
#
#   tests/cluster/run.sh              all scenarios
#   tests/cluster/run.sh 10 12        only the scenarios whose names start with 10 or 12
# Settings (environment): PGHA_AGENT=ocf:pgha:pgsqlms (ocf:heartbeat:pgsqlms: run the same
#   scenarios against PAF), PGHA_SCENARIO_TIMEOUT=150 (s, hard limit of one scenario; the
#   target is 60 s), PGHA_NODE_OS=debian13|sid and PGHA_PG_MAJOR (the whole run inside a
#   root of node-root.sh: Debian 13 with PostgreSQL 17, sid with 18 or 19; lib/node-os.sh),
#   and the harness settings (harness.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LIMIT=${PGHA_SCENARIO_TIMEOUT:-150}
[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (namespaces, mounts)" >&2; exit 1; }
# shellcheck source=lib/node-os.sh
source "$HERE/lib/node-os.sh"
enter_node_os "$0" "$@"

if "$HERE/harness.sh" status >/dev/null; then
  echo "run.sh: a previous cluster is still up ($("$HERE/harness.sh" status));" \
       "remove it first: $HERE/harness.sh down" >&2
  exit 1
fi

selected() {           # selected NAME: no filter, or NAME starts with one of the arguments
  local f
  [ $# -gt 1 ] || return 0
  for f in "${@:2}"; do case $1 in "$f"*) return 0 ;; esac; done
  return 1
}

pass=0 fail=0 summary=() t_all=$SECONDS
for s in "$HERE"/scenarios/[0-9][0-9]-*.sh; do
  name=$(basename "$s" .sh)
  selected "$name" "$@" || continue
  echo "=== $name"
  t0=$SECONDS rc=0
  # the scenario's own EXIT trap collects logs and takes its cluster down, also on timeout
  timeout --signal=TERM --kill-after=30 "$LIMIT" bash "$s" || rc=$?
  dt=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then pass=$((pass + 1)); r=PASS; else fail=$((fail + 1)); r=FAIL; fi
  [ "$rc" = 124 ] && r="FAIL (timeout ${LIMIT}s)"
  summary+=("$(printf '%-28s %-22s %4d s' "$name" "$r" "$dt")")
  # a scenario killed hard may leave its cluster: never start the next one on top of it
  if "$HERE/harness.sh" status >/dev/null; then
    echo "run.sh: $name left a cluster behind; removing it" >&2
    "$HERE/harness.sh" down || true
  fi
done

echo
echo "=== cluster scenarios (agent ${PGHA_AGENT:-ocf:pgha:pgsqlms}, nodes $NODE_OS, PostgreSQL $PG_MAJOR), $((SECONDS - t_all)) s in all"
printf '%s\n' "${summary[@]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
