#!/bin/bash
# Runs every test: the cmocka unit tests, the emulator's self-test and the
# integration tests (real PAM stack, socket activation, uids and HTTPS).
# The integration tests need root.
set -eu
cd "$(dirname "$0")/.."
tools/build.sh
status=0
make -j"$(nproc)" check || status=$?
if [ "$status" != 0 ]; then
	echo "run-tests: some tests failed; the logs:" >&2
	for log in $(find tests -name '*.log' ! -name test-suite.log); do
		if grep -q '^FAIL\|^ERROR' "${log%.log}.trs" 2>/dev/null; then
			echo "----- $log" >&2
			cat "$log" >&2
		fi
	done
fi
# One closing line that counts every test program and every check inside
# the integration scripts.
pass=$(sed -n 's/^# PASS: *//p' test-suite.log 2>/dev/null || echo 0)
fail=$(sed -n 's/^# FAIL: *//p' test-suite.log 2>/dev/null || echo 0)
error=$(sed -n 's/^# ERROR: *//p' test-suite.log 2>/dev/null || echo 0)
echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${error:-0} )) failed"
exit "$status"
