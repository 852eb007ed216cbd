#!/bin/bash
# The quick-start demo: installs what is missing, builds, then runs one
# kiosk login against the local App Streaming emulator and prints each
# step.  Nothing leaves this machine: the emulator listens on 127.0.0.1.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/install-deps.sh"
build_log=$(mktemp /tmp/cloudapp-demo-build.XXXXXX)
"$here/tools/build.sh" > "$build_log" 2>&1 || {
	cat "$build_log"
	rm -f "$build_log"
	exit 1
}
rm -f "$build_log"
echo "==> built cloudapp-ticketd, pam_cloudapp.so and cloudappctl"

top_srcdir=$here top_builddir=$here
. "$here/tests/integration/lib.sh"
require_tools
setup_work
# A cloud task that takes 3 s, as a real app start might.
start_emulator 3
step "App Streaming emulator on https://127.0.0.1:$EMULATOR_PORT (test CA in $WORK/certs)"

cp "$WORK/emulator-secret" "$WORK/access-key-secret"
chmod 0600 "$WORK/access-key-secret"
write_config demo "$WORK/access-key-secret" < /dev/null
SOCKET=$WORK/ticketd.sock
touch "$WORK/daemon.log"
tail -n +1 -f "$WORK/daemon.log" | sed -u 's/^/    daemon: /' &
lib_pids+=($!)
DAEMON_ARGS=--debug start_daemon "$WORK/demo.conf" "$SOCKET"
step "cloudapp-ticketd socket-activated on $SOCKET"

step "user alice logs in: PAM session stack with pam_cloudapp.so"
write_pam_service demo "socket=$SOCKET timeout=2 debug"
pam_login demo alice open_session
step "the login returned at once; the cloud app is starting"

step "in alice's session: cloudappctl launch (uid $TEST_ALICE_UID)"
as_user alice "$top_builddir/cloudappctl" --socket "$SOCKET" launch
result=$WORK/out/alice.result
if grep -qx "sha256=$(issued_ticket_sha alice)" "$result"; then
	step "the client received alice's ticket ($(wc -c < "$EMULATOR_STATE/tickets/alice") bytes, file mode $(sed -n 's/^mode=//p' "$result")); the ticket file is gone"
else
	fail "the client did not receive the ticket the emulator issued"
fi

sleep 0.2
step "demo finished"
