#!/usr/bin/env bash
# Generates demo secrets into DIR (git-ignored): master.key (32 random bytes), admin.token and the
# admin-tokens.yaml that lists only its SHA-256. Existing secrets are kept.
set -euo pipefail
dir=$1
mkdir -p "$dir"; chmod 700 "$dir"
[ -f "$dir/master.key" ] || { head -c 32 /dev/urandom > "$dir/master.key"; chmod 600 "$dir/master.key"; }
if [ ! -f "$dir/admin.token" ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/admin.token"; chmod 600 "$dir/admin.token"
fi
digest=$(tr -d '\n' < "$dir/admin.token" | sha256sum | cut -d' ' -f1)
printf -- '- {sha256: "%s", scopes: [admin], tenants: ["*"]}\n' "$digest" > "$dir/admin-tokens.yaml"
# The demo origin: a CA and a certificate for 127.0.0.1, the Ed25519 bundle signing key pair, and
# the tokens of the node (feed), the publisher and the origin's admin, each listed by SHA-256.
if [ ! -f "$dir/origin.pem" ]; then
  (cd "$dir" && openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=TenantEdge demo CA" -keyout origin-ca.key -out origin-ca.pem 2>/dev/null \
    && openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout origin.key -out origin.csr 2>/dev/null \
    && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > origin.ext \
    && openssl x509 -req -in origin.csr -CA origin-ca.pem -CAkey origin-ca.key -CAcreateserial -days 365 -extfile origin.ext -out origin.pem 2>/dev/null \
    && rm -f origin.csr origin.ext origin-ca.srl && chmod 600 origin.key origin-ca.key)
fi
if [ ! -f "$dir/origin-signing.key" ]; then
  openssl genpkey -algorithm ed25519 -out "$dir/origin-signing.key" && chmod 600 "$dir/origin-signing.key"
  openssl pkey -in "$dir/origin-signing.key" -pubout -out "$dir/origin-signing.pub"
fi
for name in node publisher origin-admin; do
  [ -f "$dir/$name.token" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/$name.token"; chmod 600 "$dir/$name.token"; }
done
sha() { tr -d '\n' < "$dir/$1.token" | sha256sum | cut -d' ' -f1; }
cat > "$dir/origin-tokens.yaml" <<YAML
admin: [{sha256: "$(sha origin-admin)"}]
publishers: [{sha256: "$(sha publisher)", tenants: ["*"]}]
nodes: [{sha256: "$(sha node)", region: eu-west, node: demo-a}]
YAML
