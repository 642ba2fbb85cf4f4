"""Limits (docs/reliability.md): each one tested at the limit (accepted) and one past it
(refused cleanly, the daemon unharmed): header size, body size, JSON depth, connections,
idle and per-request timeouts (slow loris), list page size, and failed admin
authentication rate limited per client address (429 + Retry-After)."""

import json
import re
import socket
import time

from harness import ServerTestCase


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else None


def nested(depth):
    """A JSON value of depth - 1 nested objects: as a member of the body object, the body
    is depth levels deep."""
    v = 1
    for _ in range(depth - 1):
        v = {"a": v}
    return v


class Alive:
    def assertAlive(self, what):
        self.assertIsNone(self.srv.proc.poll(), "server died after %s" % what)
        r = self.srv.get("/healthz", token=None, timeout=5)
        self.assertEqual(r.status, 200, "after %s: %s" % (what, r.describe()))


class BodyAndDepth(ServerTestCase, Alive):
    extra_args = ("--max-body", "1024")

    def test_body_at_limit_and_past(self):
        raw = json.dumps({"key": "kw_x"}).encode().ljust(1024)  # JSON allows trailing space
        self.assertEqual(len(raw), 1024)
        r = self.srv.request("POST", "/v1/keys/verify", raw=raw, token=None)
        self.assertEqual(r.status, 200, "1024-byte body at --max-body 1024: " + r.describe())
        self.assertEqual(r.body.get("code"), "MALFORMED", r.describe())
        r = self.srv.request("POST", "/v1/keys/verify", raw=raw + b" ", token=None)
        self.assertProblem(r, 413)
        self.assertAlive("body past the limit")

    def test_json_depth_at_limit_and_past(self):
        # 32 levels (the body object is level 1) are accepted; 33 are refused before parsing
        b = self.create(metadata=nested(32))
        self.assertEqual(b["credential"]["metadata"], nested(32))
        r = self.srv.post("/v1/credentials", {"name": "too-deep", "metadata": nested(33)})
        p = self.assertProblem(r, 400)
        self.assertIn("32", p["detail"], r.describe())
        # arrays count too, and strings holding brackets do not
        r = self.srv.post("/v1/credentials", {"name": "[[[[" * 40, "metadata": {"x": "{{{" * 50}})
        self.expect(r, 201, "brackets inside strings")
        r = self.srv.request("POST", "/v1/keys/verify", raw=b"[" * 100000 + b"]" * 100000,
                             token=None)
        self.assertProblem(r, (400, 413))
        self.assertFalse([c for c in self.list_all() if c["name"] == "too-deep"],
                         "a refused body created a credential")
        self.assertAlive("deep JSON")


class HeadersAndPages(ServerTestCase, Alive):
    def test_header_size(self):
        # libmicrohttpd holds a request's headers in the connection's 48 KiB memory pool:
        # 24 KiB of headers are served, 70 KiB are refused (431 or a closed connection).
        big = b"a" * (24 * 1024)
        got = self.srv.raw_send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big +
                                b"\r\nConnection: close\r\n\r\n", timeout=5)
        self.assertEqual(status_of(got), 200, "24 KiB header answered %r" % got[:200])
        big = b"a" * (70 * 1024)
        got = self.srv.raw_send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big +
                                b"\r\n\r\n", timeout=5)
        st = status_of(got)
        self.assertTrue(st is None or st in (400, 413, 431), "70 KiB header answered %r" % got[:200])
        self.assertAlive("oversized header")

    def test_list_page_size(self):
        for _ in range(3):
            self.create()
        r = self.srv.get("/v1/credentials", query={"limit": 1000})
        self.expect(r, 200, "limit=1000")
        self.assertIsInstance(r.body.get("items"), list)
        r = self.srv.get("/v1/credentials", query={"limit": 1001})
        self.assertProblem(r, 400, "limit")
        r = self.srv.get("/v1/credentials", query={"limit": 1})
        self.expect(r, 200, "limit=1")
        self.assertEqual(len(r.body["items"]), 1, r.describe())
        self.assertIsNotNone(r.body["next"], r.describe())


