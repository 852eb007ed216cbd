#!/bin/bash
# cloudapp-ticketd on its own: configuration errors, the wire protocol's
# limits, root asking for any user, unclaimed tickets being dropped, calls
# that do not wait on each other, sd_notify, and what the PAM module leaves
# in the login process.
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
MAIN_PID=${lib_pids[-1]}
DAEMON=$top_builddir/cloudapp-ticketd

# Sends bytes (a Python bytes expression in $2) to socket $1, prints the
# first reply, then "closed" if the daemon closed the connection after it
# or "open" if not.
raw_call() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(eval(sys.argv[2]))
data = b""
while b"\0" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\0")[0].decode())
s.settimeout(1)
try:
    print("closed" if s.recv(1) == b"" else "open")
except (socket.timeout, ConnectionResetError):
    print("open")
PY
}

# A daemon that does not start on a bad configuration, with an error that
# names the file, the line and the setting.
config_error_reported() {
	write_config bad "$SECRET" <<'CONF'
poll_interval = "fast";
CONF
	local line
	line=$(grep -n '^poll_interval = "fast"' "$WORK/bad.conf" | cut -d: -f1)
	# The good value written earlier in the file comes first; drop it.
	sed -i '/^poll_interval = 0.2;$/d' "$WORK/bad.conf"
	line=$((line - 1))
	if "$DAEMON" --config "$WORK/bad.conf" --listen "$WORK/bad.sock" \
		2> "$WORK/bad.err"; then
		return 1
	fi
	cat "$WORK/bad.err"
	[ ! -e "$WORK/bad.sock" ] &&
		grep -q "$WORK/bad.conf:$line" "$WORK/bad.err" &&
		grep -q "poll_interval" "$WORK/bad.err"
}

secret_file_mode_rejected() {
	cp "$SECRET" "$WORK/shared-secret"
	chmod 0640 "$WORK/shared-secret"
	write_config shared "$WORK/shared-secret" < /dev/null
	if "$DAEMON" --config "$WORK/shared.conf" --check-config \
		2> "$WORK/shared.err"; then
		return 1
	fi
	cat "$WORK/shared.err"
	grep -q "access_key_secret_file" "$WORK/shared.err" &&
		grep -q "$WORK/shared-secret" "$WORK/shared.err"
}

check_config_accepts_good() {
	"$DAEMON" --config "$WORK/good.conf" --check-config | grep -q "valid"
}

malformed_message_rejected() {
	raw_call "$SOCKET" 'b"{not json\0"' > "$WORK/malformed.out" || return 1
	cat "$WORK/malformed.out"
	grep -q "io.cloudapp.Ticketd.InvalidMessage" "$WORK/malformed.out" &&
		tail -n 1 "$WORK/malformed.out" | grep -qx closed
}

oversized_message_rejected() {
	raw_call "$SOCKET" 'b"{" + b" " * 70000' > "$WORK/oversized.out" ||
		return 1
	grep -q "io.cloudapp.Ticketd.InvalidMessage" "$WORK/oversized.out" &&
		tail -n 1 "$WORK/oversized.out" | grep -qx closed
}

unknown_method_rejected() {
	raw_call "$SOCKET" 'b"{\"method\":\"io.cloudapp.Ticketd.Nope\"}\0"' \
		> "$WORK/unknown.out" || return 1
	grep -q "org.varlink.service.MethodNotFound" "$WORK/unknown.out" &&
		tail -n 1 "$WORK/unknown.out" | grep -qx open
}

# After the bad messages above, everyone else is still served.
daemon_still_serves() {
	"$CTL" --socket "$SOCKET" --quiet status > /dev/null
}

