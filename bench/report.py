#!/usr/bin/env python3
"""Turns the raw wrk rows into medians per server and size, with ratios against nginx proxy_cache."""
import statistics
import sys
from collections import defaultdict

path, rounds, duration, keys = sys.argv[1:5]
pipeline_path = sys.argv[5] if len(sys.argv) > 5 else None

import json
import os

rows = defaultdict(list)
notes = []
for line in open(path):
    fields = (line.rstrip("\n").split("\t") + [""] * 11)[:11]
    size, label, rps, p50, p99, p999, share, errors, cpu_user, cpu_system, cpu_wrk = fields
    us = lambda text: float(text) if text else float("nan")
    rows[(int(size), label)].append(
        {"rps": float(rps or 0), "p50_ms": us(p50) / 1000, "p99_ms": us(p99) / 1000, "p999_ms": us(p999) / 1000,
         "hit_share": None if share in ("", "-") else float(share),
         "cpu_user_us": us(cpu_user), "cpu_system_us": us(cpu_system), "cpu_wrk_us": us(cpu_wrk)})
    if errors.strip():
        notes.append(f"{label} {size} B: {errors.strip()}")

def median(size, label, field="rps"):
    values = [v[field] for v in rows.get((size, label), [])]
    return statistics.median(values) if values else float("nan")

def cpu_table(size, servers):
    """CPU per request, from /proc and wrk's own times (run.sh). wrk shares the two cores, so a system's
    req/s is about 2 cores / (its CPU per request + wrk's); the ceiling line works out what the edge
    node would reach against nginx with no user-space time at all (only its kernel time and wrk's)."""
    if not any(v["cpu_user_us"] == v["cpu_user_us"] for values in rows.values() for v in values):
        return None  # rows from before CPU was measured
    print(f"CPU per request, {size} B (µs, medians over rounds): the server's own processes, and wrk driving it\n")
    print("| server | user | kernel | server total | wrk | all |")
    print("|---|---|---|---|---|---|")
    for label in servers:
        user, system, load = (median(size, label, f) for f in ("cpu_user_us", "cpu_system_us", "cpu_wrk_us"))
        servers[label].update({"cpu_user_us": user, "cpu_system_us": system, "cpu_wrk_us": load})
        print(f"| {label} | {user:.2f} | {system:.2f} | {user + system:.2f} | {load:.2f} | {user + system + load:.2f} |")
    edge, nginx = servers.get("edge-node (encrypted)"), servers.get("nginx proxy_cache")
    if not edge or not nginx:
        return None
    all_nginx = nginx["cpu_user_us"] + nginx["cpu_system_us"] + nginx["cpu_wrk_us"]
    ceiling = all_nginx / (edge["cpu_system_us"] + edge["cpu_wrk_us"])
    print(f"\n- ceiling vs nginx with no user-space time at all: {ceiling:.2f} "
          f"(nginx's {all_nginx:.2f} µs over the node's kernel {edge['cpu_system_us']:.2f} + wrk "
          f"{edge['cpu_wrk_us']:.2f} µs)")
    result = {"ceiling_vs_nginx_without_user_time": ceiling}
    open_us, openssl_us = node_open_us.get(size), openssl_open_us.get(size)
    if open_us:
        with_open = all_nginx / (edge["cpu_system_us"] + edge["cpu_wrk_us"] + open_us)
        reference = f"; OpenSSL 3.0 takes {openssl_us:.2f} µs, `openssl speed`" if openssl_us else ""
        print(f"- ceiling with only the AES-256-GCM open left as user time: {with_open:.2f} (the node's cipher "
              f"opens {size} B in {open_us:.2f} µs on this machine, `edge-bench aead-open`{reference})")
        result.update({"node_aes_gcm_open_us": open_us, "ceiling_vs_nginx_with_only_the_open": with_open})
    elif openssl_us:
        print(f"- the node's cipher was not timed; OpenSSL 3.0 opens {size} B in {openssl_us:.2f} µs, `openssl speed`")
    if openssl_us:
        result["openssl_aes_gcm_open_us"] = openssl_us
    print()
    return result

