#!/usr/bin/env bash
# make soak (issue 17, item 5): the isolation property tests for OPS operations each.
# `soak.sh OPS JOBS`, run with the test environment's variables set (the Makefile starts it):
#   1. IsolationPropertyTests (two nodes, one Redis, no origin) for OPS operations;
#   2. IsolationUnderChangeTests (an origin pushing rotations, removals and returns, Redis frozen
#      mid-reply) for OPS operations in all, split over JOBS runs side by side, each with a seed of
#      its own: one run spends most of its time waiting on Redis timeouts and publishes, not on a
#      core, so two runs finish a million operations in about half the time on 2 cores.
# SOAK_PARTS=node or SOAK_PARTS=change runs one part. A failure prints its seed and operation;
# TE_PROPERTY_SEED=N replays it (the split then runs as one job: each job would get the same seed).
# Logs: .build/soak/. Exits non-zero when any run failed.
set -uo pipefail
ops=${1:-}; jobs=${2:-}
for value in "$ops" "$jobs"; do  # SOAK_OPS=0 or SOAK_JOBS=x would divide by zero or run nothing
  [[ $value =~ ^[1-9][0-9]{0,8}$ ]] && continue
  echo "soak: SOAK_OPS and SOAK_JOBS must be whole numbers from 1 (got '$ops' '$jobs')" >&2; exit 2
done
parts=${SOAK_PARTS:-node,change}
[ -n "${TE_PROPERTY_SEED:-}" ] && jobs=1
bin=$(swift build --show-bin-path)/TenantEdgePackageTests.xctest
logs=.build/soak; mkdir -p "$logs"
failed=0

summary() {  # the test's own summary line and Swift Testing's verdict
  grep -aE 'isolation property|isolation under change|recorded an issue|Test run with' "$1" | head -20
}

if [[ $parts == *node* ]]; then
  SECONDS=0
  TE_PROPERTY_OPS=$ops "$bin" --testing-library swift-testing --filter IsolationPropertyTests > "$logs/node.log" 2>&1
  rc=$?; [ $rc = 0 ] || failed=1
  echo "soak, node-only: $ops operations, exit $rc, ${SECONDS} s"; summary "$logs/node.log"
fi

if [[ $parts == *change* ]]; then
  SECONDS=0
  share=$(( (ops + jobs - 1) / jobs ))
  pids=()
  for job in $(seq 1 "$jobs"); do
    TE_CHANGE_OPS=$share "$bin" --testing-library swift-testing --filter IsolationUnderChangeTests \
      > "$logs/change-$job.log" 2>&1 &
    pids+=($!)
  done
  for index in "${!pids[@]}"; do
    wait "${pids[$index]}"; rc=$?; [ $rc = 0 ] || failed=1
    echo "soak, under an origin, run $((index + 1)) of $jobs: $share operations, exit $rc"
    summary "$logs/change-$((index + 1)).log"
  done
  echo "soak, under an origin: $((share * jobs)) operations in ${SECONDS} s"
fi
exit $failed
