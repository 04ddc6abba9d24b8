#!/usr/bin/env bash
# Add a newly published Debian 6.12.y to the DKMS package: download that
# version's linux-source-6.12, apply the series to it as 'make tree' does
# (stops, loudly, if it does not apply), and add its line to the versions
# file with the package's sha256 and the kernel ABIs of that version
# (Debian 13's +deb13 and Debian 12's +deb12). Then 'make dkms' builds it.
# Usage: dkms-add.sh VERSIONS PATCHDIR OUTDIR DL VERSION   (6.12.119-1~deb12u1)
set -euo pipefail

versions=$1 patches=$2 out=$(realpath -m "$3") dl=$(realpath -m "$4") srcver=${5:-}
here=$(cd "$(dirname "$0")/.." && pwd)
[[ $srcver =~ ^6\.12\.[0-9]+-[^[:space:]]+$ ]] ||
	{ echo "dkms-add: give VERSION=6.12.N-R (apt-cache policy linux-source-6.12)" >&2; exit 2; }
upstream=${srcver%%-*}
if grep -q "^[^#]*[[:space:]]$upstream+deb" "$versions"; then
	echo "dkms-add: $upstream is already in $versions" >&2
	exit 1
fi

mkdir -p "$dl"
file="$dl/linux-source-6.12_${srcver}_all.deb"
if [ ! -f "$file" ]; then
	(cd "$dl" && apt-get -qq download "linux-source-6.12=$srcver") ||
		{ echo "dkms-add: apt does not serve linux-source-6.12=$srcver" >&2; exit 1; }
fi
sha=$(sha256sum "$file" | cut -d' ' -f1)

tree="$out/src/$upstream/linux"
rm -rf "$tree"
if ! "$here/scripts/tree.sh" "$file" "$tree" "$patches"; then
	echo "dkms-add: the series does not apply to Debian's $srcver: not added" >&2
	exit 1
fi
echo "$srcver $sha $upstream+deb13 $upstream+deb12" >> "$versions"
echo "dkms-add: $srcver added to $versions ($upstream+deb13, $upstream+deb12); now: make dkms"
