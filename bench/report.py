#!/usr/bin/env python3
"""Turns the raw wrk rows into medians per server and size, with ratios against nginx proxy_cache."""
import statistics
import sys
from collections import defaultdict

path, rounds, duration, keys = sys.argv[1:5]
pipeline_path = sys.argv[5] if len(sys.argv) > 5 else None

def ms(text):
    if text.endswith("us"): return float(text[:-2]) / 1000
    if text.endswith("ms"): return float(text[:-2])
    if text.endswith("s"): return float(text[:-1]) * 1000
    return float("nan")

rows = defaultdict(list)
notes = []
for line in open(path):
    size, label, rps, p50, p99, errors = (line.rstrip("\n").split("\t") + [""])[:6]
    rows[(int(size), label)].append((float(rps), ms(p50), ms(p99)))
    if errors.strip():
        notes.append(f"{label} {size} B: {errors.strip()}")

print(f"# Hit path: wrk -t2 -c64 -d{duration}, {keys} keys, {rounds} interleaved rounds, medians\n")
for size in sorted({s for s, _ in rows}):
    reference = statistics.median(r[0] for r in rows[(size, "nginx proxy_cache")])
    print(f"## {size} B bodies\n")
    print("| server | req/s | p50 ms | p99 ms | vs nginx proxy_cache |")
    print("|---|---|---|---|---|")
    for (s, label), values in rows.items():
        if s != size: continue
        rps = statistics.median(v[0] for v in values)
        print(f"| {label} | {rps:,.0f} | {statistics.median(v[1] for v in values):.2f} | "
              f"{statistics.median(v[2] for v in values):.2f} | {rps / reference:.2f} |")
    enc = statistics.median(v[0] for v in rows[(size, "edge-node (encrypted)")])
    plain = statistics.median(v[0] for v in rows[(size, "edge-node (plain)")])
    print(f"\nencryption on / off: {enc / plain:.2f}")
    if rows.get((size, "edge-node (L2 only)")):
        l2 = statistics.median(v[0] for v in rows[(size, "edge-node (L2 only)")])
        print(f"L2 hit / L1 hit: {l2 / enc:.2f}")
    print()
if pipeline_path:
    pipe = defaultdict(list)
    for line in open(pipeline_path):
        label, value = line.rstrip("\n").split("\t")
        if value:
            pipe[label].append(float(value))
    print("## Pipelined batches of 1,000 GETs, 1 KiB values, same Redis\n")
    print("| client | GETs/s (median) |")
    print("|---|---|")
    for label, values in pipe.items():
        print(f"| {label} | {statistics.median(values):,.0f} |")
    if len(pipe) == 2:
        a, b = (statistics.median(v) for v in pipe.values())
        print(f"\nhiredis adapter / redis-benchmark: {a / b:.2f}\n")
engines_path = sys.argv[6] if len(sys.argv) > 6 else None
if engines_path:
    engines = defaultdict(list)
    for line in open(engines_path):
        label, value = line.rstrip("\n").split("\t")
        engines[label].append(float(value))
    print("## Redis engines: 1 KiB GETs, 64 in flight from two event loops, same Redis\n")
    print("| engine | calls/s (median) | vs blocking-pool-2 |")
    print("|---|---|---|")
    base = statistics.median(engines.get("blocking-pool-2", [1]))
    for label, values in engines.items():
        print(f"| {label} | {statistics.median(values):,.0f} | {statistics.median(values) / base:.2f} |")
    print()
if notes:
    print("wrk reported: " + "; ".join(notes))
