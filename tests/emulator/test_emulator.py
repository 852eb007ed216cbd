#!/usr/bin/env python3
"""Self-test of the App Streaming emulator.

The signature checks run against the published ACS3 test vector first, so
the integration tests can trust the emulator to reject what the gateway
rejects.  Then a real emulator process is started on 127.0.0.1 and driven
over HTTPS with requests signed here.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import appstream_emulator as emu  # noqa: E402

ACCESS_KEY_ID = "LTAIselftest"
SECRET = "self-test-secret"


class SignatureVectors(unittest.TestCase):
    def test_official_v3_vector(self):
        empty = hashlib.sha256(b"").hexdigest()
        headers = {
            "host": ["ecs.cn-shanghai.aliyuncs.com"],
            "x-acs-action": ["RunInstances"],
            "x-acs-content-sha256": [empty],
            "x-acs-date": ["2023-10-26T10:22:32Z"],
            "x-acs-signature-nonce": ["3156853299f313e23d1673dc12e1703d"],
            "x-acs-version": ["2014-05-26"],
        }
        query = ("ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"
                 "&RegionId=cn-shanghai")
        canonical = emu.canonical_request("POST", "/", query, headers,
                                          sorted(headers), empty)
        self.assertEqual(
            hashlib.sha256(canonical.encode()).hexdigest(),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")
        self.assertEqual(
            emu.signature("YourAccessKeySecret", canonical),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")

    def test_sdk_repeated_header_vector(self):
        headers = {"x-acs-test": ["http", "https"]}
        canonical = emu.canonical_request(
            "", "/", "test=ok&empty=", headers, ["x-acs-test"],
            "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23")
        self.assertEqual(
            emu.signature("secret", canonical),
            "4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3")

    def test_form_body_vector(self):
        body = ("AppId=ca-example0001&AppInstanceGroupIdList.1=aig-example0001"
                "&AppInstanceGroupIdList.2=aig-example0002"
                "&AppStartParam=%2Fq%20%2Fn&BizRegionId=cn-shanghai"
                "&EndUserId=alice&ProductType=CloudApp")
        body_hash = hashlib.sha256(body.encode()).hexdigest()
        self.assertEqual(
            body_hash,
            "05207ce0bd9bd59f9c9900b3d236801420f733dc4041f165e6703dff83705b16")
        headers = {
            "content-type": ["application/x-www-form-urlencoded"],
            "host": ["appstream-center.cn-shanghai.aliyuncs.com"],
            "x-acs-action": ["GetConnectionTicket"],
            "x-acs-content-sha256": [body_hash],
            "x-acs-date": ["2023-10-26T10:22:32Z"],
            "x-acs-signature-nonce": ["3156853299f313e23d1673dc12e1703d"],
            "x-acs-version": ["2021-09-01"],
        }
        canonical = emu.canonical_request("POST", "/", "", headers,
                                          sorted(headers), body_hash)
        self.assertEqual(
            emu.signature("YourAccessKeySecret", canonical),
            "31033d4944c1b2bf2300465d142b2ccb1492538def2f1213324f85c8955e64d6")

    def test_official_v2_vector(self):
        params = [("AccessKeyId", "testid"),
                  ("Action", "DescribeDedicatedHosts"), ("Format", "JSON"),
                  ("RegionId", "cn-beijing"),
                  ("SignatureMethod", "HMAC-SHA1"),
                  ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
                  ("SignatureVersion", "1.0"),
                  ("Timestamp", "2023-03-13T08:34:30Z"),
                  ("Version", "2014-05-26")]
        self.assertEqual(emu.signature_v2("testsecret", "GET", params),
                         "9NaGiOspFP5UPcwX8Iwt2YJXXuk=")

    def test_ticket_shape(self):
        ticket = emu.make_ticket(b"k" * 32, "task-0123456789abcdef")
        text = base64.b64decode(ticket, validate=True).decode()
        self.assertTrue(text.startswith("\r\n[Desktop]\r\n"))
        for part in ("GWTokenPart1", "GWTokenPart2"):
            token = text.split(f"{part}=")[1].split("\r\n")[0]
            self.assertEqual(len(token), 64)

    def test_ticket_per_task(self):
        key = b"k" * 32
        first = emu.make_ticket(key, "task-0000000000000001")
        self.assertEqual(first, emu.make_ticket(key, "task-0000000000000001"))
        self.assertNotEqual(first,
                            emu.make_ticket(key, "task-0000000000000002"))
        self.assertNotEqual(first,
                            emu.make_ticket(b"j" * 32, "task-0000000000000001"))

    def test_non_loopback_host_rejected(self):
        with self.assertRaises(SystemExit):
            emu.parse_args(["--host", "0.0.0.0", "--cert", "c", "--key", "k",
                            "--state-dir", "s", "--access-key-id", "a",
                            "--access-key-secret-file", "f"])


class Client:
    """Signs and sends GetConnectionTicket requests to the emulator."""

    def __init__(self, port, ca_file):
        self.port = port
        self.context = ssl.create_default_context(cafile=ca_file)

    def headers(self, body, secret=SECRET, date=None, nonce=None,
                action=emu.ACTION):
        body_hash = hashlib.sha256(body).hexdigest()
        if date is None:
            date = datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        signed = {
            "content-type": "application/x-www-form-urlencoded",
            "host": f"127.0.0.1:{self.port}",
            "x-acs-action": action,
            "x-acs-content-sha256": body_hash,
            "x-acs-date": date,
            "x-acs-signature-nonce": nonce or secrets.token_hex(16),
            "x-acs-version": emu.VERSION,
        }
        names = sorted(signed)
        canonical = emu.canonical_request(
            "POST", "/", "", {k: [v] for k, v in signed.items()}, names,
            body_hash)
        signed["Authorization"] = (
            f"{emu.ALGORITHM} Credential={ACCESS_KEY_ID},"
            f"SignedHeaders={';'.join(names)},"
            f"Signature={emu.signature(secret, canonical)}")
        return signed

    def send(self, params, **kwargs):
        body = urllib.parse.urlencode(params).encode()
        headers = kwargs.pop("headers", None) or self.headers(body, **kwargs)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                           context=self.context, timeout=10)
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()


class EmulatorProcess(unittest.TestCase):
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl is not installed")
        cls.work = tempfile.mkdtemp(prefix="emulator-test.")
        subprocess.run([os.path.join(HERE, "make-certs.sh"),
                        os.path.join(cls.work, "certs")], check=True)
        secret_file = os.path.join(cls.work, "secret")
        with open(secret_file, "w", encoding="utf-8") as f:
            f.write(SECRET + "\n")
        cls.state = os.path.join(cls.work, "state")
        port_file = os.path.join(cls.work, "port")
        cls.log = open(os.path.join(cls.work, "emulator.log"), "w")
        cls.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "appstream_emulator.py"),
             "--port", "0", "--port-file", port_file,
             "--cert", os.path.join(cls.work, "certs", "server.pem"),
             "--key", os.path.join(cls.work, "certs", "server.key"),
             "--state-dir", cls.state, "--access-key-id", ACCESS_KEY_ID,
             "--access-key-secret-file", secret_file,
             "--task-seconds", "0.3", "--workers", str(cls.WORKERS)],
            stderr=cls.log)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or cls.process.poll() is not None:
                cls.tearDownClass()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.05)
        with open(port_file, encoding="utf-8") as f:
            port = int(f.read())
        cls.client = Client(port, os.path.join(cls.work, "certs", "ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.process.terminate()
        cls.process.wait()
        cls.log.close()
        shutil.rmtree(cls.work, ignore_errors=True)

    def tearDown(self):
        try:
            os.unlink(os.path.join(self.state, "faults.json"))
        except FileNotFoundError:
            pass

    def set_faults(self, faults):
        with open(os.path.join(self.state, "faults.json"), "w",
                  encoding="utf-8") as f:
            json.dump(faults, f)

    def start(self, user="alice"):
        status, _, data = self.client.send(
            {"EndUserId": user, "ProductType": "CloudApp",
             "AppId": "ca-test"})
        self.assertEqual(status, 200, data)
        reply = json.loads(data)
        self.assertEqual(reply["TaskStatus"], "Running")
        return reply["TaskId"]

    def poll_until_done(self, user, task_id):
        for _ in range(100):
            status, _, data = self.client.send(
                {"EndUserId": user, "ProductType": "CloudApp",
                 "TaskId": task_id})
            self.assertEqual(status, 200, data)
            reply = json.loads(data)
            if reply["TaskStatus"] != "Running":
                return reply
            time.sleep(0.05)
        self.fail("the task did not end")

    def assert_error(self, status, data, expected_status, code):
        self.assertEqual(status, expected_status, data)
        body = json.loads(data)
        self.assertEqual(body["Code"], code)
        for field in ("RequestId", "HostId", "Message", "Recommend"):
            self.assertIn(field, body)

    def test_task_finishes_with_ticket(self):
        task_id = self.start("alice")
        reply = self.poll_until_done("alice", task_id)
        self.assertEqual(reply["TaskStatus"], "Finished")
        self.assertEqual(reply["TenantId"], emu.TENANT_ID)
        path = os.path.join(self.state, "tickets", "alice")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), reply["Ticket"])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(os.path.join(self.state, "requests.jsonl"),
                  encoding="utf-8") as f:
            self.assertNotIn(reply["Ticket"], f.read())

    def test_failed_task(self):
        self.set_faults({"bob_user": {"fail": "task"}})
        task_id = self.start("bob_user")
        self.assertEqual(self.poll_until_done("bob_user", task_id)
                         ["TaskStatus"], "Failed")

    def test_wrong_secret(self):
        body = urllib.parse.urlencode({"EndUserId": "alice",
                                       "ProductType": "CloudApp"}).encode()
        status, _, data = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp"},
            headers=self.client.headers(body, secret="wrong"))
        self.assert_error(status, data, 400, "SignatureDoesNotMatch")

    def test_tampered_body(self):
        headers = self.client.headers(b"EndUserId=alice&ProductType=CloudApp")
        status, _, data = self.client.send(
            {"EndUserId": "mallory", "ProductType": "CloudApp"},
            headers=headers)
        self.assert_error(status, data, 400, "SignatureDoesNotMatch")

    def test_expired_date(self):
        status, _, data = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp",
             "AppId": "ca-test"}, date="2020-01-01T00:00:00Z")
        self.assert_error(status, data, 400, "InvalidTimeStamp.Expired")

    def test_nonce_reused(self):
        params = {"EndUserId": "alice", "ProductType": "CloudApp",
                  "AppId": "ca-test"}
        nonce = secrets.token_hex(16)
        status, _, _ = self.client.send(params, nonce=nonce)
        self.assertEqual(status, 200)
        status, _, data = self.client.send(params, nonce=nonce)
        self.assert_error(status, data, 400, "SignatureNonceUsed")

    def test_missing_authorization(self):
        body = b"EndUserId=alice&ProductType=CloudApp"
        headers = self.client.headers(body)
        del headers["Authorization"]
        status, _, data = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp"},
            headers=headers)
        self.assert_error(status, data, 400, "IncompleteSignature")

    def test_unknown_task(self):
        status, _, data = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp",
             "TaskId": "task-unknown"})
        self.assert_error(status, data, 400, "InvalidParameter.TaskId")

    def test_throttling_header(self):
        self.set_faults({"*": {"fail": "throttling", "time_left": 3}})
        status, headers, data = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp",
             "AppId": "ca-test"})
        self.assert_error(status, data, 400, "Throttling.User")
        values = dict((k.lower(), v) for k, v in headers)
        self.assertIn("TimeLeft:3", values["x-ratelimit-user-api"])

    def test_fault_count(self):
        self.set_faults({"carol": {"fail": "http500", "count": 1}})
        params = {"EndUserId": "carol", "ProductType": "CloudApp",
                  "AppId": "ca-test"}
        status, _, data = self.client.send(params)
        self.assert_error(status, data, 500, "InternalError")
        status, _, _ = self.client.send(params)
        self.assertEqual(status, 200)

    def test_html_gateway_error(self):
        self.set_faults({"*": {"fail": "html502"}})
        status, headers, _ = self.client.send(
            {"EndUserId": "alice", "ProductType": "CloudApp",
             "AppId": "ca-test"})
        self.assertEqual(status, 502)
        self.assertIn(("Content-Type", "text/html"), headers)

    def test_poll_after_finish_same_ticket(self):
        task_id = self.start("erin")
        first = self.poll_until_done("erin", task_id)
        again = self.poll_until_done("erin", task_id)
        self.assertEqual(first["Ticket"], again["Ticket"])

    def test_task_of_other_user(self):
        task_id = self.start("frank")
        status, _, data = self.client.send(
            {"EndUserId": "grace", "ProductType": "CloudApp",
             "TaskId": task_id})
        self.assert_error(status, data, 400, "InvalidParameter.TaskId")

    def test_stats(self):
        self.start("dave")
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.client.port, context=self.client.context,
            timeout=10)
        conn.request("GET", "/_emulator/stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
        self.assertGreaterEqual(stats["tasks_started"], 1)
        self.assertGreaterEqual(stats["requests"], 1)


class EmulatorWorkers(EmulatorProcess):
    """Every test again with three processes.  Each request opens a new
    connection, so a task, a nonce or a fault count seen by one worker is
    checked by another."""

    WORKERS = 3


if __name__ == "__main__":
    unittest.main()
