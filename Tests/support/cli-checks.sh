#!/usr/bin/env bash
# Checks the edge-node binary itself: check-config accepts the demo config and refuses bad ones with
# exit code 2 and one line naming the key. Prints "N passed, 0 failed"; exits non-zero on a failure.
set -uo pipefail
bin=$1
edgectl=$(dirname "$1")/edgectl
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/master.key"
base='node: { id: cli-a, region: eu-west }
security: { master_key_file: ./master.key }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:18080" }'
passed=0; failed=0
expect() {  # expect NAME EXIT_CODE EXPECTED_LINE_PREFIX [ENV...] < config
  local name=$1 code=$2 prefix=$3; shift 3
  cat > "$work/edge.yaml"
  local out; out=$(env "$@" "$bin" check-config --config "$work/edge.yaml" 2>&1); local rc=$?
  local lines; lines=$(printf '%s\n' "$out" | grep -c .)
  if [ "$rc" = "$code" ] && [[ "$out" == "$prefix"* ]] && [ "$lines" = 1 ]; then passed=$((passed+1))
  else failed=$((failed+1)); echo "cli-check FAILED: $name: exit $rc, output: $out"; fi
}
expect "valid config" 0 "config ok: node cli-a" <<< "$base"
expect "unknown key" 2 "bogus: is not a known key" <<< "$base
bogus: 1"
expect "strict without encryption" 2 "security.encryption: false is refused" TENANT_ENCRYPTION_ENABLED=false <<< "$base"
expect "bad TTL variable" 2 "TENANT_CACHE_TTL: must be a whole number" TENANT_CACHE_TTL=soon <<< "$base"
expect "missing key file" 2 "security.master_key_file: cannot read" <<< "${base/master.key/missing.key}"
expect "bad upstream" 2 "tenants[0].upstream: must be" <<< "${base/http:\/\/127.0.0.1:18080/ftp:\/\/x}"
# run: starts on free ports, answers, and drains on SIGTERM with exit code 0.
cat > "$work/run.yaml" <<YAML
$base
listen: { http: "127.0.0.1:0", admin: "127.0.0.1:0" }
limits: { drain_s: 5 }
YAML
"$bin" run --config "$work/run.yaml" > "$work/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "edge node ready" "$work/run.log" && break; sleep 0.1; done
http=$(grep -o 'http=127.0.0.1:[0-9]*' "$work/run.log" | head -1 | cut -d= -f2)
admin=$(grep -o 'admin=127.0.0.1:[0-9]*' "$work/run.log" | head -1 | cut -d= -f2)
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.test' "http://$http/x")
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/readyz")
kill -TERM "$pid"; rc=0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; rc=99; else wait "$pid"; rc=$?; fi
if [ "$code" = 421 ] && [ "$ready" = 200 ] && [ "$rc" = 0 ] && grep -q "stopped" "$work/run.log"; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: run/SIGTERM: unknown host $code, readyz $ready, exit $rc"; cat "$work/run.log"; fi

# edgectl redis acl: one ACL SETUSER line per schema tenant, limited to its own keys.
cat > "$work/acl.yaml" <<YAML
$base
cache: { redis: { url: "redis://127.0.0.1:6379/0" }, isolation_strategy: hybrid }
YAML
sed -i 's/upstream: "http:\/\/127.0.0.1:18080" }/upstream: "http:\/\/127.0.0.1:18080", isolation: schema }/' "$work/acl.yaml"
acl=$("$edgectl" redis acl --config "$work/acl.yaml" 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$(printf '%s\n' "$acl" | grep -c .)" = 1 ] && [[ "$acl" == "ACL SETUSER te-acme reset on >"* ]] \
   && [[ "$acl" == *" ~te:acme:* "* ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edgectl redis acl: exit $rc: $acl"; fi

echo "cli-checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
