// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fault injection on every allocation of the no-IOMMU cdev flows, in the
 * manner of tools/testing/selftests/iommu/iommufd_fail_nth.c: for N = 1, 2,
 * 3 ... the Nth allocation of the thread (slab or page allocator, sleeping
 * or not) fails, through /proc/thread-self/fail-nth, while the thread runs
 * a flow, until the flow runs with no failure injected.
 *
 * Flows:
 *  - attach_map: IOAS, attach, map (4 KiB pages and a THP), GET_PA, copy,
 *    GET_PA of the copy, unmap, detach (GET_PA then answers EOPNOTSUPP);
 *  - map_attach: the DPDK order: IOAS and mappings first, then attach (the
 *    attach pins and records the existing mappings), GET_PA, detach;
 *  - hwpt_replace: explicit HWPT_ALLOC, attach to it, map, GET_PA, attach
 *    to a second IOAS holding a mapping (replace), GET_PA in both (the
 *    HWPT left behind still backs the first), destroy the HWPT (GET_PA
 *    there then answers EOPNOTSUPP), detach, unmap.
 * Each is swept on a device bound once, and attach_map again as a full
 * flow: open the cdev and /dev/iommu, bind, ..., close.
 *
 * Tests:
 *  - fail_nth_flows: the flows above. Every failing flow must stop with an
 *    errno (ENOMEM: the allocation failure) and no splat, and after tearing
 *    down: VmPin and the system-wide FOLL_PIN count are back to the start,
 *    no iommufd object is left (the next object id is the same), and the
 *    device still works (attaches, maps, translates; a full flow's next
 *    BIND succeeds). The flow with no failure injected must complete.
 *  - fail_nth_teardown: the teardown steps, which must succeed and give
 *    every pin back whatever allocation fails (the noiommu domain's unmap
 *    allocates nothing). For each kind, the set-up, without fault
 *    injection, maps in an IOAS a few 4 KiB-page buffers at IOVAs apart,
 *    the 2 MiB buffer (a THP if the kernel gave one: logged) and every
 *    other page of a buffer at adjacent IOVAs (a physically discontiguous
 *    run, one area a page), and gets them pinned by a domain (checked:
 *    VmPin and FOLL_PIN up by at least all of it, GET_PA answers).
 *    Then the teardown step runs alone with its Nth allocation failing, for
 *    N = 1, 2, ... until a run reaches fewer than N fault points (at most
 *    200, else the test fails). Whatever fails, the step must succeed (0),
 *    VmPin and FOLL_PIN must be back to the start right after it, and once
 *    the rest is torn down no object is left (next object id). The number
 *    of fault points each kind reaches is logged. The kinds:
 *     unmap: IOMMU_IOAS_UNMAP of the discontiguous run (one call over its
 *       areas), then of everything (0, ~0), the device attached;
 *     detach: VFIO_DEVICE_DETACH_IOMMUFD_PT, the IOAS holding the auto HWPT;
 *     destroy: IOMMU_DESTROY of a manual HWPT (IOMMU_HWPT_ALLOC on the
 *       device's dev_id), the device not attached;
 *     close_iommufd: close() of the iommufd, which holds a manual HWPT and
 *       the IOAS. A bound device holds a reference on its iommufd: closing
 *       the iommufd fd first releases nothing (that comes when the device
 *       fd is closed, all of which runs paused, below). So, as the full
 *       flows do, the device fd is closed first, in the set-up; the manual
 *       HWPT outlives it and keeps the pages pinned, and the armed close of
 *       the iommufd is the release of all of it (its objects go with it:
 *       the next object id, read in the new iommufd, only shows that the
 *       device binds there as at the start);
 *     close_devfd: close() of the device fd, attached and mapped. vfio-pci's
 *       disable comes first in that same system call, before iommufd's
 *       detach and unbind, so the close runs paused as a whole, as every
 *       close of the device fd here: its sweep reaches no fault point (it
 *       logs 0) and checks only that the close succeeds, gives every pin
 *       back and leaves no object. The iommufd work in it, the detach of
 *       the attached device (iommufd_device_detach(), the auto HWPT's
 *       teardown), is what detach sweeps through the ioctl.
 *    The two close kinds reopen and bind what they closed, outside fault
 *    injection, before the next N.
 *
 * Out of the sweep: vfio-pci's enable of the device inside BIND and its
 * disable when the device fd is closed. Both evaluate the ACPI _PRT method
 * (IRQ routing), and ACPICA frees the namespace's PRTA package on one of its
 * allocation failure paths: KASAN then reports a slab-use-after-free in
 * acpi_ns_get_attached_object() at the next evaluation. That is not the
 * code under test (and each enable and disable costs a third of a second
 * on the debug kernel), so fail-nth is paused around those two calls. The
 * iommufd part of BIND, which runs before vfio-pci's, is swept on its own
 * until a failure lands in vfio-pci's part (it logs about ACPI or PCI).
 *
 * Needs CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB and FAIL_PAGE_ALLOC (the
 * debug kernel); skips otherwise. Argument break=leak leaves the objects or
 * the device fd of each faulted flow behind, and makes fail_nth_teardown
 * skip the teardown step of each armed run (N >= 1: the pages stay pinned,
 * and the objects a destroy or close would free stay): both tests must
 * then fail.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "robust_util.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	300

#define IOVA_BASE	0x100000000ULL
#define IOVA_THP	0x200000000ULL
#define IOVA_COPY	0x300000000ULL
#define IOVA_DISC	0x400000000ULL
#define IOVA_APART	0x10000000ULL	/* between the small buffers' IOVAs */
#define BUF_PAGES	16
#define SMALL_BUFS	4		/* f->buf in 4 buffers, for the teardown */
#define DISC_PAGES	8		/* every other page of f->disc, mapped */
#define NR_MAPPINGS	(SMALL_BUFS + 1 + DISC_PAGES)
#define SZ_2M		(2UL << 20)
#define MAX_NTH		3000	/* more fault points than that: a runaway */
#define MAX_TEARDOWN_NTH 200	/* a teardown step reaching more: a failure */
#define PIN_WAIT_MS	2000
#define DEBUGFS		"/sys/kernel/debug"

static bool opt_break_leak;
static size_t pgsz;

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

static int ioas_copy(int ifd, __u32 ioas, __u64 src, __u64 dst, __u64 len)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
			 IOMMU_IOAS_MAP_FIXED_IOVA,
		.dst_ioas_id = ioas,
		.src_ioas_id = ioas,
		.length = len,
		.dst_iova = dst,
		.src_iova = src,
	};

	return xioctl(ifd, IOMMU_IOAS_COPY, &cmd);
}

