#!/usr/bin/env bash
# Boot a kernel with the initramfs under QEMU (TCG) in one of the guest
# topologies of qemu/ (the edu devices, and an IOMMU or not), the console
# going to a log. Fails if QEMU fails or does not power off in time.
# Usage: [ARCH=arm64] qemu.sh IMAGE INITRAMFS MODE LOG TIMEOUT_SECONDS MEMORY TOPOLOGY [GUEST_ARGS]
# ARCH (x86_64 by default) picks QEMU, its machine (the topology's machine,
# or machine_arm64 for arm64) and the console.
# GUEST_ARGS reach the guest's programs as harness.args (spaces as commas);
# the guest learns the topology's name as harness.topology.
# DISK (a raw image) becomes the guest's root file system, virtio disk vda,
# booted through INITRAMFS (then Debian's own) into /noiommu-init; VFIO's
# no-IOMMU parameter then comes from the root's /etc/modprobe.d, not from
# the command line (scripts/dkms-test.sh).
# RDINIT (a path): INITRAMFS is a whole root file system, started at RDINIT;
# VFIO's parameter comes from its /etc/modprobe.d too (a foreign root:
# scripts/dkms-test.sh).
set -euo pipefail

kernel=$1 initrd=$2 mode=$3 log=$4 limit=$5 mem=$6 topology=$7 args=${8:-}
args=${args// /,}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$here/qemu/$topology.sh" ] || { echo "qemu.sh: no topology qemu/$topology.sh" >&2; exit 2; }
# shellcheck source=/dev/null
. "$here/qemu/$topology.sh"

case ${ARCH:-x86_64} in
x86_64) qemu=(qemu-system-x86_64 -cpu max) console=ttyS0 ;;
# pauth-impdef: TCG's own pointer authentication, not QARMA's slow one
arm64)	qemu=(qemu-system-aarch64 -cpu max,pauth-impdef=on) console=ttyAMA0
	machine=${machine_arm64:-}
	[ -n "$machine" ] || { echo "qemu.sh: topology $topology has no arm64 machine" >&2; exit 2; } ;;
*)	echo "qemu.sh: unknown ARCH $ARCH" >&2; exit 2 ;;
esac

append="console=$console panic=-1 $cmdline"
disk=()
if [ -n "${DISK:-}" ]; then
	disk=(-drive "file=$DISK,if=none,id=root,format=raw,snapshot=on"
	      -device virtio-blk-pci,drive=root,bus=pcie.0)
	append+=" root=/dev/vda rw init=/noiommu-init printk.time=1"
elif [ -n "${RDINIT:-}" ]; then
	append+=" rdinit=$RDINIT printk.time=1"
else
	append+=" vfio.enable_unsafe_noiommu_mode=1"
fi
append+=" harness.mode=$mode harness.topology=$topology${args:+ harness.args=$args}"
rc=0
timeout --foreground -k 5 "$limit" \
	"${qemu[@]}" -M "$machine" -accel tcg -smp 2 -m "$mem" \
	-nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$kernel" -initrd "$initrd" -append "$append" "${devices[@]}" "${disk[@]}" \
	< /dev/null 2>&1 | tee "$log" || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "qemu: no power-off within $limit s" | tee -a "$log"
elif [ "$rc" -ne 0 ]; then
	echo "qemu: exited with status $rc" | tee -a "$log"
fi
exit "$rc"
