#!/usr/bin/env bash
# Add up the counts of several runs; print the closing line; fail on any failure.
# Usage: summary.sh LOG...
set -euo pipefail

p=0 f=0 s=0
for log in "$@"; do
	if [ -f "$log.counts" ]; then
		read -r a b c < "$log.counts"
	else
		echo "summary: $log has no result"
		a=0 b=1 c=0
	fi
	p=$((p + a)) f=$((f + b)) s=$((s + c))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
