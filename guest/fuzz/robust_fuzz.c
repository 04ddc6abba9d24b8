// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bounded random ioctl fuzzer for the iommufd no-IOMMU mode of the VFIO
 * cdev: every iommufd and VFIO device ioctl of the userspace flow, called
 * on two iommufds and two opens of the noiommu-vfioN cdev with random
 * sizes, flags, ids, IOVAs, lengths and user pointers (good ones, NULL,
 * unmapped, kernel addresses, PROT_NONE and read-only pages, structs that
 * straddle into a PROT_NONE page). File descriptors are closed and reopened
 * now and then.
 *
 * It never touches BAR0, the PCI config space nor the edu DMA engine. What
 * the kernel writes goes to a scratch area (the argument structs) or to a
 * sink area that the program never reads, both followed by a PROT_NONE
 * guard page.
 *
 * Checks: no crash (the console is checked for splats by the runner), the
 * answers that the ABI fixes (GET_PA's ordered checks and output, ENOTTY
 * for unused command numbers), every errno from a known set, and after
 * closing everything: VmPin and the system-wide FOLL_PIN count are back to
 * where they started and the device still goes through the whole flow.
 *
 * The seed comes from the time unless given, and is printed with the counts
 * (calls, successes, seconds, per ioctl and per errno).
 *
 * Arguments (also through the runner's harness.args): seed=N, calls=N (at
 * least this many, default 100000), secs=N (a cap on its time, default
 * 600: the debug kernel takes about 50 s for 100000 calls, a loaded
 * machine several times that),
 * break=leak (leave a page pinned through a forgotten fd: the test must
 * fail; VFIO_NOIOMMU_BREAK=leak in the environment does the same).
 */
#define _GNU_SOURCE
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

#include "kselftest_harness.h"
#include "vfio_noiommu_lib.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	300

#define MIN_CALLS	100000UL
#define NR_IFD		2		/* iommufds */
#define NR_DFD		2		/* opens of the cdev */
#define NR_IDS		32		/* object ids remembered per iommufd */
#define NR_MAPPINGS	64		/* successful MAPs and COPYs remembered */
#define MAP_BUF_LEN	(4UL << 20)	/* THP-backed buffer for MAP */
#define SMALL_LEN	(64UL << 10)	/* the other user buffers */
#define SCRATCH_LEN	(16UL << 10)	/* argument structs */
#define SINK_LEN	(128UL << 10)	/* kernel output buffers */
#define MAP_BUDGET	(64UL << 20)	/* mapped bytes before a clean-up */
#define IOVA_BASE	0x100000000ULL
#define SZ_2M		(2UL << 20)
/* The IOVA alignment of the noiommu domain, whatever PAGE_SIZE is */
#define NOIOMMU_IOVA_ALIGN	4096ULL

static unsigned long opt_seed, opt_calls = MIN_CALLS, opt_secs = 600;
static bool opt_break_leak;
static size_t pgsz;

/* The fuzzer */

static __u64 rng;

static __u64 rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static __u64 below(__u64 n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int percent)
{
	return below(100) < percent;
}

enum id_kind { ID_IOAS, ID_HWPT, ID_DEV };

struct id {
	__u32 id;
	enum id_kind kind;
};

/* A successful MAP or COPY: where it went */
struct mapping {
	int slot;			/* iommufd */
	__u32 ioas;
	__u64 iova, len;
};

enum op {
	OP_IOAS_ALLOC, OP_IOAS_MAP, OP_IOAS_UNMAP, OP_IOAS_COPY,
	OP_IOVA_RANGES, OP_ALLOW_IOVAS, OP_DESTROY, OP_HWPT_ALLOC,
	OP_HW_INFO, OP_GET_PA, OP_OPTION, OP_UNUSED_NR, OP_BIND, OP_ATTACH,
	OP_DETACH, OP_GET_INFO, OP_REGION_INFO, OP_IRQ_INFO, NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"IOAS_ALLOC", "IOAS_MAP", "IOAS_UNMAP", "IOAS_COPY", "IOVA_RANGES",
	"ALLOW_IOVAS", "DESTROY", "HWPT_ALLOC", "GET_HW_INFO", "GET_PA",
	"OPTION", "unused nr", "BIND", "ATTACH", "DETACH", "GET_INFO",
	"REGION_INFO", "IRQ_INFO",
};

/* Relative frequency of each operation */
static const unsigned int op_weight[NR_OPS] = {
	[OP_IOAS_ALLOC] = 2, [OP_IOAS_MAP] = 16, [OP_IOAS_UNMAP] = 10,
	[OP_IOAS_COPY] = 5, [OP_IOVA_RANGES] = 3, [OP_ALLOW_IOVAS] = 2,
	[OP_DESTROY] = 2, [OP_HWPT_ALLOC] = 5, [OP_HW_INFO] = 2,
	[OP_GET_PA] = 20, [OP_OPTION] = 2, [OP_UNUSED_NR] = 2, [OP_BIND] = 3,
	[OP_ATTACH] = 9, [OP_DETACH] = 5, [OP_GET_INFO] = 2,
	[OP_REGION_INFO] = 1, [OP_IRQ_INFO] = 1,
};

/* Every errno the kernel may give these calls; anything else is a failure */
static const int known_errnos[] = {
	EPERM, ENOENT, EBADF, ENOMEM, EFAULT, EBUSY, EEXIST, EINVAL, ENOSPC,
	ERANGE, ENOTTY, E2BIG, EOVERFLOW, EOPNOTSUPP, EMSGSIZE, ENODEV,
	EBADFD,		/* BIND to a file that is no iommufd */
	/* EPERM: a writable COPY of a read-only mapping */
	EADDRINUSE,	/* attach to an IOAS holding unaligned areas */
};

