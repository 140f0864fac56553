#!/usr/bin/env bash
# Runs edge-origin and edge-node as the systemd units would confine them, without systemd:
#   - as an unprivileged user (UID/GID 10001 when started as root; DynamicUser= in the units),
#   - under seccomp_sandbox.c: the units' SystemCallFilter= (@system-service less @privileged and
#     @resources, refused calls failing with EPERM), MemoryDenyWriteExecute= and
#     RestrictAddressFamilies=,
#   - with $NOTIFY_SOCKET, whose messages are checked (READY, RELOADING, STOPPING),
# then drives them: health (the image's HEALTHCHECK command), a miss and a hit through Redis, a
# purge through the origin's feed, a bundle push, SIGHUP, SIGTERM. With strace installed it also
# lists every call the filter refused and every file written outside the state directories.
#
# Usage: Tests/deploy/sandbox_smoke.sh BIN_DIR     (BIN_DIR holds edge-node, edge-origin, edgectl)
# Needs: cc, redis-server, python3, curl, openssl, systemd-analyze; strace is optional. Loopback
# ports BASE_PORT..BASE_PORT+99 (default 21300). Ends with "N passed, N failed".
# Started as root it drops to UID/GID 10001 (chowning its temporary files); otherwise it runs as
# the calling user.
set -uo pipefail

bin_dir="${1:?usage: sandbox_smoke.sh BIN_DIR}"
bin_dir="$(cd "$bin_dir" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${BASE_PORT:-21300}"  # below the ephemeral range (32768-), where outgoing connections take their ports
http=$((base + 80)) admin=$((base + 90)) origin_port=$((base + 43)) upstream=$((base + 81)) redis=$((base + 79))

for tool in cc redis-server python3 curl openssl systemd-analyze; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done
for b in edge-node edge-origin edgectl; do
    [[ -x "$bin_dir/$b" ]] || { echo "FAIL: $bin_dir/$b is not an executable"; exit 1; }
done

