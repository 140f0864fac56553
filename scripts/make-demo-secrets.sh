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