# Resident memory of process $1, in KiB.
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Bad clients: 2000 idle connections, half-written messages, a client that
# never reads, and calls with invalid UTF-8 or wrong JSON types.  While
# they are connected, other users are still served and the daemon's memory
# stays bounded.  Once they leave, their descriptors are closed.
bad_clients_leave_others_served() {
	local rss_before rss_during fds_before fds_after i status=0
	rm -f "$WORK/bad.ready" "$WORK/bad.done"
	# The first task loads libcurl and the trusted CAs and opens the
	# connection to the endpoint.  A ticket before the measurement keeps
	# them out of what the bad clients cost.
	"$CTL" --socket "$SOCKET" -q ticket --user bob > /dev/null || return 1
	rss_before=$(rss_kib "$MAIN_PID")
	fds_before=$(ls "/proc/$MAIN_PID/fd" | wc -l)
	python3 "$top_srcdir/tests/integration/bad_clients.py" "$SOCKET" 2000 \
		"$WORK/bad.ready" "$WORK/bad.done" > "$WORK/bad.out" 2>&1 &
	local bad=$!

	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -e "$WORK/bad.ready" ] && break
		kill -0 "$bad" 2>/dev/null || break
		sleep 0.1
	done
	as_user alice "$CTL" --socket "$SOCKET" -q ticket > "$WORK/bad.ticket" ||
		status=1
	[ -s "$WORK/bad.ticket" ] || status=1
	rss_during=$(rss_kib "$MAIN_PID")
	touch "$WORK/bad.done"
	wait "$bad" || status=1
	cat "$WORK/bad.out"

	for ((i = 0; i < 50; i++)); do
		fds_after=$(ls "/proc/$MAIN_PID/fd" | wc -l)
		[ "$fds_after" -le $((fds_before + 2)) ] && break
		sleep 0.1
	done
	echo "RSS $rss_before KiB before, $rss_during KiB with the bad" \
		"clients; descriptors $fds_before before, $fds_after after"
	# The output buffer of the client that never reads is capped at
	# 1 MiB; the rest is connection state.
	[ "$rss_during" -le $((rss_before + 32768)) ] || status=1
	[ "$fds_after" -le $((fds_before + 2)) ] || status=1
	return $status
}

root_gets_any_ticket() {
	"$CTL" --socket "$SOCKET" ticket --user bob \
		> "$WORK/bob.ticket" 2> "$WORK/bob.progress" ||
		{ cat "$WORK/bob.progress"; return 1; }
	# cloudappctl ends the ticket with a newline; $(...) strips it.
	[ "$(cat "$WORK/bob.ticket")" = "$(cat "$EMULATOR_STATE/tickets/bob")" ] &&
		grep -q "waiting for the cloud app of bob" "$WORK/bob.progress"
}

# A ticket that no client picks up within pickup_timeout is wiped from
# memory.
unclaimed_ticket_dropped() {
	local socket=$WORK/pickup.sock i
	write_config pickup "$SECRET" <<'CONF'
pickup_timeout = 1;
CONF
	start_daemon "$WORK/pickup.conf" "$socket"
	write_pam_service pickup "socket=$socket timeout=2"
	pam_login pickup bob open_session > /dev/null 2>&1 || return 1
	for ((i = 0; i < 100; i++)); do
		"$CTL" --socket "$socket" status --json > "$WORK/pickup.json"
		grep -q '"state": *"ready"' "$WORK/pickup.json" && break
		sleep 0.1
	done
	grep -q '"state": *"ready"' "$WORK/pickup.json" ||
		{ echo "the ticket never became ready"; return 1; }
	for ((i = 0; i < 100; i++)); do
		"$CTL" --socket "$socket" status --json > "$WORK/pickup.json"
		grep -q '"user": *"bob"' "$WORK/pickup.json" || break
		sleep 0.1
	done
	! grep -q '"user": *"bob"' "$WORK/pickup.json" &&
		grep -q "not picked up within 1 s" "$WORK/daemon.log"
}

# A slow cloud response for alice does not delay bob's ticket.
calls_do_not_wait_on_each_other() {
	printf '{"alice": {"delay_seconds": 4}}\n' > "$EMULATOR_STATE/faults.json"
	"$CTL" --socket "$SOCKET" --quiet ticket --user alice \
		> /dev/null 2>&1 &
	local alice=$!
	sleep 0.5
	"$CTL" --socket "$SOCKET" --quiet ticket --user bob > /dev/null
	local bob_status=$?
	# alice's first request is still in the emulator's 4 s delay.
	kill -0 "$alice" 2>/dev/null
	local alice_running=$?
	rm -f "$EMULATOR_STATE/faults.json"
	wait "$alice"
	[ "$bob_status" = 0 ] && [ "$alice_running" = 0 ]
}

