#!/usr/bin/env bash
# What a maintainer and the kernel test robot run before merging: the series
# applies on the pinned base, every patch builds, checkpatch is clean, sparse
# and W=1 add nothing, kernel-doc is clean, the Kconfig matrix resolves as
# documented and compiles, and the documentation renders.
# Usage: check.sh TREE PATCHDIR OUTDIR VERSION CONFIG_SHA256 DLDIR FRAGMENT...
# (VERSION, CONFIG_SHA256, DLDIR: Debian's configuration of the base, for
# the debian-config check; see scripts/debian-config.sh. FRAGMENTs: the
# configuration of the bisect build and of sparse and W=1, the plain
# kernel's, so that its build hits what ccache kept of the last step.)
# CHECKS="checkpatch docs ..." runs only those (after apply).
# Prints a table at the end; exits non-zero on any failure.
set -uo pipefail

tree=$(realpath "$1") patches=$(realpath "$2") out=$(realpath -m "$3")
debian=("$4" "$5" "$6")
shift 6
frags=()
for f in "$@"; do frags+=("$(realpath "$f")"); done
here=$(cd "$(dirname "$0")" && pwd)
ck="$out/linux" obj="$out/obj" logs="$out/logs"
jobs=$(nproc)
kcc=gcc
command -v ccache >/dev/null && kcc="ccache gcc"
# Share ccache results with the harness's builds of build/linux.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$out")}
# Debian's python3 (ply, git, sphinx) before any other on PATH.
export PATH=/usr/bin:$PATH

results=()
failed=0
record() { # NAME STATUS SECONDS
	results+=("$(printf '%-34s %-5s %5ss' "$1" "$2" "$3")")
	[ "$2" = PASS ] || failed=1
}
run_check() { # NAME FUNCTION
	local start=$SECONDS status=PASS
	echo "check: $1"
	"$2" > "$logs/$1.log" 2>&1 || status=FAIL
	[ $status = PASS ] || { echo "check: $1 FAILED:"; tail -30 "$logs/$1.log"; }
	record "$1" $status $((SECONDS - start))
}
kmake() { make -s -C "$ck" ARCH=x86_64 CC="$kcc" HOSTCC="$kcc" -j"$jobs" "$@"; }

# The worktree (2 GiB), made afresh by each run.
remove_worktree() {
	git -C "$tree" worktree remove -f "$ck" 2>/dev/null
	rm -rf "$ck"
	git -C "$tree" worktree prune
}

# 1. The series applies with git am on the pristine base.
check_apply() {
	remove_worktree
	git -C "$tree" worktree add -f --detach "$ck" base || return 1
	while read -r p; do
		git -C "$ck" am -q "$patches/$p" || { echo "$p does not apply"; return 1; }
	done < "$patches/series"
	git -C "$ck" log --oneline base..HEAD
}

# 2. Every patch builds on its own: the kernel, configured as the harness
# configures it. (The new iommufd code is enabled, hence compiled, from the
# patch that lets VFIO select it.)
check_bisect() {
	local c rc=0 tip
	tip=$(git -C "$ck" rev-parse HEAD)
	"$here/config.sh" "$ck" "$obj" "${frags[@]}" || return 1
	for c in $(git -C "$ck" rev-list --reverse base..HEAD); do
		git -C "$ck" checkout -q "$c"
		echo "== $(git -C "$ck" log -1 --format=%s)"
		kmake O="$obj" olddefconfig >/dev/null || rc=1
		kmake O="$obj" bzImage || { echo "bzImage FAILED"; rc=1; }
	done
	git -C "$ck" checkout -q "$tip"
	return $rc
}