/* Unmap (0, UINT64_MAX: everything); @unmapped, if given: the bytes unmapped */
static int ioas_unmap_out(int ifd, __u32 ioas, __u64 iova, __u64 len,
			  __u64 *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};
	int ret = xioctl(ifd, IOMMU_IOAS_UNMAP, &cmd);

	if (unmapped)
		*unmapped = ret ? 0 : cmd.length;
	return ret;
}

static int ioas_unmap(int ifd, __u32 ioas, __u64 iova, __u64 len)
{
	return ioas_unmap_out(ifd, ioas, iova, len, NULL);
}

/* GET_PA of @iova; checks the page offset of the answer */
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

static int hwpt_alloc(int ifd, __u32 dev_id, __u32 pt_id, __u32 *hwpt)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.pt_id = pt_id,
	};
	int ret = xioctl(ifd, IOMMU_HWPT_ALLOC, &cmd);

	*hwpt = cmd.out_hwpt_id;
	return ret;
}

static int destroy(int ifd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return xioctl(ifd, IOMMU_DESTROY, &cmd);
}

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Open the cdev, bind it to a new iommufd, close both */
static int device_binds(const char *cdev)
{
	int dfd, ifd, ret;

	dfd = open_rw(cdev);
	if (dfd < 0)
		return dfd;
	ifd = open_rw("/dev/iommu");
	if (ifd < 0) {
		close(dfd);
		return ifd;
	}
	ret = dev_bind(dfd, ifd, NULL);
	close(dfd);
	close(ifd);
	return ret;
}

/* fail-nth of this thread */

static int nth_set(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -errno;
}

/* The count left before the fault: 0 once it fired (or when disarmed) */
static unsigned int nth_get(int fd)
{
	char buf[16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoul(buf, NULL, 10);
}

/* The flows. No libc allocation in there: only system calls. */

struct flow {
	const char *cdev;
	char *buf;		/* BUF_PAGES pages */
	char *thp;		/* 2 MiB, THP-backed if possible */
	char *disc;		/* 2 * DISC_PAGES pages */
	bool full;		/* open, bind and close in the flow */
	int dfd, ifd;		/* kept across flows when !full */
	__u32 dev_id;		/* of the bound device */
	__u32 free_id;		/* lowest free object id, device kept */
	__u32 ids[4];		/* IOAS and HWPT made by the flow, to destroy */
	__u32 ioas, hwpt;	/* of the teardown test's set-up */
	unsigned int nr_ids;
	int step;		/* the step that failed */
	int bind_ret;		/* of the flow's BIND, 1 if not reached */
	int nth_fd;		/* /proc/thread-self/fail-nth, or -1 */
	bool armed;		/* fail-nth set for this flow and not paused */
	bool fired;		/* the fault was injected */
	unsigned int held;	/* count put aside while paused */
};

/*
 * Arm fail-nth for this flow, pause it around what lies outside the paths
 * under test, and read at the end whether it fired.
 */
static void nth_arm(struct flow *f, unsigned int nth)
{
	f->fired = false;
	f->armed = f->nth_fd >= 0 && nth && !nth_set(f->nth_fd, nth);
}

static void nth_pause(struct flow *f)
{
	if (!f->armed)
		return;
	f->held = nth_get(f->nth_fd);
	nth_set(f->nth_fd, 0);
	f->armed = false;
	if (!f->held)
		f->fired = true;
}

static void nth_resume(struct flow *f)
{
	if (f->nth_fd < 0 || f->fired || !f->held)
		return;
	f->armed = !nth_set(f->nth_fd, f->held);
	f->held = 0;
}

static void nth_finish(struct flow *f)
{
	nth_pause(f);
	f->held = 0;
}

/*
 * BIND runs vfio-pci's enable of the device and closing the device fd its
 * disable: pci_enable_device() and pci_disable_device() evaluate the ACPI
 * _PRT method, whose interpreter has a use-after-free on its allocation
 * failure paths (ACPICA, not the paths under test; see the top comment).
 * Both run with fail-nth paused. The iommufd part of BIND, which comes
 * first, has a sweep of its own: sweep_bind().
 */
static int bind_paused(struct flow *f, __u32 *dev_id)
{
	nth_pause(f);
	f->bind_ret = dev_bind(f->dfd, f->ifd, dev_id);
	nth_resume(f);
	return f->bind_ret;
}

static int close_dev_paused(struct flow *f)
{
	int ret;

	nth_pause(f);
	ret = close(f->dfd) ? -errno : 0;
	f->dfd = -1;
	nth_resume(f);
	return ret;
}

/* Objects the teardown destroys, when the flow could not */
static void track(struct flow *f, __u32 id)
{
	if (f->nr_ids < ARRAY_SIZE(f->ids))
		f->ids[f->nr_ids++] = id;
}

static void untrack(struct flow *f, __u32 id)
{
	unsigned int i;

	for (i = 0; i < f->nr_ids; i++)
		if (f->ids[i] == id)
			f->ids[i] = 0;
}

/* Step numbering: a failure tells where it happened */
#define STEP(expr) do {			\
		f->step++;		\
		ret = (expr);		\
		if (ret < 0)		\
			return ret;	\
	} while (0)

