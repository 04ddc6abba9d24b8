// SPDX-License-Identifier: GPL-2.0-only
/*
 * Races on the iommufd no-IOMMU mode of the VFIO cdev.
 *
 * race_map_getpa_attach_reopen: for a few seconds, worker threads map,
 * translate (GET_PA), copy and unmap their own buffers in one IOAS, while
 * another thread attaches and detaches the device (to the IOAS or to a
 * HWPT it allocates) and another closes and reopens the device fd and,
 * now and then, the iommufd itself, moving everything to a new IOAS.
 * Each call must give 0 or one of the errnos the race allows, a mapped
 * IOVA must never be reported unmapped, and every translation must keep
 * the page offset and stay within what was asked and mapped.
 *
 * sigkill_while_pinned: a child process binds, attaches and maps (pages
 * pinned), then is killed with SIGKILL, idle or in the middle of ioctls
 * from one or several threads. Its pins must be gone at once (FOLL_PIN
 * count of the system back to where it was) and a fresh process must be
 * able to open the cdev and go through the whole flow.
 *
 * Both end with VmPin and the system FOLL_PIN count back to the start and
 * the device usable again.
 *
 * unbind_during_dev_id_ioctl: a device fd close racing an ioctl that holds
 * the device object. Plain 6.12 sleeps 60 s there (iommufd_put_object()
 * woke the uninterruptible destroy waiter with wake_up_interruptible_all());
 * the series' first patch fixes it, so this is its regression test. The
 * race test lets such ioctls (HWPT_ALLOC naming the device) meet device fd
 * closes too, and fails if any close takes longer than MAX_CLOSE_S.
 *
 * Arguments: secs=N (race duration, default 3), known-bugs=0 (on a kernel
 * without that fix: skip the reproducer and keep those ioctls apart from
 * closes in the race), break=leak (leave a page
 * pinned through a forgotten fd at the end: the tests must fail).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"
#include "robust_util.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	120

#define NR_WORKERS	4
#define BUF_PAGES	16
#define IOVA_BASE	0x100000000ULL
#define SLOT_SIZE	0x10000000ULL	/* IOVA space of one worker */
#define COPY_OFFSET	0x08000000ULL	/* where a worker copies its area */
#define PIN_WAIT_MS	2000
#define KILL_ROUNDS	6
#define MAX_CLOSE_S	10	/* a device fd close taking longer is a bug */

static unsigned long opt_secs = 3;
static bool opt_break_leak, opt_known_bugs = true;
static size_t pgsz;

static int ioas_map(int ifd, __u32 ioas, void *va, __u64 len, __u64 *iova,
		    bool fixed)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
			 (fixed ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = *iova,
	};
	int ret = xioctl(ifd, IOMMU_IOAS_MAP, &cmd);

	*iova = cmd.iova;
	return ret;
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

/* Unmap [iova, iova + len); *len returns what the kernel unmapped */
static int ioas_unmap(int ifd, __u32 ioas, __u64 iova, __u64 *len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = *len,
	};
	int ret = xioctl(ifd, IOMMU_IOAS_UNMAP, &cmd);

	*len = cmd.length;
	return ret;
}

static int get_pa(int ifd, __u32 ioas, __u64 iova, __u64 *len, __u64 *pa)
{
	struct iommu_ioas_noiommu_get_pa cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = *len,
	};
	int ret = xioctl(ifd, IOMMU_IOAS_NOIOMMU_GET_PA, &cmd);

	*len = cmd.length;
	*pa = cmd.out_phys;
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

/*
 * The whole user flow on a fresh open of the cdev: bind, IOAS, attach, map,
 * GET_PA, unmap, detach, close. Returns 0 or the first -errno, with @step
 * naming the step that failed.
 */
