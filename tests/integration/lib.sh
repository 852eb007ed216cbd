# Shared setup for the integration tests and the demo: a scratch folder,
# test users through nss_wrapper, the HTTPS emulator, cloudapp-ticketd under
# systemd-socket-activate, and PAM through pam_wrapper.  Source it from bash
# with top_srcdir and top_builddir set.

set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"

# Seconds to wait for a started service to become ready.  TIMEOUT_SCALE,
# a whole number, stretches it for a daemon under valgrind.
READY_TIMEOUT=$((20 * ${TIMEOUT_SCALE:-1}))

TEST_ALICE_UID=10001
TEST_BOB_UID=10002
# The system user of the service, as configure --with-service-user set it;
# make check passes the name, and a run by hand reads config.h.
: "${CLOUDAPP_SERVICE_USER:=$(sed -n 's/^#define CLOUDAPP_SERVICE_USER "\(.*\)"$/\1/p' \
	"$top_builddir/config.h" 2>/dev/null)}"
TEST_SERVICE_USER=${CLOUDAPP_SERVICE_USER:-cloudapp-ticketd}
TEST_SERVICE_UID=990
TEST_ACCESS_KEY_ID=LTAItestaccesskey
TEST_APP_ID=ca-emulator0001

NSS_WRAPPER_LIB=$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n 1)
PAM_WRAPPER_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -n 1)
# LD_PRELOAD for the programs that load pam_cloudapp.so (pamtester,
# python3).  SANITIZER_PRELOAD, which tools/run-sanitized.sh sets to
# libasan, comes first, because those programs are not built with ASan,
# and a module built with it loads only where ASan's runtime was loaded
# before any other library.
PAM_PRELOAD=${SANITIZER_PRELOAD:+$SANITIZER_PRELOAD:}$PAM_WRAPPER_LIB:$NSS_WRAPPER_LIB

lib_pids=()

# Prints a step of the flow; the demo shows these, the tests log them.
step() {
	printf '==> %s\n' "$*"
}

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

skip() {
	printf 'SKIP: %s\n' "$*" >&2
	exit 77
}

passed=0
failed=0
skipped=0

# Exit status of a check that cannot run in this setup, after it printed
# why; the same code as automake's SKIP.
CHECK_SKIPPED=77

# Runs the command after NAME and prints "ok - NAME" or "not ok - NAME" by
# its exit status, or "ok - NAME # SKIP" for CHECK_SKIPPED.
check() {
	local name=$1 status=0
	shift
	"$@" || status=$?
	if [ "$status" = 0 ]; then
		echo "ok - $name"
		passed=$((passed + 1))
	elif [ "$status" = "$CHECK_SKIPPED" ]; then
		echo "ok - $name # SKIP"
		skipped=$((skipped + 1))
	else
		echo "not ok - $name"
		failed=$((failed + 1))
	fi
}

# Prints the totals, which tools/run-tests.sh reads, and fails when a check
# failed.
check_summary() {
	echo "$passed passed, $failed failed"
	[ "$skipped" = 0 ] || echo "$skipped skipped"
	[ "$failed" = 0 ]
}

lib_cleanup() {
	local pid
	for pid in "${lib_pids[@]}"; do
		# The process may have ended already.  Under set -e, as in the
		# benchmarks, a failed kill would end the cleanup here.
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${lib_pids[@]}"; do
		# A killed child ends with 143; that is not a failure here.
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${WORK:-}" ] && [ -z "${KEEP_WORK:-}" ]; then
		rm -rf "$WORK"
	fi
}

# Checks that everything the tests run is installed and we are root.
require_tools() {
	[ "$(id -u)" = 0 ] || skip "the integration tests need root (setpriv, real uids)"
	local tool
	for tool in python3 openssl setpriv systemd-socket-activate pamtester; do
		command -v "$tool" >/dev/null || skip "$tool is not installed"
	done
	[ -n "$NSS_WRAPPER_LIB" ] || skip "libnss-wrapper is not installed"
	[ -n "$PAM_WRAPPER_LIB" ] || skip "libpam-wrapper is not installed"
	[ -x "$top_builddir/cloudapp-ticketd" ] || fail "build first: $top_builddir/cloudapp-ticketd is missing"
}

