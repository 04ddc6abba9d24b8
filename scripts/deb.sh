#!/usr/bin/env bash
# Build Debian packages (linux-image, linux-headers) of the patched tree
# with the kernel's own 'make bindeb-pkg'.
#  debian ARCH VERSION SHA256 DLDIR: Debian's own configuration of the pinned
#           version for ARCH (amd64, or arm64 cross compiled), plus the
#           no-IOMMU cdev's options (scripts/debian-config.sh); the release
#           is VERSION-noiommu.
#  harness FRAGMENT...: the harness's plain configuration (what 'make test'
#           boots) with modules on, so that there is a linux-headers
#           package too: a quick check of the packaging path.
# Prints where the packages are and how long the build took.
# Usage: deb.sh FLAVOUR TREE OUTDIR ARGS...
set -euo pipefail

flavour=$1 tree=$(realpath "$2") out=$(realpath -m "$3")
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
kcc=gcc cross= karch=x86_64

case $flavour in
debian)
	arch=$1
	dir="$out/debian-$arch"
	"$here/scripts/debian-config.sh" "$tree" "$dir/obj" "$@" -noiommu
	if [ "$arch" = arm64 ]; then karch=arm64 cross=aarch64-linux-gnu- kcc=${cross}gcc; fi ;;
harness)
	dir="$out/harness"
	"$here/scripts/config.sh" "$tree" "$dir/obj" "$@" >/dev/null
	"$tree/scripts/config" --file "$dir/obj/.config" -e MODULES \
		--set-str LOCALVERSION -noiommu-harness
	make -s -C "$tree" O="$dir/obj" ARCH=x86_64 olddefconfig ;;
*)
	echo "deb: unknown flavour $flavour (debian or harness)" >&2; exit 2 ;;
esac
command -v ccache >/dev/null && kcc="ccache $kcc"

start=$(date +%s)
# The packages land in the parent directory of the object tree. An empty
# LOCALVERSION keeps setlocalversion from adding "+" (a tree with commits
# after the release) to the release: 6.12.117-noiommu, not 6.12.117-noiommu+.
rm -f "$dir"/*.deb "$dir"/*.buildinfo "$dir"/*.changes
make -s -C "$tree" O="$dir/obj" ARCH="$karch" CROSS_COMPILE="$cross" CC="$kcc" \
	LOCALVERSION= -j"$(nproc)" bindeb-pkg >"$dir/build.log" 2>&1 || {
	tail -30 "$dir/build.log" >&2; exit 1; }
echo "deb: $flavour packages, built in $(( $(date +%s) - start )) s on $(nproc) cores:"
ls -1 "$dir"/*.deb
