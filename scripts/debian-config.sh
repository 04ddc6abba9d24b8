#!/usr/bin/env bash
# Configure a kernel build directory with Debian's own configuration of the
# pinned version (package linux-config-6.12 of that version, checked by
# sha256 like the base), plus what the no-IOMMU cdev needs: IOMMUFD as a
# module, VFIO_DEVICE_CDEV and VFIO_NOIOMMU (which selects IOMMUFD_NOIOMMU).
# Debian's signing certificates are not ours: the trusted and revocation
# key lists are emptied, so that modules are signed with a key made by the
# build. Fails if an option does not survive olddefconfig.
# Usage: debian-config.sh TREE OBJDIR ARCH VERSION SHA256 DLDIR [LOCALVERSION]
# ARCH is Debian's: amd64 or arm64 (cross compiled with aarch64-linux-gnu-).
set -euo pipefail

tree=$(realpath "$1") obj=$(realpath -m "$2") arch=$3 version=$4 sha=$5
dl=$(realpath -m "$6") localversion=${7:-}
case $arch in
amd64) karch=x86_64 cross= flavour=amd64_none_amd64 ;;
arm64) karch=arm64 cross=aarch64-linux-gnu- flavour=arm64_none_arm64 ;;
*) echo "debian-config: unknown architecture $arch (amd64 or arm64)" >&2; exit 2 ;;
esac
mkdir -p "$obj" "$dl"

cdeb=$("$(dirname "$0")/apt-fetch.sh" "linux-config-6.12:$arch" "$version" "$sha" "$dl")
dpkg-deb --fsys-tarfile "$cdeb" |
	tar -xO "./usr/src/linux-config-6.12/config.$flavour.xz" | xz -d > "$obj/.config"
"$tree/scripts/config" --file "$obj/.config" \
	-m IOMMUFD -e VFIO_DEVICE_CDEV -e VFIO_NOIOMMU \
	--set-str LOCALVERSION "$localversion" \
	--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS ""
make -s -C "$tree" O="$obj" ARCH="$karch" CROSS_COMPILE="$cross" olddefconfig

for w in CONFIG_IOMMUFD=m CONFIG_VFIO_DEVICE_CDEV=y CONFIG_VFIO_NOIOMMU=y \
	 CONFIG_IOMMUFD_NOIOMMU=y; do
	grep -qx "$w" "$obj/.config" ||
		{ echo "debian-config: $w did not survive olddefconfig" >&2; exit 1; }
done
