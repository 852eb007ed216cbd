#!/bin/bash
# The credential sources of cloudapp-ticketd against the emulator: systemd
# credentials, the environment and the shared credentials file.  Also an
# STS token in the signed header, rotation of a credential file without a
# restart, and the source named by "cloudappctl status" without the secret.
set -u
. "$(dirname "$0")/lib.sh"

require_tools
setup_work
echo "carol_x:x:10050:10050::/nonexistent:/bin/sh" >> "$WORK/passwd"
start_emulator 0.5
SECRET_VALUE=$(cat "$WORK/emulator-secret")

# Writes NAME.conf without access_key_id and access_key_secret_file, so
# the key must come from another source.
write_keyless_config() {
	write_config "$1" /nonexistent < /dev/null
	sed -i '/^access_key_id = /d; /^access_key_secret_file = /d' \
		"$WORK/$1.conf"
}

# Writes a 0600 file.
write_private() {
	(umask 077 && printf '%s\n' "$2" > "$1")
}

# Fetches a ticket for alice through SOCKET and checks status names the
# source $2 and never shows the secret.
ticket_and_source() {
	local socket=$1 source=$2
	"$CTL" --socket "$socket" -q ticket --user alice > "$WORK/t.out" \
		2> "$WORK/t.err" || { cat "$WORK/t.err"; return 1; }
	"$CTL" --socket "$socket" status > "$WORK/status.out" || return 1
	grep "Credentials:" "$WORK/status.out"
	grep -q "Credentials: *$source" "$WORK/status.out" &&
		! grep -qF -- "$SECRET_VALUE" "$WORK/status.out" "$WORK/daemon.log"
}

systemd_credentials() {
	mkdir -p "$WORK/creds"
	write_private "$WORK/creds/access-key-id" "$TEST_ACCESS_KEY_ID"
	write_private "$WORK/creds/access-key-secret" "$SECRET_VALUE"
	write_keyless_config systemd
	CREDENTIALS_DIRECTORY=$WORK/creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
		start_daemon "$WORK/systemd.conf" "$WORK/systemd.sock"
	ticket_and_source "$WORK/systemd.sock" "systemd credentials in $WORK/creds"
}

environment_credentials() {
	write_keyless_config environ
	ALIBABA_CLOUD_ACCESS_KEY_ID=$TEST_ACCESS_KEY_ID \
		ALIBABA_CLOUD_ACCESS_KEY_SECRET=$SECRET_VALUE \
		DAEMON_ENV="ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET" \
		start_daemon "$WORK/environ.conf" "$WORK/environ.sock"
	ticket_and_source "$WORK/environ.sock" "the environment"
}

credentials_file() {
	write_private "$WORK/credentials.ini" "[default]
type = access_key
access_key_id = wrong
access_key_secret = wrong

[kiosk]
; the profile the daemon is told to use
type = access_key
access_key_id = $TEST_ACCESS_KEY_ID
access_key_secret = $SECRET_VALUE"
	write_keyless_config ini
	ALIBABA_CLOUD_CREDENTIALS_FILE=$WORK/credentials.ini \
		ALIBABA_CLOUD_PROFILE=kiosk \
		DAEMON_ENV="ALIBABA_CLOUD_CREDENTIALS_FILE ALIBABA_CLOUD_PROFILE" \
		start_daemon "$WORK/ini.conf" "$WORK/ini.sock"
	ticket_and_source "$WORK/ini.sock" \
		"the credentials file $WORK/credentials.ini, profile kiosk"
}

credentials_file_mode_rejected() {
	write_private "$WORK/loose.ini" "[default]
access_key_id = a
access_key_secret = b"
	chmod 0644 "$WORK/loose.ini"
	write_keyless_config loose
	if ALIBABA_CLOUD_CREDENTIALS_FILE=$WORK/loose.ini \
		"$top_builddir/cloudapp-ticketd" --config "$WORK/loose.conf" \
		--listen "$WORK/loose.sock" 2> "$WORK/loose.err"; then
		return 1
	fi
	cat "$WORK/loose.err"
	grep -q "credentials file $WORK/loose.ini" "$WORK/loose.err" &&
		grep -q "chmod 0600" "$WORK/loose.err"
}

no_credentials_reported() {
	write_keyless_config none
	if env -u ALIBABA_CLOUD_ACCESS_KEY_ID -u CREDENTIALS_DIRECTORY \
		-u ALIBABA_CLOUD_CREDENTIALS_FILE \
		"$top_builddir/cloudapp-ticketd" --config "$WORK/none.conf" \
		--listen "$WORK/none.sock" 2> "$WORK/none.err"; then
		return 1
	fi
	grep -q "no credentials" "$WORK/none.err"
}