# 3. checkpatch --strict: no error, warning or check on any patch. Two of
# its warnings cannot be answered in this tree, so they are checked here
# instead: the base has no upstream history, so a Fixes: tag could name no
# commit it knows (MISSING_FIXES_TAG; patch 1 is Cc: stable and gets its
# Fixes: when sent upstream); and checkpatch asks for a MAINTAINERS change
# on every new file (FILE_PATH_CHANGES), so instead every file the series
# adds must be covered by a MAINTAINERS entry already.
check_checkpatch() {
	local p f rc=0 report
	while read -r p; do
		report=$(cd "$ck" && scripts/checkpatch.pl --strict --quiet \
			--ignore MISSING_FIXES_TAG,FILE_PATH_CHANGES \
			"$patches/$p" 2>&1 | grep -E '^(ERROR|WARNING|CHECK):|^total:' -A3)
		if [ -n "$report" ]; then
			echo "== $p"; echo "$report"; rc=1
		fi
	done < "$patches/series"
	for f in $(git -C "$ck" diff --name-only --diff-filter=A base HEAD); do
		(cd "$ck" && scripts/get_maintainer.pl --nogit --nogit-fallback \
			--no-rolestats --nol -f "$f" 2>/dev/null) | grep -q . ||
			{ echo "$f: no MAINTAINERS entry covers it"; rc=1; }
	done
	return $rc
}

# Warnings of a sparse (C=2) and W=1 build of the two directories, without
# line numbers so that base and series compare.
analyze() {
	kmake O="$obj" olddefconfig >/dev/null
	kmake O="$obj" C=2 W=1 drivers/iommu/iommufd/ drivers/vfio/ 2>&1 >/dev/null |
		grep -E 'warning:|error:' | sed -E 's/:[0-9]+(:[0-9]+)?:/:/' | sort -u
}

# 4. sparse and W=1: nothing the series adds.
check_sparse_w1() {
	local head new
	head=$(git -C "$ck" rev-parse HEAD)
	analyze > "$out/analyze.head"
	git -C "$ck" checkout -q base
	analyze > "$out/analyze.base"
	git -C "$ck" checkout -q "$head"
	new=$(comm -13 "$out/analyze.base" "$out/analyze.head")
	echo "base: $(wc -l < "$out/analyze.base") findings, series: $(wc -l < "$out/analyze.head")"
	[ -z "$new" ] || { echo "added by the series:"; echo "$new"; return 1; }
}

# 5. kernel-doc -none on the C files and headers the series touches.
check_kerneldoc() {
	local files f new=""
	files=$(git -C "$ck" diff --name-only base HEAD -- '*.c' '*.h' | grep -v '^tools/')
	mkdir -p "$out/kdoc-base"
	for f in $files; do
		mkdir -p "$out/kdoc-base/$(dirname "$f")"
		git -C "$ck" show "base:$f" > "$out/kdoc-base/$f" 2>/dev/null || : > "$out/kdoc-base/$f"
		new+=$(comm -13 \
			<(cd "$out/kdoc-base" && "$ck/scripts/kernel-doc" -none "$f" 2>&1 |
			  sed -E 's/:[0-9]+:/:/' | sort -u) \
			<(cd "$ck" && scripts/kernel-doc -none "$f" 2>&1 |
			  sed -E 's/:[0-9]+:/:/' | sort -u))
	done
	echo "files: $files"
	[ -z "$new" ] || { echo "$new"; return 1; }
}

