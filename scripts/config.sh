#!/usr/bin/env bash
# Configure a kernel build directory: tinyconfig plus fragments, then check
# that every line of every fragment survived.
# Usage: [ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-] config.sh TREE OUTDIR FRAGMENT...
# (ARCH defaults to x86_64).
set -euo pipefail

tree=$(realpath "$1") out=$(realpath -m "$2")
shift 2
frags=()
for f in "$@"; do frags+=("$(realpath "$f")"); done
mkdir -p "$out"
kmake=(make -s -C "$tree" O="$out" ARCH="${ARCH:-x86_64}" CROSS_COMPILE="${CROSS_COMPILE:-}")

"${kmake[@]}" tinyconfig >/dev/null
KCONFIG_CONFIG="$out/.config" "$tree/scripts/kconfig/merge_config.sh" -m -O "$out" \
	"$out/.config" "${frags[@]}" >/dev/null
"${kmake[@]}" olddefconfig >/dev/null

# What the fragments ask for, the last fragment winning: "SYM VALUE" lines,
# VALUE "n" for "is not set".
wanted=$(cat "${frags[@]}" | sed -nE \
	-e 's/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/\1 \2/p' \
	-e 's/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1 n/p' |
	awk '{ v[$1] = $2; if (!($1 in o)) o[$1] = n++ }
	     END { for (s in v) print o[s], s, v[s] }' | sort -n | cut -d' ' -f2-)

lost=0
while read -r sym val; do
	have=$(sed -n "s/^$sym=//p" "$out/.config")
	[ "$val" = n ] && [ -z "$have" ] && continue
	[ "$val" = "$have" ] && continue
	echo "config: $sym=$val asked for, got '${have:-not set}'" >&2
	lost=1
done <<< "$wanted"
exit $lost
