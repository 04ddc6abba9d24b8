#!/usr/bin/env bash
# Install the Debian packages the harness needs, only those that are missing.
set -euo pipefail

pkgs=(build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils kmod
      rsync python3 git ccache sparse qemu-system-x86 busybox-static)
# 'deps.sh check' adds what 'make check' needs: checkpatch's SPDX check, Sphinx.
[ "${1:-}" = check ] && pkgs+=(python3-ply python3-git python3-sphinx)
# 'deps.sh deb' adds what 'make bindeb-pkg' needs.
[ "${1:-}" = deb ] && pkgs+=(dpkg-dev debhelper dwarves)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
