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
	tools/print-failed-logs.sh tests
fi
# A closing line that counts the test programs, then the checks inside
# the integration scripts, which each end their log with "N passed, M
# failed".
count() {
	sed -n "s/^# $1: *//p" test-suite.log 2>/dev/null || echo 0
}
fail=$(($(count FAIL) + $(count ERROR)))
checks_passed=0
checks_failed=0
for log in tests/integration/*.log; do
	[ -f "$log" ] || continue
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	[ -n "$line" ] || continue
	set -- $line
	checks_passed=$((checks_passed + $1))
	checks_failed=$((checks_failed + $3))
done
echo "tests: $(count PASS) programs passed, $fail failed, $(count SKIP) skipped;" \
	"integration checks: $checks_passed passed, $checks_failed failed"
exit "$status"
