#!/usr/bin/env bash
# `make bench-failover`: what losing a machine costs, with real processes on loopback (issue 14).
#  1. Redis Sentinel: a primary, its replica and three sentinels (`redis-server --sentinel`,
#     down-after DOWN_AFTER_MS), an edge-node following them whose tenant's L1 holds nothing (every
#     hit is an L2 hit). A client asks for one key every 5 ms; the primary is killed with SIGKILL;
#     reported: time to the first L2 hit on the promoted replica, answers that were 5xx, requests.
#  2. Origin replicas: two edge-origin processes on one PostgreSQL and an edge-node that lists both
#     (`origin.urls`, polling replica B). B is killed with SIGKILL while the node's poll waits on it,
#     and a purge is published through A at once; reported: time until the node has applied it.
# ROUNDS rounds of each; the release binaries of `make release`. Writes bench/results/failover.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${ROUNDS:-3}; DOWN_AFTER_MS=${DOWN_AFTER_MS:-1000}
bindir=$(swift build -c release --show-bin-path)
secrets=$(pwd)/edge-config/secrets
bench_dir te-failover
start_postgres
trap 'stop_postgres; bench_cleanup' EXIT
up_port=$(free_port); start_fixed_upstream "$dir" "$up_port"; wait_port "$up_port"
ready() {  # ready PORT: until something answers PING there
  for _ in $(seq 1 200); do [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && return; sleep 0.05; done; exit 1
}

sentinel_round() {
  local round=$1 p r
  p=$(free_port); r=$(free_port)
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/p$round.log" 2>&1 &
  local primary=$!; pids+=("$primary")
  redis-server --port "$r" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --replicaof 127.0.0.1 "$p" \
    >"$dir/r$round.log" 2>&1 & pids+=($!)
  ready "$p"; ready "$r"
  local addresses="" ports=()
  for i in 1 2 3; do
    local s; s=$(free_port); ports+=("$s")
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor edge-l2 127.0.0.1 %s 2\n' "$s" "$dir" "$p" > "$dir/s$round-$i.conf"
    printf 'sentinel down-after-milliseconds edge-l2 %s\nsentinel failover-timeout edge-l2 5000\n' "$DOWN_AFTER_MS" \
      >> "$dir/s$round-$i.conf"
    redis-server "$dir/s$round-$i.conf" --sentinel >"$dir/s$round-$i.log" 2>&1 & pids+=($!)
    addresses+="${addresses:+, }\"127.0.0.1:$s\""
  done
  for s in "${ports[@]}"; do ready "$s"; done
  for _ in $(seq 1 200); do  # every sentinel knows the two others and the replica
    local ok=1
    for s in "${ports[@]}"; do
      [ "$(redis-cli -p "$s" SENTINEL sentinels edge-l2 | grep -c '^name$')" = 2 ] || ok=0
      [ "$(redis-cli -p "$s" SENTINEL replicas edge-l2 | grep -c '^name$')" = 1 ] || ok=0
    done
    [ "$ok" = 1 ] && break; sleep 0.1
  done
  local port admin; port=$(free_port); admin=$(free_port)
  cat > "$dir/node-s$round.yaml" <<NODE
node: { id: failover-$round, region: eu-west }
listen: { http: "127.0.0.1:$port", admin: "127.0.0.1:$admin" }
state_dir: $dir/state-s$round
cache: { memory_bytes: 67108864, default_ttl_s: 3600, redis: { sentinel: { addresses: [$addresses], master: edge-l2 }, timeout_ms: 50 } }
security: { isolation_level: strict, encryption: true, master_key_file: $secrets/master.key, admin_tokens_file: $secrets/admin-tokens.yaml }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$up_port", quota_bytes: 1024 }
NODE
  "$bindir/edge-node" run --config "$dir/node-s$round.yaml" >"$dir/node-s$round.log" 2>&1 & local node=$!; pids+=("$node")
  wait_port "$port"
  python3 - "$port" "$primary" <<'PY'
import http.client, os, sys, time
port, primary = int(sys.argv[1]), int(sys.argv[2])
def ask():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    c.request("GET", "/failover/key", headers={"Host": "api.acme.test"})
    r = c.getresponse(); r.read(); c.close()
    return r.status, r.getheader("cache-status") or ""
deadline = time.time() + 10
while time.time() < deadline:  # an L2 hit before the primary goes
    status, cache = ask()
    if cache.endswith("detail=l2"): break
    time.sleep(0.01)
os.kill(primary, 9); killed = time.time()
errors = requests = 0
while time.time() < killed + 60:
    status, cache = ask(); requests += 1
    if status >= 500: errors += 1
    if cache.endswith("detail=l2"):
        print(f"sentinel\t{(time.time() - killed) * 1000:.0f}\t{errors}\t{requests}"); break
    time.sleep(0.005)
else:
    print(f"sentinel\t-\t{errors}\t{requests}")
PY
}

origin_round() {
  local round=$1 a b
  a=$(free_port); b=$(free_port)
  for name in a b; do
    local port; port=$([ "$name" = a ] && echo "$a" || echo "$b")
    cat > "$dir/origin-$name$round.yaml" <<ORIGIN
listen: "127.0.0.1:$port"
tls: { cert_file: $secrets/origin.pem, key_file: $secrets/origin.key }
state_dir: $dir/origin-$name$round
storage: { postgres: { url: "$pg_url", tls: disable, pool_size: 4 } }
regions: [ { name: eu-west, lat: 53.3, lon: -6.3, public_url: "https://eu-west.test" } ]
tokens_file: $secrets/origin-tokens.yaml
ORIGIN
    "$bindir/edge-origin" run --config "$dir/origin-$name$round.yaml" >"$dir/origin-$name$round.log" 2>&1 &
    pids+=($!); [ "$name" = b ] && origin_b=$!
    wait_port "$port"
  done
  local port admin; port=$(free_port); admin=$(free_port)
  cat > "$dir/node-o$round.yaml" <<NODE
node: { id: failover-o$round, region: eu-west }
listen: { http: "127.0.0.1:$port", admin: "127.0.0.1:$admin" }
state_dir: $dir/state-o$round
security: { isolation_level: strict, encryption: true, master_key_file: $secrets/master.key, admin_tokens_file: $secrets/admin-tokens.yaml }
origin: { urls: ["https://127.0.0.1:$b", "https://127.0.0.1:$a"], ca_file: $secrets/origin-ca.pem, token_file: $secrets/node.token, poll_wait_s: 25 }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$up_port" }
NODE
  "$bindir/edge-node" run --config "$dir/node-o$round.yaml" >"$dir/node-o$round.log" 2>&1 & pids+=($!)
  wait_port "$port"
  python3 - "$a" "$admin" "$origin_b" "$secrets" <<'PY'
import http.client, json, os, ssl, sys, time
a, admin, origin_b, secrets = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context(cafile=f"{secrets}/origin-ca.pem")
publisher = open(f"{secrets}/publisher.token").read().strip()
token = open(f"{secrets}/admin.token").read().strip()
def publish():
    c = http.client.HTTPSConnection("127.0.0.1", a, context=context, timeout=5)
    c.request("POST", "/v1/invalidations", body='{"tenant":"acme","keys":["/x"]}',
              headers={"Authorization": f"Bearer {publisher}"})
    r = c.getresponse(); body = json.loads(r.read()); c.close()
    return body["seq"]
def cursor():
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=2)
    c.request("GET", "/_edge/stats", headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse(); body = json.loads(r.read()); c.close()
    return body["invalidation"]["cursor"]
def wait_for(seq, limit):
    start = time.time()
    while time.time() < start + limit:
        if cursor() >= seq: return True
        time.sleep(0.005)
    return False
first = publish()  # the node follows B and is waiting in a long poll there
wait_for(first, 20); time.sleep(0.5)
os.kill(origin_b, 9); killed = time.time()
seq = publish()
print("origin\t" + (f"{(time.time() - killed) * 1000:.0f}" if wait_for(seq, 60) else "-"))
PY
}

results="$dir/results.tsv"; : > "$results"
# Each round runs in this shell (not a subshell), so every process it starts is in `pids` and stopped
# at exit; each round's client prints its row into the results.
# A round's processes are stopped before the next starts, so no round runs beside another's leftovers.
end_round() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
for round in $(seq 1 "$ROUNDS"); do
  sentinel_round "$round" >> "$results" || printf 'sentinel\t-\t-\t-\n' >> "$results"
  end_round
  origin_round "$round" >> "$results" || printf 'origin\t-\n' >> "$results"
  end_round
done
mkdir -p bench/results
python3 - "$results" "$DOWN_AFTER_MS" <<'PY' | tee bench/results/failover.md
import sys, statistics
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
down = sys.argv[2]
sentinel = [r for r in rows if r[0] == "sentinel"]
origin = [r for r in rows if r[0] == "origin"]
print("## Losing a machine (make bench-failover)\n")
print(f"Redis Sentinel with `down-after-milliseconds {down}` (the time Sentinel waits before it calls the primary")
print("down; Redis's example config says 30000): the primary killed with SIGKILL under one request every 5 ms.\n")
print("| round | first L2 hit on the promoted replica after ms | 5xx answers | requests meanwhile |")
print("|---|---:|---:|---:|")
for i, r in enumerate(sentinel, 1): print(f"| {i} | {r[1]} | {r[2]} | {r[3]} |")
print("\nTwo origin replicas on one PostgreSQL; the node polls replica B, which is killed with SIGKILL, and a purge")
print("is published through replica A at once.\n")
print("| round | purge applied on the node after ms |")
print("|---|---:|")
for i, r in enumerate(origin, 1): print(f"| {i} | {r[1]} |")
PY
