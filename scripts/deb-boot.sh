#!/usr/bin/env bash
# Boot the kernel of a linux-image .deb (taken from the package, not from
# the build tree) in the guest and run the demo: the packaging path works
# when the demo's last line shows and the kernel is the packaged one.
# Usage: deb-boot.sh IMAGE_DEB INITRAMFS LOG TIMEOUT MEMORY
set -euo pipefail

deb=$(realpath "$1") initrd=$2 log=$3 limit=$4 mem=$5
here=$(cd "$(dirname "$0")/.." && pwd)
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
kernel=$(ls "$x"/boot/vmlinuz-*)
release=${kernel##*/vmlinuz-}
echo "deb-boot: $(basename "$deb"): /boot/vmlinuz-$release"
"$here/scripts/qemu.sh" "$kernel" "$initrd" run "$log" "$limit" "$mem" one >/dev/null
grep -q "Linux version $release " "$log" ||
	{ echo "deb-boot: the guest did not boot kernel $release" >&2; exit 1; }
grep -q "edu_dma_demo: unmapped and closed: OK" "$log" ||
	{ echo "deb-boot: the demo did not finish (see $log)" >&2; exit 1; }
grep "edu_dma_demo:" "$log" | tr -d '\r'
echo "deb-boot: kernel $release from the package ran the demo"