struct fuzz {
	const char *cdev;		/* its name, e.g. noiommu-vfio0 */
	int ifd[NR_IFD];
	int dfd[NR_DFD];
	int bound[NR_DFD];		/* index of the iommufd, or -1 */
	int nullfd;
	struct id ids[NR_IFD][NR_IDS];
	unsigned int nr_ids[NR_IFD];
	struct mapping maps[NR_MAPPINGS];
	unsigned int nr_maps;
	__u32 attached[NR_IFD];		/* IOAS the device last attached to */
	unsigned long mapped;		/* bytes mapped since the last clean-up */

	char *map_buf;			/* THP-backed, 2 MiB aligned */
	char *small_buf;		/* private anonymous */
	char *shm_buf;			/* shared anonymous */
	char *ro_buf;			/* PROT_READ */
	char *none_buf;			/* PROT_NONE */
	char *hole;			/* unmapped */
	char *scratch;			/* argument structs, then a guard */
	char *ro_page;			/* a struct in a read-only page */
	char *sink;			/* kernel output buffers, then a guard */

	unsigned long calls, ok, reopens, cleanups, cleanup_calls;
	unsigned long getpa_ok, getpa_checked, enotty_checked;
	unsigned long per_op[NR_OPS], per_op_ok[NR_OPS];
	unsigned long per_errno[256];
	char failure[256];		/* first broken expectation */
};

static void fail(struct fuzz *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(f->failure, sizeof(f->failure), fmt, ap);
	va_end(ap);
}

static char *map_region(size_t len, int prot, int flags)
{
	char *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * @len bytes followed by a PROT_NONE guard page: the buffer is placed at
 * the end of its pages, which are more than @len with 64 KiB pages.
 */
static char *map_guarded(size_t len)
{
	size_t span = (len + pgsz - 1) & ~(pgsz - 1);
	char *p = map_region(span + pgsz, PROT_READ | PROT_WRITE, MAP_PRIVATE);

	if (!p || mprotect(p + span, pgsz, PROT_NONE))
		return NULL;
	return p + span - len;
}

static int setup_memory(struct fuzz *f)
{
	char *p;

	/* A 2 MiB aligned buffer, so that THP can back it */
	p = map_region(MAP_BUF_LEN + SZ_2M, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE);
	if (!p)
		return -ENOMEM;
	f->map_buf = (char *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));
	madvise(f->map_buf, MAP_BUF_LEN, MADV_HUGEPAGE);
	/* Fault in half of it: MAP pins the rest itself */
	memset(f->map_buf, 0x5a, MAP_BUF_LEN / 2);

	f->small_buf = map_region(SMALL_LEN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_POPULATE);
	f->shm_buf = map_region(SMALL_LEN, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_POPULATE);
	f->ro_buf = map_region(SMALL_LEN, PROT_READ, MAP_PRIVATE);
	f->none_buf = map_region(SMALL_LEN, PROT_NONE, MAP_PRIVATE);
	f->hole = map_region(SMALL_LEN, PROT_NONE, MAP_PRIVATE);
	if (!f->small_buf || !f->shm_buf || !f->ro_buf || !f->none_buf ||
	    !f->hole || munmap(f->hole, SMALL_LEN))
		return -ENOMEM;

	/* Random words: IOVA ranges for ALLOW_IOVAS, data for HWPT_ALLOC */
	for (p = f->small_buf; p < f->small_buf + SMALL_LEN; p += 8)
		*(__u64 *)p = chance(50) ? rnd() : below(1 << 20) * pgsz;

	f->scratch = map_guarded(SCRATCH_LEN);
	f->sink = map_guarded(SINK_LEN);
	f->ro_page = map_region(pgsz, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_POPULATE);
	if (!f->scratch || !f->sink || !f->ro_page)
		return -ENOMEM;
	return 0;
}

/* Random picks */

static int pick_ifd(struct fuzz *f, int *slot)
{
	unsigned int r = below(100);

	*slot = below(NR_IFD);
	if (r < 92)
		return f->ifd[*slot];
	*slot = -1;
	if (r < 95)
		return f->dfd[below(NR_DFD)];
	if (r < 98)
		return f->nullfd;
	return 1000 + below(10);	/* not open */
}

static int pick_dfd(struct fuzz *f, int *slot)
{
	unsigned int r = below(100);

	*slot = below(NR_DFD);
	/* Mostly a bound one, where the interesting paths are */
	if (r < 70 && f->bound[*slot] < 0)
		*slot = (*slot + 1) % NR_DFD;
	if (r < 94)
		return f->dfd[*slot];
	*slot = -1;
	if (r < 97)
		return f->ifd[below(NR_IFD)];
	return f->nullfd;
}

static void remember_id(struct fuzz *f, int slot, __u32 id, enum id_kind kind)
{
	unsigned int i;

	if (slot < 0)
		return;
	for (i = 0; i < f->nr_ids[slot]; i++)
		if (f->ids[slot][i].id == id)
			return;
	if (f->nr_ids[slot] < NR_IDS)
		i = f->nr_ids[slot]++;
	else
		i = below(NR_IDS);
	f->ids[slot][i].id = id;
	f->ids[slot][i].kind = kind;
}

