#!/bin/bash
# 00-shellcheck: every shell script of the harness, the soak, the examples and the Vagrant provisioning
# passes shellcheck, and the Vagrantfile is valid Ruby (no cluster needed). Needs promotion: no.
set -euo pipefail
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

scenario_begin
command -v shellcheck >/dev/null || fatal "shellcheck is not installed (make deps)"
cd "$REPO"
mapfile -t files < <(
  { ls tests/cluster/*.sh tests/cluster/lib/*.sh tests/cluster/scenarios/*.sh tests/soak/*.sh crm-examples/*.sh 2>/dev/null
    grep -rlE '^#!/bin/(ba)?sh' tests/cluster tests/soak tests/deb debian crm-examples 2>/dev/null || true; } | sort -u)
[ ${#files[@]} -gt 0 ] || fatal "no shell files found"
for f in "${files[@]}"; do
  check "shellcheck $f" shellcheck -x "$f"
done
# ruby comes with pcs (pcsd); the Vagrantfile itself cannot run here (no VMs)
if command -v ruby >/dev/null; then check "ruby -c Vagrantfile" quiet ruby -c Vagrantfile; fi
scenario_end
