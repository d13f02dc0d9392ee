#!/bin/sh
# Runs one fuzz target for a given time (default 600 s) in one process (libFuzzer without
# -jobs: one fuzzer, in process, output here rather than in fuzz-N.log), with the limits the
# project's runs used, the log in fuzz/logs/<target>.log.
# Usage: fuzz/run.sh <target> [seconds [libFuzzer flags...]], e.g. `-fork=1 -ignore_crashes=1
# -ignore_timeouts=1 -ignore_ooms=1` to go on past known crashes.
set -eu
cd "$(dirname "$0")"
target=$1
seconds=${2:-600}
shift $(($# < 2 ? $# : 2))
mkdir -p logs "corpus/$target" "artifacts/$target"
cargo +nightly fuzz run -O -a -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" "$@" \
    > "logs/$target.log" 2>&1