static __u32 pick_id(struct fuzz *f, int slot, enum id_kind kind)
{
	unsigned int r = below(100), i, n;

	if (slot >= 0 && kind == ID_IOAS && f->attached[slot] && r < 30)
		return f->attached[slot];
	if (slot >= 0 && f->nr_ids[slot] && r < 85) {
		n = f->nr_ids[slot];
		/* Mostly an id of the wanted kind, if there is one */
		if (r < 70) {
			unsigned int first = below(n);

			for (i = 0; i < n; i++)
				if (f->ids[slot][(first + i) % n].kind == kind)
					return f->ids[slot][(first + i) % n].id;
		}
		return f->ids[slot][below(n)].id;
	}
	if (r < 90)
		return below(16);
	if (r < 95)
		return ~0U - below(2);
	return rnd();
}

static __u64 pick_iova(struct fuzz *f)
{
	unsigned int r = below(100);

	if (r < 45 && f->nr_maps)
		return f->maps[below(f->nr_maps)].iova +
		       (chance(20) ? below(4) * pgsz : 0);
	if (r < 75)
		return IOVA_BASE + below(1024) * pgsz;
	if (r < 80)
		return 0;
	if (r < 85)
		return below(1UL << 31) & ~(pgsz - 1);	/* a PA-like IOVA */
	if (r < 88)
		return ~0ULL - (chance(50) ? 0 : pgsz - 1);
	if (r < 91)
		return 1ULL << (32 + below(32));
	if (r < 95)
		return IOVA_BASE + below(1 << 24);	/* unaligned */
	return rnd();
}

static __u64 pick_len(void)
{
	unsigned int r = below(100);

	if (r < 5)
		return 0;
	if (r < 55)
		return (1 + below(16)) * pgsz;
	if (r < 70)
		return (1 + below(MAP_BUF_LEN / pgsz)) * pgsz;
	if (r < 75)
		return SZ_2M;
	if (r < 82)
		return 1 + below(3 * pgsz);
	if (r < 88)
		return ~0ULL - below(2);
	if (r < 94)
		return 1ULL << below(64);
	return rnd();
}

/* Kernel addresses, a non-canonical one and the top of user space */
static const __u64 bad_ptrs[] = {
	0, 0xffff888000000000ULL, 0xffffffff81000000ULL,
	0xfffffffffffff000ULL, 0x8000000000000000ULL, 0x00007ffffffff000ULL,
};

/* A user VA for the kernel to read or pin, never to write through. */
static __u64 pick_uva(struct fuzz *f)
{
	unsigned int r = below(100);
	char *base;
	size_t len;

	if (r < 55) {
		base = f->map_buf;
		len = MAP_BUF_LEN;
	} else if (r < 65) {
		base = f->small_buf;
		len = SMALL_LEN;
	} else if (r < 72) {
		base = f->shm_buf;
		len = SMALL_LEN;
	} else if (r < 77) {
		base = f->ro_buf;
		len = SMALL_LEN;
	} else if (r < 82) {
		base = f->none_buf;
		len = SMALL_LEN;
	} else if (r < 86) {
		base = f->hole;
		len = SMALL_LEN;
	} else if (r < 89) {
		base = f->scratch;
		len = SCRATCH_LEN;
	} else {
		return bad_ptrs[below(ARRAY_SIZE(bad_ptrs))] +
		       (chance(50) ? 0 : below(1 << 20));
	}
	return (uintptr_t)base + (below(len / pgsz) * pgsz) +
	       (chance(5) ? below(pgsz) : 0);
}

/* A buffer the kernel may write to: the sink, or a bad pointer. */
static __u64 pick_out_ptr(struct fuzz *f)
{
	unsigned int r = below(100);

	if (r < 75)
		return (uintptr_t)f->sink + below(SINK_LEN / 2);
	if (r < 80)
		return (uintptr_t)f->sink + SINK_LEN - below(64);
	if (r < 85)
		return (uintptr_t)f->none_buf;
	if (r < 90)
		return (uintptr_t)f->ro_buf;
	if (r < 93)
		return (uintptr_t)f->hole;
	return bad_ptrs[below(ARRAY_SIZE(bad_ptrs))];
}

static __u32 pick_fd_number(struct fuzz *f)
{
	unsigned int r = below(100);

	if (r < 80)
		return f->ifd[below(NR_IFD)];
	if (r < 85)
		return f->dfd[below(NR_DFD)];
	if (r < 90)
		return f->nullfd;
	if (r < 95)
		return -1;
	return rnd();
}

/* The size field of an extensible struct: mostly right */
struct sizing {
	__u32 size;
	bool poke;		/* a non-zero byte past the struct */
};

static struct sizing pick_size(size_t real)
{
	unsigned int r = below(100);
	struct sizing s = { .size = real };

	if (r < 86)
		return s;
	if (r < 90) {
		s.size = real + 8 * (1 + below(32));
	} else if (r < 93) {
		s.size = real + 8 * (1 + below(8));
		s.poke = true;
	} else if (r < 97) {
		s.size = below(real);
	} else if (r < 99) {
		s.size = real + pgsz * (1 + below(8));
	} else {
		s.size = rnd();
	}
	return s;
}

/*
 * Where the argument struct goes. Returns the pointer to pass, and tells
 * whether it is the plain scratch copy that the kernel answers into.
 */
enum placement { PL_SCRATCH, PL_STRADDLE, PL_RO, PL_BAD };

struct call {
	unsigned long req;
	int fd;
	void *arg;
	enum placement pl;
	size_t len;		/* bytes of the struct */
	size_t off;		/* of the struct in the scratch area */
	struct sizing sz;
};

