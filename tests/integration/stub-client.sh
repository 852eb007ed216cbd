#!/bin/bash
# A stand-in for the streaming client, run by "cloudappctl launch" in the
# tests.  It records what it received in OUT_DIR/END_USER_ID.result: the
# ticket's SHA-256, the ticket file's mode and owner, and whether the ticket
# leaked into its argv or environment.  Usage: stub-client.sh TICKET_FILE
# OUT_DIR END_USER_ID
set -u
ticket_file=$1 out_dir=$2 end_user_id=$3
result=$out_dir/$end_user_id.result

ticket=$(cat "$ticket_file") || { echo "unreadable" > "$result"; exit 3; }
leak=no
if tr '\0' '\n' < /proc/$$/environ | grep -qF -- "$ticket"; then
	leak=environment
fi
if tr '\0' '\n' < /proc/$$/cmdline | grep -qF -- "$ticket"; then
	leak=argv
fi
{
	echo "sha256=$(printf '%s' "$ticket" | sha256sum | cut -d' ' -f1)"
	echo "mode=$(stat -c %a "$ticket_file")"
	echo "owner=$(stat -c %u "$ticket_file")"
	echo "uid=$(id -u)"
	echo "leak=$leak"
} > "$result"
# The whole environment, for the test to scan for the access key secret.
tr '\0' '\n' < /proc/$$/environ > "$out_dir/$end_user_id.environ"
chmod 0600 "$out_dir/$end_user_id.environ"
exit "${STUB_EXIT_STATUS:-0}"