/* A full flow opens both fds and binds; else they are there already */
static int flow_open_bind(struct flow *f)
{
	int ret;

	if (!f->full)
		return 0;
	STEP(f->dfd = open_rw(f->cdev));
	STEP(f->ifd = open_rw("/dev/iommu"));
	STEP(bind_paused(f, &f->dev_id));
	return 0;
}

static int flow_attach_map(struct flow *f)
{
	size_t len = BUF_PAGES * pgsz;
	__u32 ioas = 0;
	int ret;

	STEP(flow_open_bind(f));
	STEP(ioas_alloc(f->ifd, &ioas));
	track(f, ioas);
	STEP(dev_attach(f->dfd, ioas));
	STEP(ioas_map(f->ifd, ioas, f->buf, len, IOVA_BASE));
	STEP(ioas_map(f->ifd, ioas, f->thp, SZ_2M, IOVA_THP));
	STEP(get_pa(f->ifd, ioas, IOVA_BASE + 9, len));
	STEP(get_pa(f->ifd, ioas, IOVA_THP + pgsz, SZ_2M));
	STEP(ioas_copy(f->ifd, ioas, IOVA_BASE, IOVA_COPY, len));
	STEP(get_pa(f->ifd, ioas, IOVA_COPY, len));
	STEP(ioas_unmap(f->ifd, ioas, IOVA_COPY, len));
	STEP(ioas_unmap(f->ifd, ioas, IOVA_BASE, len));
	STEP(dev_detach(f->dfd));
	STEP(get_pa(f->ifd, ioas, IOVA_THP, SZ_2M) == -EOPNOTSUPP ? 0 : -EPROTO);
	STEP(ioas_unmap(f->ifd, ioas, IOVA_THP, SZ_2M));
	return 0;
}

static int flow_map_attach(struct flow *f)
{
	size_t len = BUF_PAGES * pgsz;
	__u32 ioas = 0;
	int ret;

	/* The DPDK order: the IOAS is filled before the device comes */
	if (f->full)
		STEP(f->ifd = open_rw("/dev/iommu"));
	STEP(ioas_alloc(f->ifd, &ioas));
	track(f, ioas);
	STEP(ioas_map(f->ifd, ioas, f->buf, len, IOVA_BASE));
	STEP(ioas_map(f->ifd, ioas, f->thp, SZ_2M, IOVA_THP));
	if (f->full) {
		STEP(f->dfd = open_rw(f->cdev));
		STEP(bind_paused(f, &f->dev_id));
	}
	STEP(dev_attach(f->dfd, ioas));
	STEP(get_pa(f->ifd, ioas, IOVA_BASE, len));
	STEP(get_pa(f->ifd, ioas, IOVA_THP + 3 * pgsz + 1, SZ_2M));
	/* Closing (or detaching) the device leaves no domain on the IOAS */
	if (f->full) {
		f->step++;
		close_dev_paused(f);
	} else {
		STEP(dev_detach(f->dfd));
	}
	STEP(get_pa(f->ifd, ioas, IOVA_BASE, len) == -EOPNOTSUPP ? 0 : -EPROTO);
	STEP(ioas_unmap(f->ifd, ioas, IOVA_BASE, len));
	return 0;
}

