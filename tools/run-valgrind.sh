#!/bin/bash
# Builds cloudapp-login (tools/build.sh) and runs the integration tests
# that start cloudapp-ticketd with each daemon under valgrind's memcheck.
# A memory error or a definitely or indirectly lost block in any daemon
# fails the run, as does a daemon whose valgrind log has no final summary.
# Needs root and valgrind.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || {
	echo "run-valgrind: valgrind is not installed" >&2
	exit 1
}
tools/build.sh

# The integration tests that start the daemon through start_daemon() in
# tests/integration/lib.sh, which puts DAEMON_WRAPPER before it.
tests="tests/integration/test_login_flow.sh tests/integration/test_daemon.sh
	tests/integration/test_limits.sh tests/integration/test_credentials.sh
	tests/integration/test_pam.sh"

logs=$(mktemp -d /tmp/cloudapp-valgrind.XXXXXX)
# Only leaks of the kinds that --errors-for-leak-kinds names count as
# errors; "still reachable" blocks, such as libcurl's and OpenSSL's global
# state, do not.  Each process writes its own log, checked below.
export DAEMON_WRAPPER="valgrind --tool=memcheck --leak-check=full
	--show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99
	--log-file=$logs/valgrind.%p.log"
# memcheck makes the daemon 10 to 50 times slower; the tests scale their
# waits for a service to come up by this factor.
export TIMEOUT_SCALE=5

status=0
make -j"$(nproc)" check TESTS="$(echo $tests)" || status=$?
if [ "$status" != 0 ]; then
	echo "run-valgrind: some tests failed; the logs:" >&2
	tools/print-failed-logs.sh tests/integration
fi

# lib_cleanup() in the tests waits for every daemon it stopped, so each
# log is complete by now.
runs=0
bad=0
for log in "$logs"/valgrind.*.log; do
	[ -f "$log" ] || continue
	runs=$((runs + 1))
	if ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
		bad=$((bad + 1))
		echo "----- $log" >&2
		cat "$log" >&2
	fi
done
echo "run-valgrind: $runs daemon runs under memcheck, $bad with errors," \
	"leaks or no summary"
if [ "$runs" = 0 ] || [ "$bad" != 0 ]; then
	status=1
else
	rm -rf "$logs"
fi
exit "$status"
