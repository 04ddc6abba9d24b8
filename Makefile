# iommufd no-IOMMU mode for the VFIO cdev, on Linux 6.12: the harness.
# 'make run' boots the patched kernel and shows a userspace driver doing DMA;
# 'make test' runs every test on each kernel of KERNELS (plain, debug, nocdev
# on x86_64; arm64_4k, arm64_64k on arm64).

# The base: Debian's linux-source-6.12, pinned by version and sha256.
BASE_VERSION := 6.12.117-1~deb12u1
BASE_SHA256  := e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703
# Debian's own kernel configurations of the same version, per Debian
# architecture (package linux-config-6.12: make deb, make check).
CONFIG_DEB_SHA256_amd64 := 9837dbdf866d58ff9cc64f106dbf0cbf16d1ea6e369b83c338d05e8860224b27
CONFIG_DEB_SHA256_arm64 := 5642ad362614657f7393b3999a02d3f33325c13a15227333fe2ef0cdc29d74c8
# make deb ARCH=arm64: Debian's arm64 configuration, cross compiled.
DEB_ARCH := $(if $(filter arm64,$(ARCH)),arm64,amd64)

B       := build
TREE    := $(B)/linux
DEB     := $(B)/dl/linux-source-6.12_$(BASE_VERSION)_all.deb
KERNELS := plain debug nocdev arm64_4k arm64_64k
FRAGS_plain := configs/base.config configs/intel-iommu.config configs/mock.config
FRAGS_debug := configs/base.config configs/intel-iommu.config configs/debug.config
FRAGS_nocdev := configs/base.config configs/intel-iommu.config configs/mock.config configs/nocdev.config
FRAGS_arm64_4k := configs/base.config configs/arm64.config
FRAGS_arm64_64k := configs/base.config configs/arm64.config configs/arm64-64k.config
# A kernel's architecture (x86_64 unless said here): arm64 kernels are cross
# compiled, boot on QEMU's virt machine, and run the guest programs built
# for arm64 (build/guest-arm64, against the uapi headers of arm64_4k).
KARCH_arm64_4k := arm64
KARCH_arm64_64k := arm64
karch = $(or $(KARCH_$(1)),x86_64)
CROSS_arm64 := aarch64-linux-gnu-
IMAGE_x86_64 := arch/x86/boot/bzImage
IMAGE_arm64 := arch/arm64/boot/Image
image = $(B)/$(1)/$(IMAGE_$(call karch,$(1)))
GUEST_x86_64 := guest
GUEST_arm64 := guest-arm64
initramfs = $(B)/$(GUEST_$(call karch,$(1)))/initramfs.cpio
# Seconds a guest may take to boot and finish, and its memory.
TIMEOUT_plain := 600
TIMEOUT_debug := 1500
TIMEOUT_nocdev := 600
TIMEOUT_arm64_4k := 900
TIMEOUT_arm64_64k := 900
# Arguments the guest's test runner gets on a kernel (see guest/run-tests):
# the debug kernel runs only the noiommu tests of iommufd's own suite.
ARGS_debug := iommu=noiommu
MEM     := 2G
MEM_bench := 3G
# The guest topologies (qemu/NAME.sh) each kernel is tested in. A run is
# named KERNEL for topology "one" and KERNEL-TOPOLOGY for the others: make
# test-plain, make test-plain-bridge; its log is build/KERNEL/console.log
# or build/KERNEL/console-TOPOLOGY.log, its SKIP list guest/skips/RUN.
TOPOLOGIES_plain := one bridge mixed
TOPOLOGIES_debug := one bridge mixed
TOPOLOGIES_nocdev := one
TOPOLOGIES_arm64_4k := one
TOPOLOGIES_arm64_64k := one
# The DKMS package (dkms/) on Debian's own kernels: a Debian root of each
# release of DKMS_RELEASES (debootstrap, then Debian's kernel image and
# headers of DKMS_KERNEL_R by apt, and DKMS_PKGS_R), the package installed
# by apt there, the root booted by Debian's unmodified kernel. Run
# dkms_R[-TOPOLOGY]: make test-dkms_trixie, make test-dkms_trixie-mixed.
DKMS_VERSION := $(shell sed -n '1s/.*(\(.*\)).*/\1/p' dkms/debian/changelog)
DKMS_DEB := $(B)/dkms/iommufd-noiommu-dkms_$(DKMS_VERSION)_all.deb
DKMS_RELEASES := trixie bookworm trixie_arm64
DKMS_KERNEL_trixie := 6.12.117+deb13-amd64
DKMS_KERNEL_bookworm := 6.12.118+deb12-amd64
# trixie_arm64: Debian 13's arm64 kernel. Its root is debootstrap's foreign
# stage with kmod, unpacked, no arm64 code run; in a copy of trixie's amd64
# root, the kernel's image and headers are unpacked and dkms builds and
# installs the modules with Debian's cross compiler (scripts/dkms-test.sh,
# FOREIGN); the kernel boots on QEMU's virt with the arm64 root, its
# modules and dkms's as its initramfs.
DKMS_KERNEL_trixie_arm64 := 6.12.117+deb13-arm64
DKMS_ARCH_trixie_arm64 := arm64
DKMS_SUITE_trixie_arm64 := trixie
DKMS_BUILDROOT_trixie_arm64 := trixie
# bookworm_arm64: Debian 12's, in the same way (gcc-12), not in make test.
DKMS_KERNEL_bookworm_arm64 := 6.12.118+deb12-arm64
DKMS_ARCH_bookworm_arm64 := arm64
DKMS_SUITE_bookworm_arm64 := bookworm
DKMS_BUILDROOT_bookworm_arm64 := bookworm
# The same kernel as a user's arm64 machine has it, not in make test: a
# whole arm64 root (debootstrap, then apt) under qemu-user-static, dkms
# building there, Debian's kernel and initramfs booting it (make
# dkms-emulated: over half an hour on 2 cores).
DKMS_KERNEL_trixie_arm64_emulated := 6.12.117+deb13-arm64
DKMS_ARCH_trixie_arm64_emulated := arm64
DKMS_SUITE_trixie_arm64_emulated := trixie
DKMS_EMULATE_trixie_arm64_emulated := 1
# bookworm's root also has bookworm-backports' 6.12.95 headers, a kernel
# the package does not support, and uses Intel GVT-g: the install must
# build nothing for the one and warn about the other. Its removal is
# checked in the root, not in the guest as trixie's is (a TCG depmod).
DKMS_PKGS_bookworm := linux-headers-6.12.95+deb12-amd64
DKMS_ENV_bookworm := GVT=1 REMOVE=host
TOPOLOGIES_dkms_trixie := one mixed
TOPOLOGIES_dkms_bookworm := one
TOPOLOGIES_dkms_trixie_arm64 := one
TOPOLOGIES_dkms_trixie_arm64_emulated := one
TOPOLOGIES_dkms_bookworm_arm64 := one
TIMEOUT_dkms := 900
DKMS_RUNS := $(foreach r,$(DKMS_RELEASES),$(foreach t,$(TOPOLOGIES_dkms_$(r)),dkms_$(r)$(if $(filter one,$(t)),,-$(t))))
RUNS := $(foreach k,$(KERNELS),$(foreach t,$(TOPOLOGIES_$(k)),$(k)$(if $(filter one,$(t)),,-$(t)))) \
	$(DKMS_RUNS)
