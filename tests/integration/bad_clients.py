#!/usr/bin/env python3
"""Misbehaving clients of cloudapp-ticketd, for test_daemon.sh.

Opens IDLE connections that send nothing, connections that stop halfway
through a message, a client that sends calls and never reads the replies,
and calls with invalid UTF-8 or wrong JSON types.  Each bad call must get
an error reply.  Once everything is set up the script creates READY_FILE,
keeps the connections open until DONE_FILE appears (at most 60 s), then
closes them and prints one line per problem found.

Usage: bad_clients.py SOCKET IDLE READY_FILE DONE_FILE
"""

import os
import resource
import socket
import sys
import time

INTERFACE = "io.cloudapp.Ticketd"

# Each call with bad input, and the error its reply must carry.
BAD_CALLS = [
    ("invalid UTF-8 in the user name",
     b'{"method":"' + INTERFACE.encode() + b'.GetTicket",'
     b'"parameters":{"user":"al\xffice"}}',
     None),
    ("user name as a number",
     b'{"method":"' + INTERFACE.encode() + b'.GetTicket",'
     b'"parameters":{"user":5}}',
     "org.varlink.service.InvalidParameter"),
    ("parameters as an array",
     b'{"method":"' + INTERFACE.encode() + b'.GetTicket","parameters":[]}',
     INTERFACE + ".InvalidMessage"),
    ("service as an object",
     b'{"method":"' + INTERFACE.encode() + b'.StartTicket",'
     b'"parameters":{"user":"alice","service":{}}}',
     "org.varlink.service.InvalidParameter"),
    ("more as a string",
     b'{"method":"' + INTERFACE.encode() + b'.GetStatus","more":"yes"}',
     INTERFACE + ".InvalidMessage"),
    ("method as a number", b'{"method":7}', None),
    ("message as an array", b'[1,2,3]', None),
    ("message as a string", b'"GetTicket"', None),
    ("wait as a string",
     b'{"method":"' + INTERFACE.encode() + b'.StartTicket",'
     b'"parameters":{"user":"alice","wait":"yes"}}',
     "org.varlink.service.InvalidParameter"),
]


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def read_reply(sock):
    """Return the first reply on sock, or None when it closes first."""
    data = b""
    while b"\0" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data.split(b"\0")[0].decode("utf-8", "replace")


def check_bad_calls(path, problems):
    for name, message, expected in BAD_CALLS:
        sock = connect(path)
        sock.sendall(message + b"\0")
        try:
            reply = read_reply(sock)
        except socket.timeout:
            reply = None
        sock.close()
        if reply is None:
            problems.append(f"{name}: no reply")
        elif '"error"' not in reply:
            problems.append(f"{name}: not an error reply: {reply[:200]}")
        elif expected and expected not in reply:
            problems.append(f"{name}: expected {expected}, got {reply[:200]}")


def open_never_reading(path):
    """Send status calls without reading, until the daemon stops taking
    them; its replies pile up on its side of the connection."""
    sock = connect(path)
    sock.setblocking(False)
    call = b'{"method":"' + INTERFACE.encode() + b'.GetStatus"}\0'
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sent += sock.send(call * 64)
        except BlockingIOError:
            time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            break
    return sock, sent


def main():
    path, idle, ready_file, done_file = sys.argv[1:5]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    problems = []
    connections = []

    check_bad_calls(path, problems)
    for _ in range(int(idle)):
        connections.append(connect(path))
    for part in (b'{"method":"' + INTERFACE.encode(), b"{", b'{"meth'):
        sock = connect(path)
        sock.sendall(part)
        connections.append(sock)
    sock, sent = open_never_reading(path)
    connections.append(sock)
    print(f"opened {len(connections)} connections; the client that never reads "
          f"sent {sent} bytes", flush=True)

    with open(ready_file, "w", encoding="utf-8"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(done_file) and time.monotonic() < deadline:
        time.sleep(0.1)
    for sock in connections:
        sock.close()
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
