#!/usr/bin/env bash
# Download the pinned Debian linux-source .deb and check its sha256.
# Usage: fetch-base.sh VERSION SHA256 OUTDIR
set -euo pipefail

version=$1 sha=$2 out=$3
"$(dirname "$0")/apt-fetch.sh" linux-source-6.12 "$version" "$sha" "$out" >/dev/null || {
	cat >&2 <<MSG
fetch: linux-source-6.12 version $version cannot be had any more.
Move the pin: pick a version from 'apt-cache policy linux-source-6.12',
download it with 'apt-get download linux-source-6.12=NEWVERSION', set
BASE_VERSION and BASE_SHA256 in the Makefile to it and its 'sha256sum',
then check that the series still applies ('make tree').
MSG
	exit 1
}
