#!/usr/bin/env python3
"""Load generator for cloudapp-ticketd: COUNT clients connect to the
daemon's socket at once, each asks for the ticket of a distinct user with
one GetTicket call, and waits for it.  Every ticket is compared with the
one the emulator issued for that user, so a ticket handed to the wrong
user counts as a failure.

Prints one JSON line: how many tickets arrived, how many were wrong, the
wall time, each client's latency, the time the daemon added around the
cloud calls (see added_latency()) and the part of that time in which the
first request waited for a busy connection (see connection_wait()).

Usage: loadgen.py SOCKET USER_PREFIX COUNT EMULATOR_STATE
"""

import json
import os
import selectors
import socket
import sys
import time

METHOD = "io.cloudapp.Ticketd.GetTicket"
# How long to wait for the emulator to record the calls behind the tickets.
RECORD_WAIT_SECONDS = 5


def run_clients(socket_path, users):
    """Connect one client per user, send each call, and wait for every
    reply.  Return a result per user, in order.

    One selectors loop does no more than a recv() and a timestamp per
    event, because the time this process takes to notice a reply counts
    as time the daemon added: an asyncio loop doing the same took about
    0.1 ms per reply, and the replies of a storm arrive together."""
    selector = selectors.DefaultSelector()
    results = [None] * len(users)
    buffers = {}
    for i, user in enumerate(users):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(socket_path)
        except OSError as e:
            sock.close()
            results[i] = e
            continue
        call = {"method": METHOD, "parameters": {"user": user}}
        data = json.dumps(call).encode() + b"\0"
        sent = time.time()
        sock.sendall(data)
        sock.setblocking(False)
        buffers[sock] = [i, sent, b""]
        selector.register(sock, selectors.EVENT_READ)

    while buffers:
        for key, _ in selector.select():
            sock = key.fileobj
            state = buffers[sock]
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError as e:
                chunk, state[2] = b"", e
            received = time.time()
            if chunk:
                state[2] += chunk
                if b"\0" not in chunk:
                    continue
            selector.unregister(sock)
            sock.close()
            del buffers[sock]
            i, sent, data = state
            results[i] = reply_result(users[i], sent, received, data)
    selector.close()
    return results


def reply_result(user, sent, received, data):
    """Return the result of one client from the bytes it received, of
    which the first NUL-terminated message is the reply."""
    if isinstance(data, Exception):
        return data
    if b"\0" not in data:
        return ConnectionError("the daemon closed the connection before "
                               "the reply")
    reply = json.loads(data[:data.index(b"\0")])
    if "error" in reply:
        return {"user": user, "ok": False,
                "error": reply["parameters"].get("message", reply["error"])}
    return {"user": user, "ok": True, "sent": sent, "received": received,
            "ticket": reply["parameters"]["ticket"]}


def load_requests(state_dir):
    """Return the emulator's requests per EndUserId, oldest first, and the
    done time of the request before each one on the same connection."""
    by_user, by_connection = {}, {}
    try:
        f = open(os.path.join(state_dir, "requests.jsonl"), encoding="utf-8")
    except FileNotFoundError:
        # No request reached the emulator.
        return by_user
    with f:
        for line in f:
            entry = json.loads(line)
            by_user.setdefault(entry.get("end_user_id"), []).append(entry)
            by_connection.setdefault(entry.get("connection"),
                                     []).append(entry)
    # Several workers append to the file, so it is not in arrival order.
    for entries in list(by_user.values()) + list(by_connection.values()):
        entries.sort(key=lambda e: e["time"])
    for entries in by_connection.values():
        previous = None
        for entry in entries:
            entry["previous_done"] = previous["done"] if previous else None
            previous = entry
    return by_user


def wait_for_records(state_dir, users, results):
    """Return load_requests() once the emulator has recorded the call
    that finished each delivered ticket, or after RECORD_WAIT_SECONDS,
    with the number of tickets whose call is still missing.  A worker
    records a call after its reply has gone out, and at nice 19 it may do
    so after the client has read the ticket."""
    delivered = [user for user, result in zip(users, results)
                 if not isinstance(result, Exception) and result["ok"]]
    deadline = time.time() + RECORD_WAIT_SECONDS
    while True:
        requests = load_requests(state_dir)
        missing = [user for user in delivered
                   if not any(entry.get("task_status") == "Finished"
                              for entry in requests.get(user, []))]
        if not missing or time.time() >= deadline:
            return requests, len(missing)
        time.sleep(0.02)


def added_latency(result, requests):
    """Return the milliseconds the daemon added around the cloud calls:
    from the client's call to the first request reaching the emulator,
    plus from the emulator's last response to the ticket reaching the
    client.  The waits between polls are left out: they are the poll
    policy, not overhead."""
    if not requests:
        return None
    first = requests[0]["time"]
    last = requests[-1]["done"]
    return ((first - result["sent"]) + (result["received"] - last)) * 1000


def connection_wait(result, requests):
    """Return the milliseconds of added_latency() in which the first
    request could not have been sent because the connection it went out
    on still had a request at the emulator: from the client's call to the
    end of that earlier request.

    The daemon opens at most HTTP_CONNECTIONS_PER_HOST (32) connections,
    so when all of them are busy at the emulator a request waits in the
    daemon's queue.  That wait measures the emulator's throughput, not
    daemon overhead.  The time from the earlier reply to this request's
    arrival stays counted as the daemon's."""
    if not requests or requests[0].get("previous_done") is None:
        return 0.0
    busy_until = min(requests[0]["previous_done"], requests[0]["time"])
    return max(0.0, busy_until - result["sent"]) * 1000


def main():
    socket_path, prefix, count, state_dir = sys.argv[1:5]
    users = [f"{prefix}{i:04d}" for i in range(int(count))]
    started = time.time()
    results = run_clients(socket_path, users)
    wall = time.time() - started
    requests, unrecorded = wait_for_records(state_dir, users, results)
    if unrecorded:
        sys.stderr.write(f"loadgen: the emulator did not record the last "
                         f"call of {unrecorded} tickets within "
                         f"{RECORD_WAIT_SECONDS} s; their calls and added "
                         f"latency are incomplete\n")

    ok, wrong, errors, latency, added, calls = 0, 0, [], [], [], 0
    added_without_wait = []
    for user, result in zip(users, results):
        if isinstance(result, Exception):
            errors.append(f"{user}: {result!r}")
            continue
        if not result["ok"]:
            errors.append(f"{user}: {result['error']}")
            continue
        path = os.path.join(state_dir, "tickets", user)
        with open(path, encoding="utf-8") as f:
            if f.read() != result["ticket"]:
                wrong += 1
                continue
        ok += 1
        latency.append((result["received"] - result["sent"]) * 1000)
        user_requests = [r for r in requests.get(user, [])
                         if r["time"] >= result["sent"] - 1]
        calls += len(user_requests)
        value = added_latency(result, user_requests)
        if value is not None:
            added.append(value)
            added_without_wait.append(
                value - connection_wait(result, user_requests))
    print(json.dumps({
        "count": len(users), "ok": ok, "wrong_ticket": wrong,
        "errors": errors[:3], "error_count": len(errors),
        "wall_ms": wall * 1000, "latency_ms": latency,
        "added_ms": added, "added_without_wait_ms": added_without_wait,
        "calls": calls, "unrecorded": unrecorded,
    }))


if __name__ == "__main__":
    main()
