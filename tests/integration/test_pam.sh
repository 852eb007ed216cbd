#!/bin/bash
# pam_cloudapp.so in real PAM stacks (pam_wrapper and pamtester).  Covers
# the task started at authentication, the services that never start one,
# the root and min_uid rules and waiting with progress messages.  Also
# covers fail=open and fail=closed with the message shown to the user, and
# close_session dropping a ticket that no session picked up.
set -u
. "$(dirname "$0")/lib.sh"

require_tools
setup_work
echo "root2:x:0:0::/root:/bin/sh" >> "$WORK/passwd"
start_emulator 1

SECRET=$WORK/access-key-secret
cp "$WORK/emulator-secret" "$SECRET"
chmod 0600 "$SECRET"
SOCKET=$WORK/ticketd.sock
write_config pam "$SECRET" < /dev/null
start_daemon "$WORK/pam.conf" "$SOCKET"

# Counts the tasks the daemon started for a user so far.
tasks_started() {
	grep -c "starting ticket task user=$1 " "$WORK/daemon.log"
}

auth_then_session_one_task() {
	write_pam_stack lightdm <<STACK
auth     required  pam_permit.so
auth     optional  PAM_CLOUDAPP socket=$SOCKET
account  required  pam_permit.so
session  required  pam_permit.so
session  optional  PAM_CLOUDAPP socket=$SOCKET
STACK
	local before
	before=$(tasks_started alice)
	pam_login lightdm alice authenticate open_session > "$WORK/auth.out" 2>&1 ||
		{ cat "$WORK/auth.out"; return 1; }
	# The same login opens the session twice, as some display managers do.
	pam_login lightdm alice open_session > /dev/null 2>&1 || return 1
	[ "$(tasks_started alice)" = $((before + 1)) ] &&
		"$CTL" --socket "$SOCKET" -q ticket --user alice > /dev/null || return 1
	# The console login service starts a task as well.
	write_pam_service login "socket=$SOCKET"
	before=$(tasks_started bob)
	pam_login login bob open_session > /dev/null 2>&1 || return 1
	[ "$(tasks_started bob)" = $((before + 1)) ]
}

# su, sudo, cron, sshd and systemd-user never start a cloud call.
excluded_services() {
	local service before
	before=$(grep -c "starting ticket task" "$WORK/daemon.log")
	for service in su sudo cron sshd systemd-user; do
		write_pam_service "$service" "socket=$SOCKET"
		pam_login "$service" bob open_session > /dev/null 2>&1 || return 1
	done
	# services= replaces the default list.
	write_pam_service kiosk2 "socket=$SOCKET services=lightdm,gdm-password"
	pam_login kiosk2 bob open_session > /dev/null 2>&1 || return 1
	[ "$(grep -c "starting ticket task" "$WORK/daemon.log")" = "$before" ]
}

root_and_min_uid() {
	local before
	before=$(grep -c "starting ticket task" "$WORK/daemon.log")
	write_pam_service rootlogin "socket=$SOCKET ignore_root"
	pam_login rootlogin root2 open_session > /dev/null 2>&1 || return 1
	write_pam_service minuid "socket=$SOCKET min_uid=10002"
	pam_login minuid alice open_session > /dev/null 2>&1 || return 1
	[ "$(grep -c "starting ticket task" "$WORK/daemon.log")" = "$before" ]
}

# wait: the session opens once the ticket is ready, and the greeter
# (pamtester's conversation) receives the progress.  The user has no task
# from an earlier check, which could already be ready on a slow machine,
# so that no progress would be shown.
wait_with_progress() {
	write_pam_service waitlogin "socket=$SOCKET wait timeout=20"
	pam_login waitlogin erin_x open_session > "$WORK/wait.out" 2>&1 ||
		{ cat "$WORK/wait.out"; return 1; }
	cat "$WORK/wait.out"
	grep -q "Starting your cloud app" "$WORK/wait.out" &&
		grep -q "Your cloud app is ready" "$WORK/wait.out" &&
		"$CTL" --socket "$SOCKET" status --json |
		grep -q '"state": "ready"' &&
		"$CTL" --socket "$SOCKET" -q ticket --user erin_x > /dev/null
}

# fail=closed needs the module "required" in the session stack: PAM
# ignores the failure of an optional module when another one succeeds.
required_stack() {
	write_pam_stack "$1" <<STACK
auth     required  pam_permit.so
account  required  pam_permit.so
session  required  pam_permit.so
session  required  PAM_CLOUDAPP $2
STACK
}

fail_closed_and_open() {
	printf '{"carol_x": {"fail": "no_idle_instance"}}\n' \
		> "$EMULATOR_STATE/faults.json"
	required_stack closed "socket=$SOCKET wait fail=closed timeout=20"
	if pam_login closed carol_x open_session > "$WORK/closed.out" 2>&1; then
		rm -f "$EMULATOR_STATE/faults.json"
		return 1
	fi
	required_stack open "socket=$SOCKET wait fail=open timeout=20"
	pam_login open carol_x open_session > "$WORK/open.out" 2>&1
	local open_status=$?
	rm -f "$EMULATOR_STATE/faults.json"
	cat "$WORK/closed.out"
	grep -q "No cloud app instance is free right now" "$WORK/closed.out" &&
		[ "$open_status" = 0 ]
}

