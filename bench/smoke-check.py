#!/usr/bin/env python3
"""`make bench-smoke`'s verdict on bench/run.sh's raw rows: every system answered, without errors,
and the edge node's answers were hits (its own hit counter grew by what wrk sent). Speed is not
judged here. Usage: smoke-check.py RESULTS_TSV"""
import sys

failures = []
systems = 0
for line in open(sys.argv[1]):
    size, label, rps, p50, p99, p999, share, errors = (line.rstrip("\n").split("\t") + [""] * 8)[:8]
    systems += 1
    if not rps or float(rps) <= 0:
        failures.append(f"{label}: no answers")
    if errors.strip():
        failures.append(f"{label}: {errors.strip()}")
    if share != "-" and (not share or float(share) < 0.95):
        failures.append(f"{label}: only {share} of its answers were hits")
    print(f"bench-smoke: {label} {size} B: {float(rps or 0):,.0f} req/s, hits {share}")
if systems < 6:
    failures.append(f"only {systems} of 6 systems were measured")
if failures:
    sys.exit("bench-smoke failed: " + "; ".join(failures))
print(f"bench-smoke: all {systems} systems answered; the edge node's answers were hits")
