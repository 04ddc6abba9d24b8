// SPDX-License-Identifier: GPL-2.0-only
/*
 * The device is removed (unbound from vfio-pci) while userspace holds its
 * noiommu-vfioN cdev bound to an iommufd, attached, with pinned mappings.
 *
 * A helper process writes the BDF to /sys/bus/pci/drivers/vfio-pci/unbind:
 * that blocks until the device fds are closed, vfio-pci asking userspace to
 * let go through the device request eventfd (round 0 registers one and
 * checks that it fires; round 1 has none). Meanwhile the test keeps calling
 * ioctls on its fds: they must keep working or fail cleanly, and the cdev
 * must not open again. The unbind must still be blocked while the device fd
 * is open (round 0 closes the iommufd first: the device holds the context),
 * and complete once it is closed (round 1 closes the device fd first: the
 * pins go at once, the iommufd left with mappings and no domain). Then VmPin
 * and the system FOLL_PIN count are back to the start, the cdev is gone,
 * and once bound to vfio-pci again the device gets its cdev back and goes
 * through the whole flow.
 *
 * This program runs last among the robust tests (name order) and leaves
 * the device bound to vfio-pci, also when it fails.
 *
 * Argument break=leak keeps a dup of the device fd: the unbind then cannot
 * complete in time and the test must fail (and still rebind the device).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "robust_util.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	150

#define IOVA_BASE	0x100000000ULL
#define IOVA_THP	0x200000000ULL
#define IOVA_LATE	0x300000000ULL
#define BUF_PAGES	16
#define SZ_2M		(2UL << 20)
#define PIN_WAIT_MS	2000
#define UNBIND_MS	20000	/* for the unbind once the fds are closed */
#define REQ_MS		10000	/* for the device request to reach us */
#define BLOCKED_MS	300	/* the unbind must still wait after that */
#define PROBE_MS	10000	/* for the cdev to come back */
#define PCI_DEVICES	"/sys/bus/pci/devices"
#define VFIO_PCI_DRV	"/sys/bus/pci/drivers/vfio-pci"

static bool opt_break_leak;
static size_t pgsz;

/* Small helpers shared by the robust tests (each program stands alone) */

static void driver_of(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		drv[0] = '\0';
		return;
	}
	link[n] = '\0';
	snprintf(drv, len, "%s", strrchr(link, '/') + 1);
}

/* The noiommu cdev of @bdf, if it has one and its /dev node exists */
static int cdev_of(const char *bdf, char *cdev, size_t len)
{
	char path[PATH_MAX];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *dir;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "noiommu-vfio", 12))
			continue;
		snprintf(cdev, len, "/dev/vfio/devices/%s", de->d_name);
		ret = access(cdev, F_OK) ? -ENOENT : 0;
		break;
	}
	closedir(dir);
	return ret;
}

/* The first edu device (1234:11e8) bound to vfio-pci, and its cdev path */
static int find_device_any(char *bdf, size_t bdf_len, char *cdev, size_t cdev_len)
{
	char path[PATH_MAX], buf[64], drv[64];
	struct dirent *de;
	int ret = -ENODEV;
	DIR *dir;

	dir = opendir(PCI_DEVICES);
	if (!dir)
		return -errno;
	while (ret && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor",
			 de->d_name);
		if (read_text(path, buf, sizeof(buf)) || strcmp(buf, "0x1234"))
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/device",
			 de->d_name);
		if (read_text(path, buf, sizeof(buf)) || strcmp(buf, "0x11e8"))
			continue;
		driver_of(de->d_name, drv, sizeof(drv));
		if (strcmp(drv, "vfio-pci"))
			continue;
		if (cdev_of(de->d_name, cdev, cdev_len))
			continue;
		snprintf(bdf, bdf_len, "%s", de->d_name);
		ret = 0;
	}
	closedir(dir);
	return ret;
}


