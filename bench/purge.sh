#!/usr/bin/env bash
# `make bench-purge` (and part of `make bench`): purge by tag of ENTRIES (100,000) entries of one
# tenant, 1 KiB each, through the miss path into L1 and L2 (Redis), each tagged `bulk` by the
# upstream's Surrogate-Key, against Varnish's ban of the same tag over the same objects (nginx has
# no purge by tag). For each: how long the purge call takes to answer, and how long until the
# purged objects are gone from memory (the node: its L1 entries and the tenant's Redis keys;
# Varnish: MAIN.n_object, once its ban lurker has walked them, since a ban only marks; the lurker
# runs with ban_lurker_age=0 so it starts at once, as an operator who wants memory back would set
# it). Then a purged key must be a miss on both. Writes bench/results/purge.md and purge.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-100000}
bindir=$(swift build -c release --show-bin-path)
secrets=$(pwd)/edge-config/secrets
source bench/lib.sh
bench_dir te-purge
now_ms() { date +%s%3N; }
up=$(free_port); node=$(free_port); admin=$(free_port); redis_port=$(free_port); varnish=$(free_port)

start_fixed_upstream "$dir" "$up" 'add_header Surrogate-Key "bulk";'
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" > "$dir/redis.log" 2>&1 &
pids+=($!)
cat > "$dir/edge.yaml" <<CONFIG
node: { id: bench-purge, region: eu-west }
listen: { http: "127.0.0.1:$node", admin: "127.0.0.1:$admin" }
state_dir: $dir/state
cache: { memory_bytes: 1073741824, default_ttl_s: 86400, redis: { url: "redis://127.0.0.1:$redis_port/0", pool_size: 1, timeout_ms: 500 } }
security:
  isolation_level: strict
  encryption: true
  master_key_file: $secrets/master.key
  admin_tokens_file: $secrets/admin-tokens.yaml
tenants:
  - { id: t0, hosts: [t0.mem.test], upstream: "http://127.0.0.1:$up" }
CONFIG
"$bindir/edge-node" run --config "$dir/edge.yaml" > "$dir/edge.log" 2>&1 & pids+=($!)
varnishd -n "$dir/varnish" -a "127.0.0.1:$varnish" -b "127.0.0.1:$up" -s malloc,1g -p ban_lurker_age=0 \
  -P "$dir/varnish.pid" > /dev/null
for port in "$up" "$redis_port" "$node" "$admin" "$varnish"; do wait_port "$port"; done
token=$(cat "$secrets/admin.token")

fill() {  # port: asks /m/0 … /m/ENTRIES-1 of t0 in turn until each was asked (as bench/memory.sh)
  local start=0
  while [ "$start" -lt "$ENTRIES" ]; do
    out=$(TENANTS=1 MODE=fill START=$start LIMIT=$ENTRIES wrk -t1 -c64 -d5s -s bench/fill.lua "http://127.0.0.1:$1")
    done_now=$(awk '/requests in/ {print $1}' <<< "$out")
    [ "${done_now:-0}" -gt 0 ] || { echo "purge: port $1 answered nothing" >&2; exit 1; }
    start=$((start + done_now))
  done
}
l1_entries() {
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/_edge/stats" | python3 -c '
import json, sys
tenants = json.load(sys.stdin)["tenants"]
items = tenants.values() if isinstance(tenants, dict) else tenants
print(sum(t.get("l1", t)["entries"] for t in items))'
}
redis_keys() { redis-cli -p "$redis_port" dbsize; }
varnish_objects() { varnishstat -n "$dir/varnish" -1 -f MAIN.n_object | awk '{print $2}'; }
settle() {  # command: waits until its output stops changing for a second, prints it
  local previous=-1 value; value=$($1)
  while [ "$value" != "$previous" ]; do previous=$value; sleep 1; value=$($1); done
  echo "$value"
}
settled_at() {  # command started_ms: polls every 50 ms until the output holds for a second; prints
  # "ms value": the value it kept and when (ms after started_ms) it first had it
  local last value changed_at
  last=$($1); changed_at=$(( $(now_ms) - $2 ))
  while :; do
    sleep 0.05; value=$($1)
    if [ "$value" != "$last" ]; then last=$value; changed_at=$(( $(now_ms) - $2 ))
    elif [ $(( $(now_ms) - $2 - changed_at )) -ge 1000 ]; then break; fi
  done
  echo "$changed_at $last"
}
until_at_most() {  # command limit started_ms: waits (60 s at most) until the command's output <= limit
  for _ in $(seq 1 1200); do [ "$($1)" -le "$2" ] && { echo $(( $(now_ms) - $3 )); return; }; sleep 0.05; done
  echo "timeout"
}