static int flow_hwpt_replace(struct flow *f)
{
	size_t len = BUF_PAGES * pgsz;
	__u32 ioas = 0, ioas2 = 0, hwpt = 0;
	int ret;

	STEP(flow_open_bind(f));
	STEP(ioas_alloc(f->ifd, &ioas));
	track(f, ioas);
	STEP(hwpt_alloc(f->ifd, f->dev_id, ioas, &hwpt));
	track(f, hwpt);
	STEP(dev_attach(f->dfd, hwpt));
	STEP(ioas_map(f->ifd, ioas, f->buf, len, IOVA_BASE));
	STEP(get_pa(f->ifd, ioas, IOVA_BASE, len));
	STEP(ioas_alloc(f->ifd, &ioas2));
	track(f, ioas2);
	STEP(ioas_map(f->ifd, ioas2, f->thp, SZ_2M, IOVA_THP));
	STEP(dev_attach(f->dfd, ioas2));
	STEP(get_pa(f->ifd, ioas2, IOVA_THP, SZ_2M));
	/* The unused HWPT keeps its domain on ioas until destroyed */
	STEP(get_pa(f->ifd, ioas, IOVA_BASE, len));
	STEP(destroy(f->ifd, hwpt));
	untrack(f, hwpt);
	STEP(get_pa(f->ifd, ioas, IOVA_BASE, len) == -EOPNOTSUPP ? 0 : -EPROTO);
	STEP(dev_detach(f->dfd));
	STEP(ioas_unmap(f->ifd, ioas, IOVA_BASE, len));
	return 0;
}

struct flow_kind {
	const char *name;
	int (*run)(struct flow *f);
};

static const struct flow_kind flows[] = {
	{ "attach_map", flow_attach_map },
	{ "map_attach", flow_map_attach },
	{ "hwpt_replace", flow_hwpt_replace },
};

/*
 * Tear down what the flow left, outside fail-nth: a full flow closes its
 * fds (the device first), else the device is detached and the flow's
 * objects destroyed, the last made first.
 */
static void teardown(struct flow *f)
{
	if (f->full) {
		if (opt_break_leak && f->fired)
			f->dfd = -1;	/* "forget" to close it */
		if (f->dfd >= 0)
			close(f->dfd);
		if (f->ifd >= 0)
			close(f->ifd);
		f->dfd = -1;
		f->ifd = -1;
		return;
	}
	dev_detach(f->dfd);
	while (f->nr_ids) {
		__u32 id = f->ids[--f->nr_ids];

		if (opt_break_leak && f->fired)
			continue;	/* "forget" the objects, mappings and all */
		if (id)
			destroy(f->ifd, id);
	}
}

/*
 * Run a flow with its Nth allocation failing (none for @nth 0). Returns the
 * flow's result; f->fired tells whether the fault was injected.
 */
static int run_nth(struct flow *f, const struct flow_kind *k, unsigned int nth)
{
	int ret;

	if (f->full) {
		f->dfd = -1;
		f->ifd = -1;
	}
	f->nr_ids = 0;
	f->step = 0;
	f->bind_ret = 1;
	nth_arm(f, nth);
	ret = k->run(f);
	nth_finish(f);
	teardown(f);
	return ret;
}

/*
 * The id the next object gets: the lowest free one. On the kept device's
 * iommufd it stays the same from flow to flow unless objects leak.
 */
static __u32 next_id(struct flow *f)
{
	__u32 id = 0;

	if (ioas_alloc(f->ifd, &id))
		return 0;
	destroy(f->ifd, id);
	return id;
}

/*
 * Sweep a flow: N = 1, 2, ... until it runs with no fault injected. After
 * each injected fault, the flow must have failed with ENOMEM or recovered,
 * and after tearing down nothing stays pinned and the device still works:
 * a full flow's next BIND must succeed, a kept device must attach, map and
 * translate again.
 */
static void sweep_flow(struct __test_metadata *_metadata, struct flow *f,
		       const struct flow_kind *k, long vmpin_start,
		       long pins_start, unsigned long *per_errno,
		       unsigned int *points, unsigned int *absorbed)
{
	long vmpin, pins;
	unsigned int nth;
	int ret, step;
	__u32 id;

	*points = *absorbed = 0;
	for (nth = 1; nth < MAX_NTH; nth++) {
		ret = run_nth(f, k, nth);
		step = f->step;
		if (f->bind_ret != 1 && f->bind_ret) {
			EXPECT_EQ(0, f->bind_ret)
				TH_LOG("%s: the device does not bind again (fault %u)",
				       k->name, nth);
			break;
		}
		if (!f->fired) {
			/* Past the last allocation: the flow completes */
			EXPECT_EQ(0, ret) TH_LOG("%s: no fault at %u, yet step %d: %s",
						 k->name, nth, f->step,
						 strerror(-ret));
			break;
		}
		(*points)++;
		if (!ret)
			(*absorbed)++;	/* failed, and recovered from */
		else if (-ret < 256)
			per_errno[-ret]++;
		EXPECT_TRUE(!ret || ret == -ENOMEM)
			TH_LOG("%s: fault %u: step %d: %s", k->name, nth,
			       f->step, strerror(-ret));

		vmpin = wait_value(vmpin_kb, vmpin_start);
		pins = wait_value(foll_pins, pins_start);
		ret = f->full ? 0 : run_nth(f, &flows[0], 0);
		id = f->full ? f->free_id : next_id(f);
		if (vmpin != vmpin_start || pins != pins_start || ret ||
		    id != f->free_id) {
			EXPECT_EQ(vmpin_start, vmpin);
			EXPECT_EQ(pins_start, pins);
			EXPECT_EQ(0, ret);
			EXPECT_EQ(f->free_id, id) TH_LOG("iommufd objects left over");
			TH_LOG("%s: after fault %u at step %d", k->name, nth,
			       step);
			break;
		}
	}
	EXPECT_GT(MAX_NTH, nth);
}

