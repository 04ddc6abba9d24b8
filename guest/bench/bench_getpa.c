// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_getpa: what IOMMU_IOAS_NOIOMMU_GET_PA costs against /proc/self/pagemap.
 *
 * A userspace driver for a device without an IOMMU needs the physical
 * addresses of its DMA buffers. Before the VFIO cdev no-IOMMU mode it read
 * them from /proc/self/pagemap (CAP_SYS_ADMIN, one entry per page) and
 * kept them resident with mlock(). With it, IOMMU_IOAS_MAP pins the buffer
 * and IOMMU_IOAS_NOIOMMU_GET_PA answers one physically contiguous run per
 * call. This program measures, in one boot, with the edu device bound to
 * vfio-pci and attached to the IOAS:
 *
 *   1. PA lookup of a touched buffer that is mapped in the IOAS, per page
 *      (4 KiB, or 64 KiB on some arm64 kernels): (a) GET_PA per page,
 *      (b) GET_PA walking the contiguous runs, (c) pagemap with one 8-byte
 *      pread per page, (d) pagemap with one bulk pread, (e) for huge pages,
 *      one 8-byte pread per 2 MiB page; for small pages, THP and 2 MiB
 *      hugetlbfs buffers. Every method's answer is checked against the
 *      others before anything is timed.
 *   2. IOAS_MAP + GET_PA walk + IOAS_UNMAP against mlock + bulk pagemap
 *      read + munlock, for 64 MiB and 1 GiB; and the teardown: IOAS_UNMAP,
 *      detach of the device and close() of its fds, each after an
 *      IOAS_MAP of the buffer, as a ratio to that map.
 *   3. Parts 1 and 2 again for small pages scattered on purpose, so that no
 *      two pages are physically adjacent (the worst case for GET_PA runs).
 *   4. The latency floor of one GET_PA call, with a failing ioctl, an 8-byte
 *      pagemap pread and a trivial syscall beside it.
 *
 * Every figure is the median of several runs (5; 1 with --short).
 *
 * Usage: bench_getpa [--short]
 *   --short   4 MiB buffers, one run, no 1 GiB case: a few seconds, for CI.
 *
 * Ends with "ok - bench_getpa", or prints "not ok - bench_getpa" and exits
 * non-zero on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "vfio_noiommu_lib.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB	(21 << MAP_HUGE_SHIFT)
#endif

#define HPG		(2ULL << 20)
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define IOVA_BASE	(1ULL << 40)	/* only a lookup key in no-IOMMU mode */

#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_PRESENT	(1ULL << 63)

/* The 2 MiB pool: the default huge page size is 512 MiB with 64 KiB pages */
#define NR_HUGE		"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

/* The page size in bytes and in KiB: pagemap has an entry per page */
static uint64_t pg, pg_kib;

/* ------------------------------------------------------------------ */
/* Errors and time                                                     */

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void restore_hugepages(void);

static void fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	printf("bench_getpa: error: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nnot ok - bench_getpa\n");
	fflush(stdout);
	restore_hugepages();
	exit(1);
}

