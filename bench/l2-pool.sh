#!/usr/bin/env bash
# The L2-only hit path with a given number of Redis connections: `bench/l2-pool.sh N` (after `make bench`
# has built the release binary). Two wrk runs of 4 s, 1 KiB bodies, 1,000 keys, L1 quota too small
# to hold any entry. EDGE_NODE=path runs another build (an older design) side by side.
set -u
cd "$(dirname "$0")/.."
pool=$1
d=$(mktemp -d)
python3 bench/upstream/sample_upstream.py 18080 > /dev/null 2>&1 & up=$!
redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no --dir "$d" > /dev/null 2>&1 & rs=$!
sleep 0.5
sed -e "s#@NAME@#l2#g; s#@PORT@#8185#; s#@ADMIN@#9195#; s#@ENCRYPTION@#true#g; s#@LEVEL@#strict#; s#@DIR@#$d#; s#@SECRETS@#$(pwd)/edge-config/secrets#g" bench/edge-bench.yaml.template > "$d/e.yaml"
sed -i -e "s#^cache: .*#cache: { memory_bytes: 536870912, default_ttl_s: 3600, redis: { url: \"redis://127.0.0.1:6399/0\", pool_size: $pool, timeout_ms: 50 } }#" -e 's#upstream: "http://127.0.0.1:18080" }#upstream: "http://127.0.0.1:18080", quota_bytes: 1024 }#' "$d/e.yaml"
"${EDGE_NODE:-.build/release/edge-node}" run --config "$d/e.yaml" > "$d/n.log" 2>&1 & node=$!
sleep 1
python3 bench/warm.py 8185 1000 1024 api.acme.test cache-status detail=l2 || cat "$d/n.log"
cpu() { awk '{print $14 + $15}' /proc/$node/stat; }  # node's user + system CPU, in clock ticks
for i in 1 2; do
  before=$(cpu)
  out=$(KEYS=1000 SIZE=1024 HOST=api.acme.test wrk -t2 -c64 -d4s -s bench/keys.lua http://127.0.0.1:8185)
  after=$(cpu)
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | grep Requests
  echo "node CPU per request: $(( (after - before) * 1000000 / $(getconf CLK_TCK) / total )) us"
done
kill $node $rs $up; wait 2>/dev/null; rm -rf "$d"