# Creates $WORK, readable by the test users, with passwd and group files,
# and sets CTL to a copy of cloudappctl they can run.
setup_work() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudapp-test.XXXXXX")
	chmod 0755 "$WORK"
	trap lib_cleanup EXIT
	cat > "$WORK/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/sh
alice:x:$TEST_ALICE_UID:$TEST_ALICE_UID:Alice:/nonexistent:/bin/sh
bob:x:$TEST_BOB_UID:$TEST_BOB_UID:Bob:/nonexistent:/bin/sh
Carol:x:10003:10003:Carol:/nonexistent:/bin/sh
$TEST_SERVICE_USER:x:$TEST_SERVICE_UID:$TEST_SERVICE_UID:App Streaming ticket daemon:/:/usr/sbin/nologin
PASSWD
	cat > "$WORK/group" <<GROUP
root:x:0:
alice:x:$TEST_ALICE_UID:
bob:x:$TEST_BOB_UID:
$TEST_SERVICE_USER:x:$TEST_SERVICE_UID:
GROUP
	export NSS_WRAPPER_PASSWD=$WORK/passwd NSS_WRAPPER_GROUP=$WORK/group
	mkdir -p "$WORK/run-alice" "$WORK/run-bob" "$WORK/out" "$WORK/pam-runtime"
	chown "$TEST_ALICE_UID:$TEST_ALICE_UID" "$WORK/run-alice"
	chown "$TEST_BOB_UID:$TEST_BOB_UID" "$WORK/run-bob"
	chmod 0700 "$WORK/run-alice" "$WORK/run-bob"
	chmod 0777 "$WORK/out"
	# Programs the test users run are copied here, because the build tree
	# may sit in a folder that only root can enter, such as mktemp -d.
	mkdir -p "$WORK/bin"
	install -m 0755 "$top_builddir/cloudappctl" \
		"$top_srcdir/tests/integration/stub-client.sh" "$WORK/bin/"
	CTL=$WORK/bin/cloudappctl
}

# Waits until the command in "$@" succeeds, or fails after READY_TIMEOUT.
wait_for() {
	local what=$1
	shift
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "timed out waiting for $what"
}

# Starts the emulator; sets EMULATOR_PORT and EMULATOR_STATE.  A second
# emulator needs another EMULATOR_NAME; EMULATOR_ARGS adds options, and
# EMULATOR_CERT picks a certificate of make-certs.sh (default "server"),
# and EMULATOR_WRAPPER is a command to run it under, such as nice.
start_emulator() {
	local task_seconds=${1:-1} name=${EMULATOR_NAME:-emulator}
	local cert=${EMULATOR_CERT:-server}
	"$top_srcdir/tests/emulator/make-certs.sh" "$WORK/certs" >/dev/null
	EMULATOR_STATE=$WORK/$name
	mkdir -p "$EMULATOR_STATE"
	if [ ! -f "$WORK/emulator-secret" ]; then
		printf 'emulator-secret-%s\n' "$RANDOM$RANDOM" > "$WORK/emulator-secret"
		chmod 0600 "$WORK/emulator-secret"
	fi
	${EMULATOR_WRAPPER:-} python3 "$top_srcdir/tests/emulator/appstream_emulator.py" \
		--port 0 --port-file "$WORK/$name.port" \
		--cert "$WORK/certs/$cert.pem" --key "$WORK/certs/$cert.key" \
		--state-dir "$EMULATOR_STATE" \
		--access-key-id "$TEST_ACCESS_KEY_ID" \
		--access-key-secret-file "$WORK/emulator-secret" \
		--task-seconds "$task_seconds" ${EMULATOR_ARGS:-} \
		2> "$WORK/$name.log" &
	lib_pids+=($!)
	wait_for "the emulator" test -s "$WORK/$name.port"
	EMULATOR_PORT=$(cat "$WORK/$name.port")
}