# µs to open one body of each size (run.sh): by the node's own cipher (`edge-bench aead-open`, BoringSSL) and by
# the system's OpenSSL (`openssl speed`, kB/s as it prints them). A 0 is a figure that was not measured.
node_open_us, openssl_open_us = {}, {}
aes_path = os.environ.get("AES_SPEED_TSV")
if aes_path and os.path.exists(aes_path):
    for line in open(aes_path):
        size_text, kbytes, node_us = (line.rstrip("\n").split("\t") + ["", ""])[:3]
        if not size_text.strip():
            continue
        size = int(size_text)
        if kbytes.strip() and float(kbytes) > 0:
            openssl_open_us[size] = size / (float(kbytes) * 1000) * 1e6
        if node_us.strip() and float(node_us) > 0:
            node_open_us[size] = float(node_us)

summary = {"rounds": int(rounds), "duration": duration, "keys": int(keys), "sizes": {}}
print(f"# Hit path: wrk -t2 -c64 -d{duration}, {keys} keys, {rounds} interleaved rounds, medians\n")
print("Servers take turns within each round (A B C …, then … C B A), so drift on a shared machine hits all alike.")
print("Spread is the lowest and highest round; hits is the share of wrk's requests the node counted as hits.\n")
for size in sorted({s for s, _ in rows}):
    nginx = median(size, "nginx proxy_cache")
    varnish = median(size, "varnish")
    print(f"## {size} B bodies\n")
    print("| server | req/s | spread | p50 ms | p99 ms | p99.9 ms | hits | vs nginx | vs Varnish |")
    print("|---|---|---|---|---|---|---|---|---|")
    servers = {}
    for (s, label), values in rows.items():
        if s != size: continue
        rps = median(size, label)
        low, high = min(v["rps"] for v in values), max(v["rps"] for v in values)
        shares = [v["hit_share"] for v in values if v["hit_share"] is not None]
        hits = f"{statistics.median(shares):.1%}" if shares else "–"
        servers[label] = {"rps": rps, "rps_min": low, "rps_max": high,
                          "p50_ms": median(size, label, "p50_ms"), "p99_ms": median(size, label, "p99_ms"),
                          "p999_ms": median(size, label, "p999_ms"), "hit_share": statistics.median(shares) if shares else None,
                          "vs_nginx": rps / nginx, "vs_varnish": rps / varnish}
        print(f"| {label} | {rps:,.0f} | {low:,.0f}–{high:,.0f} | {servers[label]['p50_ms']:.2f} | "
              f"{servers[label]['p99_ms']:.2f} | {servers[label]['p999_ms']:.2f} | {hits} | "
              f"{rps / nginx:.2f} | {rps / varnish:.2f} |")
    # Each ratio: of the medians, and round by round (the two rows of one round ran within half a
    # minute, so a slow spell of the machine that lasted a round moves both). The scraped row is the
    # encrypted node's own process, so its per-round spread is also the noise floor of a row.
    pairs = [("encryption_on_vs_off", "edge-node (encrypted)", "edge-node (plain)"),
             ("l1_encrypted_vs_nginx", "edge-node (encrypted)", "nginx proxy_cache"),
             ("l1_encrypted_vs_varnish", "edge-node (encrypted)", "varnish"),
             ("l2_vs_l1", "edge-node (L2 only)", "edge-node (encrypted)"),
             ("monitoring_on_vs_off", "edge-node (scraped)", "edge-node (encrypted)")]
    ratios, per_round = {}, {}
    for name, over, under in pairs:
        if (size, over) not in rows or (size, under) not in rows:
            continue
        ratios[name] = median(size, over) / median(size, under)
        per_round[name] = [a["rps"] / b["rps"] for a, b in zip(rows[(size, over)], rows[(size, under)]) if b["rps"] > 0]
    print()
    for name, value in ratios.items():
        rounds_of = per_round.get(name) or [float("nan")]
        print(f"- {name.replace('_', ' ')}: {value:.2f} (round by round: median {statistics.median(rounds_of):.2f}, "
              f"{min(rounds_of):.2f}–{max(rounds_of):.2f})")
    print()
    cpu = cpu_table(size, servers)
    if cpu:
        ratios.update(cpu)
    summary["sizes"][str(size)] = {"servers": servers, "ratios": ratios, "ratios_by_round": per_round}

