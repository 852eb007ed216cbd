#!/bin/bash
# Prints the log of every test under DIR whose automake result file
# records FAIL or ERROR, for the test runners to show after a failed run.
# Usage: print-failed-logs.sh DIR
set -u

dir=${1:?usage: print-failed-logs.sh DIR}
find "$dir" -name '*.trs' | sort | while read -r result; do
	if grep -q '^:test-result: \(FAIL\|ERROR\)' "$result"; then
		echo "----- ${result%.trs}.log" >&2
		cat "${result%.trs}.log" >&2
	fi
done
