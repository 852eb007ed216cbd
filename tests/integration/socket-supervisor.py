#!/usr/bin/env python3
"""Hold a listening Unix socket and start a daemon on it on demand, as
systemd does for a socket unit: when a client waits and no daemon runs,
start one with LISTEN_FDS=1 and LISTEN_PID set, and when it exits, keep
the socket and wait for the next client.

systemd-socket-activate cannot show an idle exit, because it hands the
socket to the daemon and is gone.  Each start is appended to START_LOG.

Usage: socket-supervisor.py SOCKET START_LOG COMMAND [ARG...]
"""

import os
import select
import signal
import socket
import subprocess
import sys
import time

LISTEN_FDS_START = 3


def main():
    path, start_log, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(128)
    # The daemon expects its socket as fd 3, the first after stdio.
    if listener.fileno() != LISTEN_FDS_START:
        os.dup2(listener.fileno(), LISTEN_FDS_START)
        listener.close()
        listener = socket.socket(fileno=LISTEN_FDS_START)
    os.set_inheritable(LISTEN_FDS_START, True)

    daemon = None
    stopping = False

    def stop(signum, frame):
        """Stop the running daemon with the supervisor, as systemd stops a
        service with its socket, so that no daemon outlives the test.  The
        main loop waits for it: Popen.wait() must not be entered again
        from a signal handler."""
        nonlocal stopping
        stopping = True
        if daemon is None or daemon.poll() is not None:
            sys.exit(0)
        daemon.terminate()

    signal.signal(signal.SIGTERM, stop)
    while True:
        select.select([listener], [], [])
        with open(start_log, "a", encoding="utf-8") as f:
            f.write(f"start {time.time():.3f}\n")
        # sh sets LISTEN_PID to its own pid, which exec gives the daemon.
        daemon = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
             *command],
            pass_fds=(LISTEN_FDS_START,))
        status = daemon.wait()
        with open(start_log, "a", encoding="utf-8") as f:
            f.write(f"exit {status} {time.time():.3f}\n")
        if stopping:
            sys.exit(0)
        daemon = None


if __name__ == "__main__":
    main()
