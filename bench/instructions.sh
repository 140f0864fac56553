#!/usr/bin/env bash
# `make bench-instructions`: instructions per L1 hit, by function, under callgrind. Wall-clock
# figures on a shared 2-core machine drift by 10-15 % between runs; instruction counts repeat to
# within a percent, so a change to the hit path can be judged here before `make bench`.
# The release edge-node runs under valgrind with instrumentation off; the keys are warmed, then
# instrumentation is switched on for exactly HITS hits over one keep-alive connection (sent by a
# client outside valgrind) and off again. Kernel time (writev, epoll) is not counted.
# It also counts calls into the allocator per hit; with MAX_ALLOCATIONS set it fails when a hit
# allocates more often than that (`make bench-smoke` keeps the hit path lean with it).
# TIER=l2 counts L2 hits instead: a real redis-server, and an L1 quota smaller than any entry, so
# every hit is read from Redis (the node's threads only; Redis's own work is not counted).
# GEO=hint counts L1 hits of a tenant with `geo_mode: hint`, each from one of 100 client addresses
# told in X-Forwarded-For by a trusted proxy (the decision cache warm), on MaxMind's test City
# database from ../shared/geoip (GEO_DB= names another). GEO=xff sends the same X-Forwarded-For
# to the same node with `geo_mode: off`: the baseline that tells what the hint itself costs from
# what parsing one more request header costs.
# HEADERS=client sends the fields a browser or an API client library sends (User-Agent, Accept,
# Accept-Language, Accept-Encoding, a request id, Connection: keep-alive) instead of only Host:
# what a real request's head costs to read.
# CLOSE=1 sends every hit on a new connection with `Connection: close`: what accepting, setting
# up and closing a connection adds to a hit (the churn row of `make bench-accept`).
# Usage: bench/instructions.sh [HITS] [SIZE] [ENCRYPTION true|false]
set -euo pipefail
cd "$(dirname "$0")/.."
HITS=${1:-${HITS:-2000}}; SIZE=${2:-${SIZE:-1024}}; ENCRYPTION=${3:-${ENCRYPTION:-true}}; KEYS=${KEYS:-100}
TOP=${TOP:-30}; TIER=${TIER:-l1}; GEO=${GEO:-off}; CLOSE=${CLOSE:-0}; HEADERS=${HEADERS:-host}
dir=$(mktemp -d /tmp/te-instr.XXXXXX); chmod 755 "$dir"
bin=${EDGE_NODE:-$(swift build -c release --show-bin-path)/edge-node}
secrets=$(pwd)/edge-config/secrets
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3; [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port); port=$(free_port); admin=$(free_port)
python3 bench/upstream/sample_upstream.py "$upstream_port" > "$dir/upstream.log" 2>&1 & pids+=($!)
level=$([ "$ENCRYPTION" = true ] && echo strict || echo standard)
sed -e "s#@NAME@#instr#g; s#@PORT@#$port#; s#@ADMIN@#$admin#; s#@ENCRYPTION@#$ENCRYPTION#g; s#@LEVEL@#$level#" \
  -e "s#@DIR@#$dir#; s#@SECRETS@#$secrets#g; s#127.0.0.1:18080#127.0.0.1:$upstream_port#g" \
  bench/edge-bench.yaml.template > "$dir/edge.yaml"
marker=hit
if [ "$TIER" = l2 ]; then
  redis_port=$(free_port); marker=detail=l2
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" > "$dir/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.1; done
  sed -i -e "s#^cache: .*#cache: { memory_bytes: 536870912, default_ttl_s: 3600, redis: { url: \"redis://127.0.0.1:$redis_port/0\", pool_size: 1, timeout_ms: 500 } }#" \
    -e 's#\(upstream: "http://127.0.0.1:[0-9]*"\) }#\1, quota_bytes: 1024 }#' "$dir/edge.yaml"
fi
if [ "$GEO" = hint ] || [ "$GEO" = xff ]; then
  geo_db=${GEO_DB:-$(pwd)/../shared/geoip/GeoIP2-City-Test.mmdb}
  [ -f "$geo_db" ] || { echo "instructions: GEO=hint needs a City database (GEO_DB=)" >&2; exit 1; }
  cat >> "$dir/edge.yaml" <<GEOCONFIG
geoip: { database: "$geo_db", trusted_proxies: ["127.0.0.1"], probe_interval_s: 0 }
regions:
  - { name: eu-west, lat: 53.35, lon: -6.26, public_url: "https://eu-west.edge.test" }
  - { name: us-east, lat: 38.9, lon: -77.0, public_url: "https://us-east.edge.test" }
  - { name: ap-northeast, lat: 35.68, lon: 139.69, public_url: "https://ap-northeast.edge.test" }
GEOCONFIG
  [ "$GEO" = xff ] || sed -i -e 's#\(hosts: \[api.acme.test\], upstream: "[^"]*"\)#\1, geo_mode: hint#' "$dir/edge.yaml"
