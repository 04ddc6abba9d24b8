// SPDX-License-Identifier: GPL-2.0-only
/*
 * edu_dma_demo: a userspace driver for QEMU's edu device through the VFIO
 * no-IOMMU cdev and iommufd, as 'make run' shows it. Every step is printed.
 *
 *   open /dev/vfio/devices/noiommu-vfioN and /dev/iommu
 *   VFIO_DEVICE_BIND_IOMMUFD, IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT
 *   IOMMU_IOAS_MAP (pins the buffer), IOMMU_IOAS_NOIOMMU_GET_PA (its PA)
 *   edu DMA RAM -> device -> RAM at that PA, bytes checked
 *   IOMMU_IOAS_UNMAP, close
 *
 * Usage: edu_dma_demo [BDF]   (default: the first edu device on vfio-pci)
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
#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#define EDU_ID		0x00
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000

#define IOVA		0x100000000ULL
#define LEN		1000

static void die(const char *what)
{
	printf("edu_dma_demo: FAILED: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int edu_bdf(char *bdf, size_t len)
{
	char path[512], buf[32];
	struct dirent *d;
	DIR *dir = opendir("/sys/bus/pci/devices");
	int fd, found = 0;

	while (dir && !found && (d = readdir(dir))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/uevent", d->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		memset(buf, 0, sizeof(buf));
		found = read(fd, buf, sizeof(buf) - 1) > 0 && strstr(buf, "DRIVER=vfio-pci");
		close(fd);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", d->d_name);
		fd = open(path, O_RDONLY);
		memset(buf, 0, sizeof(buf));
		if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0 || strncmp(buf, "0x11e8", 6))
			found = 0;
		if (fd >= 0)
			close(fd);
		if (found)
			snprintf(bdf, len, "%s", d->d_name);
	}
	if (dir)
		closedir(dir);
	return found;
}

static void edu_dma(volatile uint8_t *bar, uint64_t src, uint64_t dst, uint64_t cmd)
{
	struct timespec ts = { 0, 1000000 };
	int i;

	*(volatile uint64_t *)(bar + EDU_DMA_SRC) = src;
	*(volatile uint64_t *)(bar + EDU_DMA_DST) = dst;
	*(volatile uint64_t *)(bar + EDU_DMA_CNT) = LEN;
	*(volatile uint64_t *)(bar + EDU_DMA_CMD) = cmd | EDU_CMD_START;
	for (i = 0; i < 5000; i++) {
		if (!(*(volatile uint64_t *)(bar + EDU_DMA_CMD) & EDU_CMD_START))
			return;
		nanosleep(&ts, NULL);
	}
	errno = ETIMEDOUT;
	die("edu DMA");
}

int main(int argc, char **argv)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_ioas_map map = { .size = sizeof(map) };
	struct iommu_ioas_unmap unmap = { .size = sizeof(unmap) };
	struct iommu_ioas_noiommu_get_pa pa = { .size = sizeof(pa) };
	char bdf[256], path[600], name[256];
	volatile uint8_t *bar;
	struct dirent *d;
	uint8_t *buf;
	uint16_t cmd;
	int dev, iommufd, i;
	DIR *dir;

	if (argc > 1)
		snprintf(bdf, sizeof(bdf), "%s", argv[1]);
	else if (!edu_bdf(bdf, sizeof(bdf)))
		die("no edu device bound to vfio-pci");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		die(path);
	name[0] = 0;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			snprintf(name, sizeof(name), "%s", d->d_name);
	closedir(dir);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	printf("edu_dma_demo: device %s has cdev %s\n", bdf, path);

	dev = open(path, O_RDWR);
	if (dev < 0)
		die("open cdev");
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		die("open /dev/iommu");

	bind.iommufd = iommufd;
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("edu_dma_demo: bound as device %u, IOAS %u, attached through HWPT %u\n",
	       bind.out_devid, alloc.out_ioas_id, attach.pt_id);

	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg))
		die("BAR0 region info");
	bar = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, reg.offset);
	if (bar == MAP_FAILED)
		die("mmap BAR0");
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) ||
	    pread(dev, &cmd, 2, reg.offset + PCI_COMMAND) != 2)
		die("config space");
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(dev, &cmd, 2, reg.offset + PCI_COMMAND) != 2)
		die("bus master on");
	printf("edu_dma_demo: edu ID register 0x%08x\n", *(volatile uint32_t *)(bar + EDU_ID));

	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap buffer");
	memset(buf, 0, 4096);
	map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
		    IOMMU_IOAS_MAP_WRITEABLE;
	map.ioas_id = alloc.out_ioas_id;
	map.user_va = (uintptr_t)buf;
	map.length = 4096;
	map.iova = IOVA;
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map))
		die("IOMMU_IOAS_MAP");

	pa.ioas_id = alloc.out_ioas_id;
	pa.iova = IOVA;
	pa.length = 4096;
	if (ioctl(iommufd, IOMMU_IOAS_NOIOMMU_GET_PA, &pa))
		die("IOMMU_IOAS_NOIOMMU_GET_PA");
	printf("edu_dma_demo: buffer pinned at IOVA 0x%llx: PA 0x%llx, %llu contiguous bytes\n",
	       IOVA, (unsigned long long)pa.out_phys, (unsigned long long)pa.length);

	for (i = 0; i < LEN; i++)
		buf[i] = (uint8_t)(i * 13 + 7);
	edu_dma(bar, pa.out_phys, EDU_BUF, 0);
	edu_dma(bar, EDU_BUF, pa.out_phys + 2048, EDU_CMD_TO_RAM);
	for (i = 0; i < LEN; i++)
		if (buf[2048 + i] != (uint8_t)(i * 13 + 7)) {
			errno = EIO;
			die("bytes back from the device differ");
		}
	printf("edu_dma_demo: DMA RAM -> edu -> RAM of %d bytes: all bytes match\n", LEN);

	unmap.ioas_id = alloc.out_ioas_id;
	unmap.iova = IOVA;
	unmap.length = 4096;
	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap))
		die("IOMMU_IOAS_UNMAP");
	close(dev);
	close(iommufd);
	printf("edu_dma_demo: unmapped and closed: OK\n");
	return 0;
}