static int device_flow(const char *cdev, const char **step)
{
	__u64 iova = IOVA_BASE, len, pa;
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
	ret = ioas_map(ifd, ioas, buf, 4 * pgsz, &iova, true);
	if (ret)
		goto out;
	*step = "GET_PA";
	len = 4 * pgsz;
	ret = get_pa(ifd, ioas, IOVA_BASE + 5, &len, &pa);
	if (!ret && ((pa & (pgsz - 1)) != 5 || !len || len > 4 * pgsz))
		ret = -EPROTO;
	if (ret)
		goto out;
	*step = "unmap";
	len = 4 * pgsz;
	ret = ioas_unmap(ifd, ioas, IOVA_BASE, &len);
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

static __u64 rnd(__u64 *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

static __u64 below(__u64 *state, __u64 n)
{
	return n ? rnd(state) % n : 0;
}

/* The race */

struct race {
	const char *cdev;
	pthread_mutex_t lock;
	/* The current context, under @lock */
	int ifd;
	__u32 ioas;
	__u32 dev_id;
	unsigned long gen;
	int dfd;			/* read without the lock */
	bool stop;			/* atomic */
	double deadline;		/* every thread checks it itself */
	/*
	 * Keeps device fd closes apart from ioctls that hold the device
	 * object (HWPT_ALLOC naming dev_id): see unbind_during_dev_id_ioctl.
	 */
	pthread_rwlock_t devobj_lock;
	double max_close;		/* slowest device fd close, seconds */
	char failure[256];

	/* Counters, under @lock */
	unsigned long maps, unmaps, copies, getpa_ok, getpa_detached;
	unsigned long getpa_other, attaches, detaches, hwpt_attaches;
	unsigned long dev_reopens, ctx_swaps, bind_retries;
};

static bool running(struct race *r)
{
	return !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) &&
	       now_s() < r->deadline;
}

static void race_fail(struct race *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->lock);
	if (!r->failure[0]) {
		va_start(ap, fmt);
		vsnprintf(r->failure, sizeof(r->failure), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
}

/* A private reference to the current context: a dup of its iommufd */
struct ctx_ref {
	int ifd;
	__u32 ioas;
	__u32 dev_id;
	unsigned long gen;
};

static void ctx_update(struct race *r, struct ctx_ref *ref)
{
	pthread_mutex_lock(&r->lock);
	if (ref->gen != r->gen || ref->ifd < 0) {
		if (ref->ifd >= 0)
			close(ref->ifd);
		ref->ifd = fcntl(r->ifd, F_DUPFD_CLOEXEC, 0);
		ref->ioas = r->ioas;
		ref->dev_id = r->dev_id;
		ref->gen = r->gen;
	}
	pthread_mutex_unlock(&r->lock);
}

static bool err_in(int ret, const int *allowed, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ret == -allowed[i])
			return true;
	return !ret;
}

struct worker {
	struct race *r;
	int index;
	pthread_t thread;
};

/*
 * Check a GET_PA answer for @iova asked with at most @asked bytes, @iova
 * lying in a mapping that ends at @end.
 */
static bool pa_sane(__u64 iova, __u64 asked, __u64 end, __u64 len, __u64 pa)
{
	return len && len <= asked && len <= end - iova &&
	       (pa & (pgsz - 1)) == (iova & (pgsz - 1));
}

static void *worker_fn(void *arg)
{
	static const int getpa_own[] = { EOPNOTSUPP };
	static const int getpa_other[] = { ENOENT, EOPNOTSUPP };
	struct worker *w = arg;
	struct race *r = w->r;
	struct ctx_ref ref = { .ifd = -1 };
	__u64 seed = 0x9e3779b97f4a7c15ULL * (w->index + 1);
	unsigned long maps = 0, copies = 0, ok = 0, detached = 0, other = 0;
	__u64 slot = IOVA_BASE + w->index * SLOT_SIZE;
	char *buf;
	int ret;

	buf = mmap(NULL, BUF_PAGES * pgsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		race_fail(r, "worker %d: mmap: %s", w->index, strerror(errno));
		return NULL;
	}

	while (running(r)) {
		__u64 npages = 1 + below(&seed, BUF_PAGES);
		__u64 first = below(&seed, BUF_PAGES - npages + 1);
		__u64 len = npages * pgsz, iova, q, qlen, asked, pa, ulen;
		bool fixed = below(&seed, 5);
		int i;

		ctx_update(r, &ref);
		if (ref.ifd < 0) {
			race_fail(r, "worker %d: dup: %s", w->index,
				  strerror(errno));
			break;
		}

		/* Own IOVAs: nobody else maps or unmaps there */
		iova = slot + below(&seed, 256) * pgsz;
		ret = ioas_map(ref.ifd, ref.ioas, buf + first * pgsz, len,
			       &iova, fixed);
		if (ret) {
			race_fail(r, "worker %d: MAP %#llx+%#llx: %s", w->index,
				  (unsigned long long)iova,
				  (unsigned long long)len, strerror(-ret));
			break;
		}
		maps++;

		/* Mapped: translated, or not backed by a domain right now */
		for (i = 0; i < 4; i++) {
			q = iova + below(&seed, len);
			asked = qlen = 1 + below(&seed, 2 * len);
			ret = get_pa(ref.ifd, ref.ioas, q, &qlen, &pa);
			if (!err_in(ret, getpa_own, ARRAY_SIZE(getpa_own))) {
				race_fail(r, "worker %d: GET_PA of mapped %#llx: %s",
					  w->index, (unsigned long long)q,
					  strerror(-ret));
				goto out;
			}
			if (ret) {
				detached++;
				continue;
			}
			if (!pa_sane(q, asked, iova + len, qlen, pa)) {
				race_fail(r, "worker %d: GET_PA %#llx in %#llx+%#llx: pa %#llx len %#llx",
					  w->index, (unsigned long long)q,
					  (unsigned long long)iova,
					  (unsigned long long)len,
					  (unsigned long long)pa,
					  (unsigned long long)qlen);
				goto out;
			}
			ok++;
		}

		/* Someone else's IOVA: mapped or not, never a crash */
		q = IOVA_BASE + ((w->index + 1) % NR_WORKERS) * SLOT_SIZE +
		    below(&seed, 260 * pgsz);
		asked = qlen = 1 + below(&seed, 64 * pgsz);
		ret = get_pa(ref.ifd, ref.ioas, q, &qlen, &pa);
		if (!err_in(ret, getpa_other, ARRAY_SIZE(getpa_other)) ||
		    (!ret && ((pa & (pgsz - 1)) != (q & (pgsz - 1)) ||
			      !qlen || qlen > asked))) {
			race_fail(r, "worker %d: GET_PA of other %#llx: %d len %#llx",
				  w->index, (unsigned long long)q, ret,
				  (unsigned long long)qlen);
			break;
		}
		other++;

		/* Now and then a copy of the area next to it, and back out */
		if (fixed && !below(&seed, 4)) {
			ret = ioas_copy(ref.ifd, ref.ioas, iova,
					iova + COPY_OFFSET, len);
			if (ret) {
				race_fail(r, "worker %d: COPY: %s", w->index,
					  strerror(-ret));
				break;
			}
			qlen = len;
			ret = get_pa(ref.ifd, ref.ioas, iova + COPY_OFFSET,
				     &qlen, &pa);
			if (!err_in(ret, getpa_own, ARRAY_SIZE(getpa_own)) ||
			    (!ret && !pa_sane(iova + COPY_OFFSET, len,
					      iova + COPY_OFFSET + len, qlen,
					      pa))) {
				race_fail(r, "worker %d: GET_PA of copy: %d",
					  w->index, ret);
				break;
			}
			ulen = len;
			ret = ioas_unmap(ref.ifd, ref.ioas, iova + COPY_OFFSET,
					 &ulen);
			if (ret || ulen != len) {
				race_fail(r, "worker %d: UNMAP copy: %d, %#llx of %#llx",
					  w->index, ret,
					  (unsigned long long)ulen,
					  (unsigned long long)len);
				break;
			}
			copies++;
		}

		ulen = len;
		ret = ioas_unmap(ref.ifd, ref.ioas, iova, &ulen);
		if (ret || ulen != len) {
			race_fail(r, "worker %d: UNMAP %#llx: %d, %#llx of %#llx",
				  w->index, (unsigned long long)iova, ret,
				  (unsigned long long)ulen,
				  (unsigned long long)len);
			break;
		}
	}
out:
	if (ref.ifd >= 0)
		close(ref.ifd);
	munmap(buf, BUF_PAGES * pgsz);
	pthread_mutex_lock(&r->lock);
	r->maps += maps;
	r->unmaps += maps;
	r->copies += copies;
	r->getpa_ok += ok;
	r->getpa_detached += detached;
	r->getpa_other += other;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * Attach and detach the device, mostly to the IOAS, sometimes through a
 * HWPT allocated for it. The device fd may be closed under us at any time,
 * and its number reused by the next open.
 */
static void *attacher_fn(void *arg)
{
	static const int allowed[] = {
		EBADF, EINVAL, ENOENT, ENOTTY, EBUSY, ENODEV,
	};
	struct race *r = arg;
	struct ctx_ref ref = { .ifd = -1 };
	unsigned long attaches = 0, detaches = 0, hwpts = 0;
	__u64 seed = 42;
	__u32 hwpt;
	int dfd, ret, ret2;

	while (running(r)) {
		ctx_update(r, &ref);
		dfd = __atomic_load_n(&r->dfd, __ATOMIC_ACQUIRE);
		if (dfd < 0) {
			usleep(100);
			continue;
		}
		switch (below(&seed, 4)) {
		case 0:
			if (!opt_known_bugs)
				pthread_rwlock_rdlock(&r->devobj_lock);
			ret = hwpt_alloc(ref.ifd, ref.dev_id, ref.ioas, &hwpt);
			if (!opt_known_bugs)
				pthread_rwlock_unlock(&r->devobj_lock);
			if (!err_in(ret, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			if (ret)
				break;
			ret = dev_attach(dfd, hwpt);
			if (!err_in(ret, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			hwpts += !ret;
			ret2 = dev_detach(dfd);
			if (!err_in(ret2, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			/* Not in use once detached, unless the fd moved on */
			ret = destroy(ref.ifd, hwpt);
			if (!err_in(ret, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			break;
		case 1:
			ret = dev_detach(dfd);
			if (!err_in(ret, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			detaches += !ret;
			break;
		default:
			ret = dev_attach(dfd, ref.ioas);
			if (!err_in(ret, allowed, ARRAY_SIZE(allowed)))
				goto bad;
			attaches += !ret;
			break;
		}
		continue;
bad:
		race_fail(r, "attacher: unexpected %s", strerror(-ret));
		break;
	}
	if (ref.ifd >= 0)
		close(ref.ifd);
	pthread_mutex_lock(&r->lock);
	r->attaches += attaches;
	r->detaches += detaches;
	r->hwpt_attaches += hwpts;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * Close the device fd and open, bind and attach a new one. The bind is
 * refused (EINVAL) while an ioctl still holds the old file: retry.
 */
static int reopen_device(struct race *r, int ifd, __u32 ioas)
{
	int old, dfd, ret, tries;
	__u32 dev_id;
	double t0;

	old = __atomic_exchange_n(&r->dfd, -1, __ATOMIC_ACQ_REL);
	if (old >= 0) {
		if (!opt_known_bugs)
			pthread_rwlock_wrlock(&r->devobj_lock);
		t0 = now_s();
		close(old);
		if (now_s() - t0 > r->max_close)
			r->max_close = now_s() - t0;
		if (!opt_known_bugs)
			pthread_rwlock_unlock(&r->devobj_lock);
	}
	dfd = open(r->cdev, O_RDWR | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (tries = 0; tries < 2000; tries++) {
		ret = dev_bind(dfd, ifd, &dev_id);
		if (ret != -EINVAL)
			break;
		r->bind_retries++;
		usleep(1000);
	}
	if (!ret)
		ret = dev_attach(dfd, ioas);
	if (ret) {
		close(dfd);
		return ret;
	}
	pthread_mutex_lock(&r->lock);
	r->dev_id = dev_id;
	r->dev_reopens++;
	pthread_mutex_unlock(&r->lock);
	__atomic_store_n(&r->dfd, dfd, __ATOMIC_RELEASE);
	return 0;
}

static void *closer_fn(void *arg)
{
	struct race *r = arg;
	__u64 seed = 7;
	int ifd, old, ret;
	__u32 ioas;

	while (running(r)) {
		usleep(5000 + below(&seed, 30000));
		if (!running(r))
			break;
		if (below(&seed, 3)) {
			pthread_mutex_lock(&r->lock);
			ifd = r->ifd;
			ioas = r->ioas;
			pthread_mutex_unlock(&r->lock);
			ret = reopen_device(r, ifd, ioas);
			if (ret) {
				race_fail(r, "closer: device reopen: %s",
					  strerror(-ret));
				break;
			}
			continue;
		}

		/* A new context: new iommufd and IOAS, the device moves */
		ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
		if (ifd < 0 || ioas_alloc(ifd, &ioas)) {
			race_fail(r, "closer: new iommufd: %s", strerror(errno));
			break;
		}
		pthread_mutex_lock(&r->lock);
		old = r->ifd;
		r->ifd = ifd;
		r->ioas = ioas;
		r->gen++;
		r->ctx_swaps++;
		pthread_mutex_unlock(&r->lock);
		ret = reopen_device(r, ifd, ioas);
		close(old);
		if (ret) {
			race_fail(r, "closer: device to new context: %s",
				  strerror(-ret));
			break;
		}
	}
	return NULL;
}

TEST(race_map_getpa_attach_reopen)
{
	struct worker workers[NR_WORKERS];
	pthread_t attacher, closer;
	long vmpin_start, pins_start, vmpin, pins;
	char bdf[NAME_MAX + 1], cdev[PATH_MAX];
	const char *step = "";
	struct race *r;
	double start, secs;
	int i, ret, leak = -1;

	if (find_device(bdf, sizeof(bdf), cdev, sizeof(cdev)))
		SKIP(return, "no edu device with a noiommu-vfio cdev");
	r = calloc(1, sizeof(*r));
	ASSERT_NE(NULL, r);
	r->cdev = cdev;
	r->dfd = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_rwlock_init(&r->devobj_lock, NULL);
	vmpin_start = vmpin_kb();
	pins_start = foll_pins();
	ASSERT_LE(0, vmpin_start);
	ASSERT_NE(LONG_MIN, pins_start);

	r->ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, r->ifd);
	ASSERT_EQ(0, ioas_alloc(r->ifd, &r->ioas));
	ASSERT_EQ(0, reopen_device(r, r->ifd, r->ioas));

	start = now_s();
	r->deadline = start + opt_secs;
	for (i = 0; i < NR_WORKERS; i++) {
		workers[i].r = r;
		workers[i].index = i;
		ASSERT_EQ(0, pthread_create(&workers[i].thread, NULL,
					    worker_fn, &workers[i]));
	}
	ASSERT_EQ(0, pthread_create(&attacher, NULL, attacher_fn, r));
	ASSERT_EQ(0, pthread_create(&closer, NULL, closer_fn, r));
	while (running(r))
		usleep(20000);
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	for (i = 0; i < NR_WORKERS; i++)
		pthread_join(workers[i].thread, NULL);
	pthread_join(attacher, NULL);
	pthread_join(closer, NULL);
	secs = now_s() - start;

	note("race: %d threads (%d map/GET_PA/copy/unmap, 1 attach/detach, 1 close/reopen) for %.1f s\n",
	     NR_WORKERS + 2, NR_WORKERS, secs);
	note("race: %lu maps+unmaps, %lu copies, GET_PA: %lu translated, %lu without domain, %lu elsewhere\n",
	     r->maps, r->copies, r->getpa_ok, r->getpa_detached,
	     r->getpa_other);
	note("race: %lu attaches, %lu detaches, %lu HWPT attaches, %lu device reopens (%lu bind retries, slowest close %.3f s), %lu iommufd swaps\n",
	     r->attaches, r->detaches, r->hwpt_attaches, r->dev_reopens,
	     r->bind_retries, r->max_close, r->ctx_swaps);

	if (opt_break_leak) {
		/* Keep a mapping pinned through a forgotten dup: must fail */
		__u64 iova = IOVA_BASE;
		void *b = mmap(NULL, pgsz, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		dev_attach(r->dfd, r->ioas);
		ioas_map(r->ifd, r->ioas, b, pgsz, &iova, true);
		leak = dup(r->dfd);
	}
	close(r->dfd);
	close(r->ifd);
	vmpin = wait_value(vmpin_kb, vmpin_start);
	pins = wait_value(foll_pins, pins_start);
	note("race: after close: VmPin %ld kB (start %ld), FOLL_PIN pages %ld (start %ld)\n",
	     vmpin, vmpin_start, pins, pins_start);
	if (leak >= 0)
		close(leak);

	EXPECT_STREQ("", r->failure);
	/* The race did happen: translations, with and without a domain */
	EXPECT_LT(0, r->getpa_ok);
	EXPECT_LT(0, r->getpa_detached);
	EXPECT_LT(0, r->dev_reopens);
	EXPECT_LT(0, r->ctx_swaps);
	/* Nothing waits for long: a close must not hang on a race */
	EXPECT_GT(MAX_CLOSE_S, r->max_close);
	EXPECT_EQ(vmpin_start, vmpin);
	EXPECT_EQ(pins_start, pins);

	ret = device_flow(cdev, &step);
	EXPECT_EQ(0, ret) TH_LOG("device flow after the race: %s: %s", step,
				 strerror(-ret));
	EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
	free(r);
}

/* SIGKILL while pinned */

/* Read one byte from @fd, within 30 s; 0 if it is @want */
static int wait_byte(int fd, char want)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, 30000) != 1)
		return -ETIMEDOUT;
	if (read(fd, &c, 1) != 1)
		return -EPIPE;
	return c == want ? 0 : -EPROTO;
}

struct victim {
	const char *cdev;
	int dfd, ifd;
	__u32 ioas;
	char *buf;
	size_t len;
};

/* In the child: churn on the mappings until killed */
static void *churn_fn(void *arg)
{
	struct victim *v = arg;
	__u64 seed = (uintptr_t)&seed, iova, len, pa;

	for (;;) {
		iova = IOVA_BASE + 0x40000000ULL + below(&seed, 64) * pgsz;
		if (ioas_map(v->ifd, v->ioas, v->buf, v->len, &iova, false))
			continue;
		len = v->len;
		get_pa(v->ifd, v->ioas, iova, &len, &pa);
		if (!below(&seed, 8)) {
			dev_detach(v->dfd);
			dev_attach(v->dfd, v->ioas);
		}
		len = v->len;
		ioas_unmap(v->ifd, v->ioas, iova, &len);
	}
	return NULL;
}

/*
 * The child: bind, attach, map 64 pages and a 2 MiB area, check a
 * translation, tell the parent, then idle or churn until killed.
 */
static void victim_main(const char *cdev, int pipefd, int gofd, int nr_threads)
{
	struct victim v = { .cdev = cdev };
	pthread_t thread;
	__u64 iova = IOVA_BASE, len, pa;
	char *big, c;
	int i;

	/* Never outlive the test, whatever happens to it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() == 1)
		_exit(9);
	v.len = 64 * pgsz;
	v.buf = mmap(NULL, v.len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	big = mmap(NULL, 4UL << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v.buf == MAP_FAILED || big == MAP_FAILED)
		_exit(10);
	big = (char *)(((uintptr_t)big + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	madvise(big, 2UL << 20, MADV_HUGEPAGE);
	memset(big, 1, 2UL << 20);

	v.dfd = open(cdev, O_RDWR | O_CLOEXEC);
	v.ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (v.dfd < 0 || v.ifd < 0)
		_exit(11);
	if (dev_bind(v.dfd, v.ifd, NULL) || ioas_alloc(v.ifd, &v.ioas) ||
	    dev_attach(v.dfd, v.ioas))
		_exit(12);
	if (ioas_map(v.ifd, v.ioas, v.buf, v.len, &iova, true))
		_exit(13);
	iova = IOVA_BASE + 0x10000000ULL;
	if (ioas_map(v.ifd, v.ioas, big, 2UL << 20, &iova, true))
		_exit(14);
	len = v.len;
	if (get_pa(v.ifd, v.ioas, IOVA_BASE, &len, &pa))
		_exit(15);
	if (vmpin_kb() < (long)((v.len + (2UL << 20)) >> 10))
		_exit(16);

	/* Pinned: the parent checks, then lets the churn begin */
	if (write(pipefd, "r", 1) != 1 || read(gofd, &c, 1) != 1)
		_exit(18);
	for (i = 0; i < nr_threads; i++)
		if (pthread_create(&thread, NULL, churn_fn, &v))
			_exit(17);
	if (write(pipefd, "g", 1) != 1)
		_exit(19);
	for (;;)
		pause();
}

TEST(sigkill_while_pinned)
{
	char bdf[NAME_MAX + 1], cdev[PATH_MAX];
	long vmpin_start, pins_start, pins;
	const char *step = "";
	int round, status, p[2], go[2], ret;
	long pinned_max = 0;
	__u64 seed = 99;
	pid_t pid, checker;

	if (find_device(bdf, sizeof(bdf), cdev, sizeof(cdev)))
		SKIP(return, "no edu device with a noiommu-vfio cdev");
	vmpin_start = vmpin_kb();
	pins_start = foll_pins();
	ASSERT_NE(LONG_MIN, pins_start);

	for (round = 0; round < KILL_ROUNDS; round++) {
		/* idle, 1 churning thread, 3 churning threads */
		int threads = round % 3 == 2 ? 3 : round % 3;

		ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
		ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
		fflush(NULL);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(p[0]);
			close(go[1]);
			victim_main(cdev, p[1], go[0], threads);
		}
		close(p[1]);
		close(go[0]);

		/* Pinned by the child, seen system-wide */
		ret = wait_byte(p[0], 'r');
		pins = ret ? 0 : foll_pins();
		if (!ret && pins > pins_start)
			ret = write(go[1], "g", 1) == 1 ? wait_byte(p[0], 'g') : -EPIPE;
		close(p[0]);
		close(go[1]);
		if (ret || pins <= pins_start) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ASSERT_EQ(0, ret) TH_LOG("round %d: child set-up: status %#x",
						 round, status);
			ASSERT_LT(pins_start, pins);
		}
		usleep(below(&seed, 20000));
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		pinned_max = pins > pinned_max ? pins : pinned_max;

		pins = wait_value(foll_pins, pins_start);
		ASSERT_EQ(pins_start, pins) TH_LOG("round %d: child's pins left", round);

		/* A fresh process opens, binds and maps again */
		fflush(NULL);
		checker = fork();
		ASSERT_LE(0, checker);
		if (!checker) {
			ret = device_flow(cdev, &step);
			if (ret)
				fprintf(stderr, "# checker: %s: %s\n", step,
					strerror(-ret));
			_exit(ret ? 1 : 0);
		}
		ASSERT_EQ(checker, waitpid(checker, &status, 0));
		ASSERT_EQ(0, status) TH_LOG("round %d: device not usable after the kill",
					    round);
	}
	note("sigkill: %d children killed holding up to %ld pinned pages (idle, 1 and 3 churning threads), pins gone each time\n",
	     KILL_ROUNDS, pinned_max - pins_start);

	/* And this process too */
	ASSERT_EQ(0, device_flow(cdev, &step)) TH_LOG("%s", step);
	if (opt_break_leak) {
		/* A pin left on purpose: the check below must catch it */
		int dfd = open(cdev, O_RDWR), ifd = open("/dev/iommu", O_RDWR);
		__u64 iova = IOVA_BASE;
		__u32 ioas;
		void *b = mmap(NULL, pgsz, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (!dev_bind(dfd, ifd, NULL) && !ioas_alloc(ifd, &ioas) &&
		    !dev_attach(dfd, ioas))
			ioas_map(ifd, ioas, b, pgsz, &iova, true);
	}
	EXPECT_EQ(vmpin_start, wait_value(vmpin_kb, vmpin_start));
	EXPECT_EQ(pins_start, wait_value(foll_pins, pins_start));
}

/*
 * Closing the device fd unbinds it from iommufd, which waits (in
 * iommufd_object_dec_wait_shortterm(), uninterruptibly, up to 60 s) for the
 * ioctls holding the device object to let go. Those wake the waiter with
 * wake_up_interruptible_all() in iommufd_put_object(), which wakes no
 * uninterruptible sleeper: the close then sleeps the whole 60 s although
 * the ioctl was over in microseconds. Linux 6.12's own iommufd code, reached
 * here by HWPT_ALLOC naming the device while another thread closes it.
 */
struct devid_user {
	int ifd;
	__u32 ioas;
	__u32 dev_id;		/* atomic */
	bool stop;		/* atomic */
	unsigned long calls;
};

static void *devid_user_fn(void *arg)
{
	struct devid_user *u = arg;
	__u32 hwpt;

	while (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE)) {
		if (!hwpt_alloc(u->ifd, __atomic_load_n(&u->dev_id, __ATOMIC_ACQUIRE),
				u->ioas, &hwpt))
			destroy(u->ifd, hwpt);
		u->calls++;
	}
	return NULL;
}

TEST(unbind_during_dev_id_ioctl)
{
	char bdf[NAME_MAX + 1], cdev[PATH_MAX];
	struct devid_user u = { 0 };
	double t0, dt, max = 0;
	__u64 seed = 5, iova = IOVA_BASE;
	pthread_t thread;
	int i, dfd;
	char *buf;

	if (find_device(bdf, sizeof(bdf), cdev, sizeof(cdev)))
		SKIP(return, "no edu device with a noiommu-vfio cdev");
	if (!opt_known_bugs)
		SKIP(return, "known-bugs=0: a kernel without the iommufd destroy-waiter fix sleeps 60 s here");

	buf = mmap(NULL, 1UL << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	u.ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, u.ifd);
	ASSERT_EQ(0, ioas_alloc(u.ifd, &u.ioas));
	/* A mapping makes each HWPT_ALLOC fill a domain: a wider window */
	ASSERT_EQ(0, ioas_map(u.ifd, u.ioas, buf, 1UL << 20, &iova, true));
	ASSERT_EQ(0, pthread_create(&thread, NULL, devid_user_fn, &u));

	for (i = 0; i < 20 && max < MAX_CLOSE_S; i++) {
		__u32 dev_id;

		dfd = open(cdev, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, dfd);
		ASSERT_EQ(0, dev_bind(dfd, u.ifd, &dev_id));
		__atomic_store_n(&u.dev_id, dev_id, __ATOMIC_RELEASE);
		ASSERT_EQ(0, dev_attach(dfd, u.ioas));
		usleep(1000 + below(&seed, 5000));
		t0 = now_s();
		close(dfd);
		dt = now_s() - t0;
		max = dt > max ? dt : max;
	}
	__atomic_store_n(&u.stop, true, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	close(u.ifd);
	note("unbind: %d device fd closes against %lu HWPT_ALLOC calls on the dev_id, slowest %.3f s\n",
	     i, u.calls, max);
	EXPECT_GT(MAX_CLOSE_S, max);
}

int main(int argc, char **argv)
{
	int i;

	pgsz = sysconf(_SC_PAGESIZE);
	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "secs=", 5))
			opt_secs = strtoul(argv[i] + 5, NULL, 0);
		else if (!strcmp(argv[i], "break=leak"))
			opt_break_leak = true;
		else if (!strcmp(argv[i], "known-bugs=0"))
			opt_known_bugs = false;
	}
	return test_harness_run(1, argv);
}
