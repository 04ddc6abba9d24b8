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
# FOREIGN=ROOT: KERNEL is of another architecture (arm64), whose Debian root
# ROOT is unpacked only (DEB_ARCH=arm64 scripts/dkms-root.sh). In BASEROOT's
# copy, after the package's install, dkms builds and installs the modules
# for KERNEL as Debian's headers packages build for another architecture:
# the kernel's image and headers unpacked, the release's cross compiler,
# whose name the headers give. Debian's kernel then boots ROOT, with its
# modules and those, as its initramfs.
# DEB_ARCH=arm64 without FOREIGN: BASEROOT is a whole arm64 root (emulated:
# DEB_ARCH=arm64 EMULATE=1 scripts/dkms-root.sh), where apt and dkms run
# under qemu-user-static.
# Usage: [GVT=1] [REMOVE=host] [DEB_ARCH=arm64 [FOREIGN=ROOT]] dkms-test.sh NAME BASEROOT KERNEL DKMS_DEB GUESTDIR LOG TIMEOUT MEMORY TOPOLOGY
# GVT=1: the root is a machine that uses Intel GVT-g (i915's enable_gvt).
# REMOVE=host: the package's removal is checked in the root's copy once its
# image is made (dkms deletes its modules, depmod finds the stock ones),
# not in the guest, whose depmod of Debian's thousands of modules takes
# TCG a minute and a half (guest/dkms-init removes it in the other runs).
set -euo pipefail

name=$1 base=$(realpath "$2") kver=$3 deb=$(realpath "$4") guest=$(realpath "$5")
log=$6 limit=$7 mem=$8 topology=$9
here=$(cd "$(dirname "$0")/.." && pwd)
foreign=${FOREIGN:+$(realpath "$FOREIGN")}
work="${foreign:-$base}.installed"
root="$work/root" tap="$work/install.tap"
stamp="$(sha256sum "$deb" "$here/guest/dkms-init" "$guest/initramfs.cpio" | sha256sum) ${GVT:-0} ${REMOVE:-guest} $foreign"
version=$(dpkg-deb -f "$deb" Version)
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

check() {	# check DESCRIPTION COMMAND...: a TAP line of the install's checks
	if "${@:2}" >/dev/null 2>&1; then echo "ok - install: $1"; else echo "not ok - install: $1"; fi >> "$tap"
}

# The modules of the foreign kernel: its image and headers packages, from
# the root's apt, unpacked into the copy (depmod as the image's postinst
# does), the cross compiler its headers name (.kernelvariables: CC gcc-14,
# CROSS_COMPILE aarch64-linux-gnu-) installed by apt, and the binutils
# whose strip reads arm64 objects (dkms runs 'strip -g' on each module);
# then dkms builds and installs them, as it does on an arm64 machine
# (arch aarch64).
build_foreign() {
	local vars="$root/usr/src/linux-headers-$kver/.kernelvariables" cc cross karch d
	in_root dpkg --add-architecture "$DEB_ARCH"
	in_root apt-get -qq update
	in_root sh -c "cd /tmp && apt-get -q download linux-image-$kver:$DEB_ARCH linux-headers-$kver:$DEB_ARCH"
	for d in "$root"/tmp/linux-image-"$kver"_*.deb "$root"/tmp/linux-headers-"$kver"_*.deb; do
		# as dpkg does: /lib, a link to usr/lib in the root, stays one
		dpkg-deb --fsys-tarfile "$d" | tar -x --keep-directory-symlink -C "$root"
		rm "$d"
	done
	in_root depmod -a "$kver"
	cc=$(sed -n 's/^CC = .*)\(gcc-[0-9]*\)$/\1/p' "$vars")
	cross=$(sed -n 's/^override CROSS_COMPILE = //p' "$vars")
	[ -n "$cc" ] && [ -n "$cross" ] || { echo "no CC or CROSS_COMPILE in $vars"; return 1; }
	in_root apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends \
		"$cc-${cross%-}" binutils-multiarch
	karch=$(dpkg-architecture -a "$DEB_ARCH" -q DEB_HOST_GNU_CPU 2>/dev/null)
	in_root dkms install "iommufd-noiommu/$version" -k "$kver" -a "$karch"
}

