#!/usr/bin/env python3
"""An HTTPS emulator of the App Streaming GetConnectionTicket API.

It checks each request the way the Alibaba Cloud OpenAPI gateway does.  The
ACS3-HMAC-SHA256 signature is recomputed from the bytes received, the
x-acs-date must be within 15 minutes and a nonce may not be reused.  Errors
come in the gateway's JSON shape (RequestId, HostId, Code, Message,
Recommend).
Tasks stay Running for --task-seconds, then turn Finished with a base64
ticket or, when a fault asks for it, Failed.

State for tests lives in --state-dir:
  requests.jsonl     one JSON line per request (never the ticket): "time"
                     when the request reached the socket and "done" when
                     the reply left it (see KernelStamps), and the
                     client's "connection"
  tickets/USER       the last ticket issued for that EndUserId, mode 0600
  faults.json        optional, read on every request: {"USER" or "*": FAULT};
                     the key "AssumeRole" applies a fault to AssumeRole
                     calls, which "*" does not
The emulator's own state lives there too, in files, so that the --workers
processes share it: tasks/, nonces/, sts/ and fault-hits.json.

A FAULT is an object: "fail" names the fault (see FAULTS), "count" limits
how many requests it hits (default: all), "delay_seconds" delays the reply,
and "time_left" sets the Throttling header's TimeLeft.  Without "fail" the
fault only delays the reply.

GET /_emulator/stats returns counters for tests and benchmarks.  The server
listens only on a loopback address.  With --workers N, N processes accept
connections on the same socket, for benchmarks that need more than one
core's worth of requests.
"""

import argparse
import base64
import ctypes
import datetime
import fcntl
import gzip
import hashlib
import hmac
import http.server
import ipaddress
import json
import multiprocessing
import os
import re
import secrets
import select
import signal
import socket
import ssl
import struct
import sys
import time
import urllib.parse

ACTION = "GetConnectionTicket"
VERSION = "2021-09-01"
STS_ACTION = "AssumeRole"
STS_VERSION = "2015-04-01"
ALGORITHM = "ACS3-HMAC-SHA256"
DATE_WINDOW_SECONDS = 15 * 60
V2_TIMESTAMP_WINDOW_SECONDS = 31 * 60
MAX_BODY_BYTES = 64 * 1024
END_USER_ID_RE = re.compile(r"^[a-z0-9_]{3,24}$")
REQUIRED_SIGNED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
TENANT_ID = 1234567890123456789  # past 2^53, to catch float parsing
MAX_WORKERS = 64
# struct tcp_info in <linux/tcp.h>: the size to request, and the offset of
# tcpi_last_data_recv, the milliseconds since data last arrived.
TCP_INFO_SIZE = 104
TCP_INFO_LAST_DATA_RECV = 52
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# From <asm-generic/socket.h> and <linux/net_tstamp.h>, because Python's socket
# module does not name them.  SO_TIMESTAMPNS is also the control message.
SO_TIMESTAMPNS = 35
SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
TIMESPEC = struct.Struct("=qq")
# How long to wait for the kernel to queue the stamp of a write.
SENT_STAMP_WAIT_SECONDS = 0.05

# The counters of GET /_emulator/stats, kept in memory that every worker
# process shares.
COUNTERS = (
    "requests",
    "tasks_started",
    "tickets_issued",
    "in_flight",
    "max_in_flight",
    "connections",
    "assume_role",
)

# The faults.json key of faults for AssumeRole calls.
STS_FAULT_KEY = "AssumeRole"

# Faults that a test can request, and the reply each one makes.
FAULTS = (
    "task",  # the task ends Failed
    "never_finish",  # the task stays Running
    "http500",
    "throttling",
    "forbidden",
    "no_idle_instance",
    "unknown_code",
    "html502",
    "empty503",
    "truncated_json",
    "json_array",
    "expired_clock",  # InvalidTimeStamp.Expired whatever the date
    "json_string",  # a JSON string at the top
    "deep_json",  # an object nested 10000 levels deep
    "oversize",  # a 2 MiB body
    "drip",  # the body one byte a second
    "reset",  # the connection closed without a reply
)


def percent_encode(value):
    """Percent-encode per RFC 3986 as the OpenAPI signature requires."""
    return urllib.parse.quote(value, safe="-_.~")


def canonical_query(query):
    """Build the canonical query string from a raw query string."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(method, path, query, headers, signed_names, body_hash):
    """Build the ACS3 canonical request.

    headers maps lowercase names to lists of received values; repeated
    headers join with a comma after sorting, as the official SDK does.
    """
    lines = [method, path or "/", canonical_query(query)]
    header_lines = ""
    for name in signed_names:
        values = sorted(v.strip() for v in headers.get(name, []))
        header_lines += f"{name}:{','.join(values)}\n"
    lines.append(header_lines)
    lines.append(";".join(signed_names))
    lines.append(body_hash)
    return "\n".join(lines)


def signature(secret, canonical):
    """Return the hex signature of a canonical request."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{digest}"
    return hmac.new(secret.encode(), string_to_sign.encode(),
                    hashlib.sha256).hexdigest()


