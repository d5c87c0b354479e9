#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS TARGET... (after `make fuzz` has built .build-fuzz/debug/).
# Runs each libFuzzer target for SECONDS on a scratch copy of its committed corpus, so runs never
# grow fuzz/corpus/; prints libFuzzer's final stats and exits non-zero at the first target that finds
# a crash, leak, timeout or out-of-memory, with the reproducer in .build-fuzz/findings/<target>/.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
mkdir -p .build-fuzz/logs
for target in "$@"; do
    work=$(mktemp -d)
    cp -R "fuzz/corpus/$target" "$work/corpus"
    mkdir -p ".build-fuzz/findings/$target"
    log=".build-fuzz/logs/$target.log"
    echo "== $target: $seconds s (log: $log)"
    # TMPDIR: the block and WAL targets write their scratch files there, removed with the copy.
    # SWIFT_BACKTRACE: a trap is reported by ASan and libFuzzer, which save the input, not by
    # Swift's backtracer, whose stack reads ASan reports as a second error.
    SWIFT_BACKTRACE=enable=no TMPDIR="$work" ".build-fuzz/debug/$target" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix=".build-fuzz/findings/$target/" >"$log" 2>&1
    status=$?
    rm -rf "$work"
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::' "$log"
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        echo "== $target FAILED (exit $status); reproducer: $(ls -t ".build-fuzz/findings/$target/" | head -n 1)"
        exit "$status"
    fi
done
