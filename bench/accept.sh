#!/usr/bin/env bash
# `make bench-accept`: one accepting socket against one per event loop (`listen.reuse_port`), with
# nginx (`reuseport`, as in bench/run.sh) beside them. Two loads, servers interleaved per round:
# keep-alive (wrk -c64, every connection made once), and churn (every request on a new connection:
# `Connection: close`, so accepting is on the hot path). 1 KiB hits, encryption on; the node's CPU
# per request from /proc. Writes bench/results/accept.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-5s}; KEYS=${KEYS:-1000}
bench_dir te-accept
bin=$(swift build -c release --show-bin-path)/edge-node
secrets=$(pwd)/edge-config/secrets
up=$(free_port)
start_fixed_upstream "$dir" "$up"
declare -A node_pid
for spec in "single:false" "reuseport:true"; do
  IFS=: read -r name reuse <<< "$spec"
  port=$(free_port); admin=$(free_port)
  sed -e "s#@NAME@#$name#g; s#@PORT@#$port#; s#@ADMIN@#$admin#; s#@ENCRYPTION@#true#g; s#@LEVEL@#strict#" \
    -e "s#@DIR@#$dir#; s#@SECRETS@#$secrets#g; s#127.0.0.1:18080#127.0.0.1:$up#g" \
    -e "s#^listen: { http: \"127.0.0.1:$port\"#listen: { reuse_port: $reuse, http: \"127.0.0.1:$port\"#" \
    bench/edge-bench.yaml.template > "$dir/edge-$name.yaml"
  "$bin" run --config "$dir/edge-$name.yaml" > "$dir/edge-$name.log" 2>&1 & pids+=($!)
  node_pid[$port]=$!
  eval "port_$name=$port"
done
nginx_port=$(free_port)
mkdir -p "$dir/nginx-tmp" "$dir/nginx-cache"
sed -e "s#@DIR@#$dir#g; s#@PORT@#$nginx_port#; s#127.0.0.1:18080#127.0.0.1:$up#" bench/nginx.conf.template \
  > "$dir/nginx.conf"
nginx -c "$dir/nginx.conf"
for port in "$up" "$port_single" "$port_reuseport" "$nginx_port"; do wait_port "$port"; done
# The config change must have reached the node: one listening socket per event loop on its port.
sockets=$(ss -Hltn "sport = :$port_reuseport" | wc -l)
[ "$sockets" -ge 2 ] || { echo "accept: the reuse_port node listens on $sockets socket(s), not one per loop" >&2; exit 1; }
servers=("edge-node, one acceptor:$port_single:cache-status:hit" "edge-node, reuse_port:$port_reuseport:cache-status:hit"
  "nginx proxy_cache:$nginx_port:x-cache:HIT")
for server in "${servers[@]}"; do
  IFS=: read -r label port header hit <<< "$server"
  python3 bench/warm.py "$port" "$KEYS" 1024 api.acme.test "$header" "$hit"
done
server_pids() {
  if [ "$1" = "$nginx_port" ]; then pgrep -P "$(cat "$dir/nginx.pid")" | tr '\n' ' '; else echo "${node_pid[$1]}"; fi
}
cpu_ticks() {  # user + system clock ticks of processes, summed
  local total=0 u s pid
  for pid in "$@"; do
    read -r u s < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
    total=$((total + u + s))
  done
  echo "$total"
}
results="$dir/results.tsv"; : > "$results"
for load in keep-alive churn; do
  close=0; [ "$load" = churn ] && close=1
  for round in $(seq 1 "$ROUNDS"); do
    for server in "${servers[@]}"; do
      IFS=: read -r label port header hit <<< "$server"
      serving=$(server_pids "$port")
      before=$(cpu_ticks $serving)
      out=$(CLOSE=$close KEYS=$KEYS SIZE=1024 HOST=api.acme.test wrk -t2 -c64 -d"$DURATION" -s bench/keys.lua \
        "http://127.0.0.1:$port")
      after=$(cpu_ticks $serving)
      rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
      requests=$(awk '/requests in/ {print $1}' <<< "$out")
      errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$out" | tr '\n' ' ')
      p99=$(awk '$1=="p99_us" {print $2}' <<< "$out")
      cpu=$(awk -v n="$requests" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (n > 0 ? t / hz / n * 1e6 : 0) }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$load" "$label" "$rps" "$p99" "$cpu" "$errors" >> "$results"
    done
  done
done
mkdir -p bench/results
python3 - "$results" "$ROUNDS" "$DURATION" <<'REPORT' | tee bench/results/accept.md
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print(f"# Accepting: one socket against one per event loop (wrk -t2 -c64 -d{sys.argv[3]}, 1 KiB hits, "
      f"{sys.argv[2]} interleaved rounds, medians)\n")
print("churn: every request on a new connection (`Connection: close`); keep-alive: 64 connections made once.\n")
print("| load | server | req/s | spread | p99 ms | server CPU µs/req | errors |")
print("|---|---|---:|---|---:|---:|---|")
medians = {}
for load in ("keep-alive", "churn"):
    for label in dict.fromkeys(r[1] for r in rows if r[0] == load):
        mine = [r for r in rows if r[0] == load and r[1] == label]
        rps = [float(r[2]) for r in mine]
        medians[(load, label)] = statistics.median(rps)
        p99 = statistics.median(float(r[3]) for r in mine) / 1000
        cpu = statistics.median(float(r[4]) for r in mine)
        errors = "; ".join(sorted({r[5].strip() for r in mine if r[5].strip()})) or "none"
        print(f"| {load} | {label} | {medians[(load, label)]:,.0f} | {min(rps):,.0f}–{max(rps):,.0f} | "
              f"{p99:.2f} | {cpu:.2f} | {errors} |")
print()
for load in ("keep-alive", "churn"):
    one, many = medians[(load, "edge-node, one acceptor")], medians[(load, "edge-node, reuse_port")]
    nginx = medians[(load, "nginx proxy_cache")]
    print(f"- {load}: reuse_port against one acceptor {many / one:.2f}; against nginx: one acceptor "
          f"{one / nginx:.2f}, reuse_port {many / nginx:.2f}")
REPORT