# An STS token goes in the signed x-acs-security-token header; the
# emulator rejects requests without it.
sts_token() {
	local saved_port=$EMULATOR_PORT saved_state=$EMULATOR_STATE
	write_private "$WORK/sts-token" "sts-token-$RANDOM$RANDOM"
	EMULATOR_NAME=sts EMULATOR_ARGS="--security-token-file $WORK/sts-token" \
		start_emulator 0.2
	mkdir -p "$WORK/sts-creds"
	write_private "$WORK/sts-creds/access-key-id" "$TEST_ACCESS_KEY_ID"
	write_private "$WORK/sts-creds/access-key-secret" "$SECRET_VALUE"
	write_keyless_config sts
	CREDENTIALS_DIRECTORY=$WORK/sts-creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
		start_daemon "$WORK/sts.conf" "$WORK/sts.sock"
	# Without the token the emulator returns MissingSecurityToken...
	"$CTL" --socket "$WORK/sts.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/sts1.err"
	# ...and after the token file appears, the next request has it.
	cp "$WORK/sts-token" "$WORK/sts-creds/security-token"
	# A new file in the folder is seen through the secret file's change.
	touch "$WORK/sts-creds/access-key-secret"
	"$CTL" --socket "$WORK/sts.sock" -q ticket --user bob \
		> "$WORK/sts2.out" 2> "$WORK/sts2.err"
	local status=$?
	EMULATOR_PORT=$saved_port EMULATOR_STATE=$saved_state
	cat "$WORK/sts1.err" "$WORK/sts2.err"
	grep -q "MissingSecurityToken" "$WORK/sts1.err" && [ "$status" = 0 ] &&
		! grep -qF -- "$(cat "$WORK/sts-token")" "$WORK/daemon.log"
}

# A secret rotated in its file is used from the next request on.
rotation_without_restart() {
	mkdir -p "$WORK/rot-creds"
	write_private "$WORK/rot-creds/access-key-id" "$TEST_ACCESS_KEY_ID"
	write_private "$WORK/rot-creds/access-key-secret" "old-wrong-secret"
	write_keyless_config rotate
	CREDENTIALS_DIRECTORY=$WORK/rot-creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
		start_daemon "$WORK/rotate.conf" "$WORK/rotate.sock"
	if "$CTL" --socket "$WORK/rotate.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/rot1.err"; then
		return 1
	fi
	grep -q "SignatureDoesNotMatch" "$WORK/rot1.err" || return 1
	# Replace the file as an agent does: write a new one, rename it.
	write_private "$WORK/rot-creds/.new" "$SECRET_VALUE"
	mv "$WORK/rot-creds/.new" "$WORK/rot-creds/access-key-secret"
	"$CTL" --socket "$WORK/rotate.sock" -q ticket --user bob > /dev/null ||
		return 1
	grep -q "reloaded the credentials from systemd credentials" \
		"$WORK/daemon.log"
}

# signature_version = "v2" signs with HMAC-SHA1, which the emulator
# checks as the gateway does; a wrong secret still fails clearly.
signature_v2() {
	cp "$WORK/emulator-secret" "$WORK/v2-secret"
	chmod 0600 "$WORK/v2-secret"
	write_config v2 "$WORK/v2-secret" <<'CONF'
signature_version = "v2";
CONF
	start_daemon "$WORK/v2.conf" "$WORK/v2.sock"
	"$CTL" --socket "$WORK/v2.sock" -q ticket --user alice > /dev/null ||
		return 1
	grep -q '"SignatureMethod": "HMAC-SHA1"' "$EMULATOR_STATE/requests.jsonl" ||
		return 1
	write_private "$WORK/v2-wrong" "not-the-secret"
	write_config v2wrong "$WORK/v2-wrong" <<'CONF'
signature_version = "v2";
CONF
	start_daemon "$WORK/v2wrong.conf" "$WORK/v2wrong.sock"
	if "$CTL" --socket "$WORK/v2wrong.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/v2wrong.err"; then
		return 1
	fi
	cat "$WORK/v2wrong.err"
	grep -q "SignatureDoesNotMatch" "$WORK/v2wrong.err"
}

# Reads the emulator's counters for the emulator on port $1.
emulator_stats() {
	python3 - "$1" "$WORK/certs/ca.pem" <<'PY'
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
conn = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]),
                                   context=context, timeout=10)
conn.request("GET", "/_emulator/stats")
print(conn.getresponse().read().decode())
PY
}

