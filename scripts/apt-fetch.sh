#!/usr/bin/env bash
# Download one Debian package of a pinned version and check its sha256.
# Debian's index lists a package's newest versions only (linux-config-6.12
# lists just one), while the pool keeps the files of older ones for a
# while: when apt no longer knows the pinned version, the file is taken
# from the pool folder apt gives for the version it does know.
# Usage: apt-fetch.sh PACKAGE[:ARCH] VERSION SHA256 OUTDIR
# Prints the path of the checked .deb.
set -euo pipefail

pkg=$1 version=$2 sha=$3 out=$4
name=${pkg%%:*} arch='*'
[ "$name" = "$pkg" ] || arch=${pkg#*:}
out=$(realpath -m "$out")
mkdir -p "$out"
cd "$out"

# shellcheck disable=SC2086 # $arch is a glob when the package has none
have() { ls ./"${name}_${version}"_$arch.deb 2>/dev/null | head -n 1; }

# apt prints 'URL' NAME_VERSION_ARCH.deb SIZE HASH for the version it knows;
# the pinned file sits in the same pool folder.
from_pool() {
	local url file
	read -r url file _ < <(apt-get download --print-uris "$pkg" 2>/dev/null) || return 1
	url=${url//\'/} file="${name}_${version}_${file##*_}"
	echo "apt-fetch: $pkg=$version is not in apt's index; taking it from the pool" >&2
	/usr/lib/apt/apt-helper download-file "${url%/*}/${file//\~/%7e}" "$file" \
		"SHA256:$sha" 2>&1 | { grep -v 'unsandboxed' >&2 || true; }
	[ -f "$file" ]
}

if [ -z "$(have)" ]; then
	echo "apt-fetch: $pkg=$version" >&2
	apt-get -qq download "$pkg=$version" 2>/dev/null ||
		{ apt-get update -qq && apt-get -qq download "$pkg=$version" 2>/dev/null; } ||
		true
	[ -n "$(have)" ] || from_pool || {
		echo "apt-fetch: $pkg version $version is neither in apt's index nor" \
		     "in the pool any more" >&2
		exit 1
	}
fi
deb=$(have)
echo "$sha  $deb" | sha256sum -c --quiet - || {
	echo "apt-fetch: $out/$deb does not match the pinned sha256; refusing it" >&2
	exit 1
}
echo "$out/${deb#./}"