install_package() {
	local rc=0 m
	rm -rf "$work"
	mkdir -p "$work"
	echo "dkms-test: $(basename "$deb") into a copy of $base${foreign:+, for $kver}"
	cp -a "$base" "$root"
	echo "options vfio enable_unsafe_noiommu_mode=1" > "$root/etc/modprobe.d/vfio-noiommu.conf"
	[ "${GVT:-0}" = 0 ] || echo "options i915 enable_gvt=1" > "$root/etc/modprobe.d/i915-gvt.conf"
	cp "$deb" "$root/tmp/"
	mount -t proc proc "$root/proc"
	trap 'umount -l "$root/proc" 2>/dev/null || true' EXIT
	in_root apt-get install -y -q -o Dpkg::Use-Pty=0 "/tmp/$(basename "$deb")" \
		> "$work/install.log" 2>&1 || rc=$?
	if [ -n "$foreign" ] && [ "$rc" -eq 0 ]; then
		build_foreign >> "$work/install.log" 2>&1 || rc=$?
	fi
	umount -l "$root/proc"
	rm "$root/tmp/$(basename "$deb")"
	: > "$tap"
	echo "# harness: running dkms-install" >> "$tap"
	check "apt-get install of the package${foreign:+, dkms install for $kver} (exit $rc)" test "$rc" -eq 0
	local mods="$root/lib/modules/$kver" built=(iommufd vfio vfio_iommu_type1 vfio-pci-core vfio-pci)
	# arm64's vfio-fsl-mc, built on vfio.ko, where the kernel has it
	grep -qs '^CONFIG_VFIO_FSL_MC=m' "$mods/build/.config" && built+=(vfio-fsl-mc)
	for m in "${built[@]}"; do
		check "$m built by dkms for $kver (updates/dkms)" \
			compgen -G "$mods/updates/dkms/$m.ko*"
	done
	check "vfio's vermagic is $kver's ($(modinfo -F vermagic "$mods"/updates/dkms/vfio.ko* 2>/dev/null))" \
		grep -q "^$kver " < <(modinfo -F vermagic "$mods"/updates/dkms/vfio.ko*)
	check "dkms signed vfio with its key ($(modinfo -F signer "$mods"/updates/dkms/vfio.ko* 2>/dev/null))" \
		grep -q DKMS < <(modinfo -F signer "$mods"/updates/dkms/vfio.ko*)
	# Kernels with headers that the package does not support (a root may
	# have some: bookworm-backports' 6.12.95): nothing built, and why.
	local k dir
	for dir in "$root"/lib/modules/*; do
		k=${dir##*/}
		[ -L "$dir/build" ] || continue
		grep -qx "$k" "$root/usr/src/iommufd-noiommu-$version/kernels" && continue
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

	# The root the guest boots: this one, or the foreign one with the
	# kernel's modules from this one. The guest's programs go in as
	# scripts/guest.sh installs them in its initramfs.
	local boot=$root
	if [ -n "$foreign" ]; then
		boot="$work/boot"
		cp -a "$foreign" "$boot"
		rm -rf "$boot/lib/modules/$kver"
		mkdir -p "$boot/lib/modules"
		cp -a "$mods" "$boot/lib/modules/$kver"
		cp "$root/etc/modprobe.d/vfio-noiommu.conf" "$boot/etc/modprobe.d/"
	fi
	cp -a "$guest/root/kselftest" "$guest/root/tests" "$guest/root/run-tests" "$boot/"
	mkdir -p "$boot/usr/local/bin"
	cp "$guest/root/bin/busybox" "$boot/usr/local/bin/busybox"
	cp "$here/guest/dkms-init" "$boot/noiommu-init"
	if [ -n "$foreign" ]; then
		(cd "$boot" && find . | cpio -o -H newc --quiet) > "$work/root.cpio"
	else
		[ "${REMOVE:-guest}" != host ] || touch "$root/noiommu-removal-on-host"
		local size=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 256 ))
		mke2fs -q -F -t ext4 -d "$root" "$work/root.img" "${size}M"
	fi
	[ "${REMOVE:-guest}" != host ] || remove_package
	# What the boot and dkms-compare.sh need; the root's copy goes (over
	# a GiB), but for a failed install's, kept to be looked at and made
	# again on the next run.
	cp "$root/boot/vmlinuz-$kver" "$root/boot/initrd.img-$kver" "$work/" 2>/dev/null || true
	cp -a "$mods/updates/dkms" "$work/updates-dkms" 2>/dev/null || true
	if grep -q '^not ok' "$tap"; then return 0; fi
	rm -rf "$root" "${work:?}/boot"
	echo "$stamp" > "$work/stamp"
}

# The removal, in the root's copy: no module left in updates/dkms, and
# modprobe's index gives the stock vfio back.
remove_package() {
	local rc=0 mods="$root/lib/modules/$kver" file
	mount -t proc proc "$root/proc"
	in_root apt-get remove -y -q -o Dpkg::Use-Pty=0 iommufd-noiommu-dkms \
		> "$work/remove.log" 2>&1 || rc=$?
	umount -l "$root/proc"
	grep -E '^(Deleting|Restoring)' "$work/remove.log" | sed 's/^/# remove: /' >> "$tap"
	check "apt-get remove of the package (exit $rc)" test "$rc" -eq 0
	check "after apt-get remove: no module in updates/dkms" \
		test -z "$(ls -A "$mods/updates/dkms" 2>/dev/null)"
	file=$(modinfo -b "$root" -k "$kver" -F filename vfio 2>/dev/null)
	check "after apt-get remove: modprobe's vfio is the stock one (${file#"$root"})" \
		grep -q "/lib/modules/$kver/kernel/drivers/vfio/vfio.ko" <<< "$file"
}

[ "$(cat "$work/stamp" 2>/dev/null)" = "$stamp" ] || install_package
mkdir -p "$(dirname "$log")"
sed 's/^/dkms-test: /' "$tap" | grep -v '^dkms-test: # harness' || true

# Debian's kernel with its initramfs booting the root's disk image; or,
# foreign, with the root as its initramfs.
rc=0
qarch=x86_64
[ "${DEB_ARCH:-}" != arm64 ] || qarch=arm64
if [ -n "$foreign" ]; then
	RDINIT=/noiommu-init ARCH=$qarch "$here/scripts/qemu.sh" "$work/vmlinuz-$kver" \
		"$work/root.cpio" test "$log" "$limit" "$mem" "$topology" >/dev/null || rc=$?
else
	DISK="$work/root.img" ARCH=$qarch "$here/scripts/qemu.sh" "$work/vmlinuz-$kver" \
		"$work/initrd.img-$kver" test "$log" "$limit" "$mem" "$topology" >/dev/null || rc=$?
fi
# The install's checks count with the guest's, once: in topology "one".
[ "$topology" != one ] || cat "$tap" >> "$log"
grep -q "Linux version $kver " "$log" ||
	{ echo "dkms-test: the guest did not boot Debian's kernel $kver" >&2; }
grep -E '^harness: +(filename|signer|version|vermagic):' "$log" | tr -d '\r' | head -n 4 || true
exec "$here/scripts/verdict.sh" "$name" "$log" "$rc"
