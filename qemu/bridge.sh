# Guest topology "bridge": two edu devices, no IOMMU, behind one PCI-to-PCI
# bridge. They share its secondary bus, so vfio-pci puts them in one device
# set and a hot reset (a secondary bus reset) covers both.
machine=q35
devices=(
	-device pci-bridge,id=br0,bus=pcie.0,addr=0x3,chassis_nr=1,shpc=off
	-device edu,bus=br0,addr=0x1,dma_mask=0xffffffffffffffff
	-device edu,bus=br0,addr=0x2,dma_mask=0xffffffffffffffff
)
cmdline=
