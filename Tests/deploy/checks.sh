#!/usr/bin/env bash
# The deploy/ tree, checked without a container engine or a cluster: the Dockerfile (hadolint and
# our own rules, and the rules' own tests), the systemd units (systemd-analyze verify and security
# scores), both daemons run under the units' confinement (seccomp, no W+X memory, address
# families, an unprivileged user, NOTIFY_SOCKET), the Kubernetes manifests rendered by
# `kubectl kustomize` and checked object by object, and the configs they ship passing check-config
# with their secrets in place. Usage: Tests/deploy/checks.sh BIN_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=${1:?usage: checks.sh BIN_DIR}
cd "$repo"
failed=0
run() {  # run NAME COMMAND...: the command's last line, and its status counted
  local name=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ "$rc" = 0 ]; then echo "deploy-check $name: $(printf '%s\n' "$out" | tail -1)"
  else failed=$((failed+1)); echo "deploy-check FAILED: $name (exit $rc)"; printf '%s\n' "$out" | tail -30; fi
}
run dockerfile python3 Tests/deploy/check_dockerfile.py
run dockerfile-rules python3 -m unittest -q Tests/deploy/test_check_dockerfile.py
run systemd bash Tests/deploy/check_systemd.sh "$bin_dir"
run sandbox bash Tests/deploy/sandbox_smoke.sh "$bin_dir"
run kubernetes python3 Tests/deploy/check_kubernetes.py
run kubernetes-configs bash Tests/deploy/check_kubernetes_configs.sh "$bin_dir"
exit "$failed"
