#!/usr/bin/env bash
# Download the pinned Debian linux-source .deb and check its sha256.
# Usage: fetch-base.sh VERSION SHA256 OUTDIR
set -euo pipefail

version=$1 sha=$2 out=$3
deb="$out/linux-source-6.12_${version}_all.deb"
mkdir -p "$out"

if [ ! -f "$deb" ]; then
	echo "fetch: linux-source-6.12=$version"
	if ! (cd "$out" && apt-get download "linux-source-6.12=$version"); then
		apt-get update -qq || true
		if ! (cd "$out" && apt-get download "linux-source-6.12=$version"); then
			cat >&2 <<MSG
fetch: linux-source-6.12 version $version is not in the registry any more.
Move the pin: pick a version from 'apt-cache policy linux-source-6.12',
download it with 'apt-get download linux-source-6.12=NEWVERSION', set
BASE_VERSION and BASE_SHA256 in the Makefile to it and its 'sha256sum',
then check that the series still applies ('make tree').
MSG
			exit 1
		fi
	fi
fi

echo "$sha  $deb" | sha256sum -c --quiet - || {
	echo "fetch: $deb does not match the pinned sha256; refusing to use it" >&2
	exit 1
}