# READY=1 and STATUS= reach the socket named by NOTIFY_SOCKET, and SIGTERM
# stops the daemon with status 0.
notify_ready_and_stop() {
	python3 - "$WORK/notify.sock" > "$WORK/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        message = s.recv(4096).decode()
        print(message, flush=True)
        if "STOPPING=1" in message:
            break
except socket.timeout:
    pass
PY
	local listener=$! daemon status
	wait_for "the notify socket" test -S "$WORK/notify.sock"
	# As WatchdogSec=0.4 would: the event loop must ping every 0.2 s.
	NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=400000 "$DAEMON" \
		--config "$WORK/good.conf" --listen "$WORK/notify-daemon.sock" \
		2>> "$WORK/daemon.log" &
	daemon=$!
	wait_for "READY=1" grep -q "READY=1" "$WORK/notify.out"
	sleep 1
	kill -TERM "$daemon"
	wait "$daemon"
	status=$?
	wait "$listener"
	cat "$WORK/notify.out"
	[ "$status" = 0 ] && grep -q "^STATUS=" "$WORK/notify.out" &&
		grep -q "STOPPING=1" "$WORK/notify.out" &&
		[ "$(grep -c "^WATCHDOG=1" "$WORK/notify.out")" -ge 3 ]
}

pam_session_leaves_nothing() {
	write_pam_service leak "socket=$SOCKET timeout=2"
	pam_session leak alice
}

pam_session_leaves_nothing_on_timeout() {
	python3 - "$WORK/silent.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
conns = []
s.settimeout(1)
end = time.time() + 20
while time.time() < end:
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
PY
	lib_pids+=($!)
	wait_for "the silent socket" test -S "$WORK/silent.sock"
	write_pam_service leak-silent "socket=$WORK/silent.sock timeout=1"
	pam_session leak-silent alice
}

# A FIFO as the secret file, the configuration or ca_file must not block
# startup.
fifo_rejected() {
	mkfifo "$WORK/secret.fifo" "$WORK/config.fifo" "$WORK/ca.fifo"
	write_config fifoca "$SECRET" < /dev/null
	sed -i "s|^ca_file = .*|ca_file = \"$WORK/ca.fifo\";|" "$WORK/fifoca.conf"
	if timeout 10 "$DAEMON" --config "$WORK/fifoca.conf" --check-config \
		2> "$WORK/fifoca.err"; then
		return 1
	fi
	cat "$WORK/fifoca.err"
	grep -q "ca.fifo is not a regular file" "$WORK/fifoca.err" || return 1
	write_config fifo "$WORK/secret.fifo" < /dev/null
	if timeout 10 "$DAEMON" --config "$WORK/fifo.conf" --check-config \
		2> "$WORK/fifo.err"; then
		return 1
	fi
	grep -q "not a regular file" "$WORK/fifo.err" || return 1
	if timeout 10 "$DAEMON" --config "$WORK/config.fifo" --check-config \
		2> "$WORK/fifo2.err"; then
		return 1
	fi
	cat "$WORK/fifo.err" "$WORK/fifo2.err"
	grep -q "not a regular file" "$WORK/fifo2.err"
}

# A connection with no call is closed after client_idle_timeout.
idle_connection_closed() {
	local socket=$WORK/idleconn.sock
	write_config idleconn "$SECRET" <<'CONF'
client_idle_timeout = 1;
CONF
	start_daemon "$WORK/idleconn.conf" "$socket"
	as_user alice python3 - "$socket" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
# The daemon closes the connection: recv() returns b"" well before 10 s.
sys.exit(0 if s.recv(1) == b"" else 1)
PY
}

# Out of descriptors, the daemon pauses accepting instead of spinning,
# and serves again once connections close.
out_of_descriptors() {
	local socket=$WORK/nofile.sock count
	write_config nofile "$SECRET" < /dev/null
	# The daemon runs without valgrind here even under
	# tools/run-valgrind.sh: valgrind keeps descriptors of its own below
	# the limit and changes how many the daemon can open.
	DAEMON_WRAPPER="prlimit --nofile=48:48" \
		start_daemon "$WORK/nofile.conf" "$socket"
	python3 - "$socket" <<'PY' || return 1
import socket, sys, time
held = []
for _ in range(80):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(2.5)
for s in held:
    s.close()
PY
	count=$(grep -c "accept failed" "$WORK/daemon.log")
	echo "accept failed $count times while out of descriptors"
	[ "$count" -ge 1 ] && [ "$count" -le 10 ] &&
		"$CTL" --socket "$socket" --timeout 10 --quiet status > /dev/null
}

