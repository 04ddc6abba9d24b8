# Guest topology "one": a single edu device on the root bus, no IOMMU.
# Sourced by scripts/qemu.sh; sets the machine (x86_64, and arm64's), the
# devices and what the guest kernel's command line needs for them.
machine=q35
machine_arm64=virt,gic-version=3
devices=(-device edu,dma_mask=0xffffffffffffffff)
cmdline=