/* Drain /dev/kmsg; true if a message mentions ACPI or the PCI device */
static bool kmsg_mentions_pci(int kfd)
{
	char rec[1024];
	bool seen = false;
	ssize_t n;

	while ((n = read(kfd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = '\0';
		if (strstr(rec, "ACPI") || strstr(rec, "PCI") ||
		    strstr(rec, "pci"))
			seen = true;
	}
	return seen;
}

/*
 * The iommufd part of BIND (noiommu igroup and device object), which runs
 * before vfio-pci enables the device: fail its allocations one by one,
 * until a failure lands in vfio-pci's part, which logs about the PCI
 * device or ACPI, or until BIND completes with no fault.
 */
static int sweep_bind(struct __test_metadata *_metadata, struct flow *f,
		      long vmpin_start, unsigned int *points)
{
	unsigned int nth;
	int kfd, ret;

	*points = 0;
	kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kfd < 0)
		return -errno;
	lseek(kfd, 0, SEEK_END);
	for (nth = 1; nth < MAX_NTH; nth++) {
		f->step = 1;
		f->dfd = open_rw(f->cdev);
		f->ifd = open_rw("/dev/iommu");
		if (f->dfd < 0 || f->ifd < 0) {
			teardown(f);
			close(kfd);
			return -EIO;
		}
		nth_arm(f, nth);
		ret = dev_bind(f->dfd, f->ifd, NULL);
		nth_finish(f);
		teardown(f);
		if (!f->fired) {
			EXPECT_EQ(0, ret);
			break;
		}
		if (kmsg_mentions_pci(kfd))
			break;		/* past the iommufd part */
		(*points)++;
		EXPECT_TRUE(!ret || ret == -ENOMEM)
			TH_LOG("bind: fault %u: %s", nth, strerror(-ret));
		EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
		EXPECT_EQ(0, device_binds(f->cdev));
	}
	close(kfd);
	return 0;
}

/* Fault injection set-up, in debugfs */

static const char *const fi_knobs[][2] = {
	{ DEBUGFS "/failslab/ignore-gfp-wait", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N" },
	{ DEBUGFS "/fail_page_alloc/min-order", "0" },
	{ DEBUGFS "/failslab/verbose", "0" },
	{ DEBUGFS "/fail_page_alloc/verbose", "0" },
};

static char fi_saved[ARRAY_SIZE(fi_knobs)][32];

static int fi_setup(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned int i;
	DIR *dir;
	int ret;

	for (i = 0; i < ARRAY_SIZE(fi_knobs); i++) {
		ret = read_text(fi_knobs[i][0], fi_saved[i], sizeof(fi_saved[i]));
		if (ret)
			return ret;
		ret = write_text(fi_knobs[i][0], fi_knobs[i][1]);
		if (ret)
			return ret;
	}
	/* Any other fail* attribute: no stack dumps on the console */
	dir = opendir(DEBUGFS);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "fail", 4))
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s/verbose", de->d_name);
		write_text(path, "0");
	}
	closedir(dir);
	return 0;
}

static void fi_restore(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fi_knobs); i++)
		if (fi_saved[i][0])
			write_text(fi_knobs[i][0], fi_saved[i]);
}

static const char *fail_nth_path(void)
{
	if (!access("/proc/thread-self/fail-nth", W_OK))
		return "/proc/thread-self/fail-nth";
	if (!access("/proc/self/fail-nth", W_OK))
		return "/proc/self/fail-nth";
	return NULL;
}

/*
 * What both tests start with, or why they skip: fail-nth and the fault
 * attributes, the device, and the buffers faulted in and locked, so that
 * no flow takes a page fault. Gives the pin counts to come back to.
 */
static const char *prepare(struct __test_metadata *_metadata, struct flow *f,
			   char *cdev, size_t cdev_len, long *vmpin_start,
			   long *pins_start)
{
	char bdf[NAME_MAX + 1];
	char *p;

	if (!fail_nth_path() || access(DEBUGFS "/failslab", F_OK) ||
	    access(DEBUGFS "/fail_page_alloc", F_OK))
		return "needs fail-nth, failslab and fail_page_alloc (CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB, FAIL_PAGE_ALLOC: the debug kernel)";
	if (find_device(bdf, sizeof(bdf), cdev, cdev_len))
		return "no edu device with a noiommu-vfio cdev";

	f->cdev = cdev;
	f->buf = mmap(NULL, BUF_PAGES * pgsz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, f->buf);
	f->disc = mmap(NULL, 2 * DISC_PAGES * pgsz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, f->disc);
	p = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	f->thp = (char *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));
	madvise(f->thp, SZ_2M, MADV_HUGEPAGE);
	memset(f->thp, 1, SZ_2M);
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));

	*vmpin_start = vmpin_kb();
	*pins_start = foll_pins();
	ASSERT_LE(0, *vmpin_start);
	ASSERT_NE(LONG_MIN, *pins_start);
	return NULL;
}

