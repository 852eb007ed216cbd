#!/bin/sh
# Runs a command with part of the sandbox of cloudapp-ticketd.service, in
# the private mount namespace that "unshare --mount --propagation private"
# made for it: a /proc that shows only the caller's own processes and no
# /proc/sys (ProtectProc=invisible, ProcSubset=pid), a read-only root and
# /run (ProtectSystem=strict) and empty /home and /root (ProtectHome=yes).
# unshare and this script exec the command, so it keeps their pid.
#
# Usage: unshare --mount --propagation private sandbox.sh COMMAND [ARG...]
set -eu

mount -t proc -o subset=pid,hidepid=invisible proc /proc
mount -o remount,bind,ro /
if mountpoint -q /run; then
	mount -o remount,bind,ro /run
fi
for dir in /home /root; do
	if [ -d "$dir" ]; then
		mount -t tmpfs -o ro,mode=0755 tmpfs "$dir"
	fi
done
exec "$@"