fill "$node"; fill "$varnish"
redis_before=$(settle redis_keys); entries_before=$(l1_entries); objects_before=$(settle varnish_objects)
[ "$entries_before" -ge "$ENTRIES" ] || { echo "purge: the node holds $entries_before entries" >&2; exit 1; }

started=$(now_ms)
answer=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"tenant":"t0","tags":["bulk"]}' "http://127.0.0.1:$admin/_edge/purge")
node_call=$(( $(now_ms) - started ))
node_l1_gone=$(until_at_most l1_entries 0 "$started")
# Redis keeps a purge's fence and each path's index set (until it expires), so its key count falls
# to what it keeps rather than to a number known here: the time is when it reached that.
read -r node_l2_gone redis_after <<< "$(settled_at redis_keys "$started")"
purged=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["purged"])' "$answer")

started=$(now_ms)
varnishadm -n "$dir/varnish" 'ban obj.http.Surrogate-Key ~ "(^|\\s)bulk(\\s|$)"' > /dev/null
varnish_call=$(( $(now_ms) - started ))
varnish_gone=$(until_at_most varnish_objects 0 "$started")

# A purged key is a miss on both (the node says so in Cache-Status, Varnish by one id in X-Varnish).
node_status=$(curl -s -o /dev/null -D - -H 'Host: t0.mem.test' "http://127.0.0.1:$node/m/7" | tr -d '\r' \
  | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
varnish_ids=$(curl -s -o /dev/null -D - -H 'Host: t0.mem.test' "http://127.0.0.1:$varnish/m/7" | tr -d '\r' \
  | awk -F': ' 'tolower($1) == "x-varnish" {print split($2, ids, " ")}')
case "$node_status" in *hit*) echo "purge: a purged key was a hit on the node ($node_status)" >&2; exit 1 ;; esac
[ "$varnish_ids" = 1 ] || { echo "purge: a banned key was a hit on Varnish" >&2; exit 1; }

mkdir -p bench/results
python3 - "$ENTRIES" "$purged" "$node_call" "$node_l1_gone" "$node_l2_gone" "$redis_before" "$redis_after" \
  "$objects_before" "$varnish_call" "$varnish_gone" <<'PY' | tee bench/results/purge.md
import json, sys
(entries, purged, node_call, l1_gone, l2_gone, redis_before, redis_after, objects, varnish_call,
 varnish_gone) = sys.argv[1:]
ms = lambda text: None if text == "timeout" else int(text)
summary = {
    "entries": int(entries),
    "edge_node": {"purged": int(purged), "call_ms": int(node_call), "l1_gone_ms": ms(l1_gone),
                  "l2_gone_ms": ms(l2_gone), "redis_keys_before": int(redis_before),
                  "redis_keys_after": int(redis_after)},
    "varnish": {"objects": int(objects), "ban_call_ms": int(varnish_call), "objects_gone_ms": ms(varnish_gone)},
}
json.dump(summary, open("bench/results/purge.json", "w"), indent=2)
show = lambda v: "did not happen within 60 s" if v is None else f"{v:,} ms"
print(f"## Purge by tag: {int(entries):,} entries of 1 KiB, one tag\n")
print("| system | purge call answers | objects gone from memory | removed |")
print("|---|---|---|---|")
print(f"| edge-node (L1 and L2) | {int(node_call):,} ms | L1 {show(ms(l1_gone))}, L2 {show(ms(l2_gone))} | "
      f"{int(purged):,} (Redis keys {int(redis_before):,} → {int(redis_after):,}) |")
print(f"| Varnish `ban obj.http.Surrogate-Key` | {int(varnish_call):,} ms | {show(ms(varnish_gone))} "
      f"(ban lurker, `ban_lurker_age=0`) | {int(objects):,} objects |")
print("\nA purged key is a miss afterwards on both (checked).\n")
PY
