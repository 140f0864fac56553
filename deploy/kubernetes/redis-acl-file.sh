#!/usr/bin/env bash
# Prints a Redis aclfile for a region's Redis (Secret redis-acl, key users.acl):
#
#   deploy/kubernetes/redis-acl-file.sh OPS_PASSWORD_FILE [ACL_CONFIG] > users.acl
#
#  - the default user disabled, so every connection authenticates;
#  - te-ops, every key and command, with the password in OPS_PASSWORD_FILE, for `ACL LOAD` after
#    the Secret changes (README.md, "Redis ACL");
#  - with ACL_CONFIG, one user per tenant of the schema strategy from
#    `edgectl redis acl --config ACL_CONFIG` (EDGECTL: the binary, default `edgectl`). ACL_CONFIG
#    is a node config naming the region's master_key_file (the Secret edge-node-keys'
#    acl-master.key) and listing the tenants: examples/acl-tenants.example.yaml.
#
# Passwords are written as their SHA-256 (`#<hex>`), which Redis accepts in place of `>password`:
# the Secret then holds nothing a client could log in with.
set -euo pipefail
set -f  # ACL patterns (~te:acme:*) must never glob
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OPS_PASSWORD_FILE [ACL_CONFIG]" >&2
  exit 2
fi
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
ops=$(tr -d '\n' < "$1")
[ -n "$ops" ] || { echo "$0: $1 is empty" >&2; exit 2; }
echo "user default reset"
echo "user te-ops on #$(sha "$ops") ~* &* +@all"
[ $# -eq 2 ] || exit 0
lines=$("${EDGECTL:-edgectl}" redis acl --config "$2")
while read -r acl setuser rest; do
  [ -n "$acl" ] || continue
  if [ "$acl $setuser" != "ACL SETUSER" ]; then
    echo "$0: unexpected line from edgectl redis acl: $acl $setuser ..." >&2
    exit 1
  fi
  out="user"
  for word in $rest; do
    case "$word" in
      '>'*) out+=" #$(sha "${word#>}")" ;;
      *) out+=" $word" ;;
    esac
  done
  echo "$out"
done <<< "$lines"
