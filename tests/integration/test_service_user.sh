#!/bin/bash
# cloudapp-ticketd as the unprivileged service user, close to how
# cloudapp-ticketd.service runs it.  systemd-socket-activate listens as root
# and starts the daemon through setpriv, with the service user's uid, no
# supplementary groups, no capabilities and no_new_privs.  The daemon runs
# inside the part of the unit's sandbox that sandbox.sh builds, and gets
# the AccessKey as systemd credentials owned by the service user.
# cloudappctl and pam_cloudapp.so must accept this daemon and reject one
# that runs as another uid.  systemd itself cannot run here, so the unit's
# seccomp filter is not applied, and the last check compares the daemon's
# system calls with the filter instead.
set -u
. "$(dirname "$0")/lib.sh"

require_tools
setup_work
start_emulator 1

SOCKET=$WORK/ticketd.sock
SERVICE_PID=

# Writes a 0600 file.
write_private() {
	(umask 077 && printf '%s\n' "$2" > "$1")
}

# Writes NAME.conf without the AccessKey settings.
write_keyless_config() {
	write_config "$1" /nonexistent < /dev/null
	sed -i '/^access_key_id = /d; /^access_key_secret_file = /d' \
		"$WORK/$1.conf"
}

# The mount namespace part of the unit's sandbox, where this machine allows
# it.
SANDBOX="unshare --mount --propagation private sh $top_srcdir/tests/integration/sandbox.sh"
if ! $SANDBOX true 2> "$WORK/sandbox.err"; then
	echo "running the daemon without sandbox.sh, which failed here:"
	cat "$WORK/sandbox.err"
	SANDBOX=
fi

# The command prefix that runs a command as UID without any privilege.
unprivileged_wrapper() {
	printf '%s ' $SANDBOX setpriv --reuid="$1" --regid="$1" \
		--clear-groups --no-new-privs --bounding-set=-all \
		--inh-caps=-all --
}

# The credentials folder as systemd sets it up for LoadCredential= with
# User=: read-only files that belong to the service user.
mkdir -p "$WORK/creds"
write_private "$WORK/creds/access-key-id" "$TEST_ACCESS_KEY_ID"
cp "$WORK/emulator-secret" "$WORK/creds/access-key-secret"
chown -R "$TEST_SERVICE_UID:$TEST_SERVICE_UID" "$WORK/creds"
chmod 0400 "$WORK/creds/access-key-id" "$WORK/creds/access-key-secret"
chmod 0500 "$WORK/creds"
write_keyless_config service

CREDENTIALS_DIRECTORY=$WORK/creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
	DAEMON_WRAPPER=$(unprivileged_wrapper "$TEST_SERVICE_UID") \
	start_daemon "$WORK/service.conf" "$SOCKET"
# Prints the uid that SO_PEERCRED reports for a connection to SOCKET.
socket_peer_uid() {
	python3 - "$1" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
print(struct.unpack("3i", creds)[1])
PY
}

# Succeeds when SO_PEERCRED of SOCKET reports UID.
socket_peer_is() {
	[ "$(socket_peer_uid "$1")" = "$2" ]
}

# systemd-socket-activate execs setpriv at the first connection, and
# setpriv execs the daemon, so the daemon keeps the pid that start_daemon
# started.  The peer of that first connection is still root.
SERVICE_PID=${lib_pids[-1]}
socket_peer_uid "$SOCKET" > /dev/null
wait_for "the daemon to start" \
	socket_peer_is "$SOCKET" "$TEST_SERVICE_UID"

# Prints field $2 of /proc/PID/status.
status_field() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t' ' '
}

daemon_has_no_privileges() {
	local uid=$TEST_SERVICE_UID field status=0
	for field in Uid Gid; do
		if [ "$(status_field "$SERVICE_PID" $field)" != "$uid $uid $uid $uid" ]; then
			echo "$field: $(status_field "$SERVICE_PID" $field), expected $uid"
			status=1
		fi
	done
	if [ -n "$SANDBOX" ] && ! grep -q " /proc .*subset=pid" \
		"/proc/$SERVICE_PID/mountinfo"; then
		echo "the daemon's /proc is not the sandbox's"
		status=1
	fi
	if [ -n "$(status_field "$SERVICE_PID" Groups)" ]; then
		echo "supplementary groups: $(status_field "$SERVICE_PID" Groups)"
		status=1
	fi
	for field in CapInh CapPrm CapEff CapBnd CapAmb; do
		if [ "$(status_field "$SERVICE_PID" $field)" != 0000000000000000 ]; then
			echo "$field: $(status_field "$SERVICE_PID" $field)"
			status=1
		fi
	done
	if [ "$(status_field "$SERVICE_PID" NoNewPrivs)" != 1 ]; then
		echo "NoNewPrivs is not set"
		status=1
	fi
	return $status
}

