#!/usr/bin/env bash
# Install the Debian packages the harness needs, only those that are missing.
set -euo pipefail

pkgs=(build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils kmod
      rsync python3 git ccache sparse qemu-system-x86 busybox-static)
for what in "$@"; do
	case $what in
	# what 'make check' needs: checkpatch's SPDX check, Sphinx, and what
	# 'make bindeb-pkg' needs (its packaging check)
	check) pkgs+=(python3-ply python3-git python3-sphinx dpkg-dev debhelper dwarves) ;;
	# what 'make bindeb-pkg' needs; arm64: a cross compiler, QEMU for
	# arm64 guests, and arm64 packages known to apt (Debian's arm64 kernel
	# configuration, the guests' busybox)
	deb) pkgs+=(dpkg-dev debhelper dwarves) ;;
	# make dkms: the DKMS package, and the Debian roots its test boots
	dkms) pkgs+=(dpkg-dev debhelper dh-dkms lintian debootstrap e2fsprogs) ;;
	# make dkms-emulated: a foreign root's programs run by qemu-user
	emulate) pkgs+=(qemu-user-static binfmt-support) ;;
	arm64) pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm) ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
new_arch=0
if [[ " $* " == *" arm64 "* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "deps: adding the arm64 architecture to dpkg"
	$SUDO dpkg --add-architecture arm64
	new_arch=1
fi
[ ${#missing[@]} -eq 0 ] && [ $new_arch = 0 ] && exit 0

$SUDO apt-get update -qq
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