def parse_authorization(value):
    """Split an ACS3 Authorization header into its three fields, or None."""
    if not value or not value.startswith(ALGORITHM + " "):
        return None
    fields = {}
    for part in value[len(ALGORITHM) + 1:].split(","):
        key, sep, val = part.partition("=")
        if not sep:
            return None
        fields[key.strip()] = val.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    return fields


def signature_v2(secret, method, params):
    """Return the signature V2 (HMAC-SHA1, Base64) of a parameter list."""
    canonical = "&".join(
        f"{k}={v}" for k, v in sorted((percent_encode(k), percent_encode(v))
                                      for k, v in params))
    string_to_sign = f"{method}&{percent_encode('/')}&" \
                     f"{percent_encode(canonical)}"
    mac = hmac.new((secret + "&").encode(), string_to_sign.encode(),
                   hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def ticket_token(key, task_id, part):
    """Return 48 bytes derived from the task, base64url-encoded like
    secrets.token_urlsafe(48)."""
    message = f"{part}:{task_id}".encode()
    digest = hmac.new(key, message, hashlib.sha512).digest()[:48]
    return base64.urlsafe_b64encode(digest).decode()


def make_ticket(key, task_id):
    """Return a ticket shaped like the real one: base64 of CRLF INI text.

    The tokens derive from the TaskId under the run's secret key, so every
    worker returns the same ticket for a task without sharing it.
    """
    text = ("\r\n[Desktop]\r\nForceTlsType=1\r\n"
            f"GWTokenPart1={ticket_token(key, task_id, 1)}\r\n"
            f"GWTokenPart2={ticket_token(key, task_id, 2)}\r\n"
            "GatewayAddress=127.0.0.1\r\n")
    return base64.b64encode(text.encode()).decode()


def write_new_file(path, data):
    """Create path with mode 0600 and write data; return False when it
    exists already.  O_EXCL makes the check atomic across processes."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True


def read_json_file(path):
    """Return the JSON value in path, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class Counters:
    """The stats counters, in shared memory made before the workers fork,
    so that each worker adds to the same numbers."""

    def __init__(self):
        self.lock = multiprocessing.Lock()
        self.values = multiprocessing.RawArray("q", len(COUNTERS))
        self.index = {name: i for i, name in enumerate(COUNTERS)}

    def add(self, name, amount=1):
        i = self.index[name]
        with self.lock:
            self.values[i] += amount
            if name == "in_flight":
                top = self.index["max_in_flight"]
                self.values[top] = max(self.values[top], self.values[i])

    def snapshot(self):
        with self.lock:
            return dict(zip(COUNTERS, self.values))


class ApiError(Exception):
    """An error that the gateway returns in its JSON shape."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class RawReply(Exception):
    """A reply that is not the gateway's JSON, for fault tests."""

    def __init__(self, status, content_type, body):
        super().__init__(status)
        self.status = status
        self.content_type = content_type
        self.body = body


class ConnectionFault(Exception):
    """A fault of the connection itself rather than of the reply."""


class Emulator:
    """The state that requests share: tasks, nonces, faults, temporary
    credentials and counters.  Everything but the counters is in files
    under the state folder, because the worker processes share no memory
    but the counters."""

    def __init__(self, args, secret):
        self.access_key_id = args.access_key_id
        self.secret = secret
        self.security_token = (read_secret(args.security_token_file)
                               if args.security_token_file else None)
        self.task_seconds = args.task_seconds
        self.role_arn = args.role_arn
        self.role_seconds = args.role_seconds
        self.clock_offset = args.clock_offset
        self.state_dir = args.state_dir
        # Derives the tickets; it never leaves the emulator's processes.
        self.ticket_key = secrets.token_bytes(32)
        self.counters = Counters()
        for name in ("tickets", "tasks", "nonces", "sts"):
            os.makedirs(self.state_path(name), exist_ok=True)

    def state_path(self, *names):
        return os.path.join(self.state_dir, *names)

    def now(self):
        return time.time() + self.clock_offset

    def fault_for(self, end_user_id, fallback="*"):
        """Return the fault that applies to this EndUserId, or None.  A
        fault under the fallback key applies when there is none for the
        EndUserId itself."""
        path = os.path.join(self.state_dir, "faults.json")
        try:
            with open(path, encoding="utf-8") as f:
                faults = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(faults, dict):
            return None
        key = end_user_id if end_user_id in faults else fallback
        fault = faults.get(key)
        if not isinstance(fault, dict):
            return None
        # A fault with only "delay_seconds" slows the reply and nothing else.
        if fault.get("fail", None) not in FAULTS + (None,):
            return None
        count = fault.get("count")
        if isinstance(count, int) and not self.take_fault_hit(key, count):
            return None
        return fault

    def take_fault_hit(self, key, count):
        """Count one more hit of the fault under key; return False when it
        has had count hits already.  An flock on the file serializes the
        workers."""
        fd = os.open(self.state_path("fault-hits.json"),
                     os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            text = f.read()
            hits = json.loads(text) if text else {}
            if hits.get(key, 0) >= count:
                return False
            hits[key] = hits.get(key, 0) + 1
            f.seek(0)
            f.truncate()
            f.write(json.dumps(hits))
        return True

    def check_date(self, date):
        try:
            when = datetime.datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise ApiError(400, "InvalidTimeStamp.Format",
                           "Specified time stamp or date value is not "
                           "well formatted.") from None
        when = when.replace(tzinfo=datetime.timezone.utc).timestamp()
        if abs(self.now() - when) > DATE_WINDOW_SECONDS:
            raise ApiError(400, "InvalidTimeStamp.Expired",
                           "Specified time stamp or date value is expired.")

    def check_nonce(self, nonce):
        """Reject a nonce seen before.  Each nonce is an empty file named
        by its hash, created with O_EXCL.

        NOTE: the files are never pruned, so a run leaves one per signed
        request in the state folder.
        """
        name = hashlib.sha256(nonce.encode()).hexdigest()
        if not write_new_file(self.state_path("nonces", name), b""):
            raise ApiError(400, "SignatureNonceUsed",
                           "Specified signature nonce was used already.")

    def authenticate(self, method, path, query, headers, body):
        """Check the signature, date and nonce of one request."""
        auth = parse_authorization(headers.get("authorization", [None])[0])
        if auth is None:
            raise ApiError(400, "IncompleteSignature",
                           "The request signature does not conform to "
                           "Aliyun standards.")
        signed = auth["SignedHeaders"].split(";")
        for name in REQUIRED_SIGNED_HEADERS:
            if name not in signed or name not in headers:
                raise ApiError(400, "IncompleteSignature",
                               f"The header {name} is missing or not "
                               "signed.")
        if signed != sorted(signed) or any(n != n.lower() for n in signed):
            raise ApiError(400, "IncompleteSignature",
                           "SignedHeaders must be lowercase and sorted.")
        secret, required_token = self.key_for(auth["Credential"])
        if required_token is not None:
            token = headers.get("x-acs-security-token", [None])[0]
            if token is None:
                raise ApiError(400, "MissingSecurityToken",
                               "SecurityToken is mandatory for this action.")
            if ("x-acs-security-token" not in signed
                    or not hmac.compare_digest(token, required_token)):
                raise ApiError(400, "InvalidSecurityToken.Malformed",
                               "Specified SecurityToken is malformed.")

        body_hash = hashlib.sha256(body).hexdigest()
        sent_hash = headers["x-acs-content-sha256"][0].strip()
        canonical = canonical_request(method, path, query, headers, signed,
                                      sent_hash)
        expected = signature(secret, canonical)
        if not hmac.compare_digest(expected, auth["Signature"]):
            string_to_sign = (ALGORITHM + "\n" +
                              hashlib.sha256(canonical.encode()).hexdigest())
            raise ApiError(400, "SignatureDoesNotMatch",
                           "Specified signature does not match our "
                           "calculation. server string to sign is:"
                           + string_to_sign)
        if not hmac.compare_digest(sent_hash, body_hash):
            raise ApiError(400, "SignatureDoesNotMatch",
                           "The x-acs-content-sha256 header does not match "
                           "the SHA-256 of the body.")
        self.check_date(headers["x-acs-date"][0].strip())
        self.check_nonce(headers["x-acs-signature-nonce"][0].strip())
        action = headers["x-acs-action"][0].strip()
        version = headers["x-acs-version"][0].strip()
        if action == STS_ACTION and self.role_arn:
            if version != STS_VERSION:
                raise ApiError(400, "InvalidVersion",
                               "Specified parameter Version is not valid.")
            if auth["Credential"] != self.access_key_id:
                raise ApiError(403, "Forbidden.RAM",
                               "Only the long-term key may assume the role.")
            return action
        if action != ACTION:
            raise ApiError(404, "InvalidAction.NotFound",
                           "Specified api is not found, please check your "
                           "url and method.")
        if version != VERSION:
            raise ApiError(400, "InvalidVersion",
                           "Specified parameter Version is not valid.")
        # With a role, the long-term key may only assume it.
        if self.role_arn and auth["Credential"] == self.access_key_id:
            raise ApiError(403, "Forbidden.RAM",
                           "You are not authorized to do this operation.")
        return action

    def key_for(self, access_key_id):
        """Return the secret and the required token for a key id."""
        if access_key_id == self.access_key_id:
            return self.secret, self.security_token
        temporary = None
        # The name check keeps the key id from naming a path elsewhere.
        if re.fullmatch(r"STS\.[0-9a-f]{16}", access_key_id):
            temporary = read_json_file(self.state_path("sts", access_key_id))
        if temporary is None:
            raise ApiError(404, "InvalidAccessKeyId.NotFound",
                           "Specified access key is not found.")
        secret, token, expires = temporary
        if time.time() >= expires:
            raise ApiError(400, "InvalidSecurityToken.Expired",
                           "Specified SecurityToken is expired.")
        return secret, token

    def assume_role(self, params):
        """Return new temporary credentials for STS AssumeRole."""
        if params.get("RoleArn") != self.role_arn:
            raise ApiError(404, "EntityNotExist.Role",
                           f"The role {params.get('RoleArn')} does not "
                           "exist.")
        if not params.get("RoleSessionName"):
            raise ApiError(400, "MissingRoleSessionName",
                           "RoleSessionName is mandatory.")
        key_id = "STS." + secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        token = "CAIS" + secrets.token_urlsafe(48)
        expires = time.time() + self.role_seconds
        write_new_file(self.state_path("sts", key_id),
                       json.dumps([secret, token, expires]).encode())
        self.counters.add("assume_role")
        expiration = datetime.datetime.fromtimestamp(
            expires, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"AssumedRoleUser": {"Arn": self.role_arn,
                                    "AssumedRoleId": "3000:" +
                                    params["RoleSessionName"]},
                "Credentials": {"AccessKeyId": key_id,
                                "AccessKeySecret": secret,
                                "SecurityToken": token,
                                "Expiration": expiration}}

    def authenticate_v2(self, method, pairs):
        """Check a signature V2 request: every parameter but Signature is
        signed, the Timestamp is within 31 minutes, the nonce is new."""
        params = dict(pairs)
        if params.get("SignatureMethod") != "HMAC-SHA1" or \
                params.get("SignatureVersion") != "1.0":
            raise ApiError(400, "IncompleteSignature",
                           "SignatureMethod must be HMAC-SHA1 and "
                           "SignatureVersion 1.0.")
        if params.get("AccessKeyId") != self.access_key_id:
            raise ApiError(404, "InvalidAccessKeyId.NotFound",
                           "Specified access key is not found.")
        if self.security_token is not None and \
                params.get("SecurityToken") != self.security_token:
            raise ApiError(400, "MissingSecurityToken",
                           "SecurityToken is mandatory for this action.")
        signed = [(k, v) for k, v in pairs if k != "Signature"]
        expected = signature_v2(self.secret, method, signed)
        if not hmac.compare_digest(expected, params.get("Signature", "")):
            raise ApiError(400, "SignatureDoesNotMatch",
                           "Specified signature is not matched with our "
                           "calculation.")
        try:
            when = datetime.datetime.strptime(params.get("Timestamp", ""),
                                              "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise ApiError(400, "InvalidTimeStamp.Format",
                           "Specified time stamp or date value is not "
                           "well formatted.") from None
        when = when.replace(tzinfo=datetime.timezone.utc).timestamp()
        if abs(self.now() - when) > V2_TIMESTAMP_WINDOW_SECONDS:
            raise ApiError(400, "InvalidTimeStamp.Expired",
                           "Specified time stamp or date value is expired.")
        self.check_nonce(params.get("SignatureNonce", ""))
        if params.get("Action") != ACTION:
            raise ApiError(404, "InvalidAction.NotFound",
                           "Specified api is not found, please check your "
                           "url and method.")
        if params.get("Version") != VERSION:
            raise ApiError(400, "InvalidVersion",
                           "Specified parameter Version is not valid.")

    def apply_fault(self, fault):
        """Raise the reply that a fault requests, or return a task fault's name."""
        kind = fault.get("fail")
        if kind == "http500":
            raise ApiError(500, "InternalError",
                           "The request processing has failed due to some "
                           "unknown error.")
        if kind == "throttling":
            left = fault.get("time_left", 1)
            value = f"Limit:10,Remain:0,TimeLeft:{left},Reset:{left}"
            raise ApiError(400, "Throttling.User",
                           "Request was denied due to user flow control.",
                           {"x-ratelimit-user-api": value})
        if kind == "forbidden":
            raise ApiError(403, "Forbidden.RAM",
                           "You are not authorized to do this operation.")
        if kind == "no_idle_instance":
            raise ApiError(400, "TryRegionBind.NoIdleAppInstance",
                           "There is no idle app instance.")
        if kind == "unknown_code":
            raise ApiError(400, "Emulator.UnknownCode",
                           "An error code the client has never seen.")
        if kind == "expired_clock":
            raise ApiError(400, "InvalidTimeStamp.Expired",
                           "Specified time stamp or date value is expired.")
        if kind == "html502":
            raise RawReply(502, "text/html",
                           b"<html><body><h1>502 Bad Gateway</h1>"
                           b"</body></html>")
        if kind == "empty503":
            raise RawReply(503, "application/json", b"")
        if kind == "truncated_json":
            raise RawReply(200, "application/json",
                           b'{"RequestId":"truncated","TaskId":')
        if kind == "json_array":
            raise RawReply(200, "application/json", b"[1,2,3]")
        if kind == "json_string":
            raise RawReply(200, "application/json", b'"Finished"')
        if kind == "deep_json":
            raise RawReply(200, "application/json",
                           b'{"a":' * 10000 + b"1" + b"}" * 10000)
        if kind == "oversize":
            raise RawReply(200, "application/json",
                           b'{"RequestId":"' + b"x" * (2 << 20) + b'"}')
        if kind in ("drip", "reset"):
            raise ConnectionFault(kind)
        return kind

    def get_ticket(self, params, fault_kind):
        """Start or poll a task, and return the response body as a dict."""
        product_type = params.get("ProductType")
        end_user_id = params.get("EndUserId")
        if not product_type:
            raise ApiError(400, "MissingParameter.ProductType",
                           "The input parameter ProductType that is "
                           "mandatory for processing this request is not "
                           "supplied.")
        if product_type not in ("CloudApp", "AndroidCloud"):
            raise ApiError(400, "InvalidParameter.ProductType",
                           f"The ProductType {product_type} is not valid.")
        if not end_user_id:
            raise ApiError(400, "MissingParameter.EndUserId",
                           "The input parameter EndUserId that is mandatory "
                           "for processing this request is not supplied.")
        if not END_USER_ID_RE.match(end_user_id):
            raise ApiError(400, "InvalidParameter.EndUserId",
                           f"The EndUserId {end_user_id} is not valid.")

        task_id = params.get("TaskId")
        if task_id is None:
            return self.start_task(params, end_user_id, fault_kind)
        task = None
        # The name check keeps the TaskId from naming a path elsewhere.
        if re.fullmatch(r"task-[0-9a-f]{16}", task_id):
            task = read_json_file(self.state_path("tasks", task_id))
        if task is None or task["end_user_id"] != end_user_id:
            raise ApiError(400, "InvalidParameter.TaskId",
                           f"The TaskId {task_id} is not found.")
        return self.poll_task(task_id, task)

    def start_task(self, params, end_user_id, fault_kind):
        if not params.get("AppId"):
            raise ApiError(400, "MissingParameter.AppId",
                           "The input parameter AppId that is mandatory "
                           "for processing this request is not supplied.")
        task_id = "task-" + secrets.token_hex(8)
        task = {
            "end_user_id": end_user_id,
            "app_id": params["AppId"],
            # CLOCK_MONOTONIC is the same clock in every worker process.
            "started": time.monotonic(),
            "outcome": {"task": "Failed",
                        "never_finish": "Running"}.get(fault_kind,
                                                       "Finished"),
        }
        write_new_file(self.state_path("tasks", task_id),
                       json.dumps(task).encode())
        self.counters.add("tasks_started")
        return {"TaskId": task_id, "TaskStatus": "Running"}

    def poll_task(self, task_id, task):
        elapsed = time.monotonic() - task["started"]
        if elapsed < self.task_seconds or task["outcome"] == "Running":
            return {"TaskId": task_id, "TaskStatus": "Running"}
        if task["outcome"] == "Failed":
            return {"TaskId": task_id, "TaskStatus": "Failed"}
        ticket = make_ticket(self.ticket_key, task_id)
        # The first poll that finds the task finished issues the ticket;
        # later polls return the same one without saving it again.
        if write_new_file(self.state_path("tasks", task_id + ".issued"),
                          b""):
            self.save_ticket(task["end_user_id"], ticket)
            self.counters.add("tickets_issued")
        return {
            "TaskId": task_id,
            "TaskStatus": "Finished",
            "Ticket": ticket,
            "AppInstanceGroupId": "aig-emulator0001",
            "AppInstanceId": "ai-emulator" + task_id[-6:],
            "AppInstancePersistentId": "p-emulator0001",
            "BizRegionId": "cn-shanghai",
            "OsType": "Windows",
            "TenantId": TENANT_ID,
        }

    def save_ticket(self, end_user_id, ticket):
        path = os.path.join(self.state_dir, "tickets", end_user_id)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ticket)
        os.replace(path + ".tmp", path)

    def record(self, entry):
        """Append the entry to requests.jsonl.  One write() per line with
        O_APPEND keeps the lines of several workers whole."""
        self.counters.add("requests")
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(self.state_path("requests.jsonl"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def stats(self):
        """Return the counters, and the results of requests.jsonl by
        Code under "codes"."""
        stats = self.counters.snapshot()
        codes = {}
        try:
            with open(self.state_path("requests.jsonl"),
                      encoding="utf-8") as f:
                for line in f:
                    result = json.loads(line).get("result")
                    codes[result] = codes.get(result, 0) + 1
        except FileNotFoundError:
            pass
        stats["codes"] = codes
        return stats


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AppStreamEmulator/1"

    def setup(self):
        # A client sends its first request only after the server's part of
        # the handshake below, so no request can have arrived before this.
        self.earliest_arrival = time.time()
        self.replied = None
        super().setup()
        self.server.emulator.counters.add("connections")
        # The handshake runs here, so that the first data read on the
        # connection after it is the first request.
        self.connection.do_handshake()
        self.stamps = KernelStamps(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.stamps.close()

    def handle_one_request(self):
        self.arrived = None
        if not self.connection.pending():
            self.arrived = self.checked_arrival(self.stamps.arrival())
        super().handle_one_request()
        # The client sends its next request after reading this reply.
        if self.replied is not None:
            self.earliest_arrival = self.replied

    def checked_arrival(self, stamp):
        """Return the kernel's arrival stamp, or None when it is before
        the reply to the previous request or in the future.  Such a stamp
        cannot be this request's, so parse_request() falls back to
        TCP_INFO."""
        if stamp is None:
            return None
        # Slack for the gap between the two clocks' readings.
        if self.earliest_arrival - 0.001 <= stamp <= time.time() + 0.001:
            return stamp
        self.log_message("kernel arrival stamp %.6f out of range "
                         "(%.6f to now), using TCP_INFO", stamp,
                         self.earliest_arrival)
        return None

    def parse_request(self):
        if self.arrived is None:
            self.arrived = self.arrival_time()
        return super().parse_request()

    def arrival_time(self):
        """Return an estimate of when the request that was just read
        reached the socket, for when the kernel gave no receive timestamp.

        This thread stamps the time only once it holds the GIL, which under
        load is tens of milliseconds after the bytes arrived, and a client's
        benchmark would count that wait as its own.  The kernel's TCP_INFO
        returns the time since data last arrived, counted in whole
        jiffies.  Adding one jiffy makes the estimate never early, and at
        most two jiffies late.  It is never later than the thread's own
        stamp."""
        now = time.time()
        try:
            info = self.connection.getsockopt(socket.IPPROTO_TCP,
                                              socket.TCP_INFO, TCP_INFO_SIZE)
            (since_ms,) = struct.unpack_from("=I", info,
                                             TCP_INFO_LAST_DATA_RECV)
        except (OSError, struct.error):
            return now
        return min(now, now - since_ms / 1000 + JIFFY_SECONDS)

    def date_time_string(self, timestamp=None):
        """Return the Date header from the emulator's clock, so that a
        client can measure the --clock-offset from it."""
        if timestamp is None:
            timestamp = self.server.emulator.now()
        return super().date_time_string(timestamp)

    def log_message(self, format, *args):
        sys.stderr.write("emulator: %s\n" % (format % args))

    def send_body(self, status, content_type, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # Headers and body go out in one write and so in one TLS record,
        # as a real gateway sends a small response.  Two writes would wake
        # the client twice and skew the benchmark.
        self._headers_buffer.append(b"\r\n" + body)
        # Taken before the write: after it, this thread may wait for the
        # GIL, and a later timestamp would count that wait as the client's.
        self.stamps.discard()
        self.replied = time.time()
        self.flush_headers()
        # The kernel's stamp of when the reply left is better still: the
        # thread may lose the CPU between time() and the write.
        self.replied = self.stamps.sent() or self.replied

    def do_GET(self):
        emulator = self.server.emulator
        if self.path != "/_emulator/stats":
            self.send_body(404, "text/plain", b"not found\n")
            return
        body = json.dumps(emulator.stats()).encode()
        self.send_body(200, "application/json", body)

    def drip_reply(self):
        """Send a valid reply one byte a second, until the client gives
        up or a minute has passed."""
        body = b'{"RequestId":"drip","TaskId":"t","TaskStatus":"Running"}'
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        try:
            for byte in (head + body)[:60]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    def read_chunked_body(self):
        """Read a body sent with Transfer-Encoding: chunked, as the
        official Node.js SDK sends it."""
        body = b""
        while True:
            line = self.rfile.readline(64)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ApiError(400, "InvalidParameter",
                               "A chunk size is not valid.") from None
            if size == 0:
                # Skip trailers up to the empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                        b""):
                    pass
                return body
            if len(body) + size > MAX_BODY_BYTES:
                raise ApiError(413, "InvalidParameter",
                               "The body is too large.")
            body += self.rfile.read(size)
            self.rfile.readline(8)

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            encoding = self.headers.get("Transfer-Encoding", "")
            if encoding.lower() == "chunked":
                return self.read_chunked_body()
            return b""
        try:
            size = int(length)
        except ValueError:
            raise ApiError(400, "InvalidParameter",
                           "Content-Length is not a number.") from None
        if size < 0 or size > MAX_BODY_BYTES:
            raise ApiError(413, "InvalidParameter", "The body is too large.")
        return self.rfile.read(size)

    def do_POST(self):
        emulator = self.server.emulator
        request_id = str(uuidish())
        # "connection" identifies the client's TCP connection, for the
        # benchmark's accounting of waits for a free connection.
        entry = {"time": self.arrived, "request_id": request_id,
                 "end_user_id": None, "task_id": None,
                 "connection": f"{os.getpid()}:{self.client_address[1]}"}
        self.replied = None
        emulator.counters.add("in_flight")
        try:
            self.handle_api(emulator, request_id, entry)
        finally:
            emulator.counters.add("in_flight", -1)
            entry["done"] = self.replied or time.time()
            emulator.record(entry)

    def handle_api(self, emulator, request_id, entry):
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        url = urllib.parse.urlsplit(self.path)
        fault = None
        try:
            body = self.read_body()
            try:
                form = urllib.parse.parse_qsl(body.decode("utf-8"),
                                              keep_blank_values=True,
                                              strict_parsing=bool(body))
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "InvalidParameter",
                               "The form body is not valid.") from None
            query = urllib.parse.parse_qsl(url.query,
                                           keep_blank_values=True)
            # A request with Signature in its parameters uses signature
            # V2; any other must carry an ACS3 Authorization header.
            action = ACTION
            if any(k == "Signature" for k, _ in query + form):
                emulator.authenticate_v2("POST", query + form)
            else:
                action = emulator.authenticate("POST", url.path, url.query,
                                               headers, body)
            params = dict(query)
            params.update(form)
            if action == STS_ACTION:
                entry["call"] = "assume_role"
                fault = emulator.fault_for(STS_FAULT_KEY, fallback=None)
                if fault:
                    delay_reply(fault)
                if fault and fault.get("fail"):
                    emulator.apply_fault(fault)
                reply = emulator.assume_role(params)
                reply["RequestId"] = request_id
                entry["result"] = "OK"
                entry["status"] = 200
                self.send_body(200, "application/json;charset=utf-8",
                               json.dumps(reply).encode())
                return
            for name in ("Signature", "SignatureNonce", "Timestamp",
                         "SecurityToken"):
                params.pop(name, None)
            entry["end_user_id"] = params.get("EndUserId")
            entry["task_id"] = params.get("TaskId")
            entry["call"] = "poll" if "TaskId" in params else "start"
            # The parameters as received, for tests of their encoding.
            entry["params"] = params
            fault = emulator.fault_for(params.get("EndUserId", ""))
            if fault:
                delay_reply(fault)
            fault_kind = emulator.apply_fault(fault) if fault else None
            reply = emulator.get_ticket(params, fault_kind)
        except ApiError as e:
            entry["result"] = e.code
            entry["status"] = e.status
            host = headers.get("host", ["127.0.0.1"])[0]
            body = {
                "RequestId": request_id,
                "HostId": host,
                "Code": e.code,
                "Message": e.message,
                "Recommend": "https://api.alibabacloud.com/troubleshoot?q="
                             f"{e.code}&product=appstream-center"
                             f"&requestId={request_id}",
            }
            self.send_body(e.status, "application/json;charset=utf-8",
                           json.dumps(body).encode(), e.headers)
            return
        except ConnectionFault as e:
            entry["result"] = "fault:" + str(e)
            entry["status"] = 0
            if str(e) == "drip":
                self.drip_reply()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except RawReply as e:
            entry["result"] = "fault:" + fault.get("fail", "")
            entry["status"] = e.status
            self.send_body(e.status, e.content_type, e.body)
            return
        reply["RequestId"] = request_id
        entry["result"] = "OK"
        entry["status"] = 200
        entry["task_status"] = reply["TaskStatus"]
        entry["task_id"] = reply["TaskId"]
        self.send_body(200, "application/json;charset=utf-8",
                       json.dumps(reply).encode())


class KernelStamps:
    """The kernel's software timestamps of a TCP connection: when data
    arrived (SO_TIMESTAMPNS, read with MSG_PEEK so that the TLS layer still
    reads the data) and when a write left (SO_TIMESTAMPING, from the error
    queue).  Both are taken in the network stack as the segment passes, so
    neither waits for this process to be scheduled.  Each method returns
    None when the kernel gave no stamp, and the caller falls back to its
    own clock."""

    def __init__(self, connection):
        self.peer = None
        try:
            # A plain socket on a second descriptor of the same connection:
            # the SSL socket refuses recvmsg().
            self.peer = socket.socket(fileno=os.dup(connection.fileno()))
            self.peer.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.peer.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING,
                                 SOF_TIMESTAMPING_TX_SOFTWARE
                                 | SOF_TIMESTAMPING_SOFTWARE
                                 | SOF_TIMESTAMPING_OPT_TSONLY)
        except OSError:
            self.close()

    def close(self):
        if self.peer is not None:
            self.peer.close()
            self.peer = None

    def arrival(self):
        """Wait until the next data arrives, and return when it did.  The
        data stays queued for the TLS layer."""
        if self.peer is None:
            return None
        try:
            data, ancillary, _, _ = self.peer.recvmsg(
                1, 256, socket.MSG_PEEK)
        except OSError:
            return None
        if not data:
            return None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                return timespec_seconds(value)
        return None

    def discard(self):
        """Drop the stamps of earlier writes, such as the handshake's."""
        self.drain()

    def sent(self):
        """Return when the write since discard() left.  The kernel may
        queue the stamp after the write returns, so this waits for it for
        up to SENT_STAMP_WAIT_SECONDS."""
        if self.peer is None:
            return None
        poller = select.poll()
        # An error queue that is not empty shows as POLLERR.
        poller.register(self.peer, 0)
        if not poller.poll(SENT_STAMP_WAIT_SECONDS * 1000):
            return None
        return self.drain()

    def drain(self):
        """Read the queued write stamps and return the latest."""
        latest = None
        while self.peer is not None:
            try:
                _, ancillary, _, _ = self.peer.recvmsg(
                    0, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except OSError:
                break
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                    # struct scm_timestamping: the software stamp first.
                    latest = timespec_seconds(value) or latest
        return latest


def timespec_seconds(value):
    """Return a struct timespec as seconds, or None when it is zero."""
    try:
        seconds, nanoseconds = TIMESPEC.unpack_from(value)
    except struct.error:
        return None
    if seconds == 0 and nanoseconds == 0:
        return None
    return seconds + nanoseconds / 1e9


def delay_reply(fault):
    """Sleep for the fault's delay_seconds, when it has a valid one."""
    if not fault.get("delay_seconds"):
        return
    try:
        time.sleep(float(fault["delay_seconds"]))
    except (TypeError, ValueError):
        sys.stderr.write("emulator: ignoring delay_seconds "
                         f"{fault['delay_seconds']!r}, not a number\n")


def uuidish():
    """Return a RequestId shaped like the gateway's (upper-case UUID)."""
    h = secrets.token_hex(16).upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        sys.stderr.write(f"emulator: connection from {client_address}: "
                         f"{type(error).__name__}: {error}\n")


def kernel_jiffy_seconds():
    """Return the length of the running kernel's jiffy, from CONFIG_HZ in
    /proc/config.gz or /boot/config-RELEASE, or 10 ms (HZ=100, the
    longest) when neither is readable."""
    sources = (("/proc/config.gz", gzip.open),
               (f"/boot/config-{os.uname().release}", open))
    for path, opener in sources:
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("CONFIG_HZ="):
                        return 1 / int(line.split("=", 1)[1])
        except (OSError, ValueError):
            continue
    return 0.01


JIFFY_SECONDS = kernel_jiffy_seconds()


def read_secret(path):
    with open(path, encoding="utf-8") as f:
        secret = f.read()
    if secret.endswith("\n"):
        secret = secret[:-1]
    if not secret or "\n" in secret:
        sys.exit(f"emulator: {path} must contain the secret on one line")
    return secret


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port; 0 picks a free one")
    parser.add_argument("--port-file",
                        help="file to write the chosen port to")
    parser.add_argument("--cert", required=True,
                        help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server key (PEM)")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret-file", required=True)
    parser.add_argument("--security-token-file",
                        help="require the STS token in this file on every "
                             "request")
    parser.add_argument("--role-arn",
                        help="serve STS AssumeRole for this role; the key "
                             "may then only assume it")
    parser.add_argument("--role-seconds", type=float, default=3600,
                        help="lifetime of the temporary credentials")
    parser.add_argument("--task-seconds", type=float, default=1.0,
                        help="seconds a task stays Running")
    parser.add_argument("--clock-offset", type=float, default=0.0,
                        help="seconds added to the emulator's clock")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that accept connections (1 to "
                             f"{MAX_WORKERS})")
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error(f"--host {args.host} is not a loopback address")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers {args.workers} is not between 1 and "
                     f"{MAX_WORKERS}")
    return args


def start_workers(server, count):
    """Fork count worker processes that serve on the server's socket.

    Each worker dies with the parent, through PR_SET_PDEATHSIG, so that
    stopping the parent stops them all.
    """
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(count):
        if os.fork() != 0:
            continue
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            os._exit(1)
        # The parent may have died before prctl() took effect.
        if os.getppid() != parent:
            os._exit(0)
        try:
            server.serve_forever()
        finally:
            os._exit(0)


def main(argv=None):
    args = parse_args(argv)
    emulator = Emulator(args, read_secret(args.access_key_secret_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)

    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    server = Server((args.host, args.port), Handler)
    # The handshake runs in the request's thread, on first read, so a slow
    # client cannot stall accept().
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    server.emulator = emulator
    # The parent serves too, so it starts one process fewer.
    start_workers(server, args.workers - 1)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"emulator: listening on https://{args.host}:{port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
