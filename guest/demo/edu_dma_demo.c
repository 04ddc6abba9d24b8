// SPDX-License-Identifier: GPL-2.0-only
/*
 * edu_dma_demo: a userspace driver for QEMU's edu device through the VFIO
 * no-IOMMU cdev and iommufd, as 'make run' shows it. Every step is printed.
 *
 *   open /dev/vfio/devices/noiommu-vfioN and /dev/iommu
 *   VFIO_DEVICE_BIND_IOMMUFD, IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT
 *   IOMMU_IOAS_IOVA_RANGES (what IOVAs the IOAS takes, and their alignment)
 *   IOMMU_IOAS_MAP (pins the buffer), IOMMU_IOAS_NOIOMMU_GET_PA (its PA)
 *   edu DMA RAM -> device -> RAM at that PA, bytes checked
 *   IOMMU_IOAS_UNMAP, close
 *
 * The ioctls are issued through the thin wrappers of vfio_noiommu_lib, one
 * wrapper per ioctl, named after it.
 *
 * Usage: edu_dma_demo [BDF]   (default: $VFIO_SELFTEST_BDF, else the edu
 *                              device on vfio-pci with the lowest BDF)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "vfio_noiommu_lib.h"

#define IOVA		0x100000000ULL
#define BUF_LEN		4096
#define LEN		1000

/* Returns @ret when it is not a negative errno, else fails the demo */
static int check(int ret, const char *what)
{
	if (ret < 0) {
		printf("edu_dma_demo: FAILED: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
	return ret;
}

int main(int argc, char **argv)
{
	char bdf[64], name[64];
	__u32 devid, ioas, hwpt;
	__u64 pa, pa_len = BUF_LEN, align;
	struct iommu_iova_range ranges[4];
	__u32 nr = 4;
	int dev, iommufd, i;
	struct edu edu;
	uint8_t *buf;

	check(noiommu_find_edu(argc > 1 ? argv[1] : NULL, bdf, sizeof(bdf)),
	      "no edu device bound to vfio-pci");
	check(noiommu_cdev_name(bdf, name, sizeof(name)), "vfio-dev of the device");
	printf("edu_dma_demo: device %s has cdev " VFIO_CDEV_DIR "/%s\n", bdf, name);

	dev = check(vfio_cdev_open(name), "open cdev");
	iommufd = check(iommufd_open(), "open /dev/iommu");

	check(vfio_device_bind(dev, iommufd, &devid), "VFIO_DEVICE_BIND_IOMMUFD");
	check(iommufd_ioas_alloc(iommufd, &ioas), "IOMMU_IOAS_ALLOC");
	check(vfio_device_attach(dev, ioas, &hwpt), "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("edu_dma_demo: bound as device %u, IOAS %u, attached through HWPT %u\n",
	       devid, ioas, hwpt);
	check(iommufd_iova_ranges(iommufd, ioas, ranges, &nr, &align),
	      "IOMMU_IOAS_IOVA_RANGES");
	printf("edu_dma_demo: IOAS takes IOVAs 0x%llx-0x%llx%s, aligned to 0x%llx (page size 0x%lx)\n",
	       (unsigned long long)ranges[0].start, (unsigned long long)ranges[0].last,
	       nr > 1 ? " and more" : "", (unsigned long long)align,
	       sysconf(_SC_PAGESIZE));

	/* mmap BAR0, turn on memory and bus mastering, check the ID register */
	check(edu_open(&edu, dev), "edu BAR0 and config space");
	printf("edu_dma_demo: edu ID register 0x%08x\n",
	       __atomic_load_n((__u32 *)((char *)edu.bar + EDU_REG_ID),
			       __ATOMIC_RELAXED));

	buf = anon_buf_alloc(BUF_LEN, 0);
	if (buf == MAP_FAILED)
		check(-errno, "mmap buffer");
	check(iommufd_ioas_map(iommufd, ioas, buf, BUF_LEN, IOVA), "IOMMU_IOAS_MAP");
	check(iommufd_get_pa(iommufd, ioas, IOVA, &pa_len, &pa),
	      "IOMMU_IOAS_NOIOMMU_GET_PA");
	printf("edu_dma_demo: buffer pinned at IOVA 0x%llx: PA 0x%llx, %llu contiguous bytes\n",
	       IOVA, (unsigned long long)pa, (unsigned long long)pa_len);

	for (i = 0; i < LEN; i++)
		buf[i] = (uint8_t)(i * 13 + 7);
	check(edu_dma(&edu, pa, 0, LEN, false), "edu DMA");
	check(edu_dma(&edu, pa + 2048, 0, LEN, true), "edu DMA");
	for (i = 0; i < LEN; i++)
		if (buf[2048 + i] != (uint8_t)(i * 13 + 7))
			check(-EIO, "bytes back from the device differ");
	printf("edu_dma_demo: DMA RAM -> edu -> RAM of %d bytes: all bytes match\n", LEN);

	check(iommufd_ioas_unmap(iommufd, ioas, IOVA, BUF_LEN), "IOMMU_IOAS_UNMAP");
	edu_close(&edu);
	close(dev);
	close(iommufd);
	printf("edu_dma_demo: unmapped and closed: OK\n");
	return 0;
}