#define FAIL_ERRNO(what, ...) \
	fail(what ": %s", ##__VA_ARGS__, strerror(errno))

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		FAIL_ERRNO("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median of @n samples (sorts them in place). */
static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p)
		fail("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

/* ------------------------------------------------------------------ */
/* hugetlb pool                                                        */

static int huge_touched;

static long hugepages_set(long n)
{
	char buf[32];
	int ret;

	if (access(NR_HUGE, F_OK)) {
		printf("# hugetlb: no 2 MiB huge pages on this kernel (no %s)\n",
		       NR_HUGE);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%ld", n);
	ret = write_text(NR_HUGE, buf);
	if (ret)
		fail("write %s to %s: %s", buf, NR_HUGE, strerror(-ret));
	huge_touched = 1;
	ret = read_text(NR_HUGE, buf, sizeof(buf));
	if (ret)
		fail("read %s: %s", NR_HUGE, strerror(-ret));
	return strtol(buf, NULL, 10);
}

static void restore_hugepages(void)
{
	if (huge_touched)
		write_text(NR_HUGE, "0");
}

/* ------------------------------------------------------------------ */
/* Device, iommufd, IOAS                                               */

static struct {
	int iommufd;
	int devfd;
	__u32 ioas;
	int pagemap;
	struct noiommu_dev dev;		/* bdf, and name of the cdev */
} g = { -1, -1, 0, -1 };

/* The edu device's no-IOMMU cdev, bound and attached to a fresh IOAS */
static void setup_device(void)
{
	char reason[256];
	int ret;

	if (noiommu_probe(NULL, &g.dev, reason, sizeof(reason)))
		fail("%s", reason);
	g.devfd = vfio_cdev_open(g.dev.name);
	if (g.devfd < 0)
		fail("open " VFIO_CDEV_DIR "/%s: %s", g.dev.name,
		     strerror(-g.devfd));
	g.iommufd = iommufd_open();
	if (g.iommufd < 0)
		fail("open /dev/iommu: %s", strerror(-g.iommufd));
	ret = vfio_device_bind(g.devfd, g.iommufd, NULL);
	if (ret)
		fail("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(-ret));
	ret = iommufd_ioas_alloc(g.iommufd, &g.ioas);
	if (ret)
		fail("IOMMU_IOAS_ALLOC: %s", strerror(-ret));
	ret = vfio_device_attach(g.devfd, g.ioas, NULL);
	if (ret)
		fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(-ret));

	g.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (g.pagemap < 0)
		FAIL_ERRNO("open /proc/self/pagemap");
}

/*
 * IOAS_MAP, IOAS_UNMAP and GET_PA are timed: the library's calls for them
 * build the ioctl struct on the stack and do nothing but the ioctl.
 */
static void ioas_map(void *va, uint64_t len)
{
	int ret = iommufd_ioas_map(g.iommufd, g.ioas, va, len, IOVA_BASE);

	if (ret)
		fail("IOMMU_IOAS_MAP of %llu bytes: %s", (unsigned long long)len,
		     strerror(-ret));
}

static void ioas_unmap(uint64_t len)
{
	__u64 done = len;
	int ret = iommufd_ioas_unmap_len(g.iommufd, g.ioas, IOVA_BASE, &done);

	if (ret)
		fail("IOMMU_IOAS_UNMAP of %llu bytes: %s",
		     (unsigned long long)len, strerror(-ret));
	if (done != len)
		fail("IOMMU_IOAS_UNMAP unmapped %llu bytes, not %llu",
		     (unsigned long long)done, (unsigned long long)len);
}

/* ------------------------------------------------------------------ */
/* Buffers                                                             */

enum kind { K_4K, K_4K_SCATTER, K_THP, K_HUGETLB };

/* "4K" and "4K-scat" with 4 KiB pages: named after the page size in main() */
static char small_name[32], scat_name[32];

static const char *const kind_name[] = {
	[K_4K] = small_name,
	[K_4K_SCATTER] = scat_name,
	[K_THP] = "THP",
	[K_HUGETLB] = "hugetlb",
};

struct buf {
	enum kind kind;
	char *va;		/* 2 MiB aligned except for small-page kinds */
	uint64_t len;
	void *map;		/* what mmap returned, and its length */
	size_t map_len;
	void *scratch;		/* K_4K_SCATTER: the other half, freed last */
	size_t npages;		/* pages of pg bytes */
};

static void touch(char *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += pg)
		((volatile char *)p)[off] = 1;
}

static void *anon_map(size_t len, int extra_flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);

	if (p == MAP_FAILED)
		FAIL_ERRNO("mmap of %zu bytes", len);
	return p;
}

static void buf_alloc(struct buf *b, enum kind kind, uint64_t len)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->len = len;
	b->npages = len / pg;

	switch (kind) {
	case K_4K:
		b->map_len = len;
		b->map = anon_map(len, 0);
		b->va = b->map;
		if (madvise(b->va, len, MADV_NOHUGEPAGE))
			FAIL_ERRNO("madvise(MADV_NOHUGEPAGE)");
		touch(b->va, len);
		break;
	case K_4K_SCATTER: {
		/*
		 * Fault this buffer and a scratch one in turn, page by page:
		 * the buffer gets every other page the allocator hands out,
		 * so no two of its pages are physically adjacent, as on a
		 * long-running machine. The scratch buffer is kept until the
		 * buffer is freed, so that the halves merge back in the buddy
		 * allocator and the next tests do not inherit the scattering.
		 */
		char *scratch = anon_map(len, 0);

		b->scratch = scratch;

		b->map_len = len;
		b->map = anon_map(len, 0);
		b->va = b->map;
		if (madvise(b->va, len, MADV_NOHUGEPAGE) ||
		    madvise(scratch, len, MADV_NOHUGEPAGE))
			FAIL_ERRNO("madvise(MADV_NOHUGEPAGE)");
		for (uint64_t off = 0; off < len; off += pg) {
			((volatile char *)b->va)[off] = 1;
			((volatile char *)scratch)[off] = 1;
		}
		break;
	}
	case K_THP:
		b->map_len = len + HPG;
		b->map = anon_map(b->map_len, 0);
		b->va = (char *)(((uintptr_t)b->map + HPG - 1) & ~(HPG - 1));
		if (madvise(b->va, len, MADV_HUGEPAGE))
			FAIL_ERRNO("madvise(MADV_HUGEPAGE)");
		touch(b->va, len);
		break;
	case K_HUGETLB:
		b->map_len = len;
		b->map = anon_map(len, MAP_HUGETLB | MAP_HUGE_2MB);
		b->va = b->map;
		touch(b->va, len);
		break;
	}
}