static int dev_info(int dfd)
{
	struct vfio_device_info cmd = { .argsz = sizeof(cmd) };

	return xioctl(dfd, VFIO_DEVICE_GET_INFO, &cmd);
}

static int ioas_map(int ifd, __u32 ioas, void *va, __u64 len, __u64 iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
			 IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return xioctl(ifd, IOMMU_IOAS_MAP, &cmd);
}

static int ioas_unmap(int ifd, __u32 ioas, __u64 iova, __u64 len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	return xioctl(ifd, IOMMU_IOAS_UNMAP, &cmd);
}

/* GET_PA of @iova; checks the page offset and length of the answer */
static int get_pa(int ifd, __u32 ioas, __u64 iova, __u64 len)
{
	struct iommu_ioas_noiommu_get_pa cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};
	int ret = xioctl(ifd, IOMMU_IOAS_NOIOMMU_GET_PA, &cmd);

	if (!ret && ((cmd.out_phys ^ iova) & (pgsz - 1) || !cmd.length ||
		     cmd.length > len))
		return -EPROTO;
	return ret;
}

/* Register @efd as the device request eventfd */
static int set_req_eventfd(int dfd, int efd)
{
	struct {
		struct vfio_irq_set set;
		__s32 fd;
	} cmd = {
		.set = {
			.argsz = sizeof(cmd),
			.flags = VFIO_IRQ_SET_DATA_EVENTFD |
				 VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_REQ_IRQ_INDEX,
			.start = 0,
			.count = 1,
		},
		.fd = efd,
	};

	return xioctl(dfd, VFIO_DEVICE_SET_IRQS, &cmd);
}

/*
 * The whole user flow on a fresh open of the cdev: bind, IOAS, attach, map,
 * GET_PA, unmap, detach, close. Returns 0 or the first -errno, with @step
 * naming the step that failed.
 */
static int device_flow(const char *cdev, const char **step)
{
	int dfd = -1, ifd = -1, ret;
	__u32 ioas;
	void *buf;

	buf = mmap(NULL, 4 * pgsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED)
		return -errno;
	*step = "open cdev";
	dfd = open(cdev, O_RDWR | O_CLOEXEC);
	ret = dfd < 0 ? -errno : 0;
	if (ret)
		goto out;
	*step = "open /dev/iommu";
	ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ret = ifd < 0 ? -errno : 0;
	if (ret)
		goto out;
	*step = "bind";
	ret = dev_bind(dfd, ifd, NULL);
	if (ret)
		goto out;
	*step = "IOAS alloc";
	ret = ioas_alloc(ifd, &ioas);
	if (ret)
		goto out;
	*step = "attach";
	ret = dev_attach(dfd, ioas);
	if (ret)
		goto out;
	*step = "map";
	ret = ioas_map(ifd, ioas, buf, 4 * pgsz, IOVA_BASE);
	if (ret)
		goto out;
	*step = "GET_PA";
	ret = get_pa(ifd, ioas, IOVA_BASE + 5, 4 * pgsz);
	if (ret)
		goto out;
	*step = "unmap";
	ret = ioas_unmap(ifd, ioas, IOVA_BASE, 4 * pgsz);
	if (ret)
		goto out;
	*step = "detach";
	ret = dev_detach(dfd);
out:
	if (dfd >= 0)
		close(dfd);
	if (ifd >= 0)
		close(ifd);
	munmap(buf, 4 * pgsz);
	return ret;
}

/* Bind @bdf to vfio-pci again and wait for its cdev */
static int rebind(const char *bdf, char *cdev, size_t len)
{
	char path[PATH_MAX], drv[64];
	double t0 = now_s();
	int ret;

	driver_of(bdf, drv, sizeof(drv));
	if (!drv[0]) {
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override",
			 bdf);
		ret = write_text(path, "vfio-pci");
		if (ret)
			return ret;
		ret = write_text("/sys/bus/pci/drivers_probe", bdf);
		if (ret)
			return ret;
	}
	while (cdev_of(bdf, cdev, len)) {
		if (now_s() - t0 > PROBE_MS / 1000.0)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return 0;
}

