#!/usr/bin/env bash
# Checks deploy/systemd/edge-node.service and edge-origin.service:
#   1. `systemd-analyze verify` on temporary copies whose ExecStart= names an existing binary: the
#      real daemons from BIN_DIR when given (it must hold edge-node and edge-origin), else /bin/true
#      (verify refuses a unit whose binary does not exist, and /usr/local/bin/edge-node does not
#      exist on a build machine);
#   2. `systemd-analyze security --offline=yes` on the units as shipped: the overall exposure must
#      not exceed SECURITY_THRESHOLD (tenths, as systemd-analyze's --threshold: 11 = 1.1);
#   3. the settings the daemons rely on (Type=notify, the state directories, reload only on the node).
# Prints one line per unit with its score, then "N passed, N failed".
#
# Usage: Tests/deploy/check_systemd.sh [BIN_DIR]
set -uo pipefail

indent() { while IFS= read -r line; do printf '    %s\n' "$line"; done; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
units_dir="${UNITS_DIR:-$here/../../deploy/systemd}"
bin_dir="${1:-}"
threshold="${SECURITY_THRESHOLD:-11}"
units=(edge-node.service edge-origin.service)

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "FAIL: systemd-analyze is not installed (Debian: apt-get install systemd)"
    exit 1
fi
if [[ -n "$bin_dir" ]]; then
    for b in edge-node edge-origin; do
        [[ -x "$bin_dir/$b" ]] || { echo "FAIL: $bin_dir/$b is not an executable"; exit 1; }
    done
    bin_dir="$(cd "$bin_dir" && pwd)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# systemd-analyze --threshold and --offline exist from systemd 250 on; without --threshold the
# score is compared here.
has_threshold=0
systemd-analyze security --help 2>/dev/null | grep -q -- '--threshold' && has_threshold=1
systemd-analyze security --help 2>/dev/null | grep -q -- '--offline' || {
    echo "FAIL: this systemd-analyze ($(systemd-analyze --version | head -1)) has no security --offline"
    exit 1
}

for unit in "${units[@]}"; do
    src="$units_dir/$unit"
    if [[ ! -f "$src" ]]; then
        fail "$unit: $src does not exist"
        continue
    fi

    # 1. verify, on a copy with an existing ExecStart binary.
    if [[ -n "$bin_dir" ]]; then
        sed "s#/usr/local/bin/#$bin_dir/#g" "$src" >"$work/$unit"
    else
        sed -E 's#^(ExecStart=)/usr/local/bin/[^ ]+#\1/bin/true#' "$src" >"$work/$unit"
    fi
    verify_out="$(cd "$work" && systemd-analyze verify "$work/$unit" 2>&1)"
    verify_rc=$?
    # Complaints about other units of this machine are not ours; any line naming ours is.
    ours="$(grep -F -- "${unit}" <<<"$verify_out" || true)"
    if [[ $verify_rc -ne 0 || -n "$ours" ]]; then
        fail "$unit: systemd-analyze verify (exit $verify_rc):"
        indent <<<"$verify_out"
    else
        pass
    fi

    # 2. security exposure of the unit as shipped.
    args=(security --offline=yes --no-pager)
    [[ $has_threshold -eq 1 ]] && args+=("--threshold=$threshold")
    sec_out="$(cd "$units_dir" && systemd-analyze "${args[@]}" "$unit" 2>&1)"
    sec_rc=$?
    score="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$sec_out")"
    if [[ -z "$score" ]]; then
        fail "$unit: no exposure level in systemd-analyze security's output:"
        indent <<<"$sec_out"
        continue
    fi
    value="${score%% *}"
    over="$(awk -v v="$value" -v t="$threshold" 'BEGIN { print (v * 10 > t + 0.0001) ? 1 : 0 }')"
    limit="$(awk -v t="$threshold" 'BEGIN { printf "%.1f", t / 10 }')"
    if [[ $sec_rc -ne 0 || $over -eq 1 ]]; then
        fail "$unit: exposure $score above the threshold $limit; the items that count:"
        grep '✗' <<<"$sec_out" | indent
    else
        pass
        echo "$unit: exposure $score (threshold $limit)"
    fi
done

# 3. What the daemons and the README rely on.
expect() {  # expect UNIT REGEX WHAT
    if grep -Eq "$2" "$units_dir/$1"; then pass; else fail "$1: $3 (no line matching /$2/)"; fi
}
refuse() {  # refuse UNIT REGEX WHAT
    if grep -Eq "$2" "$units_dir/$1"; then fail "$1: $3 (a line matches /$2/)"; else pass; fi
}
for unit in "${units[@]}"; do
    [[ -f "$units_dir/$unit" ]] || continue
    name="${unit%.service}"
    expect "$unit" '^Type=notify$' "the daemons send READY=1: Type=notify"
    expect "$unit" '^NotifyAccess=main$' "only the main process notifies"
    expect "$unit" "^ExecStart=/usr/local/bin/$name run --config /etc/tenantedge/$name\\.yaml$" "ExecStart"
    expect "$unit" "^StateDirectory=tenantedge-${name#edge-}$" "the state directory the README names"
    expect "$unit" '^MemoryDenyWriteExecute=yes$' "MemoryDenyWriteExecute"
    expect "$unit" '^LimitNOFILE=[0-9]{5,}$' "a descriptor limit for 10,000 connections per listener"
    expect "$unit" '^SystemCallErrorNumber=EPERM$' "EPERM for refused calls (libdispatch's setpriority)"
    refuse "$unit" '^User=root$|^AmbientCapabilities=.+|^CapabilityBoundingSet=.+' "privileges"
done
# shellcheck disable=SC2016 # $MAINPID is systemd's, matched literally
expect edge-node.service '^ExecReload=/bin/kill -HUP \$MAINPID$' "SIGHUP reload of the GeoIP database"
refuse edge-origin.service '^ExecReload=' "the origin does not handle SIGHUP: no ExecReload"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
