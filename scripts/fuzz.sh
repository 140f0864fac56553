#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target for a set time on a corpus seeded from Tests/fuzz-corpus.
# `fuzz.sh BUILD_PATH SECONDS TARGET...`; FUZZ_MERGE=1 merges new inputs back into Tests/fuzz-corpus.
# Exits non-zero when any target found a crash (the input is saved under .fuzz/crashes/).
set -uo pipefail
build=$1; seconds=$2; shift 2
bin=$(swift build --build-path "$build" --show-bin-path)/edge-fuzz
mkdir -p .fuzz/crashes
failed=0
for target in "$@"; do
  work=.fuzz/$target; mkdir -p "$work"
  log=.fuzz/$target.log
  SWIFT_BACKTRACE=enable=no TE_FUZZ_TARGET=$target "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix=".fuzz/crashes/$target-" "$work" "Tests/fuzz-corpus/$target" > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  [ -n "$runs" ] || runs=$(grep -Eo '#[0-9]+' "$log" | tail -1 | tr -d '#')
  if [ "$rc" = 0 ]; then echo "fuzz $target: ${runs:-?} runs in ${seconds}s, no crash"
  else failed=1; echo "fuzz $target: CRASH (exit $rc), see $log and .fuzz/crashes/"; grep -m3 -E 'ERROR|Fatal|panic|crash' "$log"; fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    SWIFT_BACKTRACE=enable=no TE_FUZZ_TARGET=$target "$bin" -merge=1 "Tests/fuzz-corpus/$target" "$work" > /dev/null 2>&1
  fi
done
exit $failed