# Who is served: min_uid, deny_users, and deny_groups through a
# supplementary group; and the map file winning over the template.
served_users_policy() {
	local socket=$WORK/policy.sock
	printf 'nokiosk:x:30000:bob\n' >> "$WORK/group"
	printf 'alice alice_mapped\n' > "$WORK/end-user-ids"
	write_config policy "$SECRET" <<CONF
min_uid = 10001;
deny_users = ["Carol"];
deny_groups = ["nokiosk"];
end_user_id_map = "$WORK/end-user-ids";
CONF
	start_daemon "$WORK/policy.conf" "$socket"
	if "$CTL" --socket "$socket" -q ticket --user root \
		> /dev/null 2> "$WORK/policy-root.err" ||
		"$CTL" --socket "$socket" -q ticket --user bob \
			> /dev/null 2> "$WORK/policy-bob.err" ||
		"$CTL" --socket "$socket" -q ticket --user Carol \
			> /dev/null 2> "$WORK/policy-carol.err"; then
		return 1
	fi
	cat "$WORK"/policy-*.err
	"$CTL" --socket "$socket" resolve alice > "$WORK/resolve-map.out" ||
		return 1
	grep -qx "end_user_id_source: end_user_id_map" "$WORK/resolve-map.out" &&
		grep -q "min_uid" "$WORK/policy-root.err" &&
		grep -q "member of group nokiosk (deny_groups" \
			"$WORK/policy-bob.err" &&
		grep -q "deny_users" "$WORK/policy-carol.err" &&
		"$CTL" --socket "$socket" -q ticket --user alice > /dev/null &&
		grep -q '"end_user_id": "alice_mapped"' \
			"$EMULATOR_STATE/requests.jsonl"
}

# resolve shows what a ticket would use, and makes no cloud call.
resolve_without_cloud_call() {
	local before after
	before=$(wc -l < "$EMULATOR_STATE/requests.jsonl")
	"$CTL" --socket "$SOCKET" resolve alice > "$WORK/resolve.out" || return 1
	"$CTL" --socket "$SOCKET" resolve --json alice > "$WORK/resolve.json" ||
		return 1
	after=$(wc -l < "$EMULATOR_STATE/requests.jsonl")
	cat "$WORK/resolve.out"
	[ "$before" = "$after" ] &&
		grep -qx "end_user_id: alice" "$WORK/resolve.out" &&
		grep -qx "  ProductType: CloudApp" "$WORK/resolve.out" &&
		grep -qx "  AppId: $TEST_APP_ID" "$WORK/resolve.out" &&
		python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d["request"]["AppId"] != sys.argv[2])' \
			"$WORK/resolve.json" "$TEST_APP_ID" &&
		! as_user bob "$CTL" --socket "$SOCKET" resolve alice \
			> /dev/null 2>&1 || return 1
	# An unknown user gets the administrator's error, without the
	# message meant for the login screen.
	if "$CTL" --socket "$SOCKET" resolve nosuchuser \
		> /dev/null 2> "$WORK/resolve-unknown.err"; then
		return 1
	fi
	cat "$WORK/resolve-unknown.err"
	grep -q "not known to this system" "$WORK/resolve-unknown.err" &&
		! grep -q "Please" "$WORK/resolve-unknown.err"
}

check_config_command() {
	CLOUDAPP_TICKETD=$DAEMON "$CTL" check-config "$WORK/good.conf" \
		> /dev/null || return 1
	if CLOUDAPP_TICKETD=$DAEMON "$CTL" check-config "$WORK/bad.conf" \
		2> "$WORK/check.err"; then
		return 1
	fi
	grep -q "$WORK/bad.conf:[0-9]*: setting poll_interval" "$WORK/check.err"
}

# The libcurl that the daemon loads with dlopen(), as configure named it.
LIBCURL_SONAME=$(sed -n 's/^#define LIBCURL_SONAME "\(.*\)"$/\1/p' \
	"$top_builddir/config.h")