/*
 * The unbind blocks until the device fds are closed. It runs in a process
 * of its own rather than a thread: a process whose own thread waits in the
 * unbind for the process's device fd cannot even die (the fds are closed
 * only when every thread has exited). The remover leaves the test's
 * process group, so that a harness timeout does not kill it mid-way, and
 * if the test dies it binds the device to vfio-pci again itself, so that
 * later tests still have a device.
 */
struct remover {
	pid_t pid;
	int res_fd;		/* the unbind's result comes here */
	int ctl_fd;		/* 'u': unbind; then 'q': exit; EOF: rebind, exit */
	bool done;
	int ret;		/* of the write to unbind */
	double secs;		/* it took */
};

struct remover_result {
	int ret;
	double secs;
};

/* Close every fd but stdio and @keep1, @keep2: the device must not stay open */
static void close_others(int keep1, int keep2)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

/*
 * Fork the remover, before the device fds are open. It unbinds when told
 * ('u'), reports, then exits when told ('q'); if the test goes away first
 * (EOF), it binds the device again (if it unbound it) and exits.
 */
static int remover_fork(struct remover *rm, const char *bdf)
{
	struct remover_result res;
	int r[2], c[2];
	char cdev[PATH_MAX], q;

	memset(rm, 0, sizeof(*rm));
	if (pipe2(r, O_CLOEXEC))
		return -errno;
	if (pipe2(c, O_CLOEXEC)) {
		close(r[0]);
		close(r[1]);
		return -errno;
	}
	fflush(NULL);
	rm->pid = fork();
	if (rm->pid < 0)
		return -errno;
	if (!rm->pid) {
		setpgid(0, 0);
		close_others(r[1], c[0]);
		if (read(c[0], &q, 1) != 1 || q != 'u')
			_exit(0);
		res.secs = now_s();
		res.ret = write_text(VFIO_PCI_DRV "/unbind", bdf);
		res.secs = now_s() - res.secs;
		if (write(r[1], &res, sizeof(res)) != sizeof(res))
			res.ret = -EPIPE;
		if (read(c[0], &q, 1) != 1 || q != 'q')
			rebind(bdf, cdev, sizeof(cdev));
		_exit(0);
	}
	close(r[1]);
	close(c[0]);
	rm->res_fd = r[0];
	rm->ctl_fd = c[1];
	return 0;
}

static int remover_unbind(struct remover *rm)
{
	return write(rm->ctl_fd, "u", 1) == 1 ? 0 : -EPIPE;
}

/* Has the unbind returned, waiting up to @ms for it? */
static bool remover_done(struct remover *rm, int ms)
{
	struct pollfd pfd = { .fd = rm->res_fd, .events = POLLIN };
	struct remover_result res;

	if (rm->done || !rm->pid)
		return rm->done;
	if (poll(&pfd, 1, ms) != 1)
		return false;
	if (read(rm->res_fd, &res, sizeof(res)) != sizeof(res))
		res.ret = -EPIPE;
	rm->ret = res.ret;
	rm->secs = res.secs;
	rm->done = true;
	return true;
}