work="$(mktemp -d /tmp/sandbox-smoke.XXXXXX)"
chmod 755 "$work"
pids=()       # helpers, and the daemons' launchers (strace, or the daemon itself after its execs)
daemons=()
cleanup() {
    for p in "${daemons[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
check() {  # check WHAT COMMAND...
    local what=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

# The filter: the units' allow list, as systemd-analyze expands it, in x86_64 numbers.
cc -O2 -o "$work/seccomp_sandbox" "$here/seccomp_sandbox.c" || { echo "FAIL: cannot compile seccomp_sandbox.c"; exit 1; }
python3 - "$work/allow.txt" <<'EOF'
import re, subprocess, sys
def expand(name):
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        word = line.strip().split(" ")[0] if line.strip() and not line.strip().startswith("#") else ""
        if word:
            names |= expand(word) if word.startswith("@") else {word}
    return names
numbers = {}
for line in open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"):
    m = re.match(r"#define __NR_(\w+) (\d+)", line)
    if m:
        numbers[m.group(1)] = int(m.group(2))
allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
with open(sys.argv[1], "w") as out:
    out.write("\n".join(str(numbers[n]) for n in sorted(allowed) if n in numbers) + "\n")
EOF

# Demo secrets and configs (the demo's region and node id, which its tokens name).
mkdir -p "$work/etc" "$work/state" "$work/origin-state" "$work/www"
"$repo/scripts/make-demo-secrets.sh" "$work/etc/secrets" >/dev/null
echo "hello from the upstream" >"$work/www/index.html"
cat >"$work/etc/edge-node.yaml" <<EOF
node: { id: demo-a, region: eu-west }
listen: { http: "127.0.0.1:$http", admin: "127.0.0.1:$admin" }
state_dir: $work/state
cache:
  redis: { url: "redis://127.0.0.1:$redis/0" }
security:
  master_key_file: ./secrets/master.key
  admin_tokens_file: ./secrets/admin-tokens.yaml
  config_public_key: ./secrets/origin-signing.pub
origin:
  url: "https://127.0.0.1:$origin_port"
  ca_file: ./secrets/origin-ca.pem
  token_file: ./secrets/node.token
  poll_wait_s: 5
limits: { drain_s: 3 }
regions:
  - { name: eu-west, lat: 53.3, lon: -6.3, public_url: "http://127.0.0.1:$http" }
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$upstream" }
EOF
cat >"$work/etc/edge-origin.yaml" <<EOF
listen: "127.0.0.1:$origin_port"
tls: { cert_file: ./secrets/origin.pem, key_file: ./secrets/origin.key }
state_dir: $work/origin-state
signing_key_file: ./secrets/origin-signing.key
tokens_file: ./secrets/origin-tokens.yaml
regions:
  - name: eu-west
    lat: 53.3
    lon: -6.3
    public_url: "http://127.0.0.1:$http"
    nodes: [{id: demo-a, admin_url: "http://127.0.0.1:$admin", admin_token_file: ./secrets/admin.token}]
tenants:
  - { id: acme, hosts: [api.acme.test], upstream: "http://127.0.0.1:$upstream" }
EOF

# Unprivileged, as DynamicUser= makes it.
drop=()
if [[ $(id -u) -eq 0 ]]; then
    chown -R 10001:10001 "$work/etc" "$work/state" "$work/origin-state"
    drop=(setpriv --reuid 10001 --regid 10001 --clear-groups)
    # Diagnosis only (the units grant no capability): e.g. SMOKE_AMBIENT_CAPS=net_admin
    if [[ -n "${SMOKE_AMBIENT_CAPS:-}" ]]; then
        caps="+${SMOKE_AMBIENT_CAPS//,/,+}"
        drop+=(--inh-caps "$caps" --ambient-caps "$caps")
    fi
    drop+=(--)
fi
sandbox=("$work/seccomp_sandbox" --mdwe --families --errno --allow "$work/allow.txt" --)
trace() {  # trace LOG COMMAND...: under strace when it is installed
    local log=$1; shift
    if command -v strace >/dev/null; then exec strace -ff -qq -o "$log" "$@"; else exec "$@"; fi
}

# Helpers: Redis, an upstream, the notify socket.
redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=("$!")
python3 -m http.server "$upstream" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
pids+=("$!")
python3 - "$work/notify.sock" "$work/notify.log" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
EOF
pids+=("$!")
sleep 0.5

wait_for() {  # wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}
notified() { [[ $(grep -c -- "$1" "$work/notify.log" 2>/dev/null) -ge $2 ]]; }
daemon_pid() {  # the daemon behind a launcher: strace's one child, or the launcher itself (setpriv
    local child    # and the sandbox exec into the daemon)
    child="$(pgrep -P "$1" | head -1)"
    echo "${child:-$1}"
}

(cd "$work/etc" && NOTIFY_SOCKET="$work/notify.sock" trace "$work/origin.strace" \
    "${drop[@]}" "${sandbox[@]}" "$bin_dir/edge-origin" run --config "$work/etc/edge-origin.yaml") \
    >"$work/origin.log" 2>&1 &
origin_launcher=$!
pids+=("$origin_launcher")
check "edge-origin sent READY=1 within 20 s" wait_for 20 notified READY=1 1
origin_pid="$(daemon_pid "$origin_launcher")"
daemons+=("$origin_pid")
(cd "$work/etc" && NOTIFY_SOCKET="$work/notify.sock" trace "$work/node.strace" \
    "${drop[@]}" "${sandbox[@]}" "$bin_dir/edge-node" run --config "$work/etc/edge-node.yaml") \
    >"$work/node.log" 2>&1 &
node_launcher=$!
pids+=("$node_launcher")
check "edge-node sent READY=1 within 20 s" wait_for 20 notified READY=1 2
node_pid="$(daemon_pid "$node_launcher")"
daemons+=("$node_pid")

healthcheck() {  # the image's HEALTHCHECK command
    TENANTEDGE_HEALTHCHECK_URL="$1" /bin/sh -c \
        "curl -q --fail --silent --show-error --insecure --noproxy '*' --max-time 4 --output /dev/null \"\$TENANTEDGE_HEALTHCHECK_URL\" || exit 1"
}
check "node /healthz (admin listener) answers" healthcheck "http://127.0.0.1:$admin/healthz"
check "origin /healthz (HTTPS) answers" healthcheck "https://127.0.0.1:$origin_port/healthz"

status() { curl -s --max-time 5 -o /dev/null -D - -H 'Host: api.acme.test' "http://127.0.0.1:$http/index.html" | tr -d '\r' | grep -i '^cache-status:'; }
first="$(status)"; second="$(status)"
check "first request is a miss that is stored (got: ${first:-no answer})" grep -q 'fwd=miss; stored' <<<"$first"
check "second request is a hit (got: ${second:-no answer})" grep -q 'hit' <<<"$second"

ctl=("$bin_dir/edgectl")
check "purge published at the origin" "${ctl[@]}" purge --origin "https://127.0.0.1:$origin_port" \
    --token-file "$work/etc/secrets/origin-admin.token" --ca-file "$work/etc/secrets/origin-ca.pem" \
    --tenant acme --key /index.html
purged() { status | grep -q 'fwd=miss'; }
check "the purge reached the node through the feed (a miss again)" wait_for 10 purged
check "bundle published and pushed to the node" "${ctl[@]}" config publish --origin "https://127.0.0.1:$origin_port" \
    --token-file "$work/etc/secrets/origin-admin.token" --ca-file "$work/etc/secrets/origin-ca.pem"

kill -HUP "$node_pid" 2>/dev/null
check "SIGHUP: RELOADING=1 then READY=1" wait_for 10 notified READY=1 3
check "RELOADING=1 carries MONOTONIC_USEC" grep -q 'RELOADING=1 MONOTONIC_USEC=[0-9]' "$work/notify.log"
check "node still healthy after SIGHUP" healthcheck "http://127.0.0.1:$admin/healthz"

gone() { ! kill -0 "$1" 2>/dev/null; }
kill -TERM "$node_pid" 2>/dev/null
check "SIGTERM: the node stopped within 20 s (TimeoutStopSec)" wait_for 20 gone "$node_pid"
kill -TERM "$origin_pid" 2>/dev/null
check "SIGTERM: the origin stopped within 30 s (TimeoutStopSec)" wait_for 30 gone "$origin_pid"
check "STOPPING=1 from both" notified STOPPING=1 2

if command -v strace >/dev/null; then
    for d in node origin; do
        refused="$(grep -hE 'SIGSYS|= -1 EPERM|EAFNOSUPPORT|killed by' "$work/$d.strace".* \
            | grep -vE 'setpriority\(|setpriority resumed|socket\(AF_NETLINK' | head -5)"
        check "edge-$d: no call refused but setpriority() and the netlink probe: $refused" test -z "$refused"
        written="$(grep -hoE 'open(at)?\([^"]*"[^"]+", [^)]*O_(WRONLY|RDWR|CREAT)' "$work/$d.strace".* \
            | grep -oE '"[^"]+"' | tr -d '"' | grep -vE "^($work/(state|origin-state)/|/dev/null$)" | sort -u | head -5)"
        check "edge-$d: nothing written outside its state directory: $written" test -z "$written"
    done
else
    echo "note: strace is not installed: refused calls and written files not listed"
fi

if [[ $failed -ne 0 ]]; then
    echo "--- notify"; cat "$work/notify.log"
    echo "--- node log"; tail -5 "$work/node.log"
    echo "--- origin log"; tail -5 "$work/origin.log"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