# Writes a daemon configuration NAME.conf using SECRET_FILE; extra settings
# come on stdin.
write_config() {
	local name=$1 secret_file=$2
	{
		cat <<CONF
endpoint = "https://127.0.0.1:$EMULATOR_PORT";
ca_file = "$WORK/certs/ca.pem";
access_key_id = "$TEST_ACCESS_KEY_ID";
access_key_secret_file = "$secret_file";
product_type = "CloudApp";
app_id = "$TEST_APP_ID";
end_user_id = "%u";
poll_interval = 0.2;
ticket_timeout = 20;
client_command = [ "$WORK/bin/stub-client.sh", "%{ticket_file}", "$WORK/out", "%{end_user_id}" ];
CONF
		cat
	} > "$WORK/$name.conf"
}

# Starts cloudapp-ticketd through systemd-socket-activate on SOCKET.
start_daemon() {
	local config=$1 socket=$2
	local name env_flags=()
	# DAEMON_ENV names variables of this shell to pass on, without
	# putting their values on a command line.
	for name in ${DAEMON_ENV:-}; do
		env_flags+=(-E "$name")
	done
	# systemd-socket-activate passes on only the variables named, so the
	# settings of tools/run-sanitized.sh are named here when set.
	for name in ASAN_OPTIONS UBSAN_OPTIONS NSS_WRAPPER_DISABLE_DEEPBIND; do
		[ -z "${!name+set}" ] || env_flags+=(-E "$name")
	done
	# DAEMON_PRELOAD adds libraries to LD_PRELOAD, for fault injection.
	systemd-socket-activate -l "$socket" \
		-E LD_PRELOAD="$NSS_WRAPPER_LIB${DAEMON_PRELOAD:+:$DAEMON_PRELOAD}" \
		-E NSS_WRAPPER_PASSWD -E NSS_WRAPPER_GROUP "${env_flags[@]}" \
		${DAEMON_WRAPPER:-} "$top_builddir/cloudapp-ticketd" \
		--config "$config" ${DAEMON_ARGS:-} 2>> "$WORK/daemon.log" &
	lib_pids+=($!)
	wait_for "the socket $socket" test -S "$socket"
	# systemd-socket-activate creates the socket with the umask's mode;
	# the unit's SocketMode=0666 is what production uses.
	chmod 0666 "$socket"
	if [ "${TIMEOUT_SCALE:-1}" -gt 1 ]; then
		wait_until_serving "$socket"
	fi
}

# Counts the daemons that logged that they serve, so far.
count_serving() {
	grep -c "serving tickets from" "$WORK/daemon.log" 2>/dev/null || true
}

# systemd-socket-activate starts the daemon at the first connection.  A
# daemon under valgrind takes seconds to start, which a check's first call
# would spend out of its timeout, so this connects once without a call and
# waits until the daemon logs that it serves.
wait_until_serving() {
	local before
	before=$(count_serving)
	python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$1" ||
		fail "cannot connect to $1"
	wait_for "the daemon on $1" serving_more_than "$before"
}

serving_more_than() {
	[ "$(count_serving)" -gt "$1" ]
}

# Runs a command as a test user, with that user's runtime folder.
as_user() {
	local user=$1
	shift
	local uid
	uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$WORK/passwd")
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- \
		env LD_PRELOAD="$NSS_WRAPPER_LIB" \
		NSS_WRAPPER_PASSWD="$NSS_WRAPPER_PASSWD" \
		NSS_WRAPPER_GROUP="$NSS_WRAPPER_GROUP" \
		XDG_RUNTIME_DIR="$WORK/run-$user" "$@"
}