# libcurl is mapped only once a task needs the cloud: not by
# --check-config, nor after start-up and a status call, but after a
# ticket.
libcurl_loaded_at_first_task() {
	local socket=$WORK/lazy.sock pid
	[ -n "$LIBCURL_SONAME" ] ||
		{ echo "no LIBCURL_SONAME in config.h"; return 1; }
	write_config lazy "$SECRET" < /dev/null
	LD_DEBUG=files "$DAEMON" --config "$WORK/lazy.conf" --check-config \
		> /dev/null 2> "$WORK/lazy-check.ld" || return 1
	if grep -qF "$LIBCURL_SONAME" "$WORK/lazy-check.ld"; then
		echo "--check-config loaded $LIBCURL_SONAME"
		return 1
	fi
	start_daemon "$WORK/lazy.conf" "$socket"
	pid=${lib_pids[-1]}
	"$CTL" --socket "$socket" -q status > /dev/null || return 1
	if grep -qF "/$LIBCURL_SONAME" "/proc/$pid/maps"; then
		echo "$LIBCURL_SONAME is mapped before any task"
		return 1
	fi
	"$CTL" --socket "$socket" -q ticket --user bob > /dev/null || return 1
	if ! grep -qF "/$LIBCURL_SONAME" "/proc/$pid/maps"; then
		echo "$LIBCURL_SONAME is not mapped after a ticket"
		return 1
	fi
}

# Without libcurl the daemon starts and replies to status calls.  Each ticket
# request fails with an error that names the library and the package to
# install, the daemon keeps serving, and its log has the error once.
missing_libcurl_reported() {
	local socket=$WORK/nocurl.sock shim i
	local logged="cannot send requests to the cloud: cannot load"
	shim=$(build_preload fail_dlopen) || return 1
	write_config nocurl "$SECRET" < /dev/null
	DAEMON_PRELOAD=$shim start_daemon "$WORK/nocurl.conf" "$socket"
	"$CTL" --socket "$socket" -q status > /dev/null || return 1
	for i in 1 2; do
		if "$CTL" --socket "$socket" -q ticket --user bob \
			> /dev/null 2> "$WORK/nocurl.err"; then
			echo "a ticket arrived without libcurl"
			return 1
		fi
	done
	cat "$WORK/nocurl.err"
	grep -qF "cannot load $LIBCURL_SONAME" "$WORK/nocurl.err" || return 1
	grep -q "install libcurl4" "$WORK/nocurl.err" || return 1
	"$CTL" --socket "$socket" -q status > /dev/null || return 1
	[ "$(grep -cF "$logged $LIBCURL_SONAME" "$WORK/daemon.log")" = 1 ]
}

# config_load() only looks for a PEM certificate block in ca_file.  The
# certificates are parsed by --check-config and by the first task, which
# reports a broken one to its client.
broken_ca_file_reported() {
	local socket=$WORK/badca.sock
	printf -- '%s\n' "-----BEGIN CERTIFICATE-----" MIIB \
		"-----END CERTIFICATE-----" > "$WORK/badca.pem"
	write_config badca "$SECRET" < /dev/null
	sed -i "s|^ca_file = .*|ca_file = \"$WORK/badca.pem\";|" \
		"$WORK/badca.conf"
	if "$DAEMON" --config "$WORK/badca.conf" --check-config \
		2> "$WORK/badca-check.err"; then
		echo "--check-config accepted a broken certificate"
		return 1
	fi
	cat "$WORK/badca-check.err"
	grep -qF "cannot load the CA certificates in $WORK/badca.pem" \
		"$WORK/badca-check.err" || return 1
	grep -q "check that it contains only PEM certificates" \
		"$WORK/badca-check.err" || return 1
	start_daemon "$WORK/badca.conf" "$socket"
	if "$CTL" --socket "$socket" -q ticket --user bob \
		> /dev/null 2> "$WORK/badca-ticket.err"; then
		echo "a ticket arrived with a broken CA file"
		return 1
	fi
	cat "$WORK/badca-ticket.err"
	grep -qF "cannot load the CA certificates in $WORK/badca.pem" \
		"$WORK/badca-ticket.err" &&
		"$CTL" --socket "$socket" -q status > /dev/null
}

