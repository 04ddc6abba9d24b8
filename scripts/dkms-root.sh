#!/usr/bin/env bash
# Make a Debian root as a user's machine is: debootstrap (minbase) of a
# release, then Debian's kernel image and headers of one ABI installed by
# apt in it, with the release's own compiler. The DKMS package is not in it:
# scripts/dkms-test.sh installs that into a copy.
# The archive is the one this machine's apt uses; the security suite and
# backports are added to the root's own sources. Downloads are kept in
# DL/debootstrap and DL/apt-RELEASE, so only the first run fetches them.
# DEB_ARCH=arm64 (another architecture than this machine's): debootstrap's
# foreign stage only, with PACKAGEs among its downloads, and every package
# unpacked by dpkg-deb: files, no maintainer script, no code of DEB_ARCH
# run (the root a foreign kernel boots: scripts/dkms-test.sh). With
# EMULATE=1, a whole foreign root instead: debootstrap's second stage and
# apt run in it under qemu-user-static (binfmt_misc): slow.
# Usage: [DEB_ARCH=arm64 [EMULATE=1]] dkms-root.sh ROOT DL RELEASE PACKAGE...
set -euo pipefail

root=$(realpath -m "$1") dl=$(realpath -m "$2") release=$3
shift 3
pkgs=("$@")
stamp="$root.stamp"
arch=${DEB_ARCH:-$(dpkg --print-architecture)}
want="$release $arch${EMULATE:+ emulated} ${pkgs[*]}"
if [ -d "$root" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi

# The machine's own Debian mirrors, as apt knows them.
# shellcheck disable=SC2016 # apt's format, not the shell's
mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' 'Label: Debian' | head -n 1)
# shellcheck disable=SC2016
security=$(apt-get indextargets --format '$(REPO_URI)' 'Label: Debian-Security' | head -n 1)
[ -n "$mirror" ] && [ -n "$security" ] ||
	{ echo "dkms-root: apt knows no Debian archive or security archive" >&2; exit 1; }

mounts=()
cleanup() {
	local m
	for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "dkms-root: debootstrap $release ($arch) into $root"
rm -rf "$root" "$stamp"
mkdir -p "$dl/debootstrap" "$dl/apt-$release"
start=$SECONDS
foreign=()
[ "$arch" = "$(dpkg --print-architecture)" ] || foreign=(--arch="$arch" --foreign)
if [ ${#foreign[@]} -gt 0 ] && [ -z "${EMULATE:-}" ]; then
	debootstrap --variant=minbase --arch="$arch" --foreign --cache-dir="$dl/debootstrap" \
		--include="$(IFS=,; echo "${pkgs[*]}")" "$release" "$root" "$mirror" \
		> "$root.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
	# as dpkg does: /lib, a link to usr/lib in the root, stays one
	for deb in "$root"/var/cache/apt/archives/*.deb; do
		dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
	done
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root/debootstrap"
	# In a container debootstrap makes /proc a link to the host's, which
	# its second stage would undo: the guest mounts its own there.
	if [ -L "$root/proc" ]; then rm "$root/proc" && mkdir "$root/proc"; fi
	echo "$want" > "$stamp"
	echo "dkms-root: $release $arch root unpacked in $((SECONDS - start)) s"
	exit 0
fi
debootstrap --variant=minbase "${foreign[@]}" --cache-dir="$dl/debootstrap" "$release" "$root" \
	"$mirror" > "$root.debootstrap.log" 2>&1 ||
	{ tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
if [ ${#foreign[@]} -gt 0 ]; then
	qemu=$(dpkg-architecture -a "$arch" -q DEB_HOST_GNU_CPU 2>/dev/null)
	[ -e /proc/sys/fs/binfmt_misc/status ] ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	[ -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ] || update-binfmts --enable "qemu-$qemu"
	echo "dkms-root: debootstrap's second stage, emulated"
	chroot "$root" /debootstrap/debootstrap --second-stage >> "$root.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
fi
cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror $release main
deb $security $release-security main
deb $mirror $release-backports main
EOF
# No daemons in a chroot; the image's postinst makes an initramfs.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
mount --bind "$dl/apt-$release" "$root/var/cache/apt/archives" &&
	mounts+=("$root/var/cache/apt/archives")
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get -qq update
echo "dkms-root: apt-get install ${pkgs[*]}"
in_root apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends install "${pkgs[@]}" \
	> "$root.apt.log" 2>&1 || { tail -n 30 "$root.apt.log" >&2; exit 1; }
cleanup
mounts=()
echo "$want" > "$stamp"
echo "dkms-root: $release root ready in $((SECONDS - start)) s"
