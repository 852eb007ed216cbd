#!/bin/bash
# End-to-end login flow on real parts: the HTTPS emulator, cloudapp-ticketd
# started by systemd-socket-activate, a PAM session opened by pamtester
# through pam_wrapper, and "cloudappctl launch" under the user's real uid.
set -u
. "$(dirname "$0")/lib.sh"

require_tools
setup_work
start_emulator 1

SECRET=$WORK/access-key-secret
cp "$WORK/emulator-secret" "$SECRET"
chmod 0600 "$SECRET"
SOCKET=$WORK/ticketd.sock
write_config good "$SECRET" < /dev/null
start_daemon "$WORK/good.conf" "$SOCKET"

count_tasks() {
	grep -c "\"end_user_id\": \"$1\".*\"result\": \"OK\"" \
		"$EMULATOR_STATE/requests.jsonl" 2>/dev/null || true
}

login_then_launch() {
	write_pam_service kiosk "socket=$SOCKET timeout=2 debug"
	pam_login kiosk alice open_session || return 1
	as_user alice "$CTL" --socket "$SOCKET" launch \
		> "$WORK/launch.out" 2> "$WORK/launch.err" || {
		cat "$WORK/launch.err"
		return 1
	}
	local result=$WORK/out/alice.result
	[ -f "$result" ] || { echo "the stub client did not run"; return 1; }
	grep -qx "sha256=$(issued_ticket_sha alice)" "$result" ||
		{ echo "wrong ticket"; cat "$result"; return 1; }
	grep -qx "mode=600" "$result" || { cat "$result"; return 1; }
	grep -qx "owner=$TEST_ALICE_UID" "$result" || { cat "$result"; return 1; }
	grep -qx "uid=$TEST_ALICE_UID" "$result" || { cat "$result"; return 1; }
	grep -qx "leak=no" "$result" || { cat "$result"; return 1; }
	if ls "$WORK/run-alice" | grep -q .; then
		echo "ticket file left behind"
		return 1
	fi
}

ticket_handed_out_once() {
	# The ticket was picked up, so a second request starts a new task.
	local before after
	before=$(grep -c '"end_user_id": "alice"' "$EMULATOR_STATE/requests.jsonl")
	as_user alice "$CTL" --socket "$SOCKET" --quiet \
		status --json > "$WORK/status.json" || return 1
	! grep -q '"user": "alice"' "$WORK/status.json" || return 1
	after=$(grep -c '"end_user_id": "alice"' "$EMULATOR_STATE/requests.jsonl")
	[ "$before" = "$after" ]
}

other_user_rejected() {
	# cloudappctl refuses locally; the daemon refuses a raw call too.
	if as_user bob "$CTL" --socket "$SOCKET" \
		ticket --user alice > "$WORK/bob.out" 2> "$WORK/bob.err"; then
		return 1
	fi
	as_user bob python3 - "$SOCKET" > "$WORK/bob-raw.out" <<'PY' || return 1
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"method":"io.cloudapp.Ticketd.GetTicket","parameters":{"user":"alice"}}\0')
data = b""
while not data.endswith(b"\0"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.rstrip(b"\0").decode())
PY
	grep -q 'io.cloudapp.Ticketd.PermissionDenied' "$WORK/bob-raw.out" || return 1
	! grep -q '"ticket"' "$WORK/bob-raw.out" || return 1
	grep -q "may not ask for the ticket of user alice" "$WORK/daemon.log"
}

failed_task_reported() {
	printf '{"bob": {"fail": "task"}}\n' > "$EMULATOR_STATE/faults.json"
	if as_user bob "$CTL" --socket "$SOCKET" --quiet \
		ticket > "$WORK/failed.out" 2> "$WORK/failed.err"; then
		rm -f "$EMULATOR_STATE/faults.json"
		return 1
	fi
	rm -f "$EMULATOR_STATE/faults.json"
	cat "$WORK/failed.err"
	grep -q "TaskStatus Failed" "$WORK/failed.err" &&
		grep -q "TaskId task-" "$WORK/failed.err" && [ ! -s "$WORK/failed.out" ]
}

wrong_secret_reported() {
	local socket=$WORK/wrong.sock
	printf 'not-the-secret\n' > "$WORK/wrong-secret"
	chmod 0600 "$WORK/wrong-secret"
	write_config wrong "$WORK/wrong-secret" < /dev/null
	start_daemon "$WORK/wrong.conf" "$socket"
	if "$CTL" --socket "$socket" --quiet \
		ticket --user alice > "$WORK/wrong.out" 2> "$WORK/wrong.err"; then
		return 1
	fi
	cat "$WORK/wrong.err"
	grep -q "SignatureDoesNotMatch" "$WORK/wrong.err" &&
		grep -q "RequestId" "$WORK/wrong.err"
}

# With the daemon down, the login goes on, within the module's timeout.
login_without_daemon() {
	write_pam_service nodaemon "socket=$WORK/absent.sock timeout=1"
	pam_login nodaemon alice open_session close_session
}

login_with_silent_daemon() {
	# A socket that accepts connections but never replies.
	python3 - "$WORK/silent.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
conns = []
end = time.time() + 30
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
PY
	lib_pids+=($!)
	wait_for "the silent socket" test -S "$WORK/silent.sock"
	write_pam_service silent "socket=$WORK/silent.sock timeout=1"
	local start end
	start=$(date +%s%N)
	pam_login silent alice open_session || return 1
	end=$(date +%s%N)
	# The bound is the module's timeout plus generous slack for a loaded
	# machine; it catches a hang, not a slow run.
	echo "login took $(((end - start) / 1000000)) ms with timeout=1"
	[ $(((end - start) / 1000000)) -lt 8000 ]
}

no_secret_or_ticket_in_logs() {
	local secret ticket
	secret=$(cat "$SECRET")
	ticket=$(cat "$EMULATOR_STATE/tickets/alice")
	! grep -qF -- "$secret" "$WORK/daemon.log" "$WORK/launch.err" &&
		! grep -qF -- "$ticket" "$WORK/daemon.log" "$WORK/launch.err"
}

# Neither the launched client's environment nor the daemon's own contains
# the secret or the ticket.
no_secret_in_environments() {
	local secret ticket pid
	secret=$(cat "$SECRET")
	ticket=$(cat "$EMULATOR_STATE/tickets/alice")
	[ -s "$WORK/out/alice.environ" ] || return 1
	! grep -qF -- "$secret" "$WORK/out/alice.environ" &&
		! grep -qF -- "$ticket" "$WORK/out/alice.environ" || return 1
	for pid in $(pgrep -f "cloudapp-ticketd --config $WORK/good.conf"); do
		tr '\0' '\n' < "/proc/$pid/environ" | grep -qF -- "$secret" &&
			return 1
		tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qF -- "$secret" &&
			return 1
	done
	return 0
}

check "PAM login then cloudappctl launch" login_then_launch
check "ticket handed out once" ticket_handed_out_once
check "other uid rejected" other_user_rejected
check "failed task reported" failed_task_reported
check "wrong secret reported" wrong_secret_reported
check "login goes on without daemon" login_without_daemon
check "login bounded by timeout" login_with_silent_daemon
check "no secret or ticket in logs" no_secret_or_ticket_in_logs
check "no secret in environments" no_secret_in_environments

check_summary
