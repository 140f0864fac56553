#!/usr/bin/env bash
# Makes every secret the manifests in deploy/kubernetes refer to, for the origin and each region
# named, into OUT (a new directory; keep it off the repository and off shared disks), one
# directory per Kubernetes Secret, and OUT/apply-secrets.sh that creates (or updates) them:
#
#   deploy/kubernetes/make-secrets.sh OUT eu-west us-east
#
# OUT/ca/                     the private CA of the origin's and the nodes' admin certificates:
#                             keep ca.key offline
# OUT/clear/                  the clear tokens people and services use (origin admin, publisher,
#                             each region's node operator token, each Redis's te-ops password)
# OUT/origin/<secret>/        edge-origin-tls, edge-origin-keys, edge-origin-tokens
# OUT/<region>/<secret>/      edge-node-keys, edge-node-admin-tokens, edge-node-origin,
#                             edge-node-admin-tls, redis-acl
#
# Environment: EDGECTL (edgectl binary, default `edgectl`), NODES (pods per region the origin
# knows, default 4 = the HorizontalPodAutoscaler's maxReplicas), ORIGIN_NAMESPACE (default
# tenantedge-origin), CLUSTER_DOMAIN (default cluster.local), ORIGIN_HOSTS (extra DNS names for
# the origin's certificate, space-separated, e.g. the name publishers and edgectl use).
# Needs openssl and sha256sum. README.md explains each file.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUT REGION [REGION...]" >&2
  exit 2
fi
out=$1; shift
regions=("$@")
edgectl=${EDGECTL:-edgectl}
nodes=${NODES:-4}
origin_ns=${ORIGIN_NAMESPACE:-tenantedge-origin}
domain=${CLUSTER_DOMAIN:-cluster.local}
here=$(cd "$(dirname "$0")" && pwd)

if [ -e "$out" ]; then
  echo "$0: $out exists; secrets are never overwritten (rotate one Secret at a time, README.md)" >&2
  exit 1
fi
for region in "${regions[@]}"; do
  if ! [[ $region =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]]; then
    echo "$0: region '$region': use lowercase letters, digits and '-' (it is part of node ids and namespaces)" >&2
    exit 2
  fi
done
umask 077
mkdir -p "$out"/{ca,clear,origin/edge-origin-tls,origin/edge-origin-keys,origin/edge-origin-tokens}

token() { openssl rand -hex 32; }
digest() { printf %s "$(tr -d '\n' < "$1")" | sha256sum | cut -d' ' -f1; }

# Keys: the bundle signing pair and one KEK per region (edgectl keygen writes them 0600).
region_flags=()
for region in "${regions[@]}"; do region_flags+=(--region "$region"); done
"$edgectl" keygen --out "$out/keygen" "${region_flags[@]}" >/dev/null
mv "$out/keygen/origin-signing.key" "$out/origin/edge-origin-keys/"
for region in "${regions[@]}"; do cp "$out/keygen/$region.kek" "$out/origin/edge-origin-keys/$region.kek"; done

# The CA (ECDSA P-256) and a certificate signer.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=TenantEdge CA" -keyout "$out/ca/ca.key" -out "$out/ca/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
certificate() {  # DIR CN SAN...
  local dir=$1 cn=$2; shift 2
  local sans
  sans=$(printf 'DNS:%s,' "$@"); sans=${sans%,}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' "$sans" > "$dir/tls.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" -CAcreateserial \
    -days 825 -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr" "$dir/tls.ext" "$out/ca/ca.srl"
}

# The origin: certificate for the names nodes and operators use, the nodes' CA, tokens.
read -r -a origin_hosts <<< "${ORIGIN_HOSTS:-}"
certificate "$out/origin/edge-origin-tls" edge-origin \
  "edge-origin.$origin_ns.svc.$domain" "edge-origin.$origin_ns.svc" "${origin_hosts[@]}"