fail_closed_daemon_down() {
	required_stack down "socket=$WORK/absent.sock fail=closed timeout=1"
	if pam_login down alice open_session > "$WORK/down.out" 2>&1; then
		return 1
	fi
	grep -q "cloud app service is not running" "$WORK/down.out"
}

# close_session drops the ticket, and the module logs no error for it.
close_session_drops() {
	write_pam_service dropper "socket=$SOCKET"
	PAM_SYSLOG_FILE=$WORK/drop.syslog \
		pam_login dropper dave_x open_session close_session \
		> /dev/null 2>&1 || return 1
	cat "$WORK/drop.syslog" 2>/dev/null
	! grep -q "invalid reply\|^<[0-3]>" "$WORK/drop.syslog" 2>/dev/null || return 1
	"$CTL" --socket "$SOCKET" status --json > "$WORK/drop.json"
	! grep -q '"user": "dave_x"' "$WORK/drop.json" &&
		grep -q "ticket task dropped on request" "$WORK/daemon.log"
}

# launch --on-exit=relaunch starts the client again with a new ticket,
# up to --max-relaunches, and gives up with the client's status.
relaunch_policy() {
	local client=$WORK/exiting-client.sh
	printf '#!/bin/sh\necho run >> %s\nexit 3\n' "$WORK/out/relaunch.count" \
		> "$client"
	chmod 0755 "$client"
	as_user alice "$CTL" --socket "$SOCKET" launch --on-exit=relaunch \
		--max-relaunches=2 -- "$client" > /dev/null 2> "$WORK/relaunch.err"
	local status=$?
	cat "$WORK/relaunch.err"
	[ "$status" = 3 ] && [ "$(wc -l < "$WORK/out/relaunch.count")" = 3 ] &&
		grep -q "starting it again with a new ticket" "$WORK/relaunch.err"
}

# --on-exit=end-session ends the logind session when the client ends.
end_session_policy() {
	mkdir -p "$WORK/fakebin"
	printf '#!/bin/sh\necho "$@" > %s\n' "$WORK/out/loginctl.args" \
		> "$WORK/fakebin/loginctl"
	chmod 0755 "$WORK/fakebin/loginctl"
	as_user alice env PATH="$WORK/fakebin:$PATH" XDG_SESSION_ID=c42 \
		"$CTL" --socket "$SOCKET" -q launch --on-exit=end-session \
		-- /bin/true > /dev/null 2>&1 || return 1
	grep -qx "terminate-session c42" "$WORK/out/loginctl.args"
}

# Each failure class a user can hit has its short message, at the
# greeter (fail=closed) and from cloudappctl.
human_messages() {
	local fault expected status=0
	while IFS='|' read -r fault expected; do
		printf '{"carol_x": {"fail": "%s"}}\n' "$fault" \
			> "$EMULATOR_STATE/faults.json"
		required_stack human "socket=$SOCKET wait fail=closed timeout=20"
		pam_login human carol_x open_session > "$WORK/human.out" 2>&1
		"$CTL" --socket "$SOCKET" -q ticket --user carol_x \
			> /dev/null 2> "$WORK/human-ctl.err"
		if ! grep -q "$expected" "$WORK/human.out" ||
			! grep -q "$expected" "$WORK/human-ctl.err"; then
			echo "fault $fault: expected \"$expected\""
			cat "$WORK/human.out" "$WORK/human-ctl.err"
			status=1
		fi
	done <<'CASES'
no_idle_instance|No cloud app instance is free right now
forbidden|not set up for this cloud app
task|could not be started
CASES
	rm -f "$EMULATOR_STATE/faults.json"
	# Credentials rejected, and the cloud unreachable: daemons of their
	# own.
	printf 'wrong-secret\n' > "$WORK/wrong-secret"
	chmod 0600 "$WORK/wrong-secret"
	write_config wrongkey "$WORK/wrong-secret" < /dev/null
	start_daemon "$WORK/wrongkey.conf" "$WORK/wrongkey.sock"
	"$CTL" --socket "$WORK/wrongkey.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/wrongkey.err"
	grep -q "credentials were rejected" "$WORK/wrongkey.err" ||
		{ cat "$WORK/wrongkey.err"; status=1; }
	# A retry may still be in flight when ticket_timeout passes, and the
	# deadline then reports the connection error too.
	write_config unreachable "$SECRET" < /dev/null
	sed -i -e 's|^endpoint = .*|endpoint = "https://127.0.0.1:1";|' \
		-e 's|^ticket_timeout = .*|ticket_timeout = 3;|' \
		"$WORK/unreachable.conf"
	start_daemon "$WORK/unreachable.conf" "$WORK/unreachable.sock"
	"$CTL" --socket "$WORK/unreachable.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/unreachable.err"
	grep -q "cannot be reached" "$WORK/unreachable.err" ||
		{ cat "$WORK/unreachable.err"; status=1; }
	return $status
}

