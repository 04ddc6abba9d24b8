#!/usr/bin/env bash
# Build Debian packages (linux-image, linux-headers) of the patched tree
# with the kernel's own 'make bindeb-pkg'.
#  debian:  Debian's own amd64 configuration of the pinned version (package
#           linux-config-6.12, checked by sha256 like the base), plus what
#           the no-IOMMU cdev needs: IOMMUFD as a module, VFIO_DEVICE_CDEV,
#           VFIO_NOIOMMU (which selects IOMMUFD_NOIOMMU). Debian's signing
#           certificates are not ours: the trusted and revocation key lists
#           are emptied, so that modules are signed with a key made here.
#  harness: the harness's plain configuration (what 'make test' boots),
#           for a quick check of the packaging path.
# Prints where the packages are.
# Usage: deb.sh FLAVOUR TREE OUTDIR VERSION CONFIG_DEB_SHA256 DLDIR [FRAGMENT...]
set -euo pipefail

flavour=$1 tree=$(realpath "$2") out=$(realpath -m "$3") version=$4 sha=$5
dl=$(realpath -m "$6")
shift 6
here=$(cd "$(dirname "$0")/.." && pwd)
obj="$out/$flavour/obj"
kcc=gcc
command -v ccache >/dev/null && kcc="ccache gcc"
mkdir -p "$obj" "$dl"

case $flavour in
debian)
	cdeb="$dl/linux-config-6.12_${version}_amd64.deb"
	[ -f "$cdeb" ] || (cd "$dl" && apt-get -qq download "linux-config-6.12=$version")
	echo "$sha  $cdeb" | sha256sum -c --quiet - || {
		echo "deb: $cdeb does not match the pinned sha256" >&2; exit 1; }
	dpkg-deb --fsys-tarfile "$cdeb" |
		tar -xO ./usr/src/linux-config-6.12/config.amd64_none_amd64.xz |
		xz -d > "$obj/.config"
	"$tree/scripts/config" --file "$obj/.config" \
		-m IOMMUFD -e VFIO_DEVICE_CDEV -e VFIO_NOIOMMU \
		--set-str LOCALVERSION -noiommu \
		--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS ""
	make -s -C "$tree" O="$obj" ARCH=x86_64 olddefconfig
	want="CONFIG_IOMMUFD=m CONFIG_VFIO_DEVICE_CDEV=y CONFIG_VFIO_NOIOMMU=y CONFIG_IOMMUFD_NOIOMMU=y" ;;
harness)
	"$here/scripts/config.sh" "$tree" "$obj" "$@" >/dev/null
	"$tree/scripts/config" --file "$obj/.config" --set-str LOCALVERSION -noiommu-harness
	make -s -C "$tree" O="$obj" ARCH=x86_64 olddefconfig
	want="CONFIG_VFIO_DEVICE_CDEV=y CONFIG_VFIO_NOIOMMU=y CONFIG_IOMMUFD_NOIOMMU=y" ;;
*)
	echo "deb: unknown flavour $flavour (debian or harness)" >&2; exit 2 ;;
esac
for w in $want; do
	grep -qx "$w" "$obj/.config" || { echo "deb: $w did not survive olddefconfig" >&2; exit 1; }
done

start=$(date +%s)
# The packages land in the parent directory of the object tree.
rm -f "$out/$flavour"/*.deb "$out/$flavour"/*.buildinfo "$out/$flavour"/*.changes
make -s -C "$tree" O="$obj" ARCH=x86_64 CC="$kcc" -j"$(nproc)" bindeb-pkg >"$out/$flavour/build.log" 2>&1 || {
	tail -30 "$out/$flavour/build.log" >&2; exit 1; }
echo "deb: $flavour packages, built in $(( $(date +%s) - start )) s on $(nproc) cores:"
ls -1 "$out/$flavour"/*.deb
