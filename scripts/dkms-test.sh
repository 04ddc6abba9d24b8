#!/usr/bin/env bash
# Test the DKMS package as a user installs it: a copy of a Debian root
# (scripts/dkms-root.sh: Debian's kernel image and headers) gets
# /etc/modprobe.d/vfio-noiommu.conf and the package, installed by apt, so
# that dkms builds and installs the modules with that release's compiler;
# the install's output is checked (signed modules in updates/dkms; nothing
# built for an unsupported kernel and why; the GVT-g warning where the root
# enables it). Then Debian's unmodified kernel and initramfs boot that root
# in QEMU, topology TOPOLOGY, into guest/dkms-init with the guest programs
# (scripts/guest.sh): the verdict is scripts/verdict.sh's on the console
# log, against guest/skips/NAME.
# Usage: [GVT=1] dkms-test.sh NAME BASEROOT KERNEL DKMS_DEB GUESTDIR LOG TIMEOUT MEMORY TOPOLOGY
# GVT=1: the root is a machine that uses Intel GVT-g (i915's enable_gvt).
set -euo pipefail

name=$1 base=$(realpath "$2") kver=$3 deb=$(realpath "$4") guest=$(realpath "$5")
log=$6 limit=$7 mem=$8 topology=$9
here=$(cd "$(dirname "$0")/.." && pwd)
work="$base.installed"
root="$work/root" tap="$work/install.tap"
stamp="$(sha256sum "$deb" "$here/guest/dkms-init" "$guest/initramfs.cpio" | sha256sum) ${GVT:-0}"

check() {	# check DESCRIPTION COMMAND...: a TAP line of the install's checks
	if "${@:2}" >/dev/null 2>&1; then echo "ok - install: $1"; else echo "not ok - install: $1"; fi >> "$tap"
}

install_package() {
	local mounts=() m
	rm -rf "$work"
	mkdir -p "$work"
	echo "dkms-test: $(basename "$deb") into a copy of $base"
	cp -a "$base" "$root"
	echo "options vfio enable_unsafe_noiommu_mode=1" > "$root/etc/modprobe.d/vfio-noiommu.conf"
	[ "${GVT:-0}" = 0 ] || echo "options i915 enable_gvt=1" > "$root/etc/modprobe.d/i915-gvt.conf"
	cp "$deb" "$root/tmp/"
	mount -t proc proc "$root/proc" && mounts+=("$root/proc")
	local rc=0
	chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
		apt-get install -y -q -o Dpkg::Use-Pty=0 "/tmp/$(basename "$deb")" \
		> "$work/install.log" 2>&1 || rc=$?
	for m in "${mounts[@]}"; do umount -l "$m"; done
	rm "$root/tmp/$(basename "$deb")"
	: > "$tap"
	echo "# harness: running dkms-install" >> "$tap"
	check "apt-get install of the package (exit $rc)" test "$rc" -eq 0
	local mods="$root/lib/modules/$kver"
	for m in iommufd vfio vfio_iommu_type1 vfio-pci-core vfio-pci; do
		check "$m built by dkms for $kver (updates/dkms)" \
			compgen -G "$mods/updates/dkms/$m.ko*"
	done
	check "dkms signed vfio with its key ($(modinfo -F signer "$mods"/updates/dkms/vfio.ko* 2>/dev/null))" \
		grep -q DKMS < <(modinfo -F signer "$mods"/updates/dkms/vfio.ko*)
	# Kernels with headers that the package does not support (a root may
	# have some: bookworm-backports' 6.12.95): nothing built, and why.
	local k dir
	for dir in "$root"/lib/modules/*; do
		k=${dir##*/}
		[ "$k" != "$kver" ] && [ -L "$dir/build" ] || continue
		check "unsupported kernel $k: nothing installed" \
			test ! -e "$root/lib/modules/$k/updates/dkms"
		check "unsupported kernel $k: dkms says it is not supported" \
			grep -q "iommufd-noiommu: kernel $k is not supported; supported:" "$work/install.log"
		grep -E "not supported|BUILD_EXCLUSIVE" "$work/install.log" | grep -F "$k" |
			sed 's/^/# install: /' >> "$tap"
	done
	# A root that enables Intel GVT-g is told what it loses.
	if grep -qs enable_gvt "$root"/etc/modprobe.d/*.conf; then
		check "GVT-g: the install warns that kvmgt will not load" \
			grep -q "kvmgt will not load" "$work/install.log"
		sed -n '/WARNING: this machine uses Intel GVT-g/,/apt-get remove iommufd-noiommu-dkms/p' \
			"$work/install.log" | sed 's/^/# install: /' >> "$tap"
	fi

	# The guest's programs, as scripts/guest.sh installs them in its initramfs.
	cp -a "$guest/root/kselftest" "$guest/root/tests" "$guest/root/run-tests" "$root/"
	cp "$guest/root/bin/busybox" "$root/usr/local/bin/busybox"
	cp "$here/guest/dkms-init" "$root/noiommu-init"
	local size=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 256 ))
	mke2fs -q -F -t ext4 -d "$root" "$work/root.img" "${size}M"
	echo "$stamp" > "$work/stamp"
}

[ "$(cat "$work/stamp" 2>/dev/null)" = "$stamp" ] || install_package
mkdir -p "$(dirname "$log")"
sed 's/^/dkms-test: /' "$tap" | grep -v '^dkms-test: # harness' || true

rc=0
DISK="$work/root.img" "$here/scripts/qemu.sh" "$root/boot/vmlinuz-$kver" \
	"$root/boot/initrd.img-$kver" test "$log" "$limit" "$mem" "$topology" >/dev/null || rc=$?
# The install's checks count with the guest's, once: in topology "one".
[ "$topology" != one ] || cat "$tap" >> "$log"
grep -q "Linux version $kver " "$log" ||
	{ echo "dkms-test: the guest did not boot Debian's kernel $kver" >&2; }
grep -E '^harness: +(filename|signer|version|vermagic):' "$log" | tr -d '\r' | head -n 4 || true
exec "$here/scripts/verdict.sh" "$name" "$log" "$rc"
