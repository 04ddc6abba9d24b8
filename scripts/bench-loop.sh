#!/usr/bin/env bash
# The developer loop, timed: a one-line change in drivers/vfio, then
# 'make test-plain' (incremental build, initramfs, boot, tests). The file is
# restored afterwards, byte for byte.
# Usage: bench-loop.sh TREE
set -euo pipefail

file="$1/drivers/vfio/vfio_main.c"
copy=$(mktemp)
cp -p "$file" "$copy"
trap 'cp -p "$copy" "$file"; rm -f "$copy"' EXIT

echo "/* bench-loop: a one-line change */" >> "$file"
start=$(date +%s.%N)
make --no-print-directory test-plain > /dev/null 2>&1 || { echo "bench-loop: make test-plain failed"; exit 1; }
end=$(date +%s.%N)
printf 'loop     one-line change in drivers/vfio -> make test-plain result   %6.1f s\n' \
	"$(echo "$end - $start" | bc)"