# SIGHUP rereads the configuration, and a broken file keeps the old one.
# A task in flight finishes with the configuration it started with, even
# when the reload points the endpoint somewhere unreachable.
reload_live_daemon() {
	local socket=$WORK/reload.sock pid
	write_config reload "$SECRET" < /dev/null
	sed -i 's/^end_user_id = .*/end_user_id = "a_%u";/' "$WORK/reload.conf"
	start_daemon "$WORK/reload.conf" "$socket"
	pid=${lib_pids[-1]}
	"$CTL" --socket "$socket" resolve alice | grep -qx "end_user_id: a_alice" ||
		return 1

	# A ticket task whose cloud task takes a while is in flight...
	printf '{"b_bob": {"delay_seconds": 1}}\n' > "$EMULATOR_STATE/faults.json"
	sed -i 's/^end_user_id = .*/end_user_id = "b_%u";/' "$WORK/reload.conf"
	kill -HUP "$pid"
	wait_for "the reload" grep -q "reloaded the configuration" "$WORK/daemon.log"
	"$CTL" --socket "$socket" resolve alice | grep -qx "end_user_id: b_alice" ||
		return 1
	"$CTL" --socket "$socket" -q ticket --user bob > "$WORK/reload-bob.out" &
	local bob=$!
	sleep 0.3
	# ...when a reload moves the endpoint to a closed port.
	sed -i 's|^endpoint = .*|endpoint = "https://127.0.0.1:1";|' "$WORK/reload.conf"
	kill -HUP "$pid"
	wait "$bob" || { rm -f "$EMULATOR_STATE/faults.json"; return 1; }
	rm -f "$EMULATOR_STATE/faults.json"
	[ -s "$WORK/reload-bob.out" ] || return 1
	# New tasks use the new endpoint and fail to reach it.
	if "$CTL" --socket "$socket" -q ticket --user alice \
		> /dev/null 2> "$WORK/reload-alice.err"; then
		return 1
	fi
	grep -q "cannot reach https://127.0.0.1:1" "$WORK/reload-alice.err" ||
		return 1

	# A broken file is rejected and the running configuration stays.
	printf 'max_tasks = "many";\n' >> "$WORK/reload.conf"
	kill -HUP "$pid"
	wait_for "the failed reload" grep -q \
		"reloading the configuration failed, keeping the previous one" \
		"$WORK/daemon.log"
	"$CTL" --socket "$socket" resolve alice | grep -qx "end_user_id: b_alice"
}

# A profile chosen by the PAM service sends every parameter it sets, and
# the emulator receives them decoded to the same values.
profile_parameters_arrive() {
	local socket=$WORK/profile.sock
	write_config profile "$SECRET" <<'CONF'
profiles = (
  { name = "kiosk_login"; services = ["kioskpam"];
    app_version = "2.1.0";
    app_start_param = "/q /n *~+ ü";
    environment_config = "{\"lang\":\"en\"}";
    biz_region_id = "cn-shanghai";
    access_type = "INTERNET";
    app_policy_id = "pg-1";
    app_instance_persistent_id = "p-1";
    app_instance_group_ids = ["aig-01", "aig-02", "aig-03", "aig-04",
      "aig-05", "aig-06", "aig-07", "aig-08", "aig-09", "aig-10",
      "aig-11"]; },
  { name = "bob_instance"; users = ["b?b"];
    app_instance_id = "ai-0001"; app_instance_group_ids = ["aig-bob"]; }
);
CONF
	start_daemon "$WORK/profile.conf" "$socket"
	write_pam_service kioskpam "socket=$socket timeout=2"
	pam_login kioskpam alice open_session > /dev/null 2>&1 || return 1
	"$CTL" --socket "$socket" -q ticket --user alice > /dev/null || return 1
	"$CTL" --socket "$socket" resolve alice | grep -qx "profile: default" ||
		return 1
	"$CTL" --socket "$socket" resolve bob | grep -qx "profile: bob_instance" ||
		return 1
	"$CTL" --socket "$socket" -q ticket --user bob > /dev/null || return 1
	python3 - "$EMULATOR_STATE/requests.jsonl" <<'PY'
import json, sys
starts = [json.loads(line) for line in open(sys.argv[1])]
starts = [e for e in starts if e.get("end_user_id") == "alice"
          and e.get("call") == "start" and "AppVersion" in e["params"]]
params = starts[-1]["params"]
expected = {
    "AppVersion": "2.1.0", "AppStartParam": "/q /n *~+ ü",
    "EnvironmentConfig": '{"lang":"en"}', "BizRegionId": "cn-shanghai",
    "AccessType": "INTERNET", "AppPolicyId": "pg-1",
    "AppInstancePersistentId": "p-1", "ProductType": "CloudApp",
}
for i in range(1, 12):
    expected[f"AppInstanceGroupIdList.{i}"] = f"aig-{i:02d}"
wrong = {k: (params.get(k), v) for k, v in expected.items()
         if params.get(k) != v}
bob = [json.loads(line) for line in open(sys.argv[1])]
bob = [e["params"] for e in bob if e.get("end_user_id") == "bob"
       and e.get("call") == "start" and "AppInstanceId" in e.get("params", {})]
if not bob or bob[-1].get("AppInstanceId") != "ai-0001" or \
        bob[-1].get("AppInstanceGroupIdList.1") != "aig-bob":
    wrong["bob"] = bob[-1] if bob else None
print("wrong parameters:", wrong) if wrong else None
sys.exit(1 if wrong else 0)
PY
}