class Connections(ServerTestCase, Alive):
    extra_args = ("--max-connections", "8")

    def _hold(self, n):
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(s)
        time.sleep(0.2)
        return socks

    def test_connection_limit(self):
        socks = self._hold(7)
        try:
            r = self.srv.get("/healthz", token=None, timeout=5)  # the 8th: at the limit
            self.assertEqual(r.status, 200, "8th connection at --max-connections 8: " + r.describe())
            time.sleep(0.3)  # a closed connection's place is given back by the server's thread
            socks += self._hold(1)
            refused = False
            try:
                got = self.srv.raw_send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
                refused = status_of(got) is None
            except OSError:
                refused = True
            self.assertTrue(refused, "a 9th connection was served at --max-connections 8")
        finally:
            for s in socks:
                s.close()
        time.sleep(0.3)
        self.assertAlive("connection limit")


    def test_count_released_whatever_served_the_connection(self):
        """Connections answered by the gateway loop, handed to libmicrohttpd, or relayed to
        it all give their place back when they close: after 40 of them, 8 still fit."""
        auth = b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: kw_x\r\n\r\n"
        health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        for i in range(40):
            data = (auth, health, auth + health, auth + auth)[i % 4]
            got = self.srv.raw_send(data, timeout=5)
            self.assertTrue(got.startswith(b"HTTP/1.1 "), "connection %d: %r" % (i, got[:80]))
        time.sleep(0.5)  # libmicrohttpd releases its connections from its own threads
        socks = self._hold(7)
        try:
            r = self.srv.get("/healthz", token=None, timeout=5)
            self.assertEqual(r.status, 200, "8th connection after 40 closed: " + r.describe())
        finally:
            for s in socks:
                s.close()
        time.sleep(0.3)


class Timeouts(ServerTestCase, Alive):
    extra_args = ("--idle-timeout", "2s", "--request-timeout", "3s")

    def _open(self):
        return socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)

    def _closed_after(self, s, deadline):
        """Seconds until the server closes s (reading and discarding), or None."""
        t0 = time.time()
        s.settimeout(0.2)
        while time.time() - t0 < deadline:
            try:
                if s.recv(4096) == b"":
                    return time.time() - t0
            except socket.timeout:
                continue
            except OSError:
                return time.time() - t0
        return None

    def test_idle_connection_closed(self):
        s = self._open()
        try:
            took = self._closed_after(s, 8)
            self.assertIsNotNone(took, "idle connection still open after 8 s at --idle-timeout 2s")
            self.assertGreater(took, 1.0, "idle connection closed too early")
        finally:
            s.close()

    def test_slow_but_in_time_is_served(self):
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        s = self._open()
        try:
            step = len(req) // 4 + 1
            for i in range(0, len(req), step):  # four pieces, 0.5 s apart: 1.5 s in all
                s.sendall(req[i:i + step])
                time.sleep(0.5)
            s.settimeout(5)
            got = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                got += c
            self.assertEqual(status_of(got), 200, "a request finished within 3 s: %r" % got[:200])
        finally:
            s.close()

    def test_slow_loris_cut(self):
        # one byte a second never trips the 2 s idle timeout; the 3 s request limit cuts it
        s = self._open()
        t0 = time.time()
        cut = None
        try:
            s.settimeout(0.05)
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30:
                try:
                    s.sendall(bytes([b]))
                except OSError:
                    cut = time.time() - t0
                    break
                try:
                    if s.recv(100) == b"":
                        cut = time.time() - t0
                        break
                except socket.timeout:
                    pass
                except OSError:
                    cut = time.time() - t0
                    break
                time.sleep(0.95)
        finally:
            s.close()
        self.assertIsNotNone(cut, "a byte-a-second client was never cut (--request-timeout 3s)")
        self.assertGreater(cut, 2.5, "cut after %.1f s, before the 3 s limit" % cut)
        self.assertLess(cut, 6.0, "cut only after %.1f s with --request-timeout 3s" % cut)
        self.assertAlive("slow loris")

    def test_keepalive_requests_not_cut(self):
        # many quick requests on one connection, longer in all than the limit, are all served
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=5)
        try:
            t0 = time.time()
            n = 0
            while time.time() - t0 < 4.0:
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                n += 1
                time.sleep(0.2)
            self.assertGreater(n, 10)
        finally:
            c.close()


class AuthRateLimit(ServerTestCase, Alive):
    extra_args = ("--auth-fail-limit", "3", "--auth-fail-window", "3s")

    def test_failed_auth_limited(self):
        bad = "kw_" + "A" * 49
        for i in range(3):  # the burst: plain 401s
            r = self.srv.get("/v1/credentials", token=bad)
            self.assertProblem(r, 401)
        r = self.srv.get("/v1/credentials", token=bad)
        p = self.assertProblem(r, 429)
        ra = r.headers.get("retry-after")
        self.assertIsNotNone(ra, "429 without Retry-After: " + r.describe())
        self.assertTrue(ra.isdigit() and 1 <= int(ra) <= 3, "Retry-After %r" % ra)
        self.assertNotIn(bad, json.dumps(p))
        # while limited, the address is refused even with a good key (no guessing race)...
        r = self.srv.get("/v1/credentials")
        self.assertProblem(r, 429)
        # ...but verification, which needs no admin key, is not limited
        r = self.srv.verify(bad)
        self.expect(r, 200, "verify while admin auth is limited")
        # one token comes back after window/limit = 1 s
        time.sleep(int(ra) + 0.1)
        r = self.srv.get("/v1/credentials")
        self.expect(r, 200, "after Retry-After")
        self.assertAlive("rate limit")
