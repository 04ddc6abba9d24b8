#!/usr/bin/env bash
# Boot a kernel with the initramfs under QEMU (TCG) with an edu device, the
# console going to a log. Fails if QEMU fails or does not power off in time.
# Usage: qemu.sh BZIMAGE INITRAMFS MODE LOG TIMEOUT_SECONDS MEMORY [GUEST_ARGS]
# GUEST_ARGS reach the guest's programs as harness.args (spaces as commas).
set -euo pipefail

kernel=$1 initrd=$2 mode=$3 log=$4 limit=$5 mem=$6 args=${7:-}
args=${args// /,}

rc=0
timeout --foreground -k 5 "$limit" \
	qemu-system-x86_64 -M q35 -accel tcg -cpu max -smp 2 -m "$mem" \
	-nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 vfio.enable_unsafe_noiommu_mode=1 harness.mode=$mode${args:+ harness.args=$args}" \
	-device edu,dma_mask=0xffffffffffffffff \
	< /dev/null 2>&1 | tee "$log" || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "qemu: no power-off within $limit s" | tee -a "$log"
elif [ "$rc" -ne 0 ]; then
	echo "qemu: exited with status $rc" | tee -a "$log"
fi
exit "$rc"