# ticket --json carries every response field; TenantId stays a 64-bit
# integer.
ticket_json_fields() {
	"$CTL" --socket "$SOCKET" -q ticket --json --user bob > "$WORK/ticket.json" ||
		return 1
	python3 - "$WORK/ticket.json" "$EMULATOR_STATE/tickets/bob" <<'PY'
import json, sys
reply = json.load(open(sys.argv[1]))
missing = [k for k in ("request_id", "task_id", "task_status", "ticket",
                       "app_instance_group_id", "app_instance_id",
                       "app_instance_persistent_id", "os_type",
                       "biz_region_id", "tenant_id", "end_user_id")
           if k not in reply]
ok = (not missing and reply["task_status"] == "Finished"
      and reply["tenant_id"] == 1234567890123456789
      and reply["ticket"] == open(sys.argv[2]).read())
print("missing:", missing) if missing else None
sys.exit(0 if ok else 1)
PY
}

# cloudappctl and the module use only a socket they can trust.
untrusted_sockets_rejected() {
	local status=0
	# A regular file at the socket's path.
	touch "$WORK/not-a-socket"
	"$CTL" --socket "$WORK/not-a-socket" status > /dev/null 2> "$WORK/trust1.err" &&
		status=1
	grep -q "not a socket" "$WORK/trust1.err" || status=1
	# A socket in a folder that others can write.
	mkdir -p "$WORK/open-dir"
	chmod 0777 "$WORK/open-dir"
	start_daemon "$WORK/good.conf" "$WORK/open-dir/t.sock"
	"$CTL" --socket "$WORK/open-dir/t.sock" status > /dev/null \
		2> "$WORK/trust2.err" && status=1
	grep -q "writable by group or others" "$WORK/trust2.err" || status=1
	# A socket whose listening process is neither root nor the service
	# user.
	python3 - "$WORK/user.sock" "$TEST_ALICE_UID" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[2]))
s.listen(8)
s.settimeout(15)
try:
    while True:
        s.accept()
except socket.timeout:
    pass
PY
	lib_pids+=($!)
	wait_for "the user's socket" test -S "$WORK/user.sock"
	sleep 0.2
	"$CTL" --socket "$WORK/user.sock" status > /dev/null 2> "$WORK/trust3.err" &&
		status=1
	grep -q "served by uid $TEST_ALICE_UID, not by root or the user $TEST_SERVICE_USER" \
		"$WORK/trust3.err" || status=1
	cat "$WORK"/trust*.err
	return $status
}

check "config error names file, line, setting" config_error_reported
check "group-readable secret file rejected" secret_file_mode_rejected
check "check-config accepts a good file" check_config_accepts_good
check "malformed message rejected" malformed_message_rejected
check "oversized message rejected" oversized_message_rejected
check "unknown method rejected" unknown_method_rejected
check "daemon still serves after bad calls" daemon_still_serves
check "bad clients leave others served" bad_clients_leave_others_served
check "root gets any user's ticket" root_gets_any_ticket
check "unclaimed ticket dropped" unclaimed_ticket_dropped
check "calls do not wait on each other" calls_do_not_wait_on_each_other
check "sd_notify READY, watchdog, stop" notify_ready_and_stop
check "PAM session leaves no fd or thread" pam_session_leaves_nothing
check "same when the daemon is silent" pam_session_leaves_nothing_on_timeout
check "FIFO secret or config rejected" fifo_rejected
check "idle connection closed" idle_connection_closed
check "out of descriptors pauses accept" out_of_descriptors
check "served users and map file" served_users_policy
check "resolve makes no cloud call" resolve_without_cloud_call
check "cloudappctl check-config" check_config_command
check "libcurl loaded at first task" libcurl_loaded_at_first_task
check "missing libcurl fails the request" missing_libcurl_reported
check "broken CA file found at first task" broken_ca_file_reported
check "reload on SIGHUP" reload_live_daemon
check "profile parameters arrive" profile_parameters_arrive
check "ticket --json has every field" ticket_json_fields
check "untrusted sockets rejected" untrusted_sockets_rejected

check_summary