run_kernel = $(word 1,$(subst -, ,$(1)))
run_topology = $(or $(word 2,$(subst -, ,$(1))),one)
run_log = $(B)/$(call run_kernel,$(1))/console$(if $(word 2,$(subst -, ,$(1))),-$(call run_topology,$(1))).log

JOBS    ?= $(shell nproc)
# Expanded when a recipe runs, after deps may have installed ccache.
CCACHE   = $(if $(shell command -v ccache),ccache )
kmake    = $(MAKE) -s -C $(TREE) ARCH=$(1) CROSS_COMPILE=$(CROSS_$(1)) \
	   CC="$(CCACHE)$(CROSS_$(1))gcc" -j$(JOBS)
KMAKE    = $(call kmake,x86_64)
# ccache keys on paths relative to build/, so that make check's copy of the
# tree (build/check/linux) hits what build/linux compiled.
export CCACHE_BASEDIR := $(abspath $(B))

# kernel-%, run-% and test-% are pattern rules, so not in .PHONY (make skips
# pattern rules for phony targets); no file has their names.
.PHONY: all run test bench check applies deb deb-harness deb-test deb-test-debian deps deps-arm64 tree retree export \
	dkms dkms-add dkms-emulated \
	guest guest-arm64 clean distclean help
.DELETE_ON_ERROR:

