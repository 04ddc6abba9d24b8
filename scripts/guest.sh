#!/usr/bin/env bash
# Build the guest's programs (static, against the patched tree's uapi
# headers) and pack them with busybox into an initramfs:
#  - the kselftests of vfio (the series') and iommu (iommufd's, with the
#    series' noiommu tests), installed with the kselftest Makefile's own
#    install target, run by run_kselftest.sh;
#  - the harness's programs in guest/, built on the series' test library:
#    the fuzzer (test list), the benchmark (bench list), the demo (run list),
#    the DKMS package's test of a device behind an IOMMU (dkms list).
# Usage: [ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-] guest.sh TREE HEADERS OUTDIR
# For arm64 (ARCH defaults to x86_64) the programs are cross compiled and
# busybox comes from Debian's busybox-static:arm64, downloaded into OUTDIR.
set -euo pipefail

tree=$(realpath "$1") hdr=$(realpath "$2") out=$(realpath -m "$3")
here=$(cd "$(dirname "$0")/.." && pwd)
st="$tree/tools/testing/selftests"
lib="$st/vfio/vfio_noiommu_lib.c"
root="$out/root"
arch=${ARCH:-x86_64} cross=${CROSS_COMPILE:-}
rm -rf "$root" "$out/kselftest-build"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests}

busybox=/bin/busybox
kst=()
if [ "$arch" = arm64 ]; then
	kst=(ARCH=arm64 CROSS_COMPILE="$cross")
	busybox="$out/busybox-arm64/bin/busybox"
	if [ ! -x "$busybox" ]; then
		(cd "$out" && apt-get -qq download busybox-static:arm64 2>&1 |
			grep -v unsandboxed >&2 || true)
		dpkg-deb -x "$(ls "$out"/busybox-static_*_arm64.deb | tail -1)" "$out/busybox-arm64"
	fi
fi

make -s -C "$st" "${kst[@]}" TARGETS="vfio iommu" \
	KHDR_INCLUDES="-isystem $hdr" LDFLAGS=-static \
	O="$out/kselftest-build" INSTALL_PATH="$root/kselftest" install >/dev/null
# kselftest's install goes on past a target that fails to build: check
# that every program of both targets is there.
for t in vfio iommu; do
	for prog in $(make -s -C "$st/$t" "${kst[@]}" emit_tests | sed 's/^[^:]*://'); do
		[ -x "$root/kselftest/$t/$prog" ] ||
			{ echo "guest.sh: kselftest $t/$prog was not built" >&2; exit 1; }
	done
done

build() {	# build NAME SOURCE LIST
	"${cross}gcc" -static -O2 -Wall -Werror -pthread -isystem "$hdr" -I "$st" \
		-I "$st/vfio" -o "$root/tests/$1" "$2" "$lib"
	echo "$1" >> "$root/tests/$3.list"
}
touch "$root/tests/test.list" "$root/tests/bench.list" "$root/tests/dkms.list"
build robust_fuzz "$here/guest/fuzz/robust_fuzz.c" test
build bench_getpa "$here/guest/bench/bench_getpa.c" bench
build edu_dma_demo "$here/guest/demo/edu_dma_demo.c" run
build iommu_device_test "$here/guest/dkms/iommu_device_test.c" dkms

cp "$busybox" "$root/bin/busybox"
cp "$here/guest/init" "$root/init"
cp "$here/guest/run-tests" "$root/run-tests"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) > "$out/initramfs.cpio"
