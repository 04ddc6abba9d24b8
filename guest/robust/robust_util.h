/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the robustness tests in guest/robust: messages, clock,
 * sysfs text, the edu device and its cdev, pinned-page counters, ioctl.
 */
#ifndef ROBUST_UTIL_H
#define ROBUST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#ifndef PIN_WAIT_MS
#define PIN_WAIT_MS	2000
#endif

static inline void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int read_text(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

static inline int write_text(const char *path, const char *val)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? n : 0;
}

/* The first edu device (1234:11e8) bound to vfio-pci, and its cdev path */
static inline int find_device(char *bdf, size_t bdf_len, char *cdev, size_t cdev_len)
{
	char path[PATH_MAX], link[PATH_MAX], buf[64];
	struct dirent *de, *ve;
	DIR *dir, *vdir;
	ssize_t n;
	int ret = -ENODEV;

	dir = opendir("/sys/bus/pci/devices");
	if (!dir)
		return -errno;
	while (ret && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor",
			 de->d_name);
		if (read_text(path, buf, sizeof(buf)) || strcmp(buf, "0x1234"))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 de->d_name);
		if (read_text(path, buf, sizeof(buf)) || strcmp(buf, "0x11e8"))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver",
			 de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(strrchr(link, '/') + 1, "vfio-pci"))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev",
			 de->d_name);
		vdir = opendir(path);
		if (!vdir)
			continue;
		while ((ve = readdir(vdir))) {
			if (strncmp(ve->d_name, "noiommu-vfio", 12))
				continue;
			snprintf(bdf, bdf_len, "%s", de->d_name);
			snprintf(cdev, cdev_len, "/dev/vfio/devices/%s",
				 ve->d_name);
			ret = access(cdev, F_OK) ? -ENOENT : 0;
			break;
		}
		closedir(vdir);
	}
	closedir(dir);
	return ret;
}

static inline long vmpin_kb(void)
{
	char line[256];
	long val = -1;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &val) == 1)
			break;
	fclose(f);
	return val;
}

/*
 * Pages held by FOLL_PIN in the whole system: acquired minus released, from
 * /proc/vmstat after folding the per-CPU counters into it.
 */
static inline long foll_pins(void)
{
	long acq = -1, rel = -1, v;
	char line[256];
	FILE *f;

	write_text("/proc/sys/vm/stat_refresh", "1");
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return LONG_MIN;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "nr_foll_pin_acquired %ld", &v) == 1)
			acq = v;
		else if (sscanf(line, "nr_foll_pin_released %ld", &v) == 1)
			rel = v;
	}
	fclose(f);
	return acq < 0 || rel < 0 ? LONG_MIN : acq - rel;
}

/* Wait a little for a pin count to come back: it should be at once. */
static inline long wait_value(long (*get)(void), long want)
{
	long val = get();
	int i;

	for (i = 0; i < PIN_WAIT_MS / 10 && val != want; i++) {
		usleep(10000);
		val = get();
	}
	return val;
}

static inline int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

/* The ioctls every flow starts with; -errno on failure */

static inline int dev_bind(int dfd, int ifd, __u32 *devid)
{
	struct vfio_device_bind_iommufd cmd = {
		.argsz = sizeof(cmd),
		.iommufd = ifd,
	};
	int ret = xioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &cmd);

	if (!ret && devid)
		*devid = cmd.out_devid;
	return ret;
}

static inline int dev_attach(int dfd, __u32 pt_id)
{
	struct vfio_device_attach_iommufd_pt cmd = {
		.argsz = sizeof(cmd),
		.pt_id = pt_id,
	};

	return xioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
}

static inline int dev_detach(int dfd)
{
	struct vfio_device_detach_iommufd_pt cmd = { .argsz = sizeof(cmd) };

	return xioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &cmd);
}

static inline int ioas_alloc(int ifd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = xioctl(ifd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return ret;
}

#endif /* ROBUST_UTIL_H */
