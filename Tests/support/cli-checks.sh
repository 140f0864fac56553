#!/usr/bin/env bash
# Checks the edge-node binary itself: check-config accepts the demo config and refuses bad ones with
# exit code 2 and one line naming the key. Prints "N passed, 0 failed"; exits non-zero on a failure.
set -uo pipefail
# NIO crashes (instead of printing) when something schedules on an event loop already shut down.
export SWIFTNIO_STRICT=1
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
state_dir: ./state
limits: { drain_s: 5 }
YAML
start_node() {  # start_node CONFIG LOG: runs edge-node in the background; sets pid, http, admin once it is ready
  "$bin" run --config "$1" > "$2" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q "edge node ready" "$2" && break; sleep 0.1; done
  http=$(grep -o 'http=127.0.0.1:[0-9]*' "$2" | head -1 | cut -d= -f2)
  admin=$(grep -o 'admin=127.0.0.1:[0-9]*' "$2" | head -1 | cut -d= -f2)
}
start_node "$work/run.yaml" "$work/run.log"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.test' "http://$http/x")
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/readyz")
denied=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-token-cli' "http://$admin/_edge/stats")
kill -TERM "$pid"; rc=0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; rc=99; else wait "$pid"; rc=$?; fi
if [ "$code" = 421 ] && [ "$ready" = 200 ] && [ "$rc" = 0 ] && grep -q "stopped" "$work/run.log"; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: run/SIGTERM: unknown host $code, readyz $ready, exit $rc"; cat "$work/run.log"; fi

# As an unprivileged user, as the container image and the systemd units run it: every socket
# option the node sets must be one a non-root process may set (a SOL_SOCKET/TCP level mix-up once
# asked for SO_DEBUG on each accepted connection, which only root may: every connection was reset).
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$work/nobody"; cp "$work/master.key" "$work/nobody/master.key"
  sed 's#state_dir: ./state#state_dir: ./state-nobody#' "$work/run.yaml" > "$work/nobody/run.yaml"
  chown -R nobody "$work/nobody"; chmod 755 "$work"
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$bin" run --config "$work/nobody/run.yaml" > "$work/nobody/run.log" 2>&1 &
  upid=$!
  for _ in $(seq 1 100); do grep -q "edge node ready" "$work/nobody/run.log" && break; sleep 0.1; done
  uhttp=$(grep -o 'http=127.0.0.1:[0-9]*' "$work/nobody/run.log" | head -1 | cut -d= -f2)
  uadmin=$(grep -o 'admin=127.0.0.1:[0-9]*' "$work/nobody/run.log" | head -1 | cut -d= -f2)
  ucode=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.test' "http://$uhttp/x")
  uready=$(curl -s -o /dev/null -w '%{http_code}' "http://$uadmin/readyz")
  kill -TERM "$upid"; wait "$upid"; urc=$?
  if [ "$ucode" = 421 ] && [ "$uready" = 200 ] && [ "$urc" = 0 ]; then passed=$((passed+1))
  else failed=$((failed+1)); echo "cli-check FAILED: edge-node as nobody: traffic $ucode, readyz $uready, exit $urc"; cat "$work/nobody/run.log"; fi
fi

# The example configs pass check-config as shipped, with demo secrets made for a copy of them.
repo=$(cd "$(dirname "$0")/../.." && pwd)
cp -r "$repo/edge-config" "$work/examples"; rm -rf "$work/examples/secrets"
"$repo/scripts/make-demo-secrets.sh" "$work/examples/secrets" > /dev/null
for file in demo.yaml; do
  out=$("$bin" check-config --config "$work/examples/$file" 2>&1); rc=$?
  if [ "$rc" = 0 ] && [[ "$out" == "config ok: "* ]]; then passed=$((passed+1))
  else failed=$((failed+1)); echo "cli-check FAILED: edge-config/$file: exit $rc: $out"; fi