# SO_PEERCRED reports the service user, not root, because the daemon
# called listen() again on the socket it got.  So the clients check the
# daemon's own uid.
socket_peer_is_service_user() {
	local uid
	uid=$(socket_peer_uid "$SOCKET") || return 1
	[ "$uid" = "$TEST_SERVICE_UID" ] ||
		{ echo "peer uid $uid, expected $TEST_SERVICE_UID"; return 1; }
}

login_then_launch() {
	write_pam_service kiosk "socket=$SOCKET timeout=2 debug"
	pam_login kiosk alice open_session > "$WORK/login.out" 2>&1 ||
		{ cat "$WORK/login.out"; return 1; }
	as_user alice "$CTL" --socket "$SOCKET" launch \
		> "$WORK/launch.out" 2> "$WORK/launch.err" ||
		{ cat "$WORK/launch.err"; return 1; }
	local result=$WORK/out/alice.result
	[ -f "$result" ] || { echo "the stub client did not run"; return 1; }
	grep -qx "sha256=$(issued_ticket_sha alice)" "$result" ||
		{ echo "wrong ticket"; cat "$result"; return 1; }
	# The module started the task at login, so launch picked it up.
	grep -q "starting ticket task.*user=alice" "$WORK/daemon.log" ||
		{ echo "the login started no task"; return 1; }
}

# Root's cloudappctl needs nss_wrapper too, to find the service user.
status_names_credentials() {
	env LD_PRELOAD="$NSS_WRAPPER_LIB" "$CTL" --socket "$SOCKET" status \
		> "$WORK/status.out" ||
		{ cat "$WORK/status.out"; return 1; }
	grep -q "Credentials: *systemd credentials in $WORK/creds" \
		"$WORK/status.out" || { cat "$WORK/status.out"; return 1; }
}

# A secret file that only root may read is rejected with an error that
# names the fix.
root_secret_error_names_fix() {
	write_private "$WORK/root-secret" "not readable by the service user"
	write_config rootsecret "$WORK/root-secret" < /dev/null
	if env LD_PRELOAD="$NSS_WRAPPER_LIB" \
		$(unprivileged_wrapper "$TEST_SERVICE_UID") \
		"$top_builddir/cloudapp-ticketd" --check-config \
		--config "$WORK/rootsecret.conf" > /dev/null 2> "$WORK/check.err"; then
		echo "--check-config accepted a secret it cannot read"
		return 1
	fi
	cat "$WORK/check.err"
	grep -q "the daemon runs as uid $TEST_SERVICE_UID, so make the file owned by that user" \
		"$WORK/check.err"
}

# Root's --check-config accepts a secret file that belongs to the service
# user, so that it checks the file the service reads.
service_user_secret_accepted() {
	write_private "$WORK/service-secret" "owned-by-the-service-user"
	chown "$TEST_SERVICE_UID:$TEST_SERVICE_UID" "$WORK/service-secret"
	write_config servicesecret "$WORK/service-secret" < /dev/null
	env LD_PRELOAD="$NSS_WRAPPER_LIB" "$top_builddir/cloudapp-ticketd" \
		--check-config --config "$WORK/servicesecret.conf" \
		> "$WORK/check2.out" 2>&1 || { cat "$WORK/check2.out"; return 1; }
}

# A daemon that runs as bob, with a secret file of his own, is not trusted
# by cloudappctl or by the module.
other_uid_rejected() {
	local bob_secret=$WORK/bob-secret tasks_before status=0
	cp "$WORK/emulator-secret" "$bob_secret"
	chown "$TEST_BOB_UID:$TEST_BOB_UID" "$bob_secret"
	chmod 0600 "$bob_secret"
	write_config bob "$bob_secret" < /dev/null
	DAEMON_WRAPPER=$(unprivileged_wrapper "$TEST_BOB_UID") \
		start_daemon "$WORK/bob.conf" "$WORK/bob.sock"
	wait_for "bob's daemon" socket_peer_is "$WORK/bob.sock" "$TEST_BOB_UID"

	if as_user alice "$CTL" --socket "$WORK/bob.sock" status \
		> /dev/null 2> "$WORK/bob-ctl.err"; then
		echo "cloudappctl used bob's daemon"
		status=1
	fi
	cat "$WORK/bob-ctl.err"
	grep -q "served by uid $TEST_BOB_UID, not by root or the user $TEST_SERVICE_USER" \
		"$WORK/bob-ctl.err" || status=1

	write_pam_stack bobdaemon <<STACK
auth     required  pam_permit.so
account  required  pam_permit.so
session  required  pam_permit.so
session  required  PAM_CLOUDAPP socket=$WORK/bob.sock wait fail=closed timeout=5
STACK
	tasks_before=$(grep -c "starting ticket task" "$WORK/daemon.log")
	if pam_login bobdaemon alice open_session > "$WORK/bob-pam.out" 2>&1; then
		echo "the module used bob's daemon"
		status=1
	fi
	cat "$WORK/bob-pam.out"
	grep -q "The cloud app service is not running" "$WORK/bob-pam.out" ||
		status=1
	# pam_wrapper shows the module's pam_syslog() entries.
	grep -q "not using $WORK/bob.sock: it is served by uid $TEST_BOB_UID" \
		"$WORK/bob-pam.out" || status=1
	if [ "$(grep -c "starting ticket task" "$WORK/daemon.log")" != "$tasks_before" ]; then
		echo "bob's daemon started a task"
		status=1
	fi
	return $status
}