# With ram_role_arn the key may only assume the role: the daemon calls
# AssumeRole, signs the ticket calls with the temporary key and token,
# and renews them before they expire.
ram_role() {
	local saved_port=$EMULATOR_PORT saved_state=$EMULATOR_STATE role_port
	EMULATOR_NAME=role \
		EMULATOR_ARGS="--role-arn acs:ram::1234:role/kiosk --role-seconds 8" \
		start_emulator 0.2
	role_port=$EMULATOR_PORT
	cp "$WORK/emulator-secret" "$WORK/role-secret"
	chmod 0600 "$WORK/role-secret"
	# The key alone is refused for tickets.
	write_config keyonly "$WORK/role-secret" < /dev/null
	start_daemon "$WORK/keyonly.conf" "$WORK/keyonly.sock"
	if "$CTL" --socket "$WORK/keyonly.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/keyonly.err"; then
		EMULATOR_PORT=$saved_port EMULATOR_STATE=$saved_state
		return 1
	fi
	write_config role "$WORK/role-secret" <<CONF
ram_role_arn = "acs:ram::1234:role/kiosk";
sts_endpoint = "https://127.0.0.1:$role_port";
CONF
	start_daemon "$WORK/role.conf" "$WORK/role.sock"
	"$CTL" --socket "$WORK/role.sock" -q ticket --user alice > /dev/null &&
		"$CTL" --socket "$WORK/role.sock" -q ticket --user bob > /dev/null
	local first=$?
	local count_first
	count_first=$(emulator_stats "$role_port" | python3 -c 'import json,sys; print(json.load(sys.stdin)["assume_role"])')
	# Past three quarters of the 8 s lifetime the next call renews.
	sleep 6.5
	"$CTL" --socket "$WORK/role.sock" -q ticket --user alice > /dev/null
	local second=$?
	local count_second
	count_second=$(emulator_stats "$role_port" | python3 -c 'import json,sys; print(json.load(sys.stdin)["assume_role"])')
	# A shared credentials file of type ram_role_arn names the role too.
	write_private "$WORK/role.ini" "[default]
type = ram_role_arn
access_key_id = $TEST_ACCESS_KEY_ID
access_key_secret = $SECRET_VALUE
role_arn = acs:ram::1234:role/kiosk
role_session_name = kiosk_host"
	write_keyless_config iniroute
	printf 'sts_endpoint = "https://127.0.0.1:%s";\n' "$role_port" \
		>> "$WORK/iniroute.conf"
	ALIBABA_CLOUD_CREDENTIALS_FILE=$WORK/role.ini \
		DAEMON_ENV=ALIBABA_CLOUD_CREDENTIALS_FILE \
		start_daemon "$WORK/iniroute.conf" "$WORK/iniroute.sock"
	"$CTL" --socket "$WORK/iniroute.sock" -q ticket --user carol_x \
		> /dev/null 2> "$WORK/iniroute.err"
	local from_ini=$?
	# A role that does not exist gives a clear error.
	write_config badrole "$WORK/role-secret" <<CONF
ram_role_arn = "acs:ram::1234:role/missing";
sts_endpoint = "https://127.0.0.1:$role_port";
CONF
	start_daemon "$WORK/badrole.conf" "$WORK/badrole.sock"
	"$CTL" --socket "$WORK/badrole.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/badrole.err"
	EMULATOR_PORT=$saved_port EMULATOR_STATE=$saved_state
	cat "$WORK/keyonly.err" "$WORK/badrole.err"
	echo "AssumeRole calls: $count_first, then $count_second"
	grep -q "Forbidden.RAM" "$WORK/keyonly.err" && [ "$first" = 0 ] &&
		[ "$second" = 0 ] && [ "$count_first" = 1 ] &&
		[ "$count_second" = 2 ] &&
		grep -q "EntityNotExist.Role" "$WORK/badrole.err" &&
		{ [ "$from_ini" = 0 ] || { cat "$WORK/iniroute.err"; false; }; }
}

# Counts the AssumeRole calls that the emulator with state STATE recorded.
assume_role_calls() {
	grep -c '"call": "assume_role"' "$1/requests.jsonl"
}

# Succeeds while the emulator on PORT is handling a POST request.
emulator_busy() {
	emulator_stats "$1" | python3 -c \
		'import json, sys; sys.exit(json.load(sys.stdin)["in_flight"] < 1)'
}