# Writes a PAM service file NAME from the lines on stdin, with
# PAM_CLOUDAPP standing for the module's path.
write_pam_stack() {
	mkdir -p "$WORK/pam.d"
	printf '%s\n' "auth required pam_deny.so" "account required pam_deny.so" \
		"session required pam_deny.so" > "$WORK/pam.d/other"
	sed "s|PAM_CLOUDAPP|$top_builddir/.libs/pam_cloudapp.so|" > "$WORK/pam.d/$1"
}

# Writes a PAM service file NAME whose session stack has pam_cloudapp.so.
write_pam_service() {
	local name=$1
	shift
	mkdir -p "$WORK/pam.d"
	# Linux-PAM falls back to the service "other" and reports when it is
	# missing; deny everything there, as Debian's own file does.
	printf '%s\n' "auth required pam_deny.so" "account required pam_deny.so" \
		"session required pam_deny.so" > "$WORK/pam.d/other"
	cat > "$WORK/pam.d/$name" <<PAM
auth     required  pam_permit.so
account  required  pam_permit.so
session  required  pam_permit.so
session  optional  $top_builddir/.libs/pam_cloudapp.so $*
PAM
}

# Compiles the preload library tests/integration/NAME.c into
# $WORK/NAME.so, once, and prints its path.
build_preload() {
	local name=$1
	if [ ! -f "$WORK/$name.so" ]; then
		cc -shared -fPIC -o "$WORK/$name.so" \
			"$top_srcdir/tests/integration/$name.c" -ldl || return 1
	fi
	echo "$WORK/$name.so"
}

# Runs pamtester with pam_wrapper for service $1, user $2, operations after.
# With PAM_SYSLOG_FILE set, what the module logs is appended to that file.
pam_login() {
	local service=$1 user=$2 preload=$PAM_PRELOAD use_syslog=
	shift 2
	mkdir -p "$WORK/pam-runtime"
	# pam_wrapper handles pam_syslog() itself unless PAM_WRAPPER_USE_SYSLOG=1.
	if [ -n "${PAM_SYSLOG_FILE:-}" ]; then
		preload+=":$(build_preload syslog_capture)" || return 1
		use_syslog=1
	fi
	LD_PRELOAD="$preload" PAM_WRAPPER=1 PAM_WRAPPER_USE_SYSLOG=$use_syslog \
		PAM_WRAPPER_SERVICE_DIR="$WORK/pam.d" \
		PAM_WRAPPER_RUNTIME_DIR="$WORK/pam-runtime" \
		CLOUDAPP_TEST_SYSLOG="${PAM_SYSLOG_FILE:-}" \
		pamtester -v "$service" "$user" "$@"
}

# Runs tests/integration/pam_session.py for service $1, user $2 and the
# PAM environment variables after them.  Returns CHECK_SKIPPED in the build
# of tools/run-sanitized.sh.  With PAM_WRAPPER=1 in python3, nss_wrapper
# opens libc with RTLD_DEEPBIND even when NSS_WRAPPER_DISABLE_DEEPBIND is
# set (seen with pam_wrapper 1.1.4 and nss_wrapper 1.1.12 on Debian 12),
# and ASan aborts a process that does so.
pam_session() {
	if [ -n "${SANITIZER_PRELOAD:-}" ]; then
		echo "SKIP: pam_session.py cannot run under ASan, because" \
			"nss_wrapper opens libc with RTLD_DEEPBIND there"
		return "$CHECK_SKIPPED"
	fi
	LD_PRELOAD="$PAM_PRELOAD" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$WORK/pam.d" \
		PAM_WRAPPER_RUNTIME_DIR="$WORK/pam-runtime" \
		python3 "$top_srcdir/tests/integration/pam_session.py" "$@"
}

# The SHA-256 of the ticket the emulator issued last for an EndUserId.
issued_ticket_sha() {
	sha256sum < "$EMULATOR_STATE/tickets/$1" | cut -d' ' -f1
}