fi
# Valgrind 3.19 cannot read the DWARF 5 that Swift 6.3 writes: count on a copy without debug
# information (function names come from the symbol table, which stays).
objcopy --strip-debug "$bin" "$dir/edge-node"
cc -shared -fPIC -O2 -o "$dir/sigsuspend-copy.so" bench/valgrind/sigsuspend-copy.c
LD_PRELOAD="$dir/sigsuspend-copy.so" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/callgrind.out" \
  "$dir/edge-node" run --config "$dir/edge.yaml" > "$dir/edge.log" 2>&1 & node=$!; pids+=($node)
for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
python3 bench/warm.py "$port" "$KEYS" "$SIZE" api.acme.test cache-status "$marker"
python3 - "$port" "$KEYS" "$SIZE" "$HITS" "$node" "$marker" "$GEO" "$CLOSE" "$HEADERS" <<'EOF'
import http.client, subprocess, sys
port, keys, size, hits, node, marker, geo, close, fields = (
    int(a) if i < 4 else a for i, a in enumerate(sys.argv[1:]))
client_fields = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Accept": "application/json, text/plain, */*", "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br", "X-Request-Id": "4b0c2f8e-5d1a-4e7b-9a63-0f2d8c1e7a55",
    "Connection": "keep-alive"}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
clients = [f"81.2.69.{n}" if n % 2 else f"216.160.83.{n}" for n in range(100)]
def get(n, client=0):
    global conn
    headers = {"Host": "api.acme.test"}
    if fields == "client":
        headers.update(client_fields)
    if close == "1":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers["Connection"] = "close"
    if geo in ("hint", "xff"):
        headers["X-Forwarded-For"] = clients[client % len(clients)]
    conn.request("GET", f"/v1/blob/{n}?size={size}", headers=headers)
    response = conn.getresponse()
    response.read()
    if close == "1":
        conn.close()
    if marker not in (response.getheader("cache-status") or ""):
        sys.exit(f"instructions: key {n} was not a hit: {response.getheader('cache-status')}")
    if geo == "hint" and not response.getheader("x-edge-preferred-region"):
        sys.exit(f"instructions: key {n} was answered without a region hint")
for n in range(max(keys, len(clients))):  # the connection open, every client's decision made, before counting
    get(n % keys, n)
subprocess.run(["callgrind_control", "-i", "on", node], check=True, capture_output=True)
for i in range(hits):
    get(i % keys, i)
subprocess.run(["callgrind_control", "-i", "off", node], check=True, capture_output=True)
subprocess.run(["callgrind_control", "-d", node], check=True, capture_output=True)
EOF
kill "$node"; wait "$node" 2>/dev/null || true
# The dump taken after the counted hits (callgrind.out.1); the file written at exit holds nothing.
out=$(ls "$dir"/callgrind.out.1 2>/dev/null | head -1)
[ -n "$out" ] || { echo "instructions: callgrind wrote no dump" >&2; exit 1; }
annotated=$(callgrind_annotate --inclusive=no "$out" 2>/dev/null)
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' <<< "$annotated")
[ -n "$total" ] && [ "$total" -gt 0 ] || { echo "instructions: no instructions were counted" >&2; exit 1; }
# Calls into the allocator: callgrind names a function once (`fn=(id) name`) and refers to it by id after.
allocations=$(awk '
    match($0, /^c?fn=\([0-9]+\)/) {
      id = substr($0, RSTART, RLENGTH); sub(/^c?fn=/, "", id); name = substr($0, RLENGTH + 2)
      if (name != "") names[id] = name
      callee = ($0 ~ /^cfn=/) ? names[id] : ""
      next
    }
    /^calls=/ && callee ~ /^(malloc|calloc|realloc|posix_memalign|aligned_alloc|memalign)$/ {
      split($1, parts, "="); total += parts[2]
    }
    END { print total + 0 }' "$out")
per_hit_allocations=$(awk -v a="$allocations" -v h="$HITS" 'BEGIN { printf "%.2f", a / h }')
echo "# Instructions per ${TIER^^} hit (callgrind, release edge-node, $SIZE B bodies, encryption $ENCRYPTION, geo $GEO, request fields $HEADERS)"
echo
echo "$HITS hits over $([ "$CLOSE" = 1 ] && echo "a connection each" || echo "one keep-alive connection"): $total instructions, $((total / HITS)) per hit;" \
  "$allocations allocations, $per_hit_allocations per hit"
echo
echo "Functions by their own instructions per hit (top $TOP):"
echo
echo '```'
awk -v hits="$HITS" -v top="$TOP" '
    /PROGRAM TOTALS/ { listing = 1; next }
    listing && $1 ~ /^[0-9,]+$/ && n < top {
      count = $1; gsub(",", "", count); $1 = ""; $2 = ""; sub(/^ +/, "")
      sub(/^[^:]*:/, ""); sub(/ \[.*$/, "")
      printf "%8.0f  %s\n", count / hits, $0; n++
    }' <<< "$annotated" | swift demangle --simplified | cut -c1-120
echo '```'
if [ -n "${MAX_ALLOCATIONS:-}" ] && awk -v a="$per_hit_allocations" -v m="$MAX_ALLOCATIONS" 'BEGIN { exit !(a > m) }'; then
  echo "instructions: a hit allocates $per_hit_allocations times, more than MAX_ALLOCATIONS=$MAX_ALLOCATIONS" >&2
  exit 1
fi