/* Let the remover go once its unbind is done */
static void remover_end(struct remover *rm)
{
	int status;

	if (!rm->pid)
		return;
	if (write(rm->ctl_fd, "q", 1) != 1)
		rm->ret = -EPIPE;
	close(rm->ctl_fd);
	close(rm->res_fd);
	waitpid(rm->pid, &status, 0);
	rm->pid = 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct held {
	int dfd, ifd, efd, leak;
	__u32 ioas;
};

static void close_all(struct held *h)
{
	close_fd(&h->leak);
	close_fd(&h->dfd);
	close_fd(&h->ifd);
	close_fd(&h->efd);
}

/*
 * One removal. Round 0 registers a request eventfd, closes the iommufd
 * first and then the device fd; round 1 has no eventfd and closes the
 * device fd first. No ASSERT once the remover runs: every path must end
 * with the fds closed, the unbind done and the device bound again.
 */
static void remove_round(struct __test_metadata *_metadata, int round,
			 const char *bdf, char *cdev, size_t cdev_len,
			 char *buf, char *thp, long vmpin_start,
			 long pins_start)
{
	int ret, r_getpa, r_map, r_unmap, r_info, r_detach, r_attach, fd;
	struct held h = { .dfd = -1, .ifd = -1, .efd = -1, .leak = -1 };
	struct pollfd pfd;
	struct remover rm;
	const char *step = "";
	__u64 count;
	double t0;

	ASSERT_EQ(0, remover_fork(&rm, bdf));

	/* Bound, attached, 16 pages and a THP pinned */
	h.dfd = open(cdev, O_RDWR | O_CLOEXEC);
	h.ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, h.dfd);
	ASSERT_LE(0, h.ifd);
	ASSERT_EQ(0, dev_bind(h.dfd, h.ifd, NULL));
	ASSERT_EQ(0, ioas_alloc(h.ifd, &h.ioas));
	ASSERT_EQ(0, dev_attach(h.dfd, h.ioas));
	ASSERT_EQ(0, ioas_map(h.ifd, h.ioas, buf, BUF_PAGES * pgsz, IOVA_BASE));
	ASSERT_EQ(0, ioas_map(h.ifd, h.ioas, thp, SZ_2M, IOVA_THP));
	ASSERT_EQ(0, get_pa(h.ifd, h.ioas, IOVA_BASE, BUF_PAGES * pgsz));
	ASSERT_LE(vmpin_start + (long)((BUF_PAGES * pgsz + SZ_2M) >> 10),
		  vmpin_kb());
	if (round == 0) {
		h.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ASSERT_LE(0, h.efd);
		ASSERT_EQ(0, set_req_eventfd(h.dfd, h.efd));
	}
	if (opt_break_leak)
		h.leak = dup(h.dfd);

	/* Remove the device from under us */
	ASSERT_EQ(0, remover_unbind(&rm));
	t0 = now_s();
	if (round == 0) {
		pfd.fd = h.efd;
		pfd.events = POLLIN;
		ret = poll(&pfd, 1, REQ_MS);
		EXPECT_EQ(1, ret) TH_LOG("no device request within %d ms", REQ_MS);
		if (ret == 1)
			EXPECT_EQ(sizeof(count), read(h.efd, &count, sizeof(count)));
		note("remove: round 0: device request reached userspace after %.0f ms\n",
		     (now_s() - t0) * 1e3);
	}
	EXPECT_FALSE(remover_done(&rm, BLOCKED_MS))
		TH_LOG("unbind returned %d while the device is in use", rm.ret);

	/* The cdev is gone for new opens */
	fd = open(cdev, O_RDWR | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	EXPECT_NE(0, ret) TH_LOG("cdev opened again during removal");

	/* The fds held: working or failing, never crashing */
	r_getpa = get_pa(h.ifd, h.ioas, IOVA_THP + 7, SZ_2M);
	r_map = ioas_map(h.ifd, h.ioas, buf, pgsz, IOVA_LATE);
	r_unmap = ioas_unmap(h.ifd, h.ioas, IOVA_LATE, pgsz);
	r_info = dev_info(h.dfd);
	r_detach = dev_detach(h.dfd);
	r_attach = dev_attach(h.dfd, h.ioas);
	note("remove: round %d: during removal: open %s, GET_PA %s, MAP %s, UNMAP %s, GET_INFO %s, DETACH %s, ATTACH %s\n",
	     round, strerror(-ret), strerror(-r_getpa), strerror(-r_map),
	     strerror(-r_unmap), strerror(-r_info), strerror(-r_detach),
	     strerror(-r_attach));
	/* iommufd state is the user's until close: it keeps working */
	EXPECT_EQ(0, r_getpa);
	EXPECT_EQ(0, r_map);
	EXPECT_EQ(0, r_unmap);
	EXPECT_FALSE(remover_done(&rm, 0));

	if (round == 0) {
		/* The device holds the iommufd context: still blocked */
		close_fd(&h.ifd);
		EXPECT_FALSE(remover_done(&rm, BLOCKED_MS));
		EXPECT_LT(vmpin_start, vmpin_kb());
		close_fd(&h.dfd);
		close_fd(&h.efd);
	} else {
		/* Device gone: no domain, so nothing pinned any more */
		close_fd(&h.dfd);
		EXPECT_TRUE(remover_done(&rm, UNBIND_MS));
		EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
		EXPECT_EQ(-EOPNOTSUPP, get_pa(h.ifd, h.ioas, IOVA_BASE, pgsz));
		EXPECT_EQ(0, ioas_unmap(h.ifd, h.ioas, IOVA_BASE,
					BUF_PAGES * pgsz));
		close_fd(&h.ifd);
	}
	EXPECT_TRUE(remover_done(&rm, UNBIND_MS))
		TH_LOG("unbind still blocked %d ms after the fds were closed",
		       UNBIND_MS);
	if (!rm.done) {
		close_all(&h);
		remover_done(&rm, UNBIND_MS);
	}
	EXPECT_EQ(0, rm.ret);
	note("remove: round %d: unbind %s after %.2f s, once the fds were closed\n",
	     round, rm.done ? "done" : "NOT done", rm.secs);

	EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
	EXPECT_EQ(pins_start, wait_value(foll_pins, pins_start));
	if (rm.done)
		EXPECT_EQ(-ENOENT, cdev_of(bdf, cdev, cdev_len));
	close_all(&h);

	/* Back to vfio-pci: the cdev reappears and works */
	remover_end(&rm);
	ret = rebind(bdf, cdev, cdev_len);
	EXPECT_EQ(0, ret) TH_LOG("could not bind %s to vfio-pci again", bdf);
	if (ret)
		return;
	ret = device_flow(cdev, &step);
	EXPECT_EQ(0, ret) TH_LOG("after rebind: %s: %s", step, strerror(-ret));
	note("remove: round %d: %s bound to vfio-pci again, %s works\n",
	     round, bdf, cdev);
	EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
}

TEST(unbind_while_in_use)
{
	char bdf[NAME_MAX + 1], cdev[PATH_MAX];
	long vmpin_start, pins_start;
	char *buf, *thp, *p;
	int round;

	if (find_device_any(bdf, sizeof(bdf), cdev, sizeof(cdev)))
		SKIP(return, "no edu device with a noiommu-vfio cdev");
	if (access(VFIO_PCI_DRV "/unbind", W_OK))
		SKIP(return, "no %s/unbind", VFIO_PCI_DRV);
	buf = mmap(NULL, BUF_PAGES * pgsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	p = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	thp = (char *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));
	madvise(thp, SZ_2M, MADV_HUGEPAGE);
	memset(thp, 1, SZ_2M);
	vmpin_start = vmpin_kb();
	pins_start = foll_pins();
	ASSERT_LE(0, vmpin_start);
	ASSERT_NE(LONG_MIN, pins_start);

	for (round = 0; round < 2 && !_metadata->exit_code; round++)
		remove_round(_metadata, round, bdf, cdev, sizeof(cdev), buf,
			     thp, vmpin_start, pins_start);
}

int main(int argc, char **argv)
{
	int i;

	pgsz = sysconf(_SC_PAGESIZE);
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "break=leak"))
			opt_break_leak = true;
	return test_harness_run(1, argv);
}
