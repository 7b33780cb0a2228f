#!/bin/sh
# Runs every fuzz target (or those named) for SECONDS each, FUZZ_JOBS (default 2) at a time,
# from the committed seeds (fuzz/corpus/<target>, read only) and what earlier runs found
# (fuzz/work/<target>, not committed). Prints one summary line per target; exits non-zero
# if any target crashed, hung or ran out of memory (the input is then in
# fuzz/artifacts/<target>/: commit it as a seed with the fix).
#   fuzz/run.sh SECONDS [TARGET...]
set -u
cd "$(dirname "$0")"

# One target: `run.sh --one SECONDS TARGET`, as xargs calls it below.
if [ "${1:-}" = --one ]; then
    seconds=$2 t=$3
    mkdir -p "work/$t" "artifacts/$t"
    log="work/$t.log"
    start=$(date +%s)
    if cargo +nightly fuzz run --debug-assertions "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf 'fuzz %-18s %-6s %5ss %12s execs  %s\n' "$t" "$result" \
        "$(($(date +%s) - start))" "${execs:-?}" "${cov:-}"
    [ "$result" = ok ] || { grep -E 'panicked|ERROR|SUMMARY|artifact' "$log" | head -5; exit 1; }
    exit 0
fi

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=${*:-$(cargo +nightly fuzz list)}
# Debug assertions on: an overflow is a misread even where release builds would wrap.
cargo +nightly fuzz build --debug-assertions || exit 1
printf '%s\n' $targets | xargs -P "${FUZZ_JOBS:-2}" -I{} ./run.sh --one "$seconds" {}
