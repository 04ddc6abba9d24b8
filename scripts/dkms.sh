#!/usr/bin/env bash
# Build the DKMS package iommufd-noiommu-dkms from the source package in
# dkms/: for each version of dkms/versions, that version's linux-source-6.12
# (sha256 checked) gets the series applied as 'make tree' applies it, and
# its iommufd and VFIO sources, the headers the series changes and
# iommu-priv.h (not in Debian's headers packages) are copied into the
# package's copy, with the package's own patches (dkms/patches) on top;
# then dpkg-buildpackage builds the .deb, which lintian checks. Nothing
# here is written by hand: every source file comes from a linux-source
# package and patches/.
# Usage: dkms.sh PKGSRC PATCHDIR OUTDIR DL
set -euo pipefail

pkgsrc=$(realpath "$1") patches=$(realpath "$2") out=$(realpath -m "$3") dl=$(realpath -m "$4")
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(dpkg-parsechangelog -l "$pkgsrc/debian/changelog" -S Version)
pkg="$out/pkg/iommufd-noiommu-dkms-$version"
rm -rf "$out/pkg"
mkdir -p "$pkg"
cp -a "$pkgsrc/debian" "$pkgsrc/Makefile" "$pkgsrc/Kbuild" "$pkg/"

arches=$(awk '$1 == "ARCHES" { $1 = ""; print }' "$pkgsrc/versions")
kernels=()
while read -r srcver sha abis; do
	upstream=${srcver%%-*}
	echo "dkms: $upstream: linux-source-6.12 $srcver"
	deb=$("$here/scripts/apt-fetch.sh" linux-source-6.12 "$srcver" "$sha" "$dl")
	# Not a whole tree (2 GiB): the directories of the files the series
	# changes (drivers/vfio, include/linux, ... from "--- a/PATH") and
	# lib/interval_tree.c. Made afresh, deleted once copied.
	tree="$out/src/$upstream/linux"
	rm -rf "$out/src"
	only=$(grep -Ev '^(#|$)' "$patches/series" | sed "s|^|$patches/|" | xargs sed -n 's|^--- a/||p' |
		awk -F/ '{ print (NF > 2 ? $1 "/" $2 : $0) }' | sort -u)
	ONLY="$only lib/interval_tree.c" "$here/scripts/tree.sh" "$deb" "$tree" "$patches" |
		sed 's/^/dkms: /'

	dst="$pkg/$upstream"
	mkdir -p "$dst"
	# What the modules are built from: the directories of the modules and
	# the files of include/ the series changed (the headers package has
	# the rest, of the same version).
	files=(drivers/iommu/iommufd drivers/iommu/iommu-priv.h drivers/vfio)
	mapfile -t -O ${#files[@]} files < <(git -C "$tree" diff --name-only base HEAD -- include)
	(cd "$tree" && cp -a --parents "${files[@]}" "$dst/")
	# The span iterator of lib/interval_tree.c, which Debian's vmlinux
	# lacks (INTERVAL_TREE_SPAN_ITER off): the same version's code.
	{
		echo "// SPDX-License-Identifier: GPL-2.0-only"
		echo "/* lib/interval_tree.c's span iterator, from Linux $upstream, for iommufd.ko */"
		echo "#include <linux/interval_tree.h>"
		echo "#include <linux/export.h>"
		sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER$/,/^#endif$/p' "$tree/lib/interval_tree.c" |
			sed '1d;$d'
	} > "$dst/drivers/iommu/iommufd/interval_tree_span_iter.c"
	grep -q 'EXPORT_SYMBOL_GPL(interval_tree_span_iter_advance)' \
		"$dst/drivers/iommu/iommufd/interval_tree_span_iter.c" ||
		{ echo "dkms: no span iterator in $upstream's lib/interval_tree.c" >&2; exit 1; }
	rm -rf "$out/src"
	for p in "$pkgsrc"/patches/*.patch; do
		patch -d "$dst" -p1 -s --no-backup-if-mismatch -F0 < "$p" ||
			{ echo "dkms: $(basename "$p") does not apply to $upstream" >&2; exit 1; }
	done
	for abi in $abis; do
		for arch in $arches; do kernels+=("$abi-$arch"); done
	done
done < <(grep -Ev '^(#|ARCHES|$)' "$pkgsrc/versions")

printf '%s\n' "${kernels[@]}" > "$pkg/kernels"
# ^(6\.12\.117\+deb13-amd64|...)$
regex="^($(printf '%s\n' "${kernels[@]}" | sed 's/[.+]/\\\\&/g' | paste -sd '|'))\$"
sed -e "s#@KERNEL_REGEX@#$regex#" -e "s#@KERNELS@#${kernels[*]}#" \
	"$pkgsrc/dkms.conf.in" > "$pkg/dkms.conf"

echo "dkms: dpkg-buildpackage for ${kernels[*]}"
(cd "$pkg" && dpkg-buildpackage -b -us -uc > "$out/pkg/build.log" 2>&1) ||
	{ tail -n 30 "$out/pkg/build.log" >&2; exit 1; }
deb="$out/pkg/iommufd-noiommu-dkms_${version}_all.deb"
# As debuild would: Debian's checks of the package, warnings included.
if ! lintian --fail-on error,warning "$deb" > "$out/pkg/lintian.log" 2>&1; then
	grep -v 'with root privileges' "$out/pkg/lintian.log" >&2
	echo "dkms: lintian finds fault with the package" >&2
	exit 1
fi
cp "$deb" "$out/"
echo "dkms: $out/$(basename "$deb")"
