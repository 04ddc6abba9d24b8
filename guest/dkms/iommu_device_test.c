// SPDX-License-Identifier: GPL-2.0-only
/*
 * No regression for a device behind an IOMMU, on a kernel running the DKMS
 * package's modules (topology "mixed": an edu device behind QEMU's
 * intel-iommu): it still does DMA through the legacy group path with the
 * type1 IOMMU backend, and through iommufd on its vfioN cdev; and the
 * package's own patch holds: dirty tracking is neither offered nor granted
 * (the stock kernel's IOMMU drivers were built without IOMMUFD_DRIVER).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vfio_noiommu_lib.h"

#define IOVA 0x100000ULL

FIXTURE(translated) {
	struct noiommu_dev dev;
	struct edu edu;
	int container, group, devfd, iommufd;
	__u8 *buf;
	size_t psz;
};

FIXTURE_SETUP(translated)
{
	self->container = self->group = self->devfd = self->iommufd = -1;
	self->edu.bar = NULL;
	self->psz = sysconf(_SC_PAGESIZE);
	if (edu_devices(&self->dev, 1, false) < 1)
		SKIP(return, "no edu device behind an IOMMU on vfio-pci (topology \"mixed\")");
	self->buf = mmap(NULL, self->psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
}

FIXTURE_TEARDOWN(translated)
{
	edu_close(&self->edu);
	if (self->devfd >= 0)
		close(self->devfd);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
	if (self->iommufd >= 0)
		close(self->iommufd);
}

/* RAM -> edu -> RAM at an IOVA of the device's own I/O address space */
static void dma_round_trip(struct __test_metadata *_metadata, struct edu *edu,
			   __u8 *buf, size_t psz)
{
	const size_t len = 1000, src_off = 8, dst_off = 2048;
	size_t i;

	memset(buf, 0xa5, psz);
	for (i = 0; i < len; i++)
		buf[src_off + i] = (__u8)(i * 5 + 1);
	ASSERT_EQ(0, edu_dma(edu, IOVA + src_off, 0, len, false));
	ASSERT_EQ(0, edu_dma(edu, IOVA + dst_off, 0, len, true));
	for (i = 0; i < len; i++)
		ASSERT_EQ((__u8)(i * 5 + 1), buf[dst_off + i]);
	ASSERT_EQ(0xa5, buf[dst_off - 1]);
	ASSERT_EQ(0xa5, buf[dst_off + len]);
}

TEST_F(translated, type1_group_dma)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = IOVA,
	};
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = IOVA,
	};
	char link_path[PATH_MAX], link[PATH_MAX], path[PATH_MAX];
	ssize_t n;

	snprintf(link_path, sizeof(link_path),
		 "/sys/bus/pci/devices/%s/iommu_group", self->dev.bdf);
	n = readlink(link_path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(link, '/') + 1);
	TH_LOG("%s: group %s, cdev %s", self->dev.bdf, path, self->dev.name);

	self->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->container);
	ASSERT_EQ(1, ioctl(self->container, VFIO_CHECK_EXTENSION,
			   VFIO_TYPE1v2_IOMMU));
	self->group = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->group);
	ASSERT_EQ(0, ioctl(self->group, VFIO_GROUP_GET_STATUS, &status));
	ASSERT_TRUE(status.flags & VFIO_GROUP_FLAGS_VIABLE);
	ASSERT_EQ(0, ioctl(self->group, VFIO_GROUP_SET_CONTAINER,
			   &self->container));
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	self->devfd = ioctl(self->group, VFIO_GROUP_GET_DEVICE_FD, self->dev.bdf);
	ASSERT_LE(0, self->devfd);
	ASSERT_EQ(0, edu_open(&self->edu, self->devfd));

	map.vaddr = (__u64)(uintptr_t)self->buf;
	map.size = self->psz;
	ASSERT_EQ(0, ioctl(self->container, VFIO_IOMMU_MAP_DMA, &map));
	dma_round_trip(_metadata, &self->edu, self->buf, self->psz);
	unmap.size = self->psz;
	ASSERT_EQ(0, ioctl(self->container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	ASSERT_EQ(self->psz, unmap.size);
}

TEST_F(translated, cdev_dma_and_no_dirty_tracking)
{
	struct iommu_hw_info info = { .size = sizeof(info) };
	__u32 devid, ioas, hwpt, pt;

	self->iommufd = iommufd_open();
	ASSERT_LE(0, self->iommufd);
	self->devfd = vfio_cdev_open(self->dev.name);
	ASSERT_LE(0, self->devfd);
	ASSERT_EQ(0, vfio_device_bind(self->devfd, self->iommufd, &devid));
	ASSERT_EQ(0, iommufd_ioas_alloc(self->iommufd, &ioas));

	info.dev_id = devid;
	ASSERT_EQ(0, ioctl(self->iommufd, IOMMU_GET_HW_INFO, &info));
	TH_LOG("GET_HW_INFO: type %u, capabilities 0x%llx", info.out_data_type,
	       (unsigned long long)info.out_capabilities);
	ASSERT_EQ(0, info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	ASSERT_EQ(-EOPNOTSUPP,
		  iommufd_hwpt_alloc(self->iommufd, devid, ioas,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt));
	/* The same allocation without the flag succeeds */
	ASSERT_EQ(0, iommufd_hwpt_alloc(self->iommufd, devid, ioas, 0, &hwpt));

	pt = hwpt;
	ASSERT_EQ(0, vfio_device_attach(self->devfd, pt, &pt));
	ASSERT_EQ(0, iommufd_ioas_map(self->iommufd, ioas, self->buf, self->psz,
				      IOVA));
	ASSERT_EQ(0, edu_open(&self->edu, self->devfd));
	dma_round_trip(_metadata, &self->edu, self->buf, self->psz);
}

TEST_HARNESS_MAIN