all: kernel-plain

help:
	@echo "make run      build and boot the patched kernel, show a driver doing DMA"
	@echo "make test     all tests on every kernel: $(KERNELS)"
	@echo "make check    checkpatch, sparse, W=1, bisect build, Kconfig matrix, docs"
	@echo "make bench    benchmarks on the plain kernel (BENCH_ARGS=--short: seconds)"
	@echo "make tree     make $(TREE): base + patches/ (git am)"
	@echo "make export   write $(TREE)'s commits back to patches/"
	@echo "make retree   throw $(TREE) away and make it again"
	@echo "make deb      Debian packages from Debian's configuration (ARCH=arm64 too; hours)"
	@echo "make deb-test / deb-test-debian   boot a packaged kernel (harness's / make deb's)"
	@echo "make applies  which Debian 6.12 versions take the series"
	@echo "make dkms     the DKMS package for Debian's own 6.12 kernels (dkms/versions)"
	@echo "make dkms-add VERSION=6.12.N-1~deb12u1   support another Debian 6.12.y"
	@echo "make test-dkms_trixie / test-dkms_trixie-mixed / test-dkms_bookworm / test-dkms_trixie_arm64"
	@echo "make dkms-emulated   arm64's modules built by dkms in an emulated arm64 root (half an hour), compared"
	@echo "make kernel-K / run-K / test-K (K in $(KERNELS)) / guest / guest-arm64"

deps:
	@scripts/deps.sh

# The cross compiler, QEMU for arm64 and dpkg's arm64 architecture.
deps-arm64:
	@scripts/deps.sh arm64

# Downloads the base unless present, and checks its sha256 every time.
tree: deps
	@scripts/fetch-base.sh $(BASE_VERSION) $(BASE_SHA256) $(B)/dl
	@scripts/tree.sh $(DEB) $(TREE) patches

retree:
	rm -rf $(TREE)
	$(MAKE) tree

export:
	scripts/export.sh $(TREE) patches

# A build directory is configured again only when a fragment is newer
# (and its .config is no intermediate file for make to delete).
.PRECIOUS: $(B)/%/.config dkms-root-%
.SECONDEXPANSION:
$(B)/%/.config: $$(FRAGS_$$*) | tree $$(if $$(KARCH_$$*),deps-$$(KARCH_$$*))
	ARCH=$(call karch,$*) CROSS_COMPILE=$(CROSS_$(call karch,$*)) \
		scripts/config.sh $(TREE) $(B)/$* $(FRAGS_$*)

kernel-%: tree $(B)/%/.config
	@echo "build: $* kernel"
	@$(call kmake,$(call karch,$*)) O=$(abspath $(B)/$*) $(notdir $(IMAGE_$(call karch,$*)))

# Test programs are built against the patched tree's uapi headers.
guest: kernel-plain
	@$(KMAKE) O=$(abspath $(B)/plain) headers_install >/dev/null
	@ARCH=x86_64 scripts/guest.sh $(TREE) $(B)/plain/usr/include $(B)/guest

guest-arm64: kernel-arm64_4k
	@$(call kmake,arm64) O=$(abspath $(B)/arm64_4k) headers_install >/dev/null
	@ARCH=arm64 CROSS_COMPILE=$(CROSS_arm64) \
		scripts/guest.sh $(TREE) $(B)/arm64_4k/usr/include $(B)/guest-arm64

run: run-plain

