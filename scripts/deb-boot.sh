#!/usr/bin/env bash
# Boot the kernel of a linux-image .deb (taken from the package, not from
# the build tree) in the guest, topology "one".
#  run:  the demo; the packaging path works when the demo's last line shows
#        and the kernel is the packaged one.
#  test: the tests, judged by scripts/verdict.sh against guest/skips/NAME.
# When the package's VFIO is modular (Debian's configuration), vfio-pci and
# what it needs come from the package too: decompressed, in the order
# modules.dep gives, loaded by the guest's init before it binds the devices
# (vfio with enable_unsafe_noiommu_mode=1).
# Usage: deb-boot.sh IMAGE_DEB INITRAMFS LOG TIMEOUT MEMORY [run | test NAME]
set -euo pipefail

deb=$(realpath "$1") initrd=$(realpath "$2") log=$3 limit=$4 mem=$5 mode=${6:-run}
name=${7:-}
here=$(cd "$(dirname "$0")/.." && pwd)
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x/pkg"
kernel=$(ls "$x"/pkg/boot/vmlinuz-*)
release=${kernel##*/vmlinuz-}
echo "deb-boot: $(basename "$deb"): /boot/vmlinuz-$release"

# modules.dep (made by bindeb-pkg's modules_install) names a module's
# dependencies, the last one to load first.
mods="$x/pkg/lib/modules/$release"
if ls "$mods"/kernel/drivers/vfio/pci/vfio-pci.ko* >/dev/null 2>&1; then
	mkdir -p "$x/root/modules"
	line=$(grep "^kernel/drivers/vfio/pci/vfio-pci.ko[^:]*:" "$mods/modules.dep")
	for m in $(tr ' ' '\n' <<< "${line#*:}" | tac) "${line%%:*}"; do
		ko=$(basename "${m%.xz}")
		case $m in
		*.xz) xz -dc "$mods/$m" > "$x/root/modules/$ko" ;;
		*) cp "$mods/$m" "$x/root/modules/$ko" ;;
		esac
		params=
		[ "$ko" = vfio.ko ] && params=enable_unsafe_noiommu_mode=1
		echo "/modules/$ko $params" >> "$x/root/modules.load"
	done
	echo "deb-boot: modules from the package, in load order:" \
		"$(sed 's|^/modules/||; s| .*||' "$x/root/modules.load" | tr '\n' ' ')"
	# A second cpio archive after the first: the kernel unpacks both.
	(cd "$x/root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) |
		cat "$initrd" - > "$x/initramfs.cpio"
	initrd="$x/initramfs.cpio"
fi

rc=0
"$here/scripts/qemu.sh" "$kernel" "$initrd" "$mode" "$log" "$limit" "$mem" one \
	>/dev/null || rc=$?
grep -q "Linux version $release " "$log" ||
	{ echo "deb-boot: the guest did not boot kernel $release" >&2; exit 1; }
if [ "$mode" = test ]; then
	exec "$here/scripts/verdict.sh" "$name" "$log" "$rc"
fi
[ "$rc" -eq 0 ] || exit "$rc"
grep -q "edu_dma_demo: unmapped and closed: OK" "$log" ||
	{ echo "deb-boot: the demo did not finish (see $log)" >&2; exit 1; }
grep "edu_dma_demo:" "$log" | tr -d '\r'
echo "deb-boot: kernel $release from the package ran the demo"