# Open loop: paced requests at a share of nginx's closed-loop peak (run.sh, paced.lua).
open_rows = defaultdict(list)
open_path = os.environ.get("OPEN_LOOP_TSV")
if open_path and os.path.exists(open_path):
    for line in open(open_path):
        share, rate, label, rps, p50, p99, p999, hits = (line.rstrip("\n").split("\t") + [""] * 8)[:8]
        if not rps:
            continue
        us = lambda text: float(text) / 1000 if text else float("nan")
        open_rows[(int(share), int(rate), label)].append(
            {"rps": float(rps), "p50_ms": us(p50), "p99_ms": us(p99), "p999_ms": us(p999),
             "hit_share": None if hits in ("", "-") else float(hits)})
if open_rows:
    print(f"## Open loop: 1024 B bodies, requests paced at a share of nginx's closed-loop peak\n")
    print("wrk -t2 -c256 with `paced.lua` (a fixed schedule per thread, to the millisecond); medians over rounds.")
    print("Achieved below the rate asked means the system fell behind and was sent bursts to catch up.\n")
    print("| share of nginx peak | rate asked | server | achieved req/s | p50 ms | p99 ms | p99.9 ms | hits |")
    print("|---|---|---|---|---|---|---|---|")
    summary["open_loop"] = []
    for (share, rate, label), values in sorted(open_rows.items(), key=lambda item: (item[0][0], item[0][2])):
        row = {field: statistics.median(v[field] for v in values) for field in ("rps", "p50_ms", "p99_ms", "p999_ms")}
        shares = [v["hit_share"] for v in values if v["hit_share"] is not None]
        row["hit_share"] = statistics.median(shares) if shares else None
        summary["open_loop"].append({"share": share, "rate": rate, "server": label, **row})
        hits = f"{row['hit_share']:.1%}" if shares else "–"
        print(f"| {share} % | {rate:,} | {label} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
              f"{row['p999_ms']:.2f} | {hits} |")
    print()

output = os.environ.get("REPORT_DIR")
name = os.environ.get("REPORT_NAME", "latest")
if output:
    with open(os.path.join(output, f"{name}.json"), "w") as f:
        json.dump(summary, f, indent=2, default=lambda x: None)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        sizes = sorted(summary["sizes"])
        fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
        for axis, size in zip(axes[0], sizes):
            servers = summary["sizes"][size]["servers"]
            labels = list(servers)
            values = [servers[l]["rps"] for l in labels]
            errors = [[servers[l]["rps"] - servers[l]["rps_min"] for l in labels],
                      [servers[l]["rps_max"] - servers[l]["rps"] for l in labels]]
            bars = axis.bar(range(len(labels)), values, yerr=errors, capsize=4,
                            color=["#2b6cb0" if l.startswith("edge") else "#a0aec0" for l in labels])
            for bar, label in zip(bars, labels):
                axis.annotate(f"{servers[label]['vs_nginx']:.2f}× nginx", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=8)
            axis.set_xticks(range(len(labels)), [l.replace(" ", "\n", 1) for l in labels], fontsize=8)
            axis.set_title(f"L1/L2 hits, {size} B bodies (median of {rounds} rounds)")
            axis.set_ylabel("requests/s")
        fig.tight_layout()
        fig.savefig(os.path.join(output, f"{name}.png"), dpi=110)
    except ImportError:
        print("(matplotlib is not installed: no chart; `make bench-deps` installs it)\n")

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
