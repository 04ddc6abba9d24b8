# Guest topology "mixed": one edu device behind an emulated Intel IOMMU and
# one without. The root bus bypasses the IOMMU (default_bus_bypass_iommu);
# a PCIe expander bus, which does not, holds the translated device behind a
# root port. No interrupt remapping: iommufd then binds the translated
# device only with allow_unsafe_interrupts, and so does VFIO's type1
# backend of the group path (scripts/dkms-test.sh). acpi=noirq: QEMU's _PRT
# method for an expander bus loops over 128 entries, which the debug kernel's
# ACPI interpreter does not finish within ACPICA's 30 s loop limit, at every
# pci_enable_device(); the tests use no INTx, so the guest skips ACPI's
# interrupt routing altogether.
machine=q35,default_bus_bypass_iommu=on
devices=(
	-device intel-iommu,intremap=off
	-device pxb-pcie,id=pxb0,bus_nr=0x80,bus=pcie.0,addr=0x4
	-device pcie-root-port,id=rp0,bus=pxb0,chassis=2
	-device edu,bus=rp0,dma_mask=0xffffffffffffffff
	-device edu,bus=pcie.0,addr=0x5,dma_mask=0xffffffffffffffff
)
cmdline="intel_iommu=on iommufd.allow_unsafe_interrupts=1 vfio_iommu_type1.allow_unsafe_interrupts=1 acpi=noirq"