static void buf_free(struct buf *b)
{
	if (b->map && munmap(b->map, b->map_len))
		FAIL_ERRNO("munmap");
	if (b->scratch && munmap(b->scratch, b->len))
		FAIL_ERRNO("munmap");
	b->map = NULL;
	b->scratch = NULL;
}

/* How much of the buffer is backed by huge pages, in bytes. */
static uint64_t buf_huge_bytes(const struct buf *b)
{
	long kb;

	if (b->kind == K_HUGETLB)
		return b->len;
	kb = smaps_anon_huge_kb(b->va);
	return kb < 0 ? 0 : (uint64_t)kb * 1024;
}

/* ------------------------------------------------------------------ */
/* The lookup methods. Each returns its elapsed ns.                    */

struct run {
	uint64_t off;		/* from the start of the buffer */
	uint64_t pa;
	uint64_t len;
};

/* (a) GET_PA per page: @pa[i] = PA of page i */
static uint64_t lk_getpa_page(const struct buf *b, __u64 *pa)
{
	uint64_t t0 = now_ns();
	__u64 len;
	int ret;

	for (size_t i = 0; i < b->npages; i++) {
		len = pg;
		ret = iommufd_get_pa(g.iommufd, g.ioas, IOVA_BASE + i * pg,
				     &len, &pa[i]);
		if (ret)
			fail("GET_PA of page %zu: %s", i, strerror(-ret));
		if (len != pg)
			fail("GET_PA of page %zu: length %llu, not %llu", i,
			     (unsigned long long)len, (unsigned long long)pg);
	}
	return now_ns() - t0;
}

/* (b) GET_PA per contiguous run: fills @runs, returns the call count */
static uint64_t lk_getpa_runs(const struct buf *b, struct run *runs,
			      size_t max_runs, size_t *calls)
{
	uint64_t t0 = now_ns(), off = 0;
	__u64 len, pa = 0;
	size_t n = 0;
	int ret;

	while (off < b->len) {
		len = b->len - off;
		ret = iommufd_get_pa(g.iommufd, g.ioas, IOVA_BASE + off, &len,
				     &pa);
		if (ret)
			fail("GET_PA at offset %llu: %s", (unsigned long long)off,
			     strerror(-ret));
		if (!len || len > b->len - off || n == max_runs)
			fail("GET_PA at offset %llu: bad length %llu",
			     (unsigned long long)off, (unsigned long long)len);
		runs[n].off = off;
		runs[n].pa = pa;
		runs[n].len = len;
		n++;
		off += len;
	}
	*calls = n;
	return now_ns() - t0;
}

static uint64_t pm_entry_pa(uint64_t e, size_t i)
{
	if (!(e & PM_PRESENT) || !(e & PM_PFN_MASK))
		fail("pagemap entry of page %zu is 0x%llx: not present or no "
		     "PFN (not root?)", i, (unsigned long long)e);
	return (e & PM_PFN_MASK) * pg;
}

/* (c) pagemap, one 8-byte pread per page (DPDK/ixy style) */
static uint64_t lk_pagemap_page(const struct buf *b, uint64_t *pa)
{
	uint64_t t0 = now_ns(), e;
	off_t base = ((uintptr_t)b->va / pg) * 8;

	for (size_t i = 0; i < b->npages; i++) {
		if (pread(g.pagemap, &e, 8, base + i * 8) != 8)
			FAIL_ERRNO("pread of pagemap entry %zu", i);
		pa[i] = pm_entry_pa(e, i);
	}
	return now_ns() - t0;
}

/* (c2) pagemap, one 8-byte pread per 2 MiB page (DPDK with hugepages) */
static uint64_t lk_pagemap_huge(const struct buf *b, uint64_t *pa)
{
	uint64_t t0 = now_ns(), e;
	off_t base = ((uintptr_t)b->va / pg) * 8;
	size_t step = HPG / pg;

	for (size_t i = 0; i < b->npages; i += step) {
		if (pread(g.pagemap, &e, 8, base + i * 8) != 8)
			FAIL_ERRNO("pread of pagemap entry %zu", i);
		pa[i / step] = pm_entry_pa(e, i);
	}
	return now_ns() - t0;
}

