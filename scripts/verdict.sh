#!/usr/bin/env bash
# Read a guest console log: count TAP results, and count as failures a kernel
# splat, a SKIP the kernel's list does not expect, a guest that did not
# finish, a QEMU that failed, or no test at all.
# Writes "PASSED FAILED SKIPPED" to LOG.counts, prints a line, and exits
# non-zero if anything failed.
# Usage: verdict.sh NAME LOG QEMU_STATUS
set -euo pipefail

name=$1 log=$2 qemu_rc=$3
# kselftest's runner nests each program's TAP under "# " and ends it with a
# line of its own ("ok N selftests: vfio: PROGRAM"). Un-nest the test
# results, name the program as run-tests does, and keep the runner's line
# only where it reports a failure (an exit status, a timeout) that the
# program's own lines do not.
text=$(tr -d '\r' < "$log" | awk '
	/^# selftests: [^ ]+: [^ ]+$/ { print "# harness: running " $4; failed = 0; next }
	/^# (not )?ok [0-9]+ / { sub(/^# /, ""); if (/^not ok/) failed = 1; print; next }
	/^(not )?ok [0-9]+ selftests: / { if (/^not ok/ && !failed) print; next }
	{ print }')

passed=$(grep -E '^ok( |$)' <<< "$text" | grep -cv '# SKIP' || true)
skipped=$(grep -E '^ok( |$)' <<< "$text" | grep -c '# SKIP' || true)
failed=$(grep -cE '^not ok( |$)' <<< "$text" || true)

# Kernel lines carry a printk timestamp; only those are searched for splats.
splat='(BUG:|WARNING:|Oops|Kernel panic|general protection fault|KASAN:|UBSAN:'
splat+='|possible recursive locking|possible circular locking|inconsistent lock state'
splat+='|suspicious RCU usage|kmemleak: .*suspected memory leak|INFO: task .* blocked'
splat+='|Call Trace:|stack segment:'
# arm64's
splat+='|Call trace:|Internal error:|Unable to handle kernel|SError Interrupt)'
splats=$(grep -E '^\[ *[0-9]+\.[0-9]+\]' <<< "$text" | grep -E "$splat" || true)
if [ -n "$splats" ]; then
	echo "$name: kernel splat:"
	sed 's/^/    /' <<< "$splats" | head -20
	failed=$((failed + 1))
fi
# Every SKIP must be one that guest/skips/NAME expects ("PROGRAM TEST"
# lines, shell patterns allowed): a feature that vanished must not pass as
# a row of skips.
list="$(dirname "$0")/../guest/skips/$name"
patterns=()
[ -f "$list" ] && mapfile -t patterns < <(grep -v '^#' "$list" | grep .)
while read -r prog test; do
	[ -n "$prog" ] || continue
	for pat in "${patterns[@]}"; do
		# shellcheck disable=SC2053 # the list holds patterns
		[[ "$prog $test" == $pat ]] && continue 2
	done
	echo "$name: unexpected SKIP: $prog $test"
	failed=$((failed + 1))
done < <(awk '/^# harness: running /{ prog = $4 }
	      /^ok .*# SKIP/{ t = $0; sub(/^ok [0-9]+ /, "", t); sub(/ # SKIP.*/, "", t)
			      print prog, t }' <<< "$text")
if ! grep -q '^harness: done' <<< "$text"; then
	echo "$name: the guest did not finish its tests"
	failed=$((failed + 1))
fi
if [ "$qemu_rc" -ne 0 ]; then
	echo "$name: QEMU failed (status $qemu_rc)"
	failed=$((failed + 1))
fi
if [ $((passed + failed + skipped)) -eq 0 ]; then
	echo "$name: no test ran"
	failed=1
fi
grep -E '^not ok' <<< "$text" | sed "s/^/$name: /" || true
echo "$passed $failed $skipped" > "$log.counts"
echo "$name: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