# profile= on the PAM line picks a profile of the configuration.
profile_option() {
	write_config profiled "$SECRET" <<'CONF'
profiles = ( { name = "special"; users = ["nobody_matches"];
               app_version = "9.9.9"; } );
CONF
	start_daemon "$WORK/profiled.conf" "$WORK/profiled.sock"
	write_pam_service withprofile "socket=$WORK/profiled.sock profile=special"
	pam_login withprofile dave_x open_session > /dev/null 2>&1 || return 1
	"$CTL" --socket "$WORK/profiled.sock" -q ticket --user dave_x \
		> /dev/null || return 1
	grep '"end_user_id": "dave_x"' "$EMULATOR_STATE/requests.jsonl" |
		grep -q '"AppVersion": "9.9.9"' || return 1
	# app_id= replaces the AppId for this PAM line.
	write_pam_service withappid "socket=$WORK/profiled.sock app_id=ca-override01"
	pam_login withappid carol_x open_session > /dev/null 2>&1 || return 1
	"$CTL" --socket "$WORK/profiled.sock" -q ticket --user carol_x \
		> /dev/null || return 1
	grep '"end_user_id": "carol_x"' "$EMULATOR_STATE/requests.jsonl" |
		grep -q '"AppId": "ca-override01"' || return 1
	# An unknown name is logged, and the login goes on (fail=open).
	write_pam_service badprofile "socket=$WORK/profiled.sock profile=nosuch"
	pam_login badprofile dave_x open_session > "$WORK/badprofile.out" 2>&1 &&
		grep -q 'no profile named' "$WORK/badprofile.out"
}

# ticket_file writes the ticket to DIR/UID/ticket for the user, exports
# its path, and removes it at close_session.
ticket_file_option() {
	local dir=$WORK/ticket-files file status=0
	write_pam_service tfile \
		"socket=$SOCKET ticket_file ticket_dir=$dir timeout=20"
	# pamtester does not show the PAM environment; libpam called
	# in-process does.  Where pam_session cannot run, the checks with
	# pamtester below still run.
	pam_session tfile alice CLOUDAPP_TICKET_FILE > "$WORK/tfile.out" 2>&1 ||
		status=$?
	file=$dir/$TEST_ALICE_UID/ticket
	cat "$WORK/tfile.out"
	if [ "$status" != "$CHECK_SKIPPED" ]; then
		grep -qx "CLOUDAPP_TICKET_FILE=$file" "$WORK/tfile.out" ||
			return 1
	fi
	# pam_session.py closes the session too; open it again to check the
	# file, then close it with pamtester.
	pam_login tfile alice open_session > /dev/null 2>&1 || return 1
	[ -f "$file" ] || { echo "no ticket file"; return 1; }
	[ "$(stat -c '%a %u' "$dir/$TEST_ALICE_UID")" = "700 $TEST_ALICE_UID" ] ||
		return 1
	[ "$(stat -c '%a %u' "$file")" = "600 $TEST_ALICE_UID" ] || return 1
	[ "$(cat "$file")" = "$(cat "$EMULATOR_STATE/tickets/alice")" ] ||
		return 1
	pam_login tfile alice close_session > /dev/null 2>&1
	[ ! -e "$file" ] && [ ! -e "$dir/$TEST_ALICE_UID" ]
}

# A ticket folder that is a symbolic link is not written through.
ticket_file_symlink_rejected() {
	local dir=$WORK/ticket-files2
	mkdir -p "$dir" "$WORK/elsewhere"
	ln -s "$WORK/elsewhere" "$dir/$TEST_BOB_UID"
	required_stack tfile2 \
		"socket=$SOCKET ticket_file ticket_dir=$dir timeout=20 fail=closed"
	if pam_login tfile2 bob open_session > /dev/null 2>&1; then
		return 1
	fi
	[ ! -e "$WORK/elsewhere/ticket" ]
}

echo "carol_x:x:10060:10060::/nonexistent:/bin/sh" >> "$WORK/passwd"
echo "dave_x:x:10061:10061::/nonexistent:/bin/sh" >> "$WORK/passwd"
echo "erin_x:x:10062:10062::/nonexistent:/bin/sh" >> "$WORK/passwd"
check "auth and session start one task" auth_then_session_one_task
check "su, sudo, cron, sshd excluded" excluded_services
check "ignore_root and min_uid" root_and_min_uid
check "wait shows progress" wait_with_progress
check "fail=closed and fail=open" fail_closed_and_open
check "fail=closed with daemon down" fail_closed_daemon_down
check "close_session drops the ticket" close_session_drops
check "launch relaunches the client" relaunch_policy
check "launch ends the session" end_session_policy
check "human message per failure" human_messages
check "profile= and app_id= on a PAM line" profile_option
check "ticket_file written and removed" ticket_file_option
check "ticket_file symlink rejected" ticket_file_symlink_rejected

check_summary