# A transient AssumeRole failure is retried.  A reload while AssumeRole is
# in flight discards its reply, which was signed for the old role.
ram_role_faults() {
	local saved_port=$EMULATOR_PORT saved_state=$EMULATOR_STATE
	local role_port state pid client retried calls reloaded
	EMULATOR_NAME=rolefault \
		EMULATOR_ARGS="--role-arn acs:ram::1234:role/kiosk --role-seconds 3600" \
		start_emulator 0.2
	role_port=$EMULATOR_PORT state=$EMULATOR_STATE
	cp "$WORK/emulator-secret" "$WORK/rolefault-secret"
	chmod 0600 "$WORK/rolefault-secret"
	printf '{"AssumeRole": {"fail": "http500", "count": 2}}\n' \
		> "$state/faults.json"
	write_config rolefault "$WORK/rolefault-secret" <<CONF
ram_role_arn = "acs:ram::1234:role/kiosk";
sts_endpoint = "https://127.0.0.1:$role_port";
CONF
	start_daemon "$WORK/rolefault.conf" "$WORK/rolefault.sock"
	"$CTL" --socket "$WORK/rolefault.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/rolefault.err"
	retried=$?
	calls=$(assume_role_calls "$state")

	# Only the first call is slow, so that the one after the reload is
	# replied to well before the ticket's deadline, also under valgrind.
	# The count starts again without the hits of the 500 fault above.
	rm -f "$state/fault-hits.json"
	printf '{"AssumeRole": {"delay_seconds": %d, "count": 1}}\n' \
		$((2 * ${TIMEOUT_SCALE:-1})) > "$state/faults.json"
	cp "$WORK/rolefault.conf" "$WORK/rolereload.conf"
	start_daemon "$WORK/rolereload.conf" "$WORK/rolereload.sock"
	pid=${lib_pids[-1]}
	"$CTL" --socket "$WORK/rolereload.sock" -q status > /dev/null
	"$CTL" --socket "$WORK/rolereload.sock" ticket --user bob \
		> /dev/null 2> "$WORK/rolereload.err" &
	client=$!
	wait_for "the AssumeRole call" emulator_busy "$role_port"
	sed -i 's|role/kiosk|role/missing|' "$WORK/rolereload.conf"
	kill -HUP "$pid"
	wait "$client"
	reloaded=$?
	EMULATOR_PORT=$saved_port EMULATOR_STATE=$saved_state
	cat "$WORK/rolefault.err" "$WORK/rolereload.err"
	grep "AssumeRole of acs:ram::1234:role/kiosk failed" "$WORK/daemon.log"
	echo "AssumeRole calls for the first ticket: $calls"
	[ "$retried" = 0 ] && [ "$calls" = 3 ] &&
		grep -q "role/kiosk failed: .*; retry 2 in" "$WORK/daemon.log" &&
		[ "$reloaded" != 0 ] &&
		grep -q "EntityNotExist.Role" "$WORK/rolereload.err" &&
		grep -q "waiting for the RAM role's temporary credentials" \
			"$WORK/rolereload.err"
}

# systemd credentials come first: a wrong key in the configuration is
# not used when they are present.
source_order() {
	write_private "$WORK/order-wrong" "not-the-secret"
	write_config order "$WORK/order-wrong" < /dev/null
	CREDENTIALS_DIRECTORY=$WORK/creds \
		ALIBABA_CLOUD_ACCESS_KEY_ID=wrong ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong \
		DAEMON_ENV="CREDENTIALS_DIRECTORY ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET" \
		start_daemon "$WORK/order.conf" "$WORK/order.sock"
	ticket_and_source "$WORK/order.sock" "systemd credentials" || return 1
	# They also win when the secret file that the configuration names is
	# gone, as after moving it to /etc/credstore.
	write_config moved "$WORK/moved-to-credstore" < /dev/null
	CREDENTIALS_DIRECTORY=$WORK/creds DAEMON_ENV=CREDENTIALS_DIRECTORY \
		start_daemon "$WORK/moved.conf" "$WORK/moved.sock"
	ticket_and_source "$WORK/moved.sock" "systemd credentials" || return 1
	# Without them the configuration's key is next, and its error
	# names that source.
	start_daemon "$WORK/order.conf" "$WORK/order2.sock"
	if "$CTL" --socket "$WORK/order2.sock" -q ticket --user alice \
		> /dev/null 2> "$WORK/order2.err"; then
		return 1
	fi
	cat "$WORK/order2.err"
	grep -q "SignatureDoesNotMatch" "$WORK/order2.err" &&
		grep -q "the key comes from the configuration $WORK/order.conf" \
			"$WORK/order2.err"
}

check "systemd credentials" systemd_credentials
check "credential source order" source_order
check "RAM role through AssumeRole" ram_role
check "AssumeRole retry and reload" ram_role_faults
check "signature V2" signature_v2
check "environment credentials" environment_credentials
check "shared credentials file" credentials_file
check "loose credentials file rejected" credentials_file_mode_rejected
check "no credentials reported" no_credentials_reported
check "STS token signed and sent" sts_token
check "rotation without restart" rotation_without_restart

check_summary
