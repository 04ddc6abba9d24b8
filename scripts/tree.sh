#!/usr/bin/env bash
# Make the kernel work tree: the pristine base as the root commit (tag
# "base"), then the series in patches/ applied with git am.
# Usage: [ONLY="PATH..."] tree.sh DEB TREE PATCHDIR   (DEB: a linux-source
# .deb, or an upstream .tar.xz; ONLY: these files and directories of the
# source, not the whole of it, as scripts/dkms.sh takes them)
set -euo pipefail

deb=$(realpath "$1") tree=$(realpath -m "$2") patches=$(realpath "$3")
stamp="$tree/.git/harness-series"

series_hash() {
	(cd "$patches" && cat series $(cat series) 2>/dev/null) | sha256sum | cut -d' ' -f1
}

# git am of the series in order; the stamp records what was applied.
apply_series() {
	local count=0 p
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		git -C "$tree" am -q --keep-cr "$patches/$p" || {
			echo "tree: $p does not apply on the base; the tree is left mid-'git am'" >&2
			exit 1
		}
		count=$((count + 1))
	done < "$patches/series"
	echo "tree: base + $count patches"
	series_hash > "$stamp"
	git -C "$tree" rev-parse HEAD > "$stamp.head"
}

if [ -d "$tree/.git" ]; then
	if [ "$(cat "$stamp" 2>/dev/null)" != "$(series_hash)" ] &&
	   [ "$(git -C "$tree" rev-parse HEAD)" != "$(cat "$stamp.head" 2>/dev/null)" ]; then
		echo "tree: note: $tree has commits not exported to patches/ ('make export')"
	elif [ "$(cat "$stamp" 2>/dev/null)" != "$(series_hash)" ]; then
		echo "tree: patches/ changed since $tree was made: re-applying the series"
		git -C "$tree" am --abort >/dev/null 2>&1 || true
		git -C "$tree" reset -q --hard base
		git -C "$tree" clean -qfdx
		apply_series
	fi
	exit 0
fi

echo "tree: unpacking $(basename "$deb") into $tree"
tmp="$tree.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
case $deb in
*.tar.xz)	# an upstream tarball (make applies): its one top directory
	tar -xJf "$deb" -C "$tmp"
	top=$(ls "$tmp") ;;
*)
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/src/linux-source-6.12.tar.xz
	only=()
	for p in ${ONLY:-}; do only+=("linux-source-6.12/$p"); done
	tar -xJf "$tmp/usr/src/linux-source-6.12.tar.xz" -C "$tmp" "${only[@]}"
	rm "$tmp/usr/src/linux-source-6.12.tar.xz"
	top=linux-source-6.12 ;;
esac
rm -rf "$tree"
mv "$tmp/$top" "$tree"
rm -rf "$tmp"

cd "$tree"
git init -q
git config gc.auto 0
git add -A -f
# Fixed identity and dates: the base commit id is the same on every machine.
GIT_AUTHOR_DATE=2026-11-14T12:56:00Z GIT_COMMITTER_DATE=2026-11-14T12:56:00Z \
git -c user.name=base -c user.email=base@localhost \
	commit -q -m "Debian linux-source-6.12 $(basename "$deb" | cut -d_ -f2)"
git tag base

apply_series