/* (d) pagemap, all entries in one pread, then the PA of every page */
static uint64_t lk_pagemap_bulk(const struct buf *b, uint64_t *ent, uint64_t *pa)
{
	uint64_t t0 = now_ns();
	size_t want = b->npages * 8;
	ssize_t n;

	n = pread(g.pagemap, ent, want, ((uintptr_t)b->va / pg) * 8);
	if (n != (ssize_t)want)
		FAIL_ERRNO("bulk pread of %zu pagemap bytes (got %zd)", want, n);
	for (size_t i = 0; i < b->npages; i++)
		pa[i] = pm_entry_pa(ent[i], i);
	return now_ns() - t0;
}

/* Contiguous runs in a per-page PA array. */
static size_t count_runs(const uint64_t *pa, size_t n, uint64_t *min_run)
{
	size_t runs = 1, start = 0;

	*min_run = UINT64_MAX;
	for (size_t i = 1; i <= n; i++) {
		if (i < n && pa[i] == pa[i - 1] + pg)
			continue;
		if ((i - start) * pg < *min_run)
			*min_run = (i - start) * pg;
		if (i < n)
			runs++;
		start = i;
	}
	return runs;
}

/* ------------------------------------------------------------------ */
/* Parts 1 and 3: PA lookup per page                                 */

static int nruns = 5;
static int short_mode;

static double ns_per(uint64_t ns, uint64_t n)
{
	return (double)ns / (double)n;
}

static void print_lookup_header(void)
{
	printf("%-8s %-12s %-34s %10s %8s %8s %9s %10s\n", "part", "buffer",
	       "method", "ns/page", "calls", "runs", "calls/run", "calls/2MiB");
}

