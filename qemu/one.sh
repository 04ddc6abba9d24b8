# Guest topology "one": a single edu device on the root bus, no IOMMU.
# Sourced by scripts/qemu.sh; sets the machine, the devices and what the
# guest kernel's command line needs for them.
machine=q35
devices=(-device edu,dma_mask=0xffffffffffffffff)
cmdline=
