#!/usr/bin/env python3
"""Markdown for bench/geo.sh: medians of the lookup rates and of the HTTP rounds, ratios, and the
added cost per request on the hit path (1/rate with the lookup - 1/rate without, in microseconds
of the whole machine's time per request: both cases ran on the same cores under the same load)."""
import json, statistics, sys
from collections import defaultdict

lookups_file, http_file, rounds, duration, stats_text = sys.argv[1:6]

def medians(path):
    values = defaultdict(list)
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 2 and parts[1]:
            try:
                values[parts[0]].append(float(parts[1]))
            except ValueError:
                pass
    return {k: statistics.median(v) for k, v in values.items()}, values

lookup, _ = medians(lookups_file)
http, raw = medians(http_file)
print(f"\n## Geo-IP (GeoLite2 City 2018, 56 MB; {rounds} rounds, interleaved)\n")
print("Lookups per second on one core (`taskset -c 1`), random IPv4 addresses:\n")
print("| what | lookups/s | vs mmdblookup |")
print("|---|---:|---:|")
base = lookup.get("mmdblookup")
names = {"raw": "TenantEdge adapter: text to lookup + 4 fields", "decide-uncached": "TenantEdge decision, every address new (no cache help)",
         "decide-cached": "TenantEdge decision, 10k repeating addresses (decision cache)", "mmdblookup": "`mmdblookup -b` (libmaxminddb loop: getaddrinfo, whole record)"}
for key in ["raw", "decide-uncached", "decide-cached", "mmdblookup"]:
    if key in lookup:
        ratio = f"{lookup[key] / base:.2f}×" if base else "n/a"
        print(f"| {names[key]} | {lookup[key]:,.0f} | {ratio} |")

print(f"\nHit path with the client address in `X-Forwarded-For` (wrk -t2 -c64, {duration} each, req/s medians):\n")
print("| case | req/s | vs same server without lookup | added per request |")
print("|---|---:|---:|---:|")
pairs = {"edge-node, hint, 10k clients": "edge-node, geo off", "edge-node, hint, every client new": "edge-node, geo off",
         "nginx geoip2, 10k clients": "nginx, no lookup", "nginx geoip2, every client new": "nginx, no lookup"}
for label in ["edge-node, geo off", "edge-node, hint, 10k clients", "edge-node, hint, every client new",
              "nginx, no lookup", "nginx geoip2, 10k clients", "nginx geoip2, every client new"]:
    if label not in http:
        continue
    if label in pairs and pairs[label] in http:
        plain = http[pairs[label]]
        added = (1 / http[label] - 1 / plain) * 1e6
        print(f"| {label} | {http[label]:,.0f} | {http[label] / plain:.3f} | {added:+.2f} µs |")
    else:
        print(f"| {label} | {http[label]:,.0f} | 1 | — |")
try:
    geo = json.loads(stats_text).get("geo", {})
    hits, misses = geo.get("cache_hits", 0), geo.get("lookups", 0)
    if hits + misses:
        print(f"\nedge-node decision cache over the whole run: {hits:,} answered from the cache, {misses:,} looked up "
              f"({hits / (hits + misses):.1%} hits), {geo.get('lookup_errors', 0)} lookup errors.")
except (ValueError, AttributeError):
    pass
print("\nnginx runs one worker; edge-node its two event loops. Compare each server with itself "
      "(the ratio and the added cost), not the servers' absolute rates.")
