#!/usr/bin/env bash
# Which 6.12 kernels the series applies to and builds on: every
# linux-source-6.12 version Debian's archive serves, and the pristine
# upstream tree of the pinned version (the orig tarball of Debian's source
# package linux-6.12). Each gets a work tree made as 'make tree' makes one
# (git am of patches/) and, when the series applies, a build with the
# harness's plain configuration. Prints a table; fails if the pinned
# version does not apply and build.
# Usage: applies.sh OUTDIR PATCHDIR PINNED_VERSION FRAGMENT...
set -euo pipefail

out=$(realpath -m "$1") patches=$(realpath "$2") pinned=$3
shift 3
frags=()
for f in "$@"; do frags+=("$(realpath "$f")"); done
here=$(cd "$(dirname "$0")/.." && pwd)
dl="$out/dl"
mkdir -p "$dl"

# The orig tarball comes from a deb-src entry of the security suite, given
# to apt through options so that the machine's own lists stay as they are.
upstream_tarball() {
	local apt="$out/apt" ver=${pinned%%-*}
	local tarball="$dl/linux-6.12_$ver.orig.tar.xz"
	[ -f "$tarball" ] && { echo "$tarball"; return; }
	mkdir -p "$apt/lists/partial"
	echo "deb-src http://deb.debian.org/debian-security bookworm-security main" \
		> "$apt/sources.list"
	local opts=(-o Dir::Etc::sourcelist="$apt/sources.list"
		    -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$apt/lists")
	apt-get -qq "${opts[@]}" update >&2 &&
	(cd "$dl" && apt-get -qq "${opts[@]}" source --download-only \
		"linux-6.12=$pinned" >&2) &&
	echo "$tarball"
}

# Build a tree (OUT/NAME/linux) with the plain configuration into
# OUT/NAME/plain: the same relative paths as build/linux and build/plain,
# so that ccache (CCACHE_BASEDIR) reuses every object of an unchanged file.
build() {
	local dir=$1 kcc=gcc
	command -v ccache >/dev/null && kcc="ccache gcc"
	"$here/scripts/config.sh" "$dir/linux" "$dir/plain" "${frags[@]}" >/dev/null &&
		make -s -C "$dir/linux" O="$dir/plain" ARCH=x86_64 CC="$kcc" \
			-j"$(nproc)" bzImage >"$dir/build.log" 2>&1
}

rows=() pinned_ok=0
versions=$(apt-cache madison linux-source-6.12 | awk '{ print $3 }' | sort -uV)
for v in $versions upstream; do
	dir="$out/$v"
	if [ "$v" = upstream ]; then
		name="upstream ${pinned%%-*} (orig tarball)"
		if ! src=$(upstream_tarball); then
			echo "applies: $name: could not be downloaded"
			rows+=("| $name | not tested: the registry did not serve linux-6.12_${pinned%%-*}.orig.tar.xz |")
			continue
		fi
	else
		src="$dl/linux-source-6.12_${v}_all.deb" name="Debian $v"
		[ -f "$src" ] || (cd "$dl" && apt-get -qq download "linux-source-6.12=$v")
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	if "$here/scripts/tree.sh" "$src" "$dir/linux" "$patches" >"$dir/apply.log" 2>&1; then
		if build "$dir"; then
			result="applies, builds"
			[ "$v" = "$pinned" ] && pinned_ok=1
		else
			result="applies, does not build (see $dir/build.log)"
		fi
	else
		failed=$(sed -n 's/^tree: \(.*\)\.patch does not apply.*/\1/p' "$dir/apply.log")
		result="refuses ${failed:+patch }${failed:-the series (see $dir/apply.log)}"
	fi
	echo "applies: $name: $result"
	rows+=("| $name | $result |")
	# Keep the disk use down: a tree is 1.5 GB
	rm -rf "$dir/linux" "$dir/plain"
done

echo
echo "| 6.12 | series |"
echo "|---|---|"
printf '%s\n' "${rows[@]}"
[ "$pinned_ok" = 1 ]
