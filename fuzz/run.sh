#!/usr/bin/env bash
# Runs every fuzz target (or those named after the time) for SECONDS each (default 60) and
# prints a table: target, seconds, CPU-minutes, executions, corpus size, result.
#   fuzz/run.sh            # 60 s each
#   fuzz/run.sh 300 path digest
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The committed seeds
# in fuzz/corpus/<target> are read only; what libFuzzer finds goes to fuzz/target/corpus/<target>
# (gitignored), crashes to fuzz/artifacts/<target>. Extra libFuzzer flags: FUZZ_ARGS.
# SANITIZER (default `none`: the workspace forbids `unsafe`, so ASan adds cost, not findings;
# set SANITIZER=address to check the dependencies' unsafe code too).
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
sanitizer="${SANITIZER:-none}"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s "$sanitizer" --debug-assertions || exit 2
mkdir -p target/logs
status=0
printf '%-14s %8s %8s %14s %8s  %s\n' target seconds cpu-min executions corpus result
for t in "${targets[@]}"; do
    mkdir -p "target/corpus/$t" "artifacts/$t"
    log="target/logs/$t.log"
    # CPU seconds (user + system) of the run: on a busy machine fewer than the wall seconds.
    TIMEFORMAT='%U %S'
    cpu=$( { time cargo +nightly fuzz run -s "$sanitizer" --debug-assertions "$t" \
        "target/corpus/$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 ${FUZZ_ARGS:-} >"$log" 2>&1; echo "rc=$?" >"$log.rc"; } 2>&1 )
    rc=$(sed 's/rc=//' "$log.rc")
    cpu_min=$(echo "$cpu" | awk '{ printf "%.1f", ($1 + $2) / 60 }')
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ -z "$execs" ]; then
        execs=$(grep -o '#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    corpus=$(find "target/corpus/$t" "corpus/$t" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (rc $rc): $(grep -m1 -E "panicked|ERROR: libFuzzer|Test unit written" "$log" | cut -c1-100)"
        status=1
    fi
    printf '%-14s %8s %8s %14s %8s  %s\n' "$t" "$secs" "$cpu_min" "${execs:-?}" "$corpus" "$result"
done
exit "$status"