/* The end of both tests: fault injection off, nothing pinned, device binds */
static void finish(struct __test_metadata *_metadata, struct flow *f,
		   long vmpin_start, long pins_start)
{
	close(f->nth_fd);
	f->nth_fd = -1;
	fi_restore();
	EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
	EXPECT_EQ(pins_start, wait_value(foll_pins, pins_start));
	EXPECT_EQ(0, device_binds(f->cdev));
	munlockall();
}

/* The teardown test */

/*
 * Mapping @i of the teardown test: SMALL_BUFS buffers of 4 KiB pages at
 * IOVAs apart, the THP, then every other page of f->disc at adjacent IOVAs:
 * pages that are not neighbours in memory behind a run of IOVAs, so that
 * run is not physically contiguous (and is one area a page).
 */
static void mapping(struct flow *f, unsigned int i, char **va, __u64 *len,
		    __u64 *iova)
{
	if (i < SMALL_BUFS) {
		*len = BUF_PAGES / SMALL_BUFS * pgsz;
		*va = f->buf + i * *len;
		*iova = IOVA_BASE + i * IOVA_APART;
	} else if (i == SMALL_BUFS) {
		*len = SZ_2M;
		*va = f->thp;
		*iova = IOVA_THP;
	} else {
		i -= SMALL_BUFS + 1;
		*len = pgsz;
		*va = f->disc + 2 * i * pgsz;
		*iova = IOVA_DISC + i * pgsz;
	}
}

static __u64 mapped_bytes(struct flow *f)
{
	__u64 len, iova, sum = 0;
	unsigned int i;
	char *va;

	for (i = 0; i < NR_MAPPINGS; i++) {
		mapping(f, i, &va, &len, &iova);
		sum += len;
	}
	return sum;
}

/* Whether the VMA holding @p has a THP in it (AnonHugePages in smaps) */
static bool thp_backed(const void *p)
{
	unsigned long start, end, kb;
	bool in = false, thp = false;
	char line[1024];
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return false;
	while (!thp && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = start <= (uintptr_t)p && (uintptr_t)p < end;
		else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			thp = kb >= SZ_2M >> 10;
	}
	fclose(f);
	return thp;
}

/* Open and bind what is closed, outside fault injection */
static int reopen_bind(struct flow *f)
{
	if (f->ifd < 0)
		f->ifd = open_rw("/dev/iommu");
	if (f->ifd < 0)
		return f->ifd;
	if (f->dfd >= 0)
		return 0;
	f->dfd = open_rw(f->cdev);
	if (f->dfd < 0)
		return f->dfd;
	return dev_bind(f->dfd, f->ifd, &f->dev_id);
}

/* The teardown steps: each must succeed whatever allocation fails */

static int td_unmap(struct flow *f)
{
	__u64 disc, rest;
	int ret;

	/* The discontiguous run in one call over its areas, then the rest */
	STEP(ioas_unmap_out(f->ifd, f->ioas, IOVA_DISC, DISC_PAGES * pgsz,
			    &disc));
	STEP(ioas_unmap_out(f->ifd, f->ioas, 0, UINT64_MAX, &rest));
	STEP(disc + rest == mapped_bytes(f) ? 0 : -EPROTO);
	return 0;
}

static int td_detach(struct flow *f)
{
	return dev_detach(f->dfd);
}

static int td_destroy(struct flow *f)
{
	int ret = destroy(f->ifd, f->hwpt);

	if (!ret)
		untrack(f, f->hwpt);
	return ret;
}

static int td_close_iommufd(struct flow *f)
{
	int ret = close(f->ifd) ? -errno : 0;

	f->ifd = -1;
	return ret;
}

struct teardown_kind {
	const char *name;
	int (*run)(struct flow *f);
	bool hwpt;		/* a manual HWPT pins the pages, not the attach */
	bool unbind;		/* the set-up ends closing the device fd */
	const char *remark;
};

static const struct teardown_kind teardowns[] = {
	{ "unmap", td_unmap },
	{ "detach", td_detach },
	{ "destroy", td_destroy, .hwpt = true },
	/* The device holds the iommufd: closed first (see the top comment) */
	{ "close_iommufd", td_close_iommufd, .hwpt = true, .unbind = true },
	/* vfio-pci's disable comes first in the close: all of it is paused */
	{ "close_devfd", close_dev_paused,
	  .remark = " (the close runs paused: see the top comment)" },
};

