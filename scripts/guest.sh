#!/usr/bin/env bash
# Build the guest's test programs (static, against the patched tree's uapi
# headers) and pack them with busybox into an initramfs.
# Usage: guest.sh TREE HEADERS OUTDIR
set -euo pipefail

tree=$(realpath "$1") hdr=$(realpath "$2") out=$(realpath -m "$3")
here=$(cd "$(dirname "$0")/.." && pwd)
root="$out/root"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests}

# Harness-side programs, one per .c file: guest/tests and guest/robust go
# to the "test" list, guest/bench to the "bench" list. GUEST_DIRS narrows
# which of them are built (to work on one without the others).
touch "$root/tests/test.list" "$root/tests/bench.list"
for dir in ${GUEST_DIRS:-tests robust bench}; do
	list=test
	[ "$dir" = bench ] && list=bench
	for src in "$here/guest/$dir"/*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		gcc -static -O2 -Wall -Werror -pthread -isystem "$hdr" \
			-I "$tree/tools/testing/selftests" -o "$root/tests/$name" "$src"
		echo "$name" >> "$root/tests/$list.list"
	done
done

# The series' kselftests, once the series has them.
st="$tree/tools/testing/selftests/vfio"
if [ -d "$st" ] && [ -z "${GUEST_DIRS:-}" ]; then
	mkdir -p "$out/vfio"
	make -s -C "$st" OUTPUT="$out/vfio" KHDR_INCLUDES="-isystem $hdr" \
		LDFLAGS=-static >/dev/null
	for bin in $(find "$out/vfio" -maxdepth 1 -type f -perm -u+x | sort); do
		cp "$bin" "$root/tests/"
		basename "$bin" >> "$root/tests/test.list"
	done
fi

# 'make run' shows the demo driver when there is one, else the legacy test.
if [ -f "$here/guest/demo/edu_dma_demo.c" ]; then
	gcc -static -O2 -Wall -Werror -isystem "$hdr" -o "$root/tests/edu_dma_demo" \
		"$here/guest/demo/edu_dma_demo.c"
	echo edu_dma_demo > "$root/tests/run.list"
else
	echo legacy_group_dma > "$root/tests/run.list"
fi

cp /bin/busybox "$root/bin/busybox"
cp "$here/guest/init" "$root/init"
cp "$here/guest/run-tests" "$root/run-tests"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) > "$out/initramfs.cpio"
