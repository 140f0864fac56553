#!/usr/bin/env bash
# The configs the Kubernetes overlays ship pass both daemons' check-config, with every secret they
# name made by deploy/kubernetes/make-secrets.sh and laid out where the pods mount it.
# Usage: Tests/deploy/check_kubernetes_configs.sh BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: check_kubernetes_configs.sh BIN_DIR}" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$repo"
python3 Tests/deploy/check_kubernetes.py --write-configs "$work/configs" --rewrite-paths-to "$work/mounted" > /dev/null
EDGECTL="$bin_dir/edgectl" deploy/kubernetes/make-secrets.sh "$work/made" eu-west us-east > /dev/null
python3 - "$work" <<'PY'
import json, os, shutil, sys
work = sys.argv[1]
placed = json.load(open(os.path.join(work, "configs", "secret-files.json")))
for config, entries in placed.items():
    owner = "origin" if config.startswith("origin-") else config.rsplit("-edge-node.yaml", 1)[0]
    for entry in entries:
        source = os.path.join(work, "made", owner, entry["secret"], entry["secret_key"])
        if not os.path.exists(source):
            sys.exit("%s: %s needs %s/%s, which make-secrets.sh did not make" % (config, entry["key"], entry["secret"], entry["secret_key"]))
        os.makedirs(os.path.dirname(entry["path"]), exist_ok=True)
        shutil.copyfile(source, entry["path"])
PY
passed=0
for config in "$work"/configs/*-edge-node.yaml; do
  "$bin_dir/edge-node" check-config --config "$config" > /dev/null; passed=$((passed+1))
done
for config in "$work"/configs/*-edge-origin.yaml; do
  "$bin_dir/edge-origin" check-config --config "$config" > /dev/null; passed=$((passed+1))
done
echo "$passed shipped configs pass check-config with their secrets in place"