/*
 * The set-up, outside fault injection: an IOAS with every mapping, pinned
 * by the device attached to it (auto HWPT) or by a manual HWPT; GET_PA
 * answers for each mapping; then, for close_iommufd, the device fd closed.
 */
static int td_setup(struct flow *f, const struct teardown_kind *k)
{
	__u64 len, iova;
	unsigned int i;
	char *va;
	int ret;

	f->nr_ids = 0;
	f->step = 0;
	STEP(ioas_alloc(f->ifd, &f->ioas));
	track(f, f->ioas);
	for (i = 0; i < NR_MAPPINGS; i++) {
		mapping(f, i, &va, &len, &iova);
		STEP(ioas_map(f->ifd, f->ioas, va, len, iova));
	}
	if (k->hwpt) {
		STEP(hwpt_alloc(f->ifd, f->dev_id, f->ioas, &f->hwpt));
		track(f, f->hwpt);
	} else {
		STEP(dev_attach(f->dfd, f->ioas));
	}
	for (i = 0; i < NR_MAPPINGS; i++) {
		mapping(f, i, &va, &len, &iova);
		STEP(get_pa(f->ifd, f->ioas, iova, len));
	}
	if (k->unbind)
		STEP(close_dev_paused(f));
	return 0;
}

/*
 * One run of a teardown kind with its Nth allocation failing (none for
 * @nth 0): the set-up, then the step alone, armed. Right after the step
 * nothing may stay pinned; once the rest is torn down and what was closed
 * is bound again, no object may be left. False, with the reason logged, if
 * a check fails; f->fired tells whether the fault was injected.
 */
static bool teardown_nth(struct __test_metadata *_metadata, struct flow *f,
			 const struct teardown_kind *k, unsigned int nth,
			 long vmpin_start, long pins_start)
{
	long held_kb = mapped_bytes(f) >> 10;
	long held_pins = mapped_bytes(f) / pgsz;
	long vmpin, pins;
	int ret, rebind;
	__u32 id;

	ret = td_setup(f, k);
	vmpin = vmpin_kb();
	pins = foll_pins();
	if (ret || vmpin < vmpin_start + held_kb ||
	    pins < pins_start + held_pins) {
		EXPECT_EQ(0, ret) TH_LOG("%s: set-up step %d: %s", k->name,
					 f->step, strerror(-ret));
		EXPECT_LE(vmpin_start + held_kb, vmpin)
			TH_LOG("%s: the set-up leaves too little pinned",
			       k->name);
		EXPECT_LE(pins_start + held_pins, pins);
		teardown(f);
		return false;
	}

	f->step = 0;
	nth_arm(f, nth);
	/* break=leak: "forget" the teardown step, leaving it all pinned */
	ret = opt_break_leak && nth ? 0 : k->run(f);
	nth_finish(f);
	vmpin = wait_value(vmpin_kb, vmpin_start);
	pins = wait_value(foll_pins, pins_start);

	teardown(f);
	rebind = reopen_bind(f);
	id = rebind ? 0 : next_id(f);
	if (!ret && vmpin == vmpin_start && pins == pins_start && !rebind &&
	    id == f->free_id)
		return true;
	EXPECT_EQ(0, ret) TH_LOG("%s: step %d: %s", k->name, f->step,
				 strerror(-ret));
	EXPECT_EQ(vmpin_start, vmpin) TH_LOG("VmPin (kB) after the step");
	EXPECT_EQ(pins_start, pins) TH_LOG("FOLL_PIN pages after the step");
	EXPECT_EQ(0, rebind) TH_LOG("the device does not bind again");
	EXPECT_EQ(f->free_id, id) TH_LOG("iommufd objects left over");
	TH_LOG("%s: fault %u %s", k->name, nth,
	       f->fired ? "injected" : "not reached");
	return false;
}

/*
 * Sweep a teardown kind: N = 1, 2, ... until its step reaches fewer than N
 * fault points. Gives how many it reaches.
 */
static unsigned int sweep_teardown(struct __test_metadata *_metadata,
				   struct flow *f,
				   const struct teardown_kind *k,
				   long vmpin_start, long pins_start)
{
	unsigned int nth;

	for (nth = 1; nth <= MAX_TEARDOWN_NTH; nth++)
		if (!teardown_nth(_metadata, f, k, nth, vmpin_start,
				  pins_start) || !f->fired)
			break;
	EXPECT_GE(MAX_TEARDOWN_NTH, nth)
		TH_LOG("%s: more than %u fault points", k->name,
		       MAX_TEARDOWN_NTH);
	return nth - 1;
}