static void *place(struct fuzz *f, struct call *c, const void *s)
{
	unsigned int r = below(100);
	size_t off, n;

	if (r < 90) {
		c->pl = PL_SCRATCH;
		off = below(8) * 8;
		c->off = off;
		memcpy(f->scratch + off, s, c->len);
		if (c->sz.poke && c->sz.size > c->len)
			f->scratch[off + c->len + below(c->sz.size - c->len)] = 1;
		return f->scratch + off;
	}
	if (r < 94) {
		/* The struct runs into the guard page after the scratch */
		c->pl = PL_STRADDLE;
		n = 1 + below(c->len);
		memcpy(f->scratch + SCRATCH_LEN - n, s, n);
		return f->scratch + SCRATCH_LEN - n;
	}
	if (r < 96) {
		/* Readable but not writable: the answer cannot be copied back */
		c->pl = PL_RO;
		memset(f->ro_page, 0, 512);
		memcpy(f->ro_page, s, c->len);
		if (mprotect(f->ro_page, pgsz, PROT_READ))
			return f->scratch;
		return f->ro_page;
	}
	c->pl = PL_BAD;
	switch (below(4)) {
	case 0:
		return f->none_buf + below(SMALL_LEN);
	case 1:
		return f->hole;
	default:
		return (void *)(uintptr_t)bad_ptrs[below(ARRAY_SIZE(bad_ptrs))];
	}
}

static int do_call(struct fuzz *f, struct call *c, enum op op)
{
	int ret, e;

	ret = ioctl(c->fd, c->req, c->arg) ? -errno : 0;
	f->calls++;
	f->per_op[op]++;
	e = -ret;
	if (!ret) {
		f->ok++;
		f->per_op_ok[op]++;
	} else if (e < (int)ARRAY_SIZE(f->per_errno)) {
		f->per_errno[e]++;
	}
	if (c->pl == PL_RO)
		mprotect(f->ro_page, pgsz, PROT_READ | PROT_WRITE);
	return ret;
}

/* Restore the scratch area to zeroes around what a call used */
static void scrub(struct fuzz *f)
{
	memset(f->scratch, 0, 1024);
	memset(f->scratch + SCRATCH_LEN - 512, 0, 512);
}

static bool answered(struct call *c)
{
	return c->pl == PL_SCRATCH && c->sz.size >= c->len && !c->sz.poke &&
	       c->off + c->sz.size <= SCRATCH_LEN;
}

/* Record a successful MAP or COPY */
static void remember_mapping(struct fuzz *f, int slot, __u32 ioas, __u64 iova,
			     __u64 len)
{
	struct mapping *m;

	if (f->nr_maps < NR_MAPPINGS)
		m = &f->maps[f->nr_maps++];
	else
		m = &f->maps[below(NR_MAPPINGS)];
	m->slot = slot;
	m->ioas = ioas;
	m->iova = iova;
	m->len = len;
	f->mapped += len;
}

/*
 * Aim at a mapping made earlier: its iommufd, IOAS and IOVA range, so that
 * GET_PA, UNMAP and COPY often find something. Returns NULL when the call
 * should stay random.
 */
static struct mapping *aim(struct fuzz *f, int *fd, int *slot)
{
	struct mapping *m;

	if (!f->nr_maps || !chance(60))
		return NULL;
	m = &f->maps[below(f->nr_maps)];
	if (m->slot < 0)
		return NULL;
	*slot = m->slot;
	*fd = f->ifd[m->slot];
	return m;
}

/*
 * Check GET_PA against the ABI: the ordered checks that need no state, and
 * the shape of a successful answer.
 */
static void check_get_pa(struct fuzz *f, struct call *c, int ifd_slot,
			 const struct iommu_ioas_noiommu_get_pa *in, int ret)
{
	const struct iommu_ioas_noiommu_get_pa *out = c->arg;
	int want = 0;

	if (ifd_slot < 0 || !answered(c))
		return;
	if (in->flags || in->__reserved)
		want = -EOPNOTSUPP;
	else if (!in->length)
		want = -EINVAL;
	else if (in->iova == ~0ULL)
		want = -EOVERFLOW;
	f->getpa_checked++;
	if (want && ret != want) {
		fail(f, "GET_PA flags %#x rsv %#x iova %#llx len %#llx: %d, want %d",
		     in->flags, in->__reserved, (unsigned long long)in->iova,
		     (unsigned long long)in->length, ret, want);
		return;
	}
	if (!want && ret && ret != -ENOENT && ret != -EOPNOTSUPP)
		fail(f, "GET_PA ioas %u iova %#llx: %d (%s)", in->ioas_id,
		     (unsigned long long)in->iova, ret, strerror(-ret));
	if (ret)
		return;
	f->getpa_ok++;
	/*
	 * The noiommu domain maps 4 KiB aligned IOVAs to 4 KiB aligned PAs
	 * whatever PAGE_SIZE is, so a PA keeps the offset of its IOVA in
	 * 4 KiB only: with 64 KiB pages, a page may be mapped at an IOVA that
	 * is only 4 KiB aligned.
	 */
	if (out->iova != in->iova || out->ioas_id != in->ioas_id ||
	    !out->length || out->length > in->length ||
	    (out->out_phys & (NOIOMMU_IOVA_ALIGN - 1)) !=
	    (in->iova & (NOIOMMU_IOVA_ALIGN - 1)) ||
	    out->iova + out->length - 1 < out->iova)
		fail(f, "GET_PA iova %#llx len %#llx: phys %#llx len %#llx",
		     (unsigned long long)in->iova,
		     (unsigned long long)in->length,
		     (unsigned long long)out->out_phys,
		     (unsigned long long)out->length);
}

