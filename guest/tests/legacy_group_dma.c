// SPDX-License-Identifier: GPL-2.0-only
/*
 * The legacy VFIO no-IOMMU path, driven as DPDK-style userspace drives it:
 * /dev/vfio/noiommu-N, a VFIO_NOIOMMU_IOMMU container, BAR0 mmap, and a DMA
 * through QEMU's edu device at a physical address read from
 * /proc/self/pagemap. It needs no change to the kernel and must keep passing
 * beside the cdev tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#define EDU_ID		0x00
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000

/* Find the BDF of the first edu device bound to vfio-pci. */
static int find_edu(char *bdf, size_t len)
{
	char path[512], drv[512];
	struct dirent *d;
	unsigned int ven, dev;
	DIR *dir;
	FILE *f;
	int found = 0;

	dir = opendir("/sys/bus/pci/devices");
	if (!dir)
		return 0;
	while (!found && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", d->d_name);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%x", &ven) != 1)
			ven = 0;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", d->d_name);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%x", &dev) != 1)
			dev = 0;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", d->d_name);
		memset(drv, 0, sizeof(drv));
		if (readlink(path, drv, sizeof(drv) - 1) < 0)
			continue;
		if (ven == 0x1234 && dev == 0x11e8 && strstr(drv, "/vfio-pci")) {
			snprintf(bdf, len, "%s", d->d_name);
			found = 1;
		}
	}
	closedir(dir);
	return found;
}

static int group_of(const char *bdf)
{
	char path[300], link[300];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -1;
	link[n] = 0;
	return atoi(strrchr(link, '/') + 1);
}

static uint64_t virt_to_phys(void *va)
{
	uint64_t entry = 0;
	long psz = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, 8, (uintptr_t)va / psz * 8) != 8)
		entry = 0;
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return (entry & ((1ULL << 55) - 1)) * psz + (uintptr_t)va % psz;
}

static int edu_dma(volatile uint8_t *bar, uint64_t src, uint64_t dst,
		   uint64_t len, uint64_t cmd)
{
	struct timespec ts = { 0, 1000000 };
	int i;

	*(volatile uint64_t *)(bar + EDU_DMA_SRC) = src;
	*(volatile uint64_t *)(bar + EDU_DMA_DST) = dst;
	*(volatile uint64_t *)(bar + EDU_DMA_CNT) = len;
	*(volatile uint64_t *)(bar + EDU_DMA_CMD) = cmd | EDU_CMD_START;
	for (i = 0; i < 5000; i++) {
		if (!(*(volatile uint64_t *)(bar + EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

FIXTURE(legacy) {
	int container, group, device;
	volatile uint8_t *bar;
	size_t bar_size;
};

FIXTURE_SETUP(legacy)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	char bdf[256], path[64];
	uint16_t cmd;
	int grp;

	self->container = self->group = self->device = -1;
	self->bar = MAP_FAILED;
	if (!find_edu(bdf, sizeof(bdf)))
		SKIP(return, "no edu device bound to vfio-pci");
	grp = group_of(bdf);
	ASSERT_LE(0, grp);
	snprintf(path, sizeof(path), "/dev/vfio/noiommu-%d", grp);
	self->group = open(path, O_RDWR);
	if (self->group < 0 && errno == ENOENT)
		SKIP(return, "%s absent: no legacy no-IOMMU group path", path);
	ASSERT_LE(0, self->group);

	self->container = open("/dev/vfio/vfio", O_RDWR);
	ASSERT_LE(0, self->container);
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->container, VFIO_GET_API_VERSION));
	ASSERT_EQ(1, ioctl(self->container, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU));

	ASSERT_EQ(0, ioctl(self->group, VFIO_GROUP_GET_STATUS, &status));
	ASSERT_TRUE(status.flags & VFIO_GROUP_FLAGS_VIABLE);
	ASSERT_EQ(0, ioctl(self->group, VFIO_GROUP_SET_CONTAINER, &self->container));
	ASSERT_EQ(0, ioctl(self->container, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU));
	self->device = ioctl(self->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	ASSERT_LE(0, self->device);

	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->device, VFIO_DEVICE_GET_REGION_INFO, &reg));
	ASSERT_TRUE(reg.flags & VFIO_REGION_INFO_FLAG_MMAP);
	self->bar_size = reg.size;
	self->bar = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->device, reg.offset);
	ASSERT_NE(MAP_FAILED, self->bar);

	/* Bus master on, through the config-space region. */
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->device, VFIO_DEVICE_GET_REGION_INFO, &reg));
	ASSERT_EQ(2, pread(self->device, &cmd, 2, reg.offset + PCI_COMMAND));
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	ASSERT_EQ(2, pwrite(self->device, &cmd, 2, reg.offset + PCI_COMMAND));
}

FIXTURE_TEARDOWN(legacy)
{
	if (self->bar != MAP_FAILED)
		munmap((void *)self->bar, self->bar_size);
	if (self->device >= 0)
		close(self->device);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
}

TEST_F(legacy, id_register)
{
	ASSERT_EQ(0x010000ed, *(volatile uint32_t *)(self->bar + EDU_ID));
}

/*
 * RAM -> device -> RAM through the edu DMA engine, at physical addresses
 * from pagemap. The page is mlock()ed, as such drivers do, so that it stays
 * put for the transfer. Guard bytes around the destination must not move.
 */
TEST_F(legacy, dma_round_trip)
{
	const size_t len = 1000, src_off = 8, dst_off = 2048, guard = 64;
	uint64_t pa;
	uint8_t *buf;
	size_t i;

	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0xa5, 4096);
	for (i = 0; i < len; i++)
		buf[src_off + i] = (uint8_t)(i * 7 + 3);
	pa = virt_to_phys(buf);
	ASSERT_NE(0, pa);

	ASSERT_EQ(0, edu_dma(self->bar, pa + src_off, EDU_BUF, len, 0));
	ASSERT_EQ(0, edu_dma(self->bar, EDU_BUF, pa + dst_off, len, EDU_CMD_TO_RAM));

	for (i = 0; i < len; i++)
		ASSERT_EQ((uint8_t)(i * 7 + 3), buf[dst_off + i]);
	for (i = 0; i < guard; i++) {
		ASSERT_EQ(0xa5, buf[dst_off - 1 - i]);
		ASSERT_EQ(0xa5, buf[dst_off + len + i]);
	}
	munmap(buf, 4096);
}

TEST_HARNESS_MAIN