# 6. The Kconfig matrix and the other configurations: each resolves with no
# unmet dependency, gives the expected values, and compiles the two
# directories with no warning.
#   kc NAME ARCH "EXPECTED" SYMBOL=VALUE...
kc() {
	local name=$1 arch=$2 expect=$3 dir="$out/kc-$1" sym want got rc=0 cross=
	shift 3
	[ "$arch" = arm64 ] && cross=aarch64-linux-gnu-
	mkdir -p "$dir"
	printf 'CONFIG_%s\n' "$@" > "$dir/row.config"
	make -s -C "$ck" O="$dir" ARCH="$arch" CROSS_COMPILE="$cross" tinyconfig >/dev/null
	KCONFIG_CONFIG="$dir/.config" "$ck/scripts/kconfig/merge_config.sh" -m -O "$dir" \
		"$dir/.config" "$dir/row.config" >/dev/null
	make -C "$ck" O="$dir" ARCH="$arch" CROSS_COMPILE="$cross" olddefconfig \
		> "$dir/olddefconfig.log" 2>&1
	if grep -i 'unmet direct dependencies' "$dir/olddefconfig.log"; then rc=1; fi
	for sym in $expect; do
		want=${sym#*=} sym=${sym%=*}
		got=$(sed -n "s/^CONFIG_$sym=//p" "$dir/.config")
		echo "$name: $sym=${got:-n} (expected $want)"
		[ "${got:-n}" = "$want" ] || rc=1
	done
	[ "$arch" = arm ] && return $rc	# no cross compiler: Kconfig only
	make -s -C "$ck" O="$dir" ARCH="$arch" CROSS_COMPILE="$cross" CC="${kcc%gcc}${cross}gcc" \
		HOSTCC="$kcc" -j"$jobs" drivers/iommu/iommufd/ drivers/vfio/ > "$dir/build.log" 2>&1 ||
		rc=1
	if grep -E 'warning:|error:' "$dir/build.log"; then rc=1; fi
	return $rc
}

common=(PCI=y IOMMU_SUPPORT=y EVENTFD=y VFIO_PCI=y)
check_kconfig() {
	local rc=0
	kc group-container x86_64 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=n" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=n VFIO_NOIOMMU=y || rc=1
	kc group-container-noiommufd x86_64 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=n" 64BIT=y \
		"${common[@]}" IOMMUFD=n VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_NOIOMMU=y || rc=1
	kc group-nocontainer x86_64 "VFIO_NOIOMMU=n IOMMUFD_NOIOMMU=n" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=n IOMMUFD_VFIO_CONTAINER=n \
		VFIO_DEVICE_CDEV=n VFIO_NOIOMMU=y || rc=1
	kc group-container-cdev x86_64 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	kc group-nocontainer-cdev x86_64 "VFIO_NOIOMMU=n IOMMUFD_NOIOMMU=n" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=n IOMMUFD_VFIO_CONTAINER=n \
		VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	kc cdev-only x86_64 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=n VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	# Neither group nor cdev: Kconfig always gives VFIO one of them, so
	# this row is VFIO off.
	kc no-vfio x86_64 "VFIO_NOIOMMU=n IOMMUFD_NOIOMMU=n" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=n || rc=1
	kc modules x86_64 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y IOMMUFD=m VFIO=m" 64BIT=y \
		"${common[@]}" MODULES=y VFIO_PCI=m IOMMUFD=m VFIO=m VFIO_GROUP=y VFIO_CONTAINER=y \
		VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	kc i386 i386 "VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" 64BIT=n "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	kc feature-off x86_64 "VFIO_NOIOMMU=n IOMMUFD_NOIOMMU=n" 64BIT=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=n || rc=1
	# arm64, where machines without an IOMMU live, with 4 KiB and 64 KiB
	# pages (the software domain's IOVA alignment stays 4 KiB)
	kc arm64-4k arm64 "ARM64_4K_PAGES=y VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" ARM64_4K_PAGES=y \
		"${common[@]}" IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=y \
		VFIO_NOIOMMU=y || rc=1
	kc arm64-64k arm64 "ARM64_64K_PAGES=y VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" ARM64_64K_PAGES=y \
		"${common[@]}" IOMMUFD=y VFIO=y VFIO_GROUP=y VFIO_CONTAINER=y VFIO_DEVICE_CDEV=y \
		VFIO_NOIOMMU=y || rc=1
	# 32-bit ARMv5 has GENERIC_ATOMIC64; the software page table does not
	# need 64-bit cmpxchg, so the cdev no-IOMMU mode is available there.
	kc arm-atomic64 arm "GENERIC_ATOMIC64=y VFIO_NOIOMMU=y IOMMUFD_NOIOMMU=y" \
		ARCH_MULTI_V5=y ARCH_MULTI_V7=n ARCH_VERSATILE=y MMU=y "${common[@]}" \
		IOMMUFD=y VFIO=y VFIO_GROUP=n VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y || rc=1
	return $rc
}

# 7. Debian's own amd64 configuration of the base (what users run), with
# the no-IOMMU options: iommufd and VFIO, modules there, build with W=1 and
# add no warning to the base's; and the vfio kselftests install with the
# kernel's kselftest-install from the patched tree.
debian_w1() { # OBJDIR: the warnings, without line numbers
	kmake O="$1" olddefconfig >/dev/null || return 1
	kmake O="$1" W=1 drivers/iommu/iommufd/ drivers/vfio/ > "$1/w1.log" 2>&1 ||
		{ tail -20 "$1/w1.log" >&2; return 1; }
	# Not the host tools' (genksyms' parser warns when bison makes it)
	{ grep -E 'warning:|error:' "$1/w1.log" || true; } | { grep -v '/scripts/' || true; } |
		sed -E 's/:[0-9]+(:[0-9]+)?:/:/' | sort -u
}
check_debian() {
	local head new dir="$out/debian" ksft="$out/debian/kselftest/kselftest_install" p
	head=$(git -C "$ck" rev-parse HEAD)
	"$here/debian-config.sh" "$ck" "$dir" amd64 "${debian[@]}" || return 1
	grep -E '^CONFIG_(IOMMUFD|VFIO|VFIO_PCI|VFIO_DEVICE_CDEV|VFIO_NOIOMMU|IOMMUFD_NOIOMMU)=' \
		"$dir/.config"
	debian_w1 "$dir" > "$out/debian.head" || return 1
	ls "$dir"/drivers/iommu/iommufd/iommufd.o "$dir"/drivers/vfio/vfio.o \
		"$dir"/drivers/vfio/pci/vfio-pci.o || return 1
	git -C "$ck" checkout -q base
	debian_w1 "$dir" > "$out/debian.base"
	git -C "$ck" checkout -q "$head"
	new=$(comm -13 "$out/debian.base" "$out/debian.head")
	echo "W=1: base $(wc -l < "$out/debian.base") findings, series $(wc -l < "$out/debian.head")"
	[ -z "$new" ] || { echo "added by the series:"; echo "$new"; return 1; }
	rm -rf "$dir/kselftest"
	kmake O="$dir" TARGETS=vfio kselftest-install >/dev/null || return 1
	for p in run_kselftest.sh $(make -s -C "$ck/tools/testing/selftests/vfio" emit_tests |
				    sed 's/^[^:]*:/vfio\//'); do
		[ -x "$ksft/$p" ] || { echo "kselftest-install: $p missing"; return 1; }
	done
	echo "kselftest-install: $(ls "$ksft/vfio" | grep -c _test) vfio programs in $ksft"
}

# 8. The documentation renders with Sphinx, adding no warning.
sphinx_warnings() { # FILE
	local d
	d=$(mktemp -d)
	cp "$1" "$d/index.rst"
	echo "project = 'vfio'" > "$d/conf.py"
	sphinx-build -q -b html "$d" "$d/_build" 2>&1 | sed -E 's|^.*index.rst:[0-9]*: ||' | sort -u
	rm -rf "$d"
}
check_docs() {
	local new
	git -C "$ck" show base:Documentation/driver-api/vfio.rst > "$out/vfio.base.rst"
	new=$(comm -13 <(sphinx_warnings "$out/vfio.base.rst") \
		<(sphinx_warnings "$ck/Documentation/driver-api/vfio.rst"))
	[ -z "$new" ] || { echo "$new"; return 1; }
	echo "no new warning"
}

mkdir -p "$out" "$logs"
total=$SECONDS
run_check apply check_apply
if [ ${#results[@]} -eq 1 ] && [ $failed -eq 0 ]; then
	for c in ${CHECKS:-bisect-build checkpatch sparse-W1 kernel-doc kconfig-matrix debian-config docs}; do
		case $c in
		bisect-build) run_check "$c" check_bisect ;;
		checkpatch) run_check "$c" check_checkpatch ;;
		sparse-W1) run_check "$c" check_sparse_w1 ;;
		kernel-doc) run_check "$c" check_kerneldoc ;;
		kconfig-matrix) run_check "$c" check_kconfig ;;
		debian-config) run_check "$c" check_debian ;;
		docs) run_check "$c" check_docs ;;
		*) echo "check: unknown check $c"; failed=1 ;;
		esac
	done
fi

echo
printf '%-34s %-5s %6s\n' check result time
printf '%s\n' "${results[@]}"
echo "check: $((SECONDS - total)) s in all; logs in $logs"
# Kept only to look at a failure.
[ $failed -ne 0 ] || remove_worktree
exit $failed
