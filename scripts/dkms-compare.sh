#!/usr/bin/env bash
# Compare the modules two dkms builds installed (updates/dkms of a kernel):
# each module of A must be in B with the same bytes once decompressed and
# without its signature (each root signs with its own dkms key). Prints
# a line a module and its sha256; fails on any difference.
# Usage: dkms-compare.sh TREE DIR_A DIR_B
# (TREE: a kernel tree, for scripts/extract-module-sig.pl)
set -euo pipefail

tree=$1 a=$2 b=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

unsigned() {	# unsigned MODULE OUT: the module's bytes before its signature
	xz -dc "$1" > "$tmp/signed.ko"
	perl "$tree/scripts/extract-module-sig.pl" -0 "$tmp/signed.ko" > "$2" 2>/dev/null
}

rc=0 n=0
compgen -G "$a/*.ko.xz" >/dev/null || { echo "dkms-compare: no module in $a"; exit 1; }
for m in "$a"/*.ko.xz; do
	name=$(basename "$m")
	if [ ! -f "$b/$name" ]; then
		echo "dkms-compare: $name: not in $b"; rc=1; continue
	fi
	unsigned "$m" "$tmp/a.ko"
	unsigned "$b/$name" "$tmp/b.ko"
	sum=$(sha256sum < "$tmp/a.ko" | cut -d' ' -f1)
	if cmp -s "$tmp/a.ko" "$tmp/b.ko"; then
		echo "dkms-compare: $name: identical ($(stat -c %s "$tmp/a.ko") bytes, sha256 $sum)"
		n=$((n + 1))
	else
		echo "dkms-compare: $name: DIFFERS"; rc=1
	fi
done
echo "dkms-compare: $n identical modules"
exit "$rc"