cp "$out/ca/ca.crt" "$out/origin/edge-origin-tls/node-ca.crt"
token > "$out/clear/origin-admin.token"
token > "$out/clear/publisher.token"
node_lines=""
for region in "${regions[@]}"; do
  ns="tenantedge-$region"
  dir="$out/$region"
  mkdir -p "$dir"/{edge-node-keys,edge-node-admin-tokens,edge-node-origin,edge-node-admin-tls,redis-acl}
  cp "$out/keygen/$region.kek" "$dir/edge-node-keys/region.kek"
  cp "$out/keygen/origin-signing.pub" "$dir/edge-node-keys/origin-signing.pub"
  # Redis ACL passwords of the schema strategy are derived from it (64 hex = 32 bytes).
  openssl rand -hex 32 > "$dir/edge-node-keys/acl-master.key"
  # One token per pod the origin knows, bound at the origin to its region and node id.
  cp "$out/ca/ca.crt" "$dir/edge-node-origin/ca.crt"
  for ((n = 0; n < nodes; n++)); do
    token > "$dir/edge-node-origin/node-$n.token"
    node_lines+="  - {sha256: \"$(digest "$dir/edge-node-origin/node-$n.token")\", region: $region, node: $region-$n}"$'\n'
  done
  # The origin's push token (scope config) and the operators' token for the node admin API.
  token > "$out/origin/edge-origin-tokens/push-$region.token"
  token > "$out/clear/$region-ops.token"
  {
    printf -- '- {sha256: "%s", scopes: [config], tenants: ["*"]}  # the origin pushing bundles\n' \
      "$(digest "$out/origin/edge-origin-tokens/push-$region.token")"
    printf -- '- {sha256: "%s", scopes: [purge, read, admin], tenants: ["*"]}  # operators\n' \
      "$(digest "$out/clear/$region-ops.token")"
  } > "$dir/edge-node-admin-tokens/admin-tokens.yaml"
  certificate "$dir/edge-node-admin-tls" edge-node-admin \
    "*.edge-node-peers.$ns.svc.$domain" "*.edge-node-peers.$ns.svc" \
    "edge-node-admin" "edge-node-admin.$ns.svc" "edge-node-admin.$ns.svc.$domain"
  cp "$out/ca/ca.crt" "$dir/edge-node-admin-tls/ca.crt"
  # Redis: default user off, te-ops for ACL LOAD; tenants' users are added with redis-acl-file.sh.
  token > "$out/clear/redis-$region-ops.password"
  "$here/redis-acl-file.sh" "$out/clear/redis-$region-ops.password" > "$dir/redis-acl/users.acl"
done
{
  printf 'admin: [{sha256: "%s"}]\n' "$(digest "$out/clear/origin-admin.token")"
  printf 'publishers: [{sha256: "%s", tenants: ["*"]}]\n' "$(digest "$out/clear/publisher.token")"
  printf 'nodes:\n%s' "$node_lines"
} > "$out/origin/edge-origin-tokens/origin-tokens.yaml"
rm -rf "$out/keygen"

# apply-secrets.sh: create or update every Secret (run it again after changing a file).
# shellcheck disable=SC2016  # the lines are written for apply-secrets.sh to expand
{
  echo '#!/usr/bin/env bash'
  echo '# Creates or updates the TenantEdge Secrets from the directories beside this script.'
  echo 'set -euo pipefail'
  echo 'cd "$(dirname "$0")"'
  echo 'secret() { kubectl create secret generic "$2" -n "$1" --from-file="$3" --dry-run=client -o yaml | kubectl apply -f -; }'
  echo "kubectl create namespace $origin_ns --dry-run=client -o yaml | kubectl apply -f -"
  for name in edge-origin-tls edge-origin-keys edge-origin-tokens; do
    echo "secret $origin_ns $name origin/$name"
  done
  for region in "${regions[@]}"; do
    echo "kubectl create namespace tenantedge-$region --dry-run=client -o yaml | kubectl apply -f -"
    for name in edge-node-keys edge-node-admin-tokens edge-node-origin edge-node-admin-tls redis-acl; do
      echo "secret tenantedge-$region $name $region/$name"
    done
  done
} > "$out/apply-secrets.sh"
chmod 700 "$out/apply-secrets.sh"
echo "secrets for origin and ${regions[*]} in $out; create them with $out/apply-secrets.sh"