static void fuzz_one(struct fuzz *f, enum op op)
{
	union {
		struct iommu_ioas_alloc alloc;
		struct iommu_ioas_map map;
		struct iommu_ioas_unmap unmap;
		struct iommu_ioas_copy copy;
		struct iommu_ioas_iova_ranges ranges;
		struct iommu_ioas_allow_iovas allow;
		struct iommu_destroy destroy;
		struct iommu_hwpt_alloc hwpt;
		struct iommu_hw_info info;
		struct iommu_ioas_noiommu_get_pa pa;
		struct iommu_option option;
		struct vfio_device_bind_iommufd bind;
		struct vfio_device_attach_iommufd_pt attach;
		struct vfio_device_detach_iommufd_pt detach;
		struct vfio_device_info dev_info;
		struct vfio_region_info region;
		struct vfio_irq_info irq;
		__u8 raw[64];
	} a;
	struct call c = { 0 };
	struct mapping *m;
	int slot = -1, ret;
	bool iommufd_op = op < OP_BIND;

	memset(&a, 0, sizeof(a));
	if (iommufd_op)
		c.fd = pick_ifd(f, &slot);
	else
		c.fd = pick_dfd(f, &slot);

	switch (op) {
	case OP_IOAS_ALLOC:
		c.req = IOMMU_IOAS_ALLOC;
		c.len = sizeof(a.alloc);
		a.alloc.flags = chance(90) ? 0 : rnd();
		break;
	case OP_IOAS_MAP:
		c.req = IOMMU_IOAS_MAP;
		c.len = sizeof(a.map);
		a.map.flags = IOMMU_IOAS_MAP_READABLE |
			      (chance(80) ? IOMMU_IOAS_MAP_WRITEABLE : 0) |
			      (chance(75) ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
		if (chance(5))
			a.map.flags = rnd() & (chance(50) ? 7 : ~0U);
		a.map.__reserved = chance(97) ? 0 : rnd();
		a.map.ioas_id = pick_id(f, slot, ID_IOAS);
		a.map.user_va = pick_uva(f);
		a.map.length = pick_len();
		a.map.iova = pick_iova(f);
		if (chance(30))		/* the IOAS the device works with */
			a.map.ioas_id = slot >= 0 && f->attached[slot] ?
					f->attached[slot] : a.map.ioas_id;
		break;
	case OP_IOAS_UNMAP:
		c.req = IOMMU_IOAS_UNMAP;
		c.len = sizeof(a.unmap);
		a.unmap.ioas_id = pick_id(f, slot, ID_IOAS);
		m = aim(f, &c.fd, &slot);
		if (m) {
			a.unmap.ioas_id = m->ioas;
			a.unmap.iova = m->iova;
			a.unmap.length = chance(80) ? m->len : pick_len();
		} else if (chance(10)) {
			a.unmap.iova = 0;	/* everything */
			a.unmap.length = ~0ULL;
		} else {
			a.unmap.iova = pick_iova(f);
			a.unmap.length = pick_len();
		}
		break;
	case OP_IOAS_COPY:
		c.req = IOMMU_IOAS_COPY;
		c.len = sizeof(a.copy);
		a.copy.flags = IOMMU_IOAS_MAP_READABLE |
			       (chance(80) ? IOMMU_IOAS_MAP_WRITEABLE : 0) |
			       (chance(70) ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
		if (chance(5))
			a.copy.flags = rnd();
		a.copy.dst_ioas_id = pick_id(f, slot, ID_IOAS);
		a.copy.src_ioas_id = pick_id(f, slot, ID_IOAS);
		a.copy.length = pick_len();
		a.copy.dst_iova = pick_iova(f);
		a.copy.src_iova = pick_iova(f);
		m = aim(f, &c.fd, &slot);
		if (m) {
			a.copy.src_ioas_id = m->ioas;
			a.copy.src_iova = m->iova;
			a.copy.length = chance(80) ? m->len : pick_len();
			a.copy.dst_ioas_id = chance(50) ? m->ioas :
					     pick_id(f, slot, ID_IOAS);
			a.copy.dst_iova = IOVA_BASE + below(4096) * pgsz;
		}
		break;
	case OP_IOVA_RANGES:
		c.req = IOMMU_IOAS_IOVA_RANGES;
		c.len = sizeof(a.ranges);
		a.ranges.ioas_id = pick_id(f, slot, ID_IOAS);
		a.ranges.num_iovas = chance(80) ? below(8) : rnd();
		a.ranges.__reserved = chance(97) ? 0 : 1;
		a.ranges.allowed_iovas = pick_out_ptr(f);
		break;
	case OP_ALLOW_IOVAS:
		c.req = IOMMU_IOAS_ALLOW_IOVAS;
		c.len = sizeof(a.allow);
		a.allow.ioas_id = pick_id(f, slot, ID_IOAS);
		a.allow.num_iovas = chance(30) ? 0 : below(8);
		if (chance(3))
			a.allow.num_iovas = rnd();
		a.allow.__reserved = chance(97) ? 0 : 1;
		/* Read by the kernel: pairs of random words in small_buf */
		a.allow.allowed_iovas = chance(85) ?
			(uintptr_t)f->small_buf + below(SMALL_LEN / 32) * 16 :
			pick_uva(f);
		break;
	case OP_DESTROY:
		c.req = IOMMU_DESTROY;
		c.len = sizeof(a.destroy);
		a.destroy.id = pick_id(f, slot, below(3));
		break;
	case OP_HWPT_ALLOC:
		c.req = IOMMU_HWPT_ALLOC;
		c.len = sizeof(a.hwpt);
		a.hwpt.flags = chance(85) ? 0 : 1U << below(4);
		a.hwpt.dev_id = pick_id(f, slot, ID_DEV);
		a.hwpt.pt_id = pick_id(f, slot, chance(80) ? ID_IOAS : ID_HWPT);
		a.hwpt.__reserved = chance(97) ? 0 : 1;
		if (chance(15)) {
			a.hwpt.data_type = below(4);
			a.hwpt.data_len = below(64);
			a.hwpt.data_uptr = pick_uva(f);
		}
		if (chance(5))
			a.hwpt.fault_id = pick_id(f, slot, ID_IOAS);
		break;
	case OP_HW_INFO:
		c.req = IOMMU_GET_HW_INFO;
		c.len = sizeof(a.info);
		a.info.flags = chance(90) ? 0 : rnd();
		a.info.dev_id = pick_id(f, slot, ID_DEV);
		a.info.data_len = below(256);
		a.info.data_uptr = pick_out_ptr(f);
		break;
	case OP_GET_PA:
		c.req = IOMMU_IOAS_NOIOMMU_GET_PA;
		c.len = sizeof(a.pa);
		a.pa.flags = chance(95) ? 0 : 1U << below(32);
		a.pa.__reserved = chance(97) ? 0 : rnd();
		a.pa.ioas_id = pick_id(f, slot, ID_IOAS);
		a.pa.iova = pick_iova(f) + (chance(20) ? below(pgsz) : 0);
		a.pa.length = chance(5) ? 0 : pick_len();
		m = aim(f, &c.fd, &slot);
		if (m) {
			a.pa.ioas_id = m->ioas;
			a.pa.iova = m->iova + below(m->len + pgsz);
		}
		a.pa.out_phys = rnd();
		break;
	case OP_OPTION:
		c.req = IOMMU_OPTION;
		c.len = sizeof(a.option);
		a.option.option_id = below(3);
		a.option.op = below(3);
		a.option.object_id = chance(50) ? 0 : pick_id(f, slot, ID_IOAS);
		/* RLIMIT_MODE 0 or 1, HUGE_PAGES 0 or 1 */
		a.option.val64 = chance(90) ? below(2) : rnd();
		break;
	case OP_UNUSED_NR:
		/* Command numbers 6.12 does not have: 0x8f-0x94, past 0x95 */
		c.req = _IO(IOMMUFD_TYPE, chance(60) ? 0x8f + below(6) :
						      0x96 + below(10));
		c.len = 32;
		memset(a.raw, 0, sizeof(a.raw));
		*(__u32 *)a.raw = 8 + below(24);
		break;
	case OP_BIND:
		c.req = VFIO_DEVICE_BIND_IOMMUFD;
		c.len = sizeof(a.bind);
		a.bind.flags = chance(95) ? 0 : rnd();
		a.bind.iommufd = pick_fd_number(f);
		break;
	case OP_ATTACH:
		c.req = VFIO_DEVICE_ATTACH_IOMMUFD_PT;
		c.len = sizeof(a.attach);
		a.attach.flags = chance(95) ? 0 : rnd();
		a.attach.pt_id = pick_id(f, f->bound[slot < 0 ? 0 : slot],
					 chance(75) ? ID_IOAS : ID_HWPT);
		break;
	case OP_DETACH:
		c.req = VFIO_DEVICE_DETACH_IOMMUFD_PT;
		c.len = sizeof(a.detach);
		a.detach.flags = chance(95) ? 0 : rnd();
		break;
	case OP_GET_INFO:
		c.req = VFIO_DEVICE_GET_INFO;
		c.len = sizeof(a.dev_info);
		break;
	case OP_REGION_INFO:
		c.req = VFIO_DEVICE_GET_REGION_INFO;
		c.len = sizeof(a.region);
		a.region.index = chance(90) ? below(10) : rnd();
		break;
	case OP_IRQ_INFO:
		c.req = VFIO_DEVICE_GET_IRQ_INFO;
		c.len = sizeof(a.irq);
		a.irq.index = chance(90) ? below(6) : rnd();
		break;
	default:
		return;
	}

	/* The size field leads every struct: "size" or "argsz" */
	c.sz = pick_size(c.len);
	if (op != OP_UNUSED_NR)
		*(__u32 *)&a = c.sz.size;
	c.arg = place(f, &c, &a);
	ret = do_call(f, &c, op);

	if (ret && -ret < 256) {
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(known_errnos); i++)
			if (known_errnos[i] == -ret)
				break;
		if (i == ARRAY_SIZE(known_errnos))
			fail(f, "%s: unexpected errno %d (%s)", op_names[op],
			     -ret, strerror(-ret));
	} else if (ret) {
		fail(f, "%s: strange return %d", op_names[op], ret);
	}

	/* Learn from answers in the scratch copy */
	if (!ret && c.pl == PL_SCRATCH) {
		const void *out = c.arg;

		switch (op) {
		case OP_IOAS_ALLOC:
			remember_id(f, slot,
				    ((struct iommu_ioas_alloc *)out)->out_ioas_id,
				    ID_IOAS);
			break;
		case OP_HWPT_ALLOC:
			remember_id(f, slot,
				    ((struct iommu_hwpt_alloc *)out)->out_hwpt_id,
				    ID_HWPT);
			break;
		case OP_IOAS_MAP:
			remember_mapping(f, slot, a.map.ioas_id,
					 ((struct iommu_ioas_map *)out)->iova,
					 a.map.length);
			break;
		case OP_IOAS_COPY:
			remember_mapping(f, slot, a.copy.dst_ioas_id,
					 ((struct iommu_ioas_copy *)out)->dst_iova,
					 a.copy.length);
			break;
		case OP_BIND:
			if (slot >= 0) {
				int i;

				for (i = 0; i < NR_IFD; i++)
					if (f->ifd[i] == a.bind.iommufd)
						break;
				f->bound[slot] = i < NR_IFD ? i : -1;
				remember_id(f, f->bound[slot],
					    ((struct vfio_device_bind_iommufd *)out)->out_devid,
					    ID_DEV);
			}
			break;
		case OP_ATTACH:
			if (slot >= 0 && f->bound[slot] >= 0) {
				const struct vfio_device_attach_iommufd_pt *at = out;

				/* An IOAS comes back as the HWPT made for it */
				if (at->pt_id != a.attach.pt_id) {
					f->attached[f->bound[slot]] = a.attach.pt_id;
					remember_id(f, f->bound[slot], at->pt_id,
						    ID_HWPT);
				}
			}
			break;
		default:
			break;
		}
	}
	if (op == OP_GET_PA && iommufd_op)
		check_get_pa(f, &c, slot, &a.pa, ret);
	if (op == OP_UNUSED_NR && slot >= 0 && c.pl == PL_SCRATCH) {
		f->enotty_checked++;
		if (ret != -ENOTTY)
			fail(f, "unused command %#lx: %d, want ENOTTY",
			     _IOC_NR(c.req), ret);
	}
	scrub(f);
}

/* Unmap everything in every IOAS we know, to bound what stays pinned */
static void cleanup_mappings(struct fuzz *f)
{
	unsigned int s, i;

	for (s = 0; s < NR_IFD; s++) {
		for (i = 0; i < f->nr_ids[s]; i++) {
			if (f->ids[s][i].kind != ID_IOAS)
				continue;
			iommufd_ioas_unmap(f->ifd[s], f->ids[s][i].id, 0, ~0ULL);
			f->cleanup_calls++;
		}
	}
	f->mapped = 0;
	f->nr_maps = 0;
	f->cleanups++;
}

static void forget_mappings(struct fuzz *f, int s)
{
	unsigned int i;

	for (i = 0; i < f->nr_maps; i++)
		if (f->maps[i].slot == s)
			f->maps[i].slot = -1;
}

static int open_ifd(struct fuzz *f, int s)
{
	__u32 ioas;

	f->ifd[s] = iommufd_open();
	if (f->ifd[s] < 0)
		return f->ifd[s];
	f->nr_ids[s] = 0;
	f->attached[s] = 0;
	forget_mappings(f, s);
	if (!iommufd_ioas_alloc(f->ifd[s], &ioas))
		remember_id(f, s, ioas, ID_IOAS);
	return 0;
}

/* Open the cdev in slot @d, bind it to iommufd @s if @s >= 0 */
static int open_dfd(struct fuzz *f, int d, int s)
{
	__u32 devid;

	f->bound[d] = -1;
	f->dfd[d] = vfio_cdev_open(f->cdev);
	if (f->dfd[d] < 0)
		return f->dfd[d];
	if (s < 0)
		return 0;
	if (!vfio_device_bind(f->dfd[d], f->ifd[s], &devid)) {
		f->bound[d] = s;
		remember_id(f, s, devid, ID_DEV);
	}
	return 0;
}

/* Close one fd and open it again, the device bound again when it was */
static int reopen_one(struct fuzz *f)
{
	unsigned int which = below(NR_IFD + NR_DFD);
	int d, ret;

	f->reopens++;
	if (which < NR_IFD) {
		close(f->ifd[which]);
		ret = open_ifd(f, which);
		if (ret)
			return ret;
		/* A device bound to the old context moves to the new one */
		for (d = 0; d < NR_DFD; d++) {
			if (f->bound[d] != (int)which || chance(30))
				continue;
			close(f->dfd[d]);
			ret = open_dfd(f, d, which);
			if (ret)
				return ret;
		}
		return 0;
	}
	d = which - NR_IFD;
	close(f->dfd[d]);
	return open_dfd(f, d, chance(80) ? (int)below(NR_IFD) : -1);
}

static void close_all(struct fuzz *f)
{
	int i;

	for (i = 0; i < NR_DFD; i++)
		close(f->dfd[i]);
	for (i = 0; i < NR_IFD; i++)
		close(f->ifd[i]);
	close(f->nullfd);
}

static enum op pick_op(void)
{
	unsigned int total = 0, r, i;

	for (i = 0; i < NR_OPS; i++)
		total += op_weight[i];
	r = below(total);
	for (i = 0; i < NR_OPS; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_GET_PA;
}

static void print_stats(struct fuzz *f, double secs)
{
	char buf[1024];
	size_t n = 0;
	unsigned int i;

	ksft_print_msg("fuzz: seed %lu: %lu calls (%lu succeeded) in %.1f s, %.1f us/call\n",
		       opt_seed, f->calls, f->ok, secs,
		       secs * 1e6 / (f->calls ?: 1));
	ksft_print_msg("fuzz: %lu fd reopens, %lu clean-ups (%lu unmap calls)\n",
		       f->reopens, f->cleanups, f->cleanup_calls);
	ksft_print_msg("fuzz: GET_PA: %lu answers checked, %lu translations; ENOTTY checked %lu times\n",
		       f->getpa_checked, f->getpa_ok, f->enotty_checked);
	for (i = 0; i < NR_OPS; i++)
		n += snprintf(buf + n, sizeof(buf) - n, " %s %lu/%lu",
			      op_names[i], f->per_op_ok[i], f->per_op[i]);
	ksft_print_msg("fuzz: ok/calls:%s\n", buf);
	n = 0;
	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(f->per_errno); i++)
		if (f->per_errno[i])
			n += snprintf(buf + n, sizeof(buf) - n, " %s %lu",
				      strerrorname_np(i) ?: "?",
				      f->per_errno[i]);
	ksft_print_msg("fuzz: errnos:%s\n", buf);
}

/*
 * For break=leak: bind, attach and map a page, and keep the device fd (which
 * holds the iommufd context) open: the checks must catch it.
 */
static int leak_a_pin(const char *cdev)
{
	int dfd = vfio_cdev_open(cdev), ifd = iommufd_open();
	__u32 ioas = 0;

	vfio_device_bind(dfd, ifd, NULL);
	iommufd_ioas_alloc(ifd, &ioas);
	vfio_device_attach(dfd, ioas, NULL);
	iommufd_ioas_map(ifd, ioas, anon_buf_alloc(pgsz, 0), pgsz, IOVA_BASE);
	close(ifd);
	return dfd;
}

TEST(fuzz_ioctls)
{
	long vmpin_start, pins_start, vmpin, pins;
	const char *step = "";
	struct noiommu_dev dev;
	char reason[256];
	struct fuzz *f;
	double start, secs;
	int i, ret, leak = -1;

	if (noiommu_probe(NULL, &dev, reason, sizeof(reason)))
		SKIP(return, "%s", reason);
	f = calloc(1, sizeof(*f));
	ASSERT_NE(NULL, f);
	f->cdev = dev.name;
	rng = opt_seed ?: 1;
	ksft_print_msg("fuzz: seed %lu (rerun: robust_fuzz seed=%lu), device %s, "
		       VFIO_CDEV_DIR "/%s\n", opt_seed, opt_seed, dev.bdf,
		       dev.name);

	vmpin_start = proc_vmpin_kb();
	pins_start = vmstat_foll_pins();
	ASSERT_LE(0, vmpin_start);
	ASSERT_NE(LONG_MIN, pins_start);
	ASSERT_EQ(0, setup_memory(f));

	f->nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, f->nullfd);
	for (i = 0; i < NR_IFD; i++)
		ASSERT_EQ(0, open_ifd(f, i));
	ASSERT_EQ(0, open_dfd(f, 0, 0));
	ASSERT_LE(0, f->bound[0]);
	ASSERT_EQ(0, open_dfd(f, 1, -1));

	start = monotonic_s();
	while (f->calls < opt_calls && monotonic_s() - start < opt_secs) {
		for (i = 0; i < 256; i++) {
			fuzz_one(f, pick_op());
			if (!below(2000))
				ASSERT_EQ(0, reopen_one(f));
			if (f->mapped > MAP_BUDGET || !below(1000))
				cleanup_mappings(f);
		}
	}
	secs = monotonic_s() - start;
	print_stats(f, secs);

	/* Everything closed: nothing may stay pinned */
	close_all(f);
	if (opt_break_leak)
		leak = leak_a_pin(f->cdev);
	vmpin = proc_vmpin_wait_kb(vmpin_start);
	pins = vmstat_foll_pins_wait(pins_start);
	ksft_print_msg("fuzz: after close: VmPin %ld kB (start %ld), FOLL_PIN pages %ld (start %ld)\n",
		       vmpin, vmpin_start, pins, pins_start);
	if (leak >= 0)
		close(leak);

	EXPECT_STREQ("", f->failure);
	EXPECT_LE(MIN_CALLS, f->calls);
	EXPECT_EQ(vmpin_start, vmpin);
	EXPECT_EQ(pins_start, pins);

	/* The device still goes through the whole flow, and unpins after */
	ret = noiommu_device_flow(f->cdev, &step);
	EXPECT_EQ(0, ret) TH_LOG("device flow after fuzzing: %s: %s", step,
				 strerror(-ret));
	EXPECT_EQ(vmpin_start, proc_vmpin_wait_kb(vmpin_start));
	EXPECT_EQ(pins_start, vmstat_foll_pins_wait(pins_start));
	free(f);
}

int main(int argc, char **argv)
{
	char *harness_argv[argc + 1];
	int i, harness_argc = 1;

	pgsz = sysconf(_SC_PAGESIZE);
	opt_seed = time(NULL) ^ getpid();
	harness_argv[0] = argv[0];
	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "seed=", 5))
			opt_seed = strtoul(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "calls=", 6))
			opt_calls = strtoul(argv[i] + 6, NULL, 0);
		else if (!strncmp(argv[i], "secs=", 5))
			opt_secs = strtoul(argv[i] + 5, NULL, 0);
		else if (!strcmp(argv[i], "break=leak"))
			opt_break_leak = true;
		else
			harness_argv[harness_argc++] = argv[i];
	}
	harness_argv[harness_argc] = NULL;
	if (noiommu_break_leak())
		opt_break_leak = true;
	/*
	 * The test runs in a child that ends with _exit(): flush every message
	 * line at once, or what it prints is lost when stdout is a pipe.
	 */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Only the harness's own options (-l, -t NAME, ...) go on to it */
	return test_harness_run(harness_argc, harness_argv);
}
