#!/usr/bin/env bash
# `make run`: starts the sample upstream (two tenants on one loopback port), the origin
# (edge-config/demo-origin.yaml, HTTPS) and edge-node (edge-config/demo.yaml), shows a miss, a hit,
# a purge published at the origin and a signed bundle pushed to the node, prints the lines to try,
# and keeps running until Ctrl-C, which stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=$(swift build -c release --show-bin-path)
bin=$bindir/edge-node
mkdir -p .demo

python3 bench/upstream/sample_upstream.py 18080 > .demo/upstream.log 2>&1 &
upstream=$!
"$bindir/edge-origin" run --config edge-config/demo-origin.yaml > .demo/edge-origin.log 2>&1 &
origin=$!
"$bin" run --config edge-config/demo.yaml > .demo/edge-node.log 2>&1 &
node=$!
trap 'kill $node $origin $upstream 2>/dev/null; wait $node 2>/dev/null; echo; echo "demo stopped"' EXIT INT TERM

for _ in $(seq 1 100); do curl -sf localhost:9090/readyz >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf localhost:9090/readyz >/dev/null || { echo "edge-node did not start:"; cat .demo/edge-node.log; exit 1; }

show() { echo; echo "\$ $*"; eval "$@" | grep -iE '^(HTTP|cache-status|age|x-edge-region)|purged|^\{' || true; }
echo "TenantEdge demo: edge-node on 127.0.0.1:8080 (tenants), 127.0.0.1:9090 (admin); origin on https://127.0.0.1:8443;"
echo "upstream on 127.0.0.1:18080"
ctl="$bindir/edgectl"
at_origin="--origin https://127.0.0.1:8443 --ca-file edge-config/secrets/origin-ca.pem"
show "curl -si -H 'Host: api.acme.test' http://127.0.0.1:8080/v1/items/1"
show "curl -si -H 'Host: api.acme.test' http://127.0.0.1:8080/v1/items/1"
show "curl -si -H 'Host: api.globex.test' http://127.0.0.1:8080/v1/items/1"
show "curl -s -X POST -H \"Authorization: Bearer \$(cat edge-config/secrets/admin.token)\" http://127.0.0.1:9090/_edge/purge -d '{\"tenant\":\"acme\",\"tags\":[\"items\"]}'"
show "curl -si -H 'Host: api.acme.test' http://127.0.0.1:8080/v1/items/1"
show "$ctl purge $at_origin --token-file edge-config/secrets/publisher.token --tenant acme --key /v1/items/1"
sleep 0.3
show "curl -si -H 'Host: api.acme.test' http://127.0.0.1:8080/v1/items/1"
show "$ctl config publish $at_origin --token-file edge-config/secrets/origin-admin.token"
cat <<TXT

Try more (the admin token is in edge-config/secrets/admin.token):
  curl -si -H 'Host: api.acme.test'  http://127.0.0.1:8080/v1/blob/7?size=16384
  curl -si -H 'Host: nope.test'      http://127.0.0.1:8080/v1/items/1          # 421 unknown_tenant
  curl -s  -H "Authorization: Bearer \$(cat edge-config/secrets/admin.token)" http://127.0.0.1:9090/_edge/stats
  curl -s  http://127.0.0.1:9090/metrics | grep ^edge_
  $ctl purge $at_origin --token-file edge-config/secrets/publisher.token --tenant globex --all
  $ctl audit verify .demo/state/audit.jsonl
Logs: .demo/edge-node.log, .demo/edge-origin.log. Ctrl-C stops the demo.
TXT
wait $node