TEST(fail_nth_flows)
{
	unsigned long per_errno[256] = { 0 };
	unsigned int total = 0, absorbed_total = 0, points, absorbed, i;
	struct flow f = { .nth_fd = -1, .dfd = -1, .ifd = -1 };
	char cdev[PATH_MAX], errs[512];
	long vmpin_start, pins_start;
	const char *skip;
	double start, t0;
	size_t n = 0;
	int ret;

	skip = prepare(_metadata, &f, cdev, sizeof(cdev), &vmpin_start,
		       &pins_start);
	if (skip)
		SKIP(return, "%s", skip);

	/* Each flow passes as it is first, full and on a bound device */
	for (f.full = true; ; f.full = false) {
		if (!f.full) {
			f.dfd = open_rw(cdev);
			f.ifd = open_rw("/dev/iommu");
			ASSERT_LE(0, f.dfd);
			ASSERT_LE(0, f.ifd);
			ASSERT_EQ(0, dev_bind(f.dfd, f.ifd, &f.dev_id));
		}
		for (i = 0; i < ARRAY_SIZE(flows); i++) {
			ret = run_nth(&f, &flows[i], 0);
			ASSERT_EQ(0, ret) TH_LOG("%s%s: step %d: %s",
						 f.full ? "full " : "",
						 flows[i].name, f.step,
						 strerror(-ret));
		}
		if (!f.full) {
			f.free_id = next_id(&f);
			ASSERT_NE(0, f.free_id);
			break;
		}
	}

	ASSERT_EQ(0, fi_setup());
	f.nth_fd = open(fail_nth_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, f.nth_fd);
	start = now_s();

	/*
	 * Every flow on the bound device: each fault costs no vfio-pci
	 * enable and disable, which are slow and not under test.
	 */
	for (i = 0; i < ARRAY_SIZE(flows) && !_metadata->exit_code; i++) {
		t0 = now_s();
		sweep_flow(_metadata, &f, &flows[i], vmpin_start, pins_start,
			   per_errno, &points, &absorbed);
		note("fail_nth: %s: %u fault points hit (%u recovered), %.1f s\n",
		     flows[i].name, points, absorbed, now_s() - t0);
		total += points;
		absorbed_total += absorbed;
	}
	close(f.dfd);
	close(f.ifd);

	/* The full flow: open cdev and iommufd, bind, ..., close */
	f.full = true;
	if (!_metadata->exit_code) {
		t0 = now_s();
		sweep_flow(_metadata, &f, &flows[0], vmpin_start, pins_start,
			   per_errno, &points, &absorbed);
		note("fail_nth: full %s (open, bind, ..., close): %u fault points hit (%u recovered), %.1f s\n",
		     flows[0].name, points, absorbed, now_s() - t0);
		total += points;
		absorbed_total += absorbed;
	}

	if (!_metadata->exit_code) {
		t0 = now_s();
		EXPECT_EQ(0, sweep_bind(_metadata, &f, vmpin_start, &points));
		note("fail_nth: bind (iommufd part): %u fault points hit, %.1f s\n",
		     points, now_s() - t0);
		total += points;
	}

	errs[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(per_errno); i++)
		if (per_errno[i])
			n += snprintf(errs + n, sizeof(errs) - n, " %s %lu",
				      strerrorname_np(i) ?: "?", per_errno[i]);
	note("fail_nth: %u fault points hit in all (%u recovered), %.1f s; errors:%s\n",
	     total, absorbed_total, now_s() - start, errs);
	finish(_metadata, &f, vmpin_start, pins_start);
}

/*
 * Every teardown kind once with no fault, then swept (see the top comment).
 * The device is bound once, to its own iommufd: the close kinds bind it
 * again, so the next object id is the same throughout.
 */
TEST(fail_nth_teardown)
{
	struct flow f = { .nth_fd = -1, .dfd = -1, .ifd = -1 };
	long vmpin_start, pins_start;
	unsigned int i, points;
	char cdev[PATH_MAX];
	const char *skip;
	double t0;

	skip = prepare(_metadata, &f, cdev, sizeof(cdev), &vmpin_start,
		       &pins_start);
	if (skip)
		SKIP(return, "%s", skip);
	ASSERT_EQ(0, reopen_bind(&f));
	f.free_id = next_id(&f);
	ASSERT_NE(0, f.free_id);
	note("fail_nth: teardown of %u mappings, %llu kB, the 2 MiB one %s\n",
	     NR_MAPPINGS, (unsigned long long)mapped_bytes(&f) >> 10,
	     thp_backed(f.thp) ? "a THP" : "in 4 KiB pages (no THP)");
	for (i = 0; i < ARRAY_SIZE(teardowns); i++)
		ASSERT_TRUE(teardown_nth(_metadata, &f, &teardowns[i], 0,
					 vmpin_start, pins_start));

	ASSERT_EQ(0, fi_setup());
	f.nth_fd = open(fail_nth_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, f.nth_fd);
	for (i = 0; i < ARRAY_SIZE(teardowns) && !_metadata->exit_code; i++) {
		t0 = now_s();
		points = sweep_teardown(_metadata, &f, &teardowns[i],
					vmpin_start, pins_start);
		note("fail_nth: teardown %s: %u fault points reached%s%s, %.1f s\n",
		     teardowns[i].name, points,
		     _metadata->exit_code ? ", FAILED" :
		     ", each survived: 0 returned, the pins back",
		     teardowns[i].remark ?: "", now_s() - t0);
	}
	close(f.dfd);
	close(f.ifd);
	finish(_metadata, &f, vmpin_start, pins_start);
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