# The demo on any kernel: make run-arm64_64k.
run-%: deps kernel-% $$(GUEST_$$(call karch,$$*))
	ARCH=$(call karch,$*) scripts/qemu.sh $(call image,$*) $(call initramfs,$*) \
		run $(B)/$*/run.log $(TIMEOUT_$*) $(MEM) one

# Benchmarks on the plain kernel; BENCH_ARGS reach the guest (e.g. a short run).
bench: deps kernel-plain guest
	@rc=0; ARCH=x86_64 scripts/qemu.sh $(call image,plain) $(B)/guest/initramfs.cpio \
		bench $(B)/plain/bench.log $(TIMEOUT_plain) $(MEM_bench) one "$(BENCH_ARGS)" || rc=$$?; \
	scripts/verdict.sh bench $(B)/plain/bench.log $$rc
	@[ -n "$(BENCH_ARGS)" ] || scripts/bench-loop.sh $(TREE)

# TEST_ARGS reach the guest's programs (break=leak: each must then fail).
# GUESTS_BUILT=1: make test built the guests' programs already.
test-%: deps kernel-$$(call run_kernel,$$*) \
	$$(if $$(GUESTS_BUILT),,$$(GUEST_$$(call karch,$$(call run_kernel,$$*))))
	@rc=0; ARCH=$(call karch,$(call run_kernel,$*)) scripts/qemu.sh $(call image,$(call run_kernel,$*)) \
		$(call initramfs,$(call run_kernel,$*)) test \
		$(call run_log,$*) $(TIMEOUT_$(call run_kernel,$*)) $(MEM) $(call run_topology,$*) \
		"$(strip $(ARGS_$(call run_kernel,$*)) $(TEST_ARGS))" || rc=$$?; \
	scripts/verdict.sh $* $(call run_log,$*) $$rc

# The DKMS runs: the package installed in the release's root, booted; for
# a foreign kernel, built in its build root's copy, its own root booted.
dkms_guest = $(GUEST_$(or $(DKMS_ARCH_$(1)),x86_64))
dkms_buildroot = $(or $(DKMS_BUILDROOT_$(1)),$(1))
# A root unpacked only: a foreign one, not emulated.
dkms_unpacked = $(and $(DKMS_ARCH_$(1)),$(if $(DKMS_EMULATE_$(1)),,1))
test-dkms_%: deps $(DKMS_DEB) dkms-root-$$(call run_kernel,$$*) \
	dkms-root-$$(call dkms_buildroot,$$(call run_kernel,$$*)) \
	$$(if $$(GUESTS_BUILT),,$$(call dkms_guest,$$(call run_kernel,$$*)))
	@$(eval r := $(call run_kernel,$*))$(DKMS_ENV_$(r)) \
		$(if $(DKMS_ARCH_$(r)),DEB_ARCH=$(DKMS_ARCH_$(r))) \
		$(if $(call dkms_unpacked,$(r)),FOREIGN=$(B)/dkms/$(r)) \
		scripts/dkms-test.sh dkms_$* $(B)/dkms/$(call dkms_buildroot,$(r)) \
		$(DKMS_KERNEL_$(r)) $(DKMS_DEB) $(B)/$(call dkms_guest,$(r)) \
		$(call run_log,dkms_$*) $(TIMEOUT_dkms) $(MEM) $(call run_topology,$*)

test: deps
	@rm -f $(foreach r,$(RUNS),$(call run_log,$(r)).counts)
	@$(MAKE) --no-print-directory guest guest-arm64
	@for r in $(RUNS); do $(MAKE) --no-print-directory test-$$r GUESTS_BUILT=1 || true; done
	@scripts/summary.sh $(foreach r,$(RUNS),$(call run_log,$(r)))

# Before merging: series applies, each patch builds, checkpatch, sparse, W=1,
# kernel-doc, the Kconfig matrix, Debian's configuration, the documentation
# (a table), then the packaging path (deb-test).
check: tree
	@scripts/deps.sh check arm64
	scripts/check.sh $(TREE) patches $(B)/check \
		$(BASE_VERSION) $(CONFIG_DEB_SHA256_amd64) $(B)/dl $(FRAGS_plain)
	$(MAKE) --no-print-directory deb-test

