#!/usr/bin/env bash
# What an L1 entry of each shape holds in memory against what its tenant's quota is charged for it
# (`edge-bench partition-memory`, decision 80): plain, with a query, with every tag an upstream may
# send, with a lifetime that is not whole seconds, varying, in a directory of its own, all at once,
# and `reshaped`: all at once until the quota evicts, then plain entries that evict those (what the
# first shape's tables still hold once its entries are gone; decision 81).
# Each shape runs in a process of its own (RSS growth over PARTITIONS x PER_PARTITION entries of
# 1 KiB; for `reshaped`, after malloc_trim and less the slabs' slack, which is not charged and which
# SealedSlabTests bounds). Fails when any shape holds more than it is charged: the quotas are what
# keep one tenant's entries from taking another's memory, so a charge below the memory is a hole in
# the isolation.
# `make bench-smoke` runs it small; `make bench-memory` writes bench/results/partition-memory.md.
# Usage: bench/partition-memory.sh [PARTITIONS] [PER_PARTITION]   (OUT=file writes the table there)
set -euo pipefail
cd "$(dirname "$0")/.."
PARTITIONS=${1:-${PARTITIONS:-100}}; PER_PARTITION=${2:-${PER_PARTITION:-1000}}
bin=${EDGE_BENCH:-$(swift build -c release --show-bin-path)/edge-bench}
table="| shape | entries | memory beyond the sealed bytes (B, RSS) | charged beyond them (B) | charge / memory |
|---|---|---|---|---|"
failed=0
for shape in plain query tags wide variant directory worst reshaped; do
  line=$("$bin" partition-memory "$shape" "$PARTITIONS" "$PER_PARTITION") || failed=1
  read -r name entries memory charged verdict slack <<< "$line"
  [ -n "${verdict:-}" ] || { echo "partition-memory: $shape printed nothing" >&2; exit 1; }
  ratio=$(awk -v m="$memory" -v c="$charged" 'BEGIN { printf (m > 0 ? "%.2f" : "-"), c / m }')
  table+=$'\n'"| $name | $entries | $memory | $charged | $ratio${verdict/ok/} |"
  [ "$verdict" = ok ] || { echo "partition-memory: a $shape entry holds $memory bytes, charged $charged" >&2; failed=1; }
done
echo "$table"
if [ -n "${OUT:-}" ]; then
  { echo "## L1 memory per entry against its charge, by shape"
    echo
    echo "\`bench/partition-memory.sh $PARTITIONS $PER_PARTITION\` on $(date -u +%Y-%m-%d), $(git rev-parse --short HEAD):"
    echo "$PARTITIONS partitions of $PER_PARTITION entries of 1 KiB each, every digest new (the indexes' worst case)."
    echo "\`reshaped\`: \`worst\` entries until each partition evicts, then $PER_PARTITION plain ones in a quota that holds"
    echo "about that many; its memory is RSS after \`malloc_trim(0)\`, less the slabs' room beyond their live records"
    echo "(${slack:-0} bytes an entry here; not charged, docs/operations.md)."
    echo
    echo "$table"; } > "$OUT"
fi
exit "$failed"