done
out=$("$(dirname "$1")/edge-origin" check-config --config "$work/examples/demo-origin.yaml" 2>&1); rc=$?
if [ "$rc" = 0 ] && [[ "$out" == "config ok: origin"* ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edge-config/demo-origin.yaml: exit $rc: $out"; fi
rm "$work/examples/secrets/origin-signing.key"
out=$("$(dirname "$1")/edge-origin" check-config --config "$work/examples/demo-origin.yaml" 2>&1); rc=$?
if [ "$rc" = 2 ] && [[ "$out" == "signing_key_file: cannot read "* ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edge-origin check-config without its signing key: exit $rc: $out"; fi

# systemd Type=notify: READY=1 once the listeners answer, RELOADING=1/READY=1 around SIGHUP,
# STOPPING=1 on SIGTERM (a datagram to NOTIFY_SOCKET; no libsystemd).
sed 's#state_dir: ./state#state_dir: ./state-notify#' "$work/run.yaml" > "$work/notify.yaml"
out=$(python3 "$(dirname "$0")/notify-check.py" --bin "$bin" --config "$work/notify.yaml" \
  --port-pattern 'admin=127\.0\.0\.1:([0-9]+)' --probe 'http://127.0.0.1:{port}/readyz' --hup 2>&1); rc=$?
if [ "$rc" = 0 ]; then passed=$((passed+1)); [ -n "${CLI_VERBOSE:-}" ] && echo "$out"
else failed=$((failed+1)); echo "cli-check FAILED: edge-node under NOTIFY_SOCKET: $out"; fi

# logging.format json: every line the daemon writes is one JSON object, the ready line among them;
# the wrong token's security event is a line with its fields, never the token.
sed 's#state_dir: ./state#state_dir: ./state-json#' "$work/run.yaml" > "$work/json.yaml"
echo 'logging: { format: json }' >> "$work/json.yaml"
"$bin" run --config "$work/json.yaml" > "$work/json.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '"message":"edge node ready"' "$work/json.log" && break; sleep 0.1; done
admin=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("message") == "edge node ready": print(o["admin"])' "$work/json.log" 2>/dev/null)
curl -s -o /dev/null -H 'Authorization: Bearer wrong-token-json' "http://$admin/_edge/stats"
sleep 0.3; kill -TERM "$pid"; wait "$pid"
if python3 -c 'import json,sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines and all({"ts", "level", "label", "message"} <= set(o) for o in lines)
assert any(o["message"] == "security event" and o.get("kind") == "auth_failed" for o in lines)' "$work/json.log" \
   && ! grep -q 'wrong-token-json' "$work/json.log"; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: json logging"; cat "$work/json.log"; fi

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

# The audit log the run left: the refused token is an auth_failed entry; the chain verifies, and
# an edited line makes `edgectl audit verify` fail naming that line. The token never appears.
audit="$work/state/audit.jsonl"
out=$("$edgectl" audit verify "$audit" 2>&1); rc=$?
if [ "$denied" = 401 ] && [ "$rc" = 0 ] && [[ "$out" == *"2 entries, chain verified"* ]] && grep -q '"event":"auth_failed"' "$audit" \
   && ! grep -q 'wrong-token-cli' "$audit" "$work/run.log"; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: audit verify: admin $denied, exit $rc: $out"; cat "$audit"; fi
sed -i 's/"auth_failed"/"auth_passed"/' "$audit"
out=$("$edgectl" audit verify "$audit" 2>&1); rc=$?
if [ "$rc" = 1 ] && [[ "$out" == *"audit.jsonl:2: chain broken: hash does not match the line" ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: audit verify of an edited log: exit $rc: $out"; fi

# edgectl keygen: a signing key pair and a KEK per region, secrets with mode 0600, never overwritten.
out=$("$edgectl" keygen --out "$work/keys" --region eu-west --region us-east 2>&1); rc=$?
modes=$(stat -c '%n %a' "$work/keys/origin-signing.key" "$work/keys/eu-west.kek" "$work/keys/us-east.kek" | awk '{print $2}' | sort -u)
if [ "$rc" = 0 ] && [ "$modes" = 600 ] && [ "$(stat -c %s "$work/keys/eu-west.kek")" = 32 ] \
   && grep -q "BEGIN PUBLIC KEY" "$work/keys/origin-signing.pub"; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edgectl keygen: exit $rc, modes $modes: $out"; fi
out=$("$edgectl" keygen --out "$work/keys" 2>&1); rc=$?
if [ "$rc" = 2 ] && [[ "$out" == *"origin-signing.key: exists; not overwritten" ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edgectl keygen over existing keys: exit $rc: $out"; fi

# Config pushes survive a kill -9 at any moment: after each kill the node restarts with one whole
# bundle, at least as new as the last one it acknowledged with 200 (persisted before the answer).
"$edgectl" keygen --out "$work/push" > /dev/null
token=push-token-cli
printf -- '- {sha256: "%s", scopes: [config, read], tenants: ["*"]}\n' "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" > "$work/tokens.yaml"
cat > "$work/push.yaml" <<YAML
node: { id: cli-push, region: eu-west }
listen: { http: "127.0.0.1:0", admin: "127.0.0.1:0" }
state_dir: ./push-state
security: { master_key_file: ./master.key, config_public_key: ./push/origin-signing.pub, admin_tokens_file: ./tokens.yaml }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:18080" }
YAML
for v in $(seq 1 60); do
  printf '{"version":%d,"issued_at":"2026-11-27T00:00:00Z","regions":[],"tenants":[{"id":"acme","hosts":["api.acme.test"],"upstream":"http://127.0.0.1:18080"},{"id":"t%d","hosts":["api.t%d.test"],"upstream":"http://127.0.0.1:18080"}]}' "$v" "$v" "$v" > "$work/bundle-$v.json"
  "$edgectl" config sign --key "$work/push/origin-signing.key" "$work/bundle-$v.json" > "$work/bundle-$v.sig"
done
start_push_node() {
  : > "$work/push.log"
  "$bin" run --config "$work/push.yaml" > "$work/push.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q "edge node ready" "$work/push.log" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  admin=$(grep -o 'admin=127.0.0.1:[0-9]*' "$work/push.log" | head -1 | cut -d= -f2)
}
running_version() { curl -s -H "Authorization: Bearer $token" "http://$admin/_edge/stats" | grep -o '"config_version":[0-9]*' | cut -d: -f2; }
acked=0; torn=""
for round in 0 1 2 3 4; do
  start_push_node
  [ -n "$admin" ] || { torn="round $round: did not start: $(tail -2 "$work/push.log")"; break; }
  now=$(running_version)
  [ "${now:-0}" -ge "$acked" ] || { torn="round $round: running $now after $acked was acknowledged"; kill -9 "$pid"; break; }
  : > "$work/acks"
  ( for v in $(seq $((round * 12 + 1)) $((round * 12 + 12))); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $token" -H "Edge-Signature: $(cat "$work/bundle-$v.sig")" \
        --data-binary "@$work/bundle-$v.json" "http://$admin/_edge/config")
      [ "$code" = 200 ] && echo "$v" >> "$work/acks"
    done ) &
  pusher=$!
  sleep "0.$((RANDOM % 4 + 1))"
  kill -9 "$pid"; wait "$pusher" 2>/dev/null; wait "$pid" 2>/dev/null
  last=$(sort -n "$work/acks" | tail -1); [ -n "$last" ] && acked=$last
done
if [ -z "$torn" ]; then
  start_push_node; final=$(running_version); kill -TERM "$pid"; wait "$pid" 2>/dev/null
  [ "${final:-0}" -ge "$acked" ] && [ "$acked" -gt 0 ] || torn="final: running ${final:-none}, acknowledged $acked"
fi
[ -n "${CLI_VERBOSE:-}" ] && echo "config push under kill: acknowledged up to $acked, running ${final:-?}"
if [ -z "$torn" ]; then passed=$((passed+1)); else failed=$((failed+1)); echo "cli-check FAILED: config push under kill -9: $torn"; fi

# edge-origin over TLS, driven by edgectl: a purge gets its seq, a tenant and a publish get a
# signed bundle; the wrong CA is refused with one line; a bad origin config is one line and exit 2.
origin_bin=$(dirname "$1")/edge-origin
printf 'pub-token-cli' > "$work/pub.token"; printf 'admin-token-cli' > "$work/admin.token"
hash() { printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1; }
oport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/origin.yaml" <<YAML
listen: "127.0.0.1:$oport"
tls: { cert_file: "$TE_TEST_SERVER_CERT", key_file: "$TE_TEST_SERVER_KEY" }
state_dir: ./origin-state
signing_key_file: ./push/origin-signing.key
tokens:
  admin: [{sha256: "$(hash "$work/admin.token")"}]
  publishers: [{sha256: "$(hash "$work/pub.token")", tenants: ["*"]}]
regions: [{name: eu-west, lat: 53.3, lon: -6.3, public_url: "https://eu-west.test"}]
YAML
"$origin_bin" run --config "$work/origin.yaml" > "$work/origin.log" 2>&1 &
opid=$!
for _ in $(seq 1 100); do grep -q "edge origin ready" "$work/origin.log" && break; sleep 0.05; done
common=(--origin "https://127.0.0.1:$oport" --ca-file "$TE_TEST_CA_FILE")
purge=$("$edgectl" purge "${common[@]}" --token-file "$work/pub.token" --tenant acme --tag t1 2>&1); prc=$?
printf '{"hosts":["api.newco.test"],"upstream":"http://127.0.0.1:18080"}' > "$work/newco.json"
put=$("$edgectl" tenant put "${common[@]}" --token-file "$work/admin.token" --id newco --file "$work/newco.json" 2>&1)
publish=$("$edgectl" config publish "${common[@]}" --token-file "$work/admin.token" 2>&1)
denied=$("$edgectl" purge "${common[@]}" --token-file "$work/pub.token" --tenant acme --all --ca-file "$TE_TEST_OTHER_CA_FILE" 2>&1); drc=$?
forbidden=$("$edgectl" config publish "${common[@]}" --token-file "$work/pub.token" 2>&1); frc=$?
report=$("$edgectl" report compliance "${common[@]}" --token-file "$work/admin.token" 2>&1)
# Issue 11: an empty query pair before authentication once trapped the whole control plane.
hostile=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TE_TEST_CA_FILE" "https://127.0.0.1:$oport/healthz?=&&=")
hostile_unauth=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TE_TEST_CA_FILE" "https://127.0.0.1:$oport/v1/invalidations?=")
if [ "$hostile" = 200 ] && [ "$hostile_unauth" = 401 ] && kill -0 "$opid" 2>/dev/null; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edge-origin with ?= : healthz $hostile, feed $hostile_unauth"; fi
kill -TERM "$opid"; wait "$opid" 2>/dev/null
if [ "$prc" = 0 ] && [ "$purge" = '{"seq":1}' ] && [[ "$put" == '{"tenant":"newco"}' ]] && [[ "$publish" == '{"version":1,"pushed":{}}' ]] \
   && [ "$drc" = 2 ] && [ "$(printf '%s\n' "$denied" | grep -c .)" = 1 ] && [[ "$denied" == *"failed: curl error"* ]] \
   && [ "$frc" = 1 ] && [[ "$forbidden" == "origin answered 403"* ]] && ! grep -q "token-cli" "$work/origin.log" \
   && [[ "$report" == *"newco   NO         v1 (0d)"* ]] && [[ "$report" == *"audit chain: verifies (2 entries)"* ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edge-origin with edgectl: purge $prc $purge / put $put / publish $publish / wrong CA $drc $denied / publisher publishing $frc $forbidden / report $report"; cat "$work/origin.log"; fi
sed "s#127.0.0.1:$oport#127.0.0.1:0#; s#./origin-state#./origin-notify#" "$work/origin.yaml" > "$work/origin-notify.yaml"
out=$(python3 "$(dirname "$0")/notify-check.py" --bin "$origin_bin" --config "$work/origin-notify.yaml" \
  --port-pattern 'https=127\.0\.0\.1:([0-9]+)' --probe 'https://127.0.0.1:{port}/healthz' --ca "$TE_TEST_CA_FILE" 2>&1); rc=$?
if [ "$rc" = 0 ]; then passed=$((passed+1)); [ -n "${CLI_VERBOSE:-}" ] && echo "$out"
else failed=$((failed+1)); echo "cli-check FAILED: edge-origin under NOTIFY_SOCKET: $out"; fi
printf 'listen: "127.0.0.1:1"\nbogus: 1\n' > "$work/bad-origin.yaml"
out=$("$origin_bin" run --config "$work/bad-origin.yaml" 2>&1); rc=$?
if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] && [[ "$out" == "bogus: is not a known key" ]]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: edge-origin with a bad config: exit $rc: $out"; fi

# Issue 17: the origin killed with kill -9 while a publisher publishes, three times: after each
# restart every purge it acknowledged (200 with its seq) is in the feed under that seq, once, and the
# seqs have no gap. Then its disk fills (a file-size limit, with SIGXFSZ ignored, so writes fail as
# on a full disk): publishes are refused with an error, the origin keeps running, and after a restart
# without the limit nothing acknowledged is lost and publishing works again.
printf 'node-token-cli' > "$work/node.token"
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/origin-kill.yaml" <<YAML
listen: "127.0.0.1:$kport"
tls: { cert_file: "$TE_TEST_SERVER_CERT", key_file: "$TE_TEST_SERVER_KEY" }
state_dir: ./origin-kill-state
signing_key_file: ./push/origin-signing.key
tokens:
  publishers: [{sha256: "$(hash "$work/pub.token")", tenants: ["*"]}]
  nodes: [{sha256: "$(hash "$work/node.token")", region: eu-west}]
regions: [{name: eu-west, lat: 53.3, lon: -6.3, public_url: "https://eu-west.test"}]
YAML
start_kill_origin() {  # $1: a prefix run before the origin (a ulimit), in the same shell
  : > "$work/origin-kill.log"
  bash -c "$1 exec \"$origin_bin\" run --config \"$work/origin-kill.yaml\"" > "$work/origin-kill.log" 2>&1 &
  kpid=$!
  for _ in $(seq 1 200); do grep -q "edge origin ready" "$work/origin-kill.log" && break; kill -0 "$kpid" 2>/dev/null || break; sleep 0.05; done
}
publish_purges() { python3 "$(dirname "$0")/origin-publisher.py" "https://127.0.0.1:$kport" "$TE_TEST_CA_FILE" pub-token-cli "$@"; }
: > "$work/kill-acks"; killed=""
for round in 1 2 3; do
  start_kill_origin ""
  kill -0 "$kpid" 2>/dev/null || { killed="round $round: did not start: $(tail -2 "$work/origin-kill.log")"; break; }
  publish_purges "r$round" 400 "$work/kill-acks" &
  publisher=$!
  sleep "0.$((RANDOM % 5 + 2))"
  kill -9 "$kpid"; wait "$kpid" 2>/dev/null; wait "$publisher" 2>/dev/null
done
start_kill_origin ""
feed=$(python3 "$(dirname "$0")/origin-feed-check.py" "https://127.0.0.1:$kport" "$TE_TEST_CA_FILE" node-token-cli "$work/kill-acks" 2>&1) \
  || killed="${killed:-after the kills: $feed}"
acked_kills=$(grep -c . "$work/kill-acks")
[ "$acked_kills" -gt 0 ] || killed="${killed:-no purge was acknowledged before the kills}"
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null
# The disk "fills": no state file may grow past its size now plus 4 KiB.
largest=$(find "$work/origin-kill-state" -type f -printf '%s\n' | sort -n | tail -1)
start_kill_origin "trap '' XFSZ; ulimit -f $(( (largest + 4096) / 1024 + 1 ));"
: > "$work/kill-acks.refused"
publish_purges full 300 "$work/kill-acks"
alive=$(kill -0 "$kpid" 2>/dev/null && echo yes || echo no)
refused=$(awk '$1 >= 500 {n += $2} END {print n + 0}' "$work/kill-acks.refused")
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null
start_kill_origin ""
feed_full=$(python3 "$(dirname "$0")/origin-feed-check.py" "https://127.0.0.1:$kport" "$TE_TEST_CA_FILE" node-token-cli "$work/kill-acks" 2>&1) \
  || killed="${killed:-after the disk filled: $feed_full}"
: > "$work/after-acks"; publish_purges after 3 "$work/after-acks"
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null
[ "$alive" = yes ] && [ "$refused" -gt 0 ] || killed="${killed:-disk full: origin alive $alive, $refused publishes refused}"
[ "$(grep -c . "$work/after-acks")" = 3 ] || killed="${killed:-publishing after the disk was freed: $(cat "$work/after-acks.refused")}"
[ -n "${CLI_VERBOSE:-}" ] && echo "origin kill -9: $acked_kills acknowledged across 3 kills; disk full: $refused refused; $feed_full"
if [ -z "$killed" ]; then passed=$((passed+1)); else failed=$((failed+1)); echo "cli-check FAILED: origin kill -9 and disk full: $killed"; tail -5 "$work/origin-kill.log"; fi

# Issue 17: a node following the origin, killed with kill -9 under traffic while purges are
# published: it restarts at a cursor no older than the last one it reported (the cursor is durable
# before it moves), catches up with the origin's head, and serves; no 5xx from the node before the kill.
start_kill_origin ""
follow_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$(dirname "$0")/../../bench/upstream/sample_upstream.py" "$follow_port" > "$work/follow-upstream.log" 2>&1 &
fupid=$!
cat > "$work/follow.yaml" <<YAML
node: { id: cli-follow, region: eu-west }
listen: { http: "127.0.0.1:0", admin: "127.0.0.1:0" }
state_dir: ./follow-state
security: { master_key_file: ./master.key, admin_tokens_file: ./tokens.yaml }
origin: { url: "https://127.0.0.1:$kport", ca_file: "$TE_TEST_CA_FILE", token_file: ./node.token, poll_wait_s: 2 }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$follow_port" }
YAML
node_cursor() { curl -s -H "Authorization: Bearer $token" "http://$admin/_edge/stats" | grep -o '"invalidation":{"cursor":[0-9]*' | grep -o '[0-9]*$'; }
head_seq() { sort -n "$work/follow-acks" "$work/kill-acks" | tail -1 | cut -d' ' -f1; }
: > "$work/follow-acks"; followed=""
start_node "$work/follow.yaml" "$work/follow.log"
[ -n "$admin" ] || followed="did not start: $(tail -2 "$work/follow.log")"
if [ -z "$followed" ]; then
  python3 "$(dirname "$0")/node-traffic.py" "$http" api.acme.test 100000 > "$work/traffic.out" &
  traffic=$!
  publish_purges follow 1500 "$work/follow-acks" &
  publisher=$!
  sleep 1.5
  before=$(node_cursor)
  kill -9 "$pid"; wait "$pid" 2>/dev/null; wait "$traffic" 2>/dev/null; wait "$publisher" 2>/dev/null
  start_node "$work/follow.yaml" "$work/follow.log"
  restarted=$(node_cursor)
  for _ in $(seq 1 100); do [ "$(node_cursor)" = "$(head_seq)" ] && break; sleep 0.1; done
  caught=$(node_cursor)
  served=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: api.acme.test' "http://$http/v1/items/1")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  [ "${restarted:-0}" -ge "${before:-0}" ] && [ "${before:-0}" -gt 0 ] \
    || followed="cursor ${before:-none} before the kill, ${restarted:-none} after the restart"
  [ "$caught" = "$(head_seq)" ] || followed="${followed:-cursor $caught, origin head $(head_seq)}"
  [ "$served" = 200 ] || followed="${followed:-served $served after the restart}"
  grep -q "5xx 0," "$work/traffic.out" || followed="${followed:-traffic before the kill: $(cat "$work/traffic.out")}"
fi
kill -TERM "$kpid" "$fupid" 2>/dev/null; wait "$kpid" 2>/dev/null
[ -n "${CLI_VERBOSE:-}" ] && echo "node kill -9 under traffic: cursor ${before:-?} before, ${restarted:-?} at restart, ${caught:-?} caught up; $(cat "$work/traffic.out" 2>/dev/null)"
if [ -z "$followed" ]; then passed=$((passed+1)); else failed=$((failed+1)); echo "cli-check FAILED: node kill -9 under traffic: $followed"; tail -5 "$work/follow.log"; echo "origin:"; tail -5 "$work/origin-kill.log"; fi

# Geo-IP: a bad trusted proxy and a corrupt database are one line naming the key; a running node
# reloads its database on SIGHUP and keeps serving.
expect "bad trusted proxy" 2 "geoip.trusted_proxies[1]: must be an address or CIDR, got 'ten'" <<< "$base
geoip: { trusted_proxies: [\"10.0.0.0/8\", ten] }"
printf 'not a maxmind database' > "$work/broken.mmdb"
expect "corrupt geoip database" 2 "geoip.database: cannot open GeoIP database" <<< "$base
geoip: { database: ./broken.mmdb }"
cp "${TE_TEST_MMDB:?make test generates the test GeoIP database}" "$work/city.mmdb"
expect "example geo config" 0 "config ok: node us-east-a, region us-east, 2 tenant(s)" \
  < <(sed -e "s#./GeoLite2-City.mmdb#./city.mmdb#; s#./secrets/master.key#./master.key#" "$(dirname "$0")/../../edge-config/example-geo.yaml")
cat > "$work/geo.yaml" <<YAML
$base
listen: { http: "127.0.0.1:0", admin: "127.0.0.1:0" }
state_dir: ./state-geo
geoip: { database: ./city.mmdb, watch_interval_s: 0, probe_interval_s: 0 }
limits: { drain_s: 5 }
YAML
start_node "$work/geo.yaml" "$work/geo.log"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q "GeoIP database reloaded" "$work/geo.log" && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.test' "http://$http/healthz")
kill -TERM "$pid"; wait "$pid"; rc=$?
if grep -q "GeoIP database reloaded" "$work/geo.log" && [ "$code" = 200 ] && [ "$rc" = 0 ]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: SIGHUP reload: healthz $code, exit $rc"; cat "$work/geo.log"; fi

# Issue 11 against the running binary: a hostile upstream (dates in the year 10^12, lifetimes past
# Int.max) and hostile clients (empty query pairs, two Hosts, authority-form targets). A Swift trap
# would kill the process, so the check ends by asking the node for its health.
hostile_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$hostile_port" > "$work/hostile-upstream.log" 2>&1 <<'PY' &
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Date", "Sun, 06 Nov 1000000000000 08:49:37 GMT")
        self.send_header("Expires", "Sun, 06 Nov 999999999999 08:49:37 GMT")
        self.send_header("Cache-Control", "max-age=99999999999999999999, stale-if-error=99999999999999999999")
        self.send_header("Age", "99999999999999999999999999")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
upid=$!
printf -- '- {sha256: "%s", scopes: [read], tenants: [acme]}\n' "$(printf %s read-token-cli | sha256sum | cut -d' ' -f1)" > "$work/read-tokens.yaml"
cat > "$work/hostile.yaml" <<YAML
node: { id: cli-hostile, region: eu-west }
listen: { http: "127.0.0.1:0", admin: "127.0.0.1:0" }
state_dir: ./state-hostile
security: { master_key_file: ./master.key, admin_tokens_file: ./read-tokens.yaml }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$hostile_port" }
YAML
start_node "$work/hostile.yaml" "$work/hostile.log"
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$hostile_port/" && break; sleep 0.1; done
codes=""
for _ in 1 2; do codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: api.acme.test' "http://$http/far-future")"; done
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer read-token-cli' "http://$admin/_edge/route?=")"
codes="$codes $(python3 -c 'import socket,sys; h,p=sys.argv[1].split(":"); s=socket.create_connection((h,int(p)),3)
s.sendall(b"GET /x HTTP/1.1\r\nHost: api.acme.test\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
print(s.recv(64).split(b" ")[1].decode())' "$http")"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: api.acme.test' --request-target '@127.0.0.1:9/x' "http://$http/")"
health=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/healthz")
kill -TERM "$pid"; wait "$pid"; rc=$?; kill "$upid" 2>/dev/null
if [ "$codes" = " 200 200 400 400 400" ] && [ "$health" = 200 ] && [ "$rc" = 0 ]; then passed=$((passed+1))
else failed=$((failed+1)); echo "cli-check FAILED: hostile input against edge-node: codes$codes, health $health, exit $rc"; tail -5 "$work/hostile.log"; fi

echo "cli-checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