# Debian packages of the patched kernel with Debian's configuration for
# DEB_ARCH (hours on 2 cores: see the README), and with the harness's plain
# one, whose packaged kernel deb-test boots to run the demo.
deb: tree
	@scripts/deps.sh deb $(DEB_ARCH)
	scripts/deb.sh debian $(TREE) $(B)/deb $(DEB_ARCH) $(BASE_VERSION) \
		$(CONFIG_DEB_SHA256_$(DEB_ARCH)) $(B)/dl

deb-harness: tree
	@scripts/deps.sh deb
	ARCH=x86_64 scripts/deb.sh harness $(TREE) $(B)/deb $(FRAGS_plain)

# The kernel image package in a folder of packages (not its -dbg sibling).
image_deb = $$(ls $(1)/linux-image-*.deb | grep -v -- -dbg_)

deb-test: deb-harness guest
	ARCH=x86_64 scripts/deb-boot.sh $(call image_deb,$(B)/deb/harness) \
		$(B)/guest/initramfs.cpio $(B)/deb/harness/boot.log $(TIMEOUT_plain) $(MEM)

# After make deb (hours): the kernel and modules of the Debian-configured
# package run the tests of topology "one", judged against guest/skips/debian-amd64.
deb-test-debian: guest
	ARCH=x86_64 scripts/deb-boot.sh $(call image_deb,$(B)/deb/debian-amd64) \
		$(B)/guest/initramfs.cpio $(B)/deb/debian-amd64/console.log $(TIMEOUT_plain) $(MEM) \
		test debian-amd64

# Which 6.12 kernels the series applies to and builds on: every
# linux-source-6.12 Debian serves, and the pristine upstream tarball.
applies: deps
	scripts/applies.sh $(B)/applies patches $(BASE_VERSION) $(FRAGS_plain)

# The DKMS package, built from dkms/ and, for each version of dkms/versions,
# that version's linux-source-6.12 with the series applied.
dkms: $(DKMS_DEB)

$(DKMS_DEB): $(wildcard patches/* dkms/* dkms/debian/* dkms/patches/*) scripts/dkms.sh
	@scripts/deps.sh dkms
	scripts/dkms.sh dkms patches $(B)/dkms $(B)/dl

# The arm64 modules as an arm64 machine's dkms builds them (emulated, not
# in make test: over half an hour), tested, then compared with the cross
# build's of make test: the same bytes, signatures aside.
dkms-emulated: tree test-dkms_trixie_arm64 test-dkms_trixie_arm64_emulated
	scripts/dkms-compare.sh $(TREE) \
		$(B)/dkms/trixie_arm64.installed/updates-dkms \
		$(B)/dkms/trixie_arm64_emulated.installed/updates-dkms

# A Debian 6.12.y newly published: its source fetched, the series applied
# (fails if it does not apply), the line added to dkms/versions.
dkms-add:
	@scripts/deps.sh dkms
	scripts/dkms-add.sh dkms/versions patches $(B)/dkms $(B)/dl $(VERSION)

# A Debian root with the release's kernel (dkms-root-trixie); a foreign
# one unpacked, with kmod (dkms-root-trixie_arm64: the kernel comes in
# scripts/dkms-test.sh),
# or emulated (dkms-root-trixie_arm64_emulated).
dkms-root-%:
	@scripts/deps.sh dkms $(DKMS_ARCH_$*) $(if $(DKMS_EMULATE_$*),emulate)
	@DEB_ARCH=$(DKMS_ARCH_$*) EMULATE=$(DKMS_EMULATE_$*) \
		scripts/dkms-root.sh $(B)/dkms/$* $(B)/dl $(or $(DKMS_SUITE_$*),$*) \
		$(if $(call dkms_unpacked,$*),kmod, \
		linux-image-$(DKMS_KERNEL_$*) linux-headers-$(DKMS_KERNEL_$*) openssl $(DKMS_PKGS_$*))

clean:
	rm -rf $(addprefix $(B)/,$(KERNELS)) $(B)/guest $(B)/guest-arm64 $(B)/check

distclean:
	rm -rf $(B)