static void lookup_bench(enum kind kind, uint64_t len)
{
	struct buf b;
	__u64 *pa_a;
	uint64_t *pa_c, *pa_d, *ent, *pa_h, min_run;
	uint64_t *ta, *tb, *tc, *td, *th;
	uint64_t ma, mb, mc, md, mh = 0, huge;
	size_t calls, truth, nhuge;
	struct run *runs;
	char label[32], per2m[32], method[64];
	int has_huge;

	buf_alloc(&b, kind, len);
	huge = buf_huge_bytes(&b);
	has_huge = kind == K_THP || kind == K_HUGETLB;
	nhuge = len / HPG;

	pa_a = xcalloc(b.npages, 8);
	pa_c = xcalloc(b.npages, 8);
	pa_d = xcalloc(b.npages, 8);
	ent = xcalloc(b.npages, 8);
	pa_h = xcalloc(nhuge ? nhuge : 1, 8);
	runs = xcalloc(b.npages, sizeof(*runs));
	ta = xcalloc(nruns, 8);
	tb = xcalloc(nruns, 8);
	tc = xcalloc(nruns, 8);
	td = xcalloc(nruns, 8);
	th = xcalloc(nruns, 8);

	ioas_map(b.va, len);

	/* Every method must give the same answer before any is timed. */
	lk_getpa_page(&b, pa_a);
	lk_getpa_runs(&b, runs, b.npages, &calls);
	lk_pagemap_page(&b, pa_c);
	lk_pagemap_bulk(&b, ent, pa_d);
	for (size_t i = 0; i < b.npages; i++)
		if (pa_a[i] != pa_d[i] || pa_c[i] != pa_d[i])
			fail("%s page %zu: GET_PA 0x%llx, pagemap 0x%llx / 0x%llx",
			     kind_name[kind], i, (unsigned long long)pa_a[i],
			     (unsigned long long)pa_c[i], (unsigned long long)pa_d[i]);
	for (size_t r = 0; r < calls; r++)
		for (uint64_t o = 0; o < runs[r].len; o += pg) {
			size_t i = (runs[r].off + o) / pg;

			if (runs[r].pa + o != pa_d[i])
				fail("%s run %zu: page %zu at PA 0x%llx, pagemap "
				     "says 0x%llx", kind_name[kind], r, i,
				     (unsigned long long)(runs[r].pa + o),
				     (unsigned long long)pa_d[i]);
		}
	truth = count_runs(pa_d, b.npages, &min_run);
	if (calls < truth)
		fail("%s: %zu GET_PA calls for %zu contiguous runs",
		     kind_name[kind], calls, truth);
	if (has_huge) {
		lk_pagemap_huge(&b, pa_h);
		for (size_t i = 0; i < nhuge; i++)
			if (pa_h[i] != pa_d[i * (HPG / pg)])
				fail("%s: per-2MiB pagemap disagrees", kind_name[kind]);
	}

	for (int r = 0; r < nruns; r++) {
		ta[r] = lk_getpa_page(&b, pa_a);
		tb[r] = lk_getpa_runs(&b, runs, b.npages, &calls);
		tc[r] = lk_pagemap_page(&b, pa_c);
		td[r] = lk_pagemap_bulk(&b, ent, pa_d);
		if (has_huge)
			th[r] = lk_pagemap_huge(&b, pa_h);
	}
	ioas_unmap(len);

	ma = median(ta, nruns);
	mb = median(tb, nruns);
	mc = median(tc, nruns);
	md = median(td, nruns);
	if (has_huge)
		mh = median(th, nruns);

	snprintf(label, sizeof(label), "%s/%lluM", kind_name[kind],
		 (unsigned long long)(len / MiB));
	printf("# %s: %zu pages, %zu contiguous runs (shortest %llu KiB, "
	       "mean %.0f KiB), %llu MiB in huge pages\n", label, b.npages,
	       truth, (unsigned long long)(min_run / 1024),
	       (double)len / truth / 1024, (unsigned long long)(huge / MiB));
	printf("%-8s %-12s %-34s %10.1f %8zu %8s %9s %10s\n", "lookup", label,
	       "(a) GET_PA per page", ns_per(ma, b.npages), b.npages, "-", "-", "-");
	if (has_huge)
		snprintf(per2m, sizeof(per2m), "%.3f", (double)calls / nhuge);
	else
		snprintf(per2m, sizeof(per2m), "-");
	printf("%-8s %-12s %-34s %10.2f %8zu %8zu %9.3f %10s\n", "lookup", label,
	       "(b) GET_PA per contiguous run", ns_per(mb, b.npages), calls,
	       truth, (double)calls / truth, per2m);
	snprintf(method, sizeof(method), "(c) pagemap pread per %lluK page",
		 (unsigned long long)pg_kib);
	printf("%-8s %-12s %-34s %10.1f %8zu %8s %9s %10s\n", "lookup", label,
	       method, ns_per(mc, b.npages), b.npages, "-", "-", "-");
	printf("%-8s %-12s %-34s %10.2f %8d %8s %9s %10s\n", "lookup", label,
	       "(d) pagemap one bulk pread", ns_per(md, b.npages), 1, "-", "-", "-");
	if (has_huge)
		printf("%-8s %-12s %-34s %10.2f %8zu %8s %9s %10s\n", "lookup",
		       label, "(e) pagemap pread per 2M page", ns_per(mh, b.npages),
		       nhuge, "-", "-", "-");
	printf("%-8s %-12s %-34s %10.1f\n", "ratio", label, "(c)/(b) per page",
	       (double)mc / mb);
	printf("%-8s %-12s %-34s %10.2f\n", "ratio", label, "(c)/(a) per page",
	       (double)mc / ma);
	printf("%-8s %-12s %-34s %10.2f\n", "ratio", label, "(d)/(b) per page",
	       (double)md / mb);
	if (has_huge)
		printf("%-8s %-12s %-34s %10.2f\n", "ratio", label,
		       "(e)/(b) per page", (double)mh / mb);
	fflush(stdout);

	free(pa_a); free(pa_c); free(pa_d); free(ent); free(pa_h); free(runs);
	free(ta); free(tb); free(tc); free(td); free(th);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Part 2: map + walk against mlock + bulk pagemap                     */

static void print_map_header(void)
{
	printf("%-8s %-14s %8s %8s %8s %8s %8s %8s %8s %8s %8s %7s\n",
	       "part", "buffer", "map", "walk", "unmap", "mlock", "pagemap",
	       "munlock", "GB/s-io", "GB/s-pm", "calls", "ratio");
}

static void map_bench(enum kind kind, uint64_t len)
{
	uint64_t *tm, *tw, *tu, *tl, *tp, *tn, *ent, *pa;
	uint64_t mm, mw, mu, ml, mp, mn, huge;
	size_t calls = 0;
	struct run *runs;
	struct buf b;
	char label[32];

	buf_alloc(&b, kind, len);
	huge = buf_huge_bytes(&b);
	runs = xcalloc(b.npages, sizeof(*runs));
	ent = xcalloc(b.npages, 8);
	pa = xcalloc(b.npages, 8);
	tm = xcalloc(nruns, 8);
	tw = xcalloc(nruns, 8);
	tu = xcalloc(nruns, 8);
	tl = xcalloc(nruns, 8);
	tp = xcalloc(nruns, 8);
	tn = xcalloc(nruns, 8);

	for (int r = 0; r < nruns; r++) {
		uint64_t t0, t1;

		t0 = now_ns();
		ioas_map(b.va, len);
		t1 = now_ns();
		tm[r] = t1 - t0;
		tw[r] = lk_getpa_runs(&b, runs, b.npages, &calls);
		t0 = now_ns();
		ioas_unmap(len);
		tu[r] = now_ns() - t0;

		t0 = now_ns();
		if (mlock(b.va, len))
			FAIL_ERRNO("mlock of %llu bytes", (unsigned long long)len);
		tl[r] = now_ns() - t0;
		tp[r] = lk_pagemap_bulk(&b, ent, pa);
		t0 = now_ns();
		if (munlock(b.va, len))
			FAIL_ERRNO("munlock");
		tn[r] = now_ns() - t0;
	}
	mm = median(tm, nruns);
	mw = median(tw, nruns);
	mu = median(tu, nruns);
	ml = median(tl, nruns);
	mp = median(tp, nruns);
	mn = median(tn, nruns);

	snprintf(label, sizeof(label), "%s/%lluM", kind_name[kind],
		 (unsigned long long)(len / MiB));
	if (kind == K_THP && huge < len)
		printf("# %s: only %llu of %llu MiB in huge pages\n", label,
		       (unsigned long long)(huge / MiB),
		       (unsigned long long)(len / MiB));
	printf("%-8s %-14s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8zu %7.2f\n",
	       "map", label, mm / 1e6, mw / 1e6, mu / 1e6, ml / 1e6, mp / 1e6,
	       mn / 1e6, (double)len / (mm + mw), (double)len / (ml + mp), calls,
	       (double)(mm + mw) / (ml + mp));
	fflush(stdout);

	free(runs); free(ent); free(pa);
	free(tm); free(tw); free(tu); free(tl); free(tp); free(tn);
	buf_free(&b);
}

/*
 * Part 2b: taking the memory away. For one buffer, medians of IOAS_UNMAP,
 * VFIO_DEVICE_DETACH_IOMMUFD_PT (the last domain: everything unpinned)
 * and close() of the device fd and the iommufd, each after an IOAS_MAP of
 * the buffer, and each as a ratio to that IOAS_MAP.
 */
static void print_teardown_header(void)
{
	printf("%-8s %-14s %8s %8s %8s %8s %7s %7s %7s\n", "part", "buffer",
	       "map", "unmap", "detach", "close", "u/map", "d/map", "c/map");
}

static void teardown_bench(enum kind kind, uint64_t len)
{
	uint64_t *tm, *tu, *td, *tc, mm, mu, md, mc, t0;
	struct buf b;
	char label[32];
	int ret;

	buf_alloc(&b, kind, len);
	tm = xcalloc(3 * nruns, 8);
	tu = xcalloc(nruns, 8);
	td = xcalloc(nruns, 8);
	tc = xcalloc(nruns, 8);

	for (int r = 0; r < nruns; r++) {
		t0 = now_ns();
		ioas_map(b.va, len);
		tm[3 * r] = now_ns() - t0;
		t0 = now_ns();
		ioas_unmap(len);
		tu[r] = now_ns() - t0;

		t0 = now_ns();
		ioas_map(b.va, len);
		tm[3 * r + 1] = now_ns() - t0;
		t0 = now_ns();
		ret = vfio_device_detach(g.devfd);
		td[r] = now_ns() - t0;
		if (ret)
			fail("VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(-ret));
		ioas_unmap(len);
		ret = vfio_device_attach(g.devfd, g.ioas, NULL);
		if (ret)
			fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(-ret));

		t0 = now_ns();
		ioas_map(b.va, len);
		tm[3 * r + 2] = now_ns() - t0;
		close(g.pagemap);
		t0 = now_ns();
		close(g.devfd);
		close(g.iommufd);
		tc[r] = now_ns() - t0;
		setup_device();
	}
	mm = median(tm, 3 * nruns);
	mu = median(tu, nruns);
	md = median(td, nruns);
	mc = median(tc, nruns);

	snprintf(label, sizeof(label), "%s/%lluM", kind_name[kind],
		 (unsigned long long)(len / MiB));
	printf("%-8s %-14s %8.2f %8.2f %8.2f %8.2f %7.2f %7.2f %7.2f\n",
	       "teardown", label, mm / 1e6, mu / 1e6, md / 1e6, mc / 1e6,
	       (double)mu / mm, (double)md / mm, (double)mc / mm);
	fflush(stdout);

	free(tm); free(tu); free(td); free(tc);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Part 4: latency floor                                               */

static uint64_t lat_batch(int what, int n, const struct buf *b)
{
	struct iommu_ioas_noiommu_get_pa bad = {
		.size = sizeof(bad), .flags = 1, .ioas_id = g.ioas,
		.iova = IOVA_BASE, .length = pg,
	};
	uint64_t t0 = now_ns(), e;
	__u64 len, pa;
	off_t pm_off = ((uintptr_t)b->va / pg) * 8;

	for (int i = 0; i < n; i++) {
		switch (what) {
		case 0:
			len = pg;
			if (iommufd_get_pa(g.iommufd, g.ioas, IOVA_BASE, &len,
					   &pa))
				FAIL_ERRNO("GET_PA");
			break;
		case 1:
			len = b->len;
			if (iommufd_get_pa(g.iommufd, g.ioas, IOVA_BASE, &len,
					   &pa))
				FAIL_ERRNO("GET_PA");
			break;
		case 2:
			if (!ioctl(g.iommufd, IOMMU_IOAS_NOIOMMU_GET_PA, &bad) ||
			    errno != EOPNOTSUPP)
				fail("GET_PA with flags=1 did not fail with "
				     "EOPNOTSUPP: %s", strerror(errno));
			break;
		case 3:
			if (pread(g.pagemap, &e, 8, pm_off) != 8)
				FAIL_ERRNO("pread pagemap");
			break;
		case 4:
			syscall(SYS_getppid);
			break;
		}
	}
	return now_ns() - t0;
}

static void latency_bench(void)
{
	char what[5][64], ratio[64];
	enum { NWHAT = 5 };
	int batches = short_mode ? 5 : 101, per = short_mode ? 100 : 500;
	uint64_t *t[NWHAT], med[NWHAT];
	uint64_t len = short_mode ? 4 * MiB : 64 * MiB;
	struct buf b;

	snprintf(what[0], sizeof(what[0]), "GET_PA, %llu KiB, same IOVA",
		 (unsigned long long)pg_kib);
	snprintf(what[1], sizeof(what[1]), "GET_PA, whole %s buffer, same IOVA",
		 small_name);
	snprintf(what[2], sizeof(what[2]), "GET_PA failing early (flags=1)");
	snprintf(what[3], sizeof(what[3]), "pagemap 8-byte pread, same page");
	snprintf(what[4], sizeof(what[4]), "getppid() syscall");
	buf_alloc(&b, K_4K, len);
	ioas_map(b.va, len);
	printf("\n# Part 4: latency of one call, ns: median over %d rounds of "
	       "%d calls of each, the calls taking turns in every round\n",
	       batches, per);
	for (int w = 0; w < NWHAT; w++) {
		t[w] = xcalloc(batches, 8);
		lat_batch(w, per, &b);	/* warm up */
	}
	/* Round robin: a slow spell of the host hits every row alike */
	for (int i = 0; i < batches; i++)
		for (int w = 0; w < NWHAT; w++)
			t[w][i] = lat_batch(w, per, &b);
	for (int w = 0; w < NWHAT; w++) {
		med[w] = median(t[w], batches);
		printf("%-8s %-44s %10.1f\n", "latency", what[w],
		       ns_per(med[w], per));
	}
	snprintf(ratio, sizeof(ratio), "GET_PA %llu KiB / failing GET_PA",
		 (unsigned long long)pg_kib);
	printf("%-8s %-44s %10.2f\n", "ratio", ratio, (double)med[0] / med[2]);
	printf("%-8s %-44s %10.2f\n", "ratio", "GET_PA whole buffer / failing GET_PA",
	       (double)med[1] / med[2]);
	ioas_unmap(len);
	buf_free(&b);
	for (int w = 0; w < NWHAT; w++)
		free(t[w]);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */

static void print_env(void)
{
	char thp[128] = "?", cs[64] = "?";
	struct utsname u;

	uname(&u);
	read_text("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	read_text("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		  cs, sizeof(cs));
	printf("# bench_getpa: kernel %s, %ld CPUs, THP %s, clocksource %s%s\n",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), thp, cs,
	       short_mode ? ", --short" : "");
	printf("# device %s, cdev %s, IOAS %u\n", g.dev.bdf, g.dev.name,
	       g.ioas);
}

int main(int argc, char **argv)
{
	uint64_t small, big = GiB, t0 = now_ns();
	long want, got;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pg = sysconf(_SC_PAGESIZE);
	pg_kib = pg >> 10;
	snprintf(small_name, sizeof(small_name), "%lluK",
		 (unsigned long long)pg_kib);
	snprintf(scat_name, sizeof(scat_name), "%lluK-scat",
		 (unsigned long long)pg_kib);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--short"))
			short_mode = 1;
		else
			fail("unknown argument '%s' (usage: bench_getpa [--short])",
			     argv[i]);
	}
	if (short_mode)
		nruns = 1;
	small = short_mode ? 4 * MiB : 64 * MiB;

	setup_device();
	print_env();

	/* Part 1 */
	want = small / HPG;
	got = hugepages_set(want);
	printf("# hugetlb: asked for %ld 2 MiB pages, got %ld%s\n", want, got,
	       got < want ? " (FEWER THAN ASKED)" : "");
	if (got > want)
		got = want;
	printf("\n# Part 1: PA lookup of a touched buffer mapped in the IOAS "
	       "(device attached); ns per %llu KiB page, median of %d\n",
	       (unsigned long long)pg_kib, nruns);
	printf("# (a) GET_PA length %llu per page; (b) GET_PA length = rest, "
	       "step by the answer; (c) 8-byte pagemap pread per page;\n"
	       "# (d) one pagemap pread of all entries; (e) 8-byte pagemap "
	       "pread per 2 MiB page (DPDK with hugepages)\n",
	       (unsigned long long)pg);
	print_lookup_header();
	lookup_bench(K_4K, small);
	lookup_bench(K_THP, small);
	if (got > 0)
		lookup_bench(K_HUGETLB, (uint64_t)got * HPG);
	else
		printf("%-8s %-12s skipped: no hugetlb page reserved\n", "lookup",
		       "hugetlb");

	/* Part 2 */
	printf("\n# Part 2: pin + PA lookup of a touched buffer, ms, median of "
	       "%d; GB/s = bytes / (pin + lookup)\n", nruns);
	printf("# iommufd: IOAS_MAP, GET_PA walk of the runs, IOAS_UNMAP; "
	       "pagemap: mlock, one bulk pread + PA per page, munlock;\n"
	       "# ratio = (map + walk) / (mlock + pagemap)\n");
	print_map_header();
	map_bench(K_4K, small);
	map_bench(K_THP, small);
	if (got > 0)
		map_bench(K_HUGETLB, (uint64_t)got * HPG);
	else
		printf("%-8s %-14s skipped: no hugetlb page reserved\n", "map",
		       "hugetlb");
	printf("\n# Part 2b: teardown, ms, median of %d; each a ratio to the "
	       "IOAS_MAP of the same buffer (median of the %d maps)\n", nruns,
	       3 * nruns);
	print_teardown_header();
	teardown_bench(K_4K, small);
	teardown_bench(K_THP, small);
	if (got > 0)
		teardown_bench(K_HUGETLB, (uint64_t)got * HPG);
	print_map_header();
	hugepages_set(0);
	if (!short_mode) {
		map_bench(K_4K, big);
		map_bench(K_THP, big);
		want = big / HPG;
		got = hugepages_set(want);
		printf("# hugetlb: asked for %ld 2 MiB pages, got %ld%s\n", want,
		       got, got < want ? " (FEWER THAN ASKED)" : "");
		if (got >= want)
			map_bench(K_HUGETLB, big);
		else
			printf("%-8s %-14s skipped: %ld of %ld hugetlb pages\n",
			       "map", "hugetlb/1024M", got, want);
		print_teardown_header();
		teardown_bench(K_4K, big);
		teardown_bench(K_THP, big);
		if (got >= want)
			teardown_bench(K_HUGETLB, big);
		hugepages_set(0);
	}

	/*
	 * Part 3 comes after the others: the scattering leaves the free
	 * lists shuffled, and the small-page buffers allocated after it would be
	 * scattered too.
	 */
	printf("\n# Part 3: %llu KiB pages scattered on purpose (faulted in turn "
	       "with a scratch buffer: every page its own run), median of %d\n",
	       (unsigned long long)pg_kib, nruns);
	print_lookup_header();
	lookup_bench(K_4K_SCATTER, small);
	print_map_header();
	map_bench(K_4K_SCATTER, small);

	/* Part 4 */
	latency_bench();

	close(g.pagemap);
	close(g.devfd);
	close(g.iommufd);
	printf("\n# total %.1f s\n", (now_ns() - t0) / 1e9);
	printf("ok - bench_getpa\n");
	return 0;
}
