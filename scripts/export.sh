#!/usr/bin/env bash
# Export the work tree's commits (base..HEAD) to patches/ as a format-patch
# series with a cover letter. The cover letter's subject and text are kept
# from the previous export; its shortlog and diffstat are regenerated.
# Usage: export.sh TREE PATCHDIR
set -euo pipefail

tree=$(realpath "$1") patches=$(realpath "$2")
old_cover="$patches/0000-cover-letter.patch"
new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT

n=$(git -C "$tree" rev-list --count base..HEAD)
[ "$n" -gt 0 ] || { echo "export: no commits on top of base" >&2; exit 1; }

git -C "$tree" format-patch -q --zero-commit --no-signature --base=base \
	--cover-letter -o "$new" base..HEAD

if [ -f "$old_cover" ]; then
	# Subject: everything after "[PATCH 0/N] " on the old Subject line.
	subject=$(sed -n 's/^Subject: \[PATCH [0-9]*\/[0-9]*\] //p' "$old_cover")
	date=$(sed -n 's/^Date: //p' "$old_cover")
	# Blurb: from the first blank line after the headers to the shortlog.
	awk '/^$/ && !body { body = 1; next }
	     body && /^[^ ].* \([0-9]+\):$/ { exit }
	     body { print }' "$old_cover" > "$new/blurb"
	awk -v subject="$subject" -v date="$date" -v blurbfile="$new/blurb" '
	     /\*\*\* SUBJECT HERE \*\*\*/ { sub(/\*\*\* SUBJECT HERE \*\*\*/, subject) }
	     /^Date: / && date != "" { print "Date: " date; next }
	     /^\*\*\* BLURB HERE \*\*\*$/ {
		while ((getline line < blurbfile) > 0) print line
		skip = 1; next
	     }
	     skip && /^$/ { skip = 0; next }
	     { print }' "$new/0000-cover-letter.patch" > "$new/cover" &&
		mv "$new/cover" "$new/0000-cover-letter.patch"
	rm -f "$new/blurb"
fi

rm -f "$patches"/[0-9][0-9][0-9][0-9]-*.patch
cp "$new"/*.patch "$patches/"
(cd "$patches" && ls [0-9][0-9][0-9][0-9]-*.patch | grep -v '^0000-' > series)
echo "export: $n patches to $patches (edit the subject and text of 0000-cover-letter.patch there)"

# The tree now matches patches/: record it so 'make tree' does not re-apply.
stamp="$tree/.git/harness-series"
(cd "$patches" && cat series $(cat series)) | sha256sum | cut -d' ' -f1 > "$stamp"
git -C "$tree" rev-parse HEAD > "$stamp.head"
