#!/bin/bash
# Runs libFuzzer harnesses one after the other, each for SECONDS seconds
# on a copy of its committed corpus, and prints the executions, the speed
# and the coverage of each run.  Exits 1 when any harness found a crash,
# a leak or a timeout.  The input that caused it stays in BUILDDIR as
# crash-*, leak-* or timeout-*.
#
# Usage: run-fuzz.sh SECONDS SRCDIR BUILDDIR NAME...
#   SRCDIR   the tests/fuzz folder with corpus/NAME and NAME.dict
#   BUILDDIR the folder with the fuzz_NAME programs
set -u

if [ $# -lt 4 ]; then
	echo "usage: $0 SECONDS SRCDIR BUILDDIR NAME..." >&2
	exit 2
fi
seconds=$1
srcdir=$(cd "$2" && pwd)
builddir=$(cd "$3" && pwd)
shift 3

# One input may take at most this many seconds before it counts as a hang.
input_timeout=10

# lsan.supp lists leaks inside libconfig that the harnesses cannot free.
LSAN_OPTIONS="suppressions=$srcdir/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

status=0
for name in "$@"; do
	work=$(mktemp -d "${TMPDIR:-/tmp}/cloudapp-fuzz-$name-XXXXXX")
	mkdir "$work/corpus" "$work/tmp"
	cp "$srcdir/corpus/$name"/* "$work/corpus/"
	dict=()
	if [ -f "$srcdir/$name.dict" ]; then
		dict=("-dict=$srcdir/$name.dict")
	fi
	log="$builddir/fuzz_$name.log"
	echo "fuzz_$name: ${seconds} s, log in $log"
	# The harness's temporary folder goes under $work/tmp, so that it
	# is removed below even when a crash stops the harness.
	TMPDIR="$work/tmp" "$builddir/fuzz_$name" \
		-max_total_time="$seconds" -timeout="$input_timeout" \
		-print_final_stats=1 -artifact_prefix="$builddir/" \
		"${dict[@]}" "$work/corpus" > "$log" 2>&1
	rc=$?
	# The last status line: "#RUNS ... cov: N ft: N ... exec/s: N ...".
	grep -E '^#[0-9]+' "$log" | tail -n 1
	grep -E '^(Done|stat::number_of_executed_units)' "$log"
	grep -E '^stat::average_exec_per_sec' "$log"
	if [ "$rc" != 0 ]; then
		echo "fuzz_$name FAILED (exit status $rc); see $log" >&2
		status=1
	fi
	rm -rf "$work"
done
exit "$status"