# Prints the system calls that SystemCallFilter= of the unit allows:
# @system-service without @privileged and @resources.
unit_allowed_syscalls() {
	systemd-analyze syscall-filter | python3 -c '
import sys

groups, current = {}, None
for line in sys.stdin:
    line = line.strip()
    if line.startswith("@") and current is None:
        current = groups.setdefault(line, [])
    elif not line:
        current = None
    elif not line.startswith("#") and current is not None:
        current.append(line)

def expand(name):
    calls = set()
    for member in groups[name]:
        calls |= expand(member) if member.startswith("@") else {member}
    return calls

allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
print("\n".join(sorted(allowed)))
'
}

# The daemon runs under strace through a ticket, a status call and a
# reload.  Every system call it makes after its execve() must be one that
# the unit's filter allows, because the filter fails the others with EPERM.
# Only these code paths are covered.
syscalls_pass_unit_filter() {
	local daemon_pid wrapper
	command -v strace > /dev/null ||
		{ echo "strace is not installed; skipping"; return 0; }
	# With -D, strace traces from a grandchild, so the daemon keeps the pid
	# that LISTEN_PID names.
	wrapper="strace -D -f -qq -o $WORK/strace.out"
	wrapper+=" $(unprivileged_wrapper "$TEST_SERVICE_UID")"
	CREDENTIALS_DIRECTORY=$WORK/creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
		DAEMON_WRAPPER=$wrapper \
		start_daemon "$WORK/service.conf" "$WORK/traced.sock"
	daemon_pid=${lib_pids[-1]}
	socket_peer_uid "$WORK/traced.sock" > /dev/null
	wait_for "the traced daemon" \
		socket_peer_is "$WORK/traced.sock" "$TEST_SERVICE_UID"
	as_user bob "$CTL" --socket "$WORK/traced.sock" -q ticket \
		> /dev/null 2> "$WORK/traced.err" ||
		{ cat "$WORK/traced.err"; return 1; }
	env LD_PRELOAD="$NSS_WRAPPER_LIB" "$CTL" --socket "$WORK/traced.sock" \
		status > /dev/null || return 1
	kill -HUP "$daemon_pid"
	wait_for "the reload" grep -q "reloaded the configuration" \
		"$WORK/daemon.log"
	kill "$daemon_pid"
	wait_for "strace to finish" grep -q "^$daemon_pid  *exit_group(" \
		"$WORK/strace.out"

	unit_allowed_syscalls > "$WORK/allowed"
	[ -s "$WORK/allowed" ] || { echo "no syscall list from systemd-analyze"; return 1; }
	awk '/execve\("[^"]*cloudapp-ticketd"/ { started = 1 }
		started && match($0, /^[0-9]+ +[a-z0-9_]+\(/) {
			sub(/^[0-9]+ +/, ""); sub(/\(.*/, ""); print }' \
		"$WORK/strace.out" | sort -u > "$WORK/used"
	[ -s "$WORK/used" ] || { echo "strace recorded no system call"; return 1; }
	echo "the daemon made $(wc -l < "$WORK/used") distinct system calls"
	if grep -vxFf "$WORK/allowed" "$WORK/used"; then
		echo "the unit's SystemCallFilter= rejects the calls above"
		return 1
	fi
}

check "daemon has no privileges" daemon_has_no_privileges
check "socket peer is the service user" socket_peer_is_service_user
check "PAM login and launch get ticket" login_then_launch
check "status names systemd credentials" status_names_credentials
check "root-only secret error names fix" root_secret_error_names_fix
check "service user's secret accepted" service_user_secret_accepted
check "daemon of another uid rejected" other_uid_rejected
check "daemon syscalls pass unit filter" syscalls_pass_unit_filter

check_summary
