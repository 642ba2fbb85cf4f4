"""Strict HTTP/1.1 framing (RFC 9112 sections 5-7, SPEC section 4) on every route, as a
hostile client sends it: raw bytes over a socket to the real binary. Each hostile request
is sent on a verification route and on an admin route, as a connection's first request and
pipelined after a good verification request and after a good admin request (the gate's
three paths: peeked, read by the gate, relayed to libmicrohttpd). The test counts the
responses in the raw bytes (exactly one for the hostile request), checks that it is
problem+json (never libmicrohttpd's HTML) and that the connection is closed after it.

The attack list of issue 11 is kept here as a regression test."""

import json
import re
import socket
import time

from harness import ServerTestCase

STATUS_LINE = re.compile(rb"HTTP/1\.[01] \d{3} ")


def parse_responses(data):
    """[(status, {lower-name: value}, body)] of concatenated responses; raises on bytes
    that are not whole responses (a second status line inside a body, a cut answer)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("incomplete response: %r" % data[:300])
        lines = head.decode("latin-1").split("\r\n")
        if not STATUS_LINE.match(lines[0].encode("latin-1") + b" "):
            raise AssertionError("not a status line: %r" % lines[0])
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0")) if status not in (204, 304) else 0
        if len(rest) < n:
            raise AssertionError("body cut: want %d bytes, have %d" % (n, len(rest)))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def exchange(port, data, timeout=4.0):
    """Send data (without half-closing) and read until the server closes or goes quiet.
    Returns (bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got, closed = b"", False
    try:
        s.sendall(data)
        deadline = time.time() + timeout
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
            if got.count(b"HTTP/1.") and not closed:
                # an answer is in: the rest (or the close) comes at once, or never
                deadline = min(deadline, time.time() + 0.6)
    finally:
        s.close()
    return got, closed


SMUGGLED = b"GET /v1/policies HTTP/1.1\r\nHost: x\r\n\r\n"


class Framing(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.srv.post("/v1/credentials", {"name": "framing", "scopes": ["a"]})
        assert r.status == 201, r.describe()
        cls.key = r.body["secret"]

    # -- requests
    def good_verify(self):
        body = json.dumps({"key": self.key}).encode()
        return (b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body

    def good_admin(self):
        return (b"GET /v1/policies HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n"
                % self.srv.admin_key.encode())

    def route(self, which):
        """(request line, auth header, JSON body) of a POST on the route."""
        if which == "verify":
            return b"POST /v1/keys/verify HTTP/1.1", b"", json.dumps({"key": "kw"}).encode()
        auth = b"Authorization: Bearer %s\r\n" % self.srv.admin_key.encode()
        return b"POST /v1/credentials HTTP/1.1", auth, json.dumps({"name": "smug"}).encode()

    def hostile(self, which, case):
        line, auth, body = self.route(which)
        head = line + b"\r\nHost: t\r\n" + auth + b"Content-Type: application/json\r\n"
        n = len(body)
        if case == "cl-differ":
            return head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (
                n, n + len(SMUGGLED)) + body + SMUGGLED
        if case in ("cl-minus", "cl-plus", "cl-abc", "cl-list"):
            v = {"cl-minus": b"-1", "cl-plus": b"+%d" % n, "cl-abc": b"abc",
                 "cl-list": b"%d, %d" % (n, n + 5)}[case]
            return head + b"Content-Length: " + v + b"\r\n\r\n" + body + SMUGGLED
        if case == "te-unknown":
            return head + b"Transfer-Encoding: xchunked\r\n\r\n" + b"%x\r\n" % n + body + \
                b"\r\n0\r\n\r\n"
        if case == "te-gzip-chunked":
            return head + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        if case == "obs-fold":
            return head + b"X-Folded: a\r\n  b\r\nContent-Length: %d\r\n\r\n" % n + body
        if case == "ws-colon":
            return head + b"Content-Length : %d\r\n\r\n" % n + body
        if case == "bare-cr":
            return head + b"X-Bare: a\rb\r\nContent-Length: %d\r\n\r\n" % n + body
        if case == "bare-lf":
            return head + b"X-Bare: a\nContent-Length: %d\r\n\r\n" % n + body
        if case == "version":
            return line.replace(b"HTTP/1.1", b"HTTP/2.0") + b"\r\nHost: t\r\n\r\n"
        if case == "no-host":
            return line + b"\r\n" + auth + b"Content-Length: %d\r\n\r\n" % n + body
        if case == "huge-head":
            return head + (b"X-Pad: " + b"a" * 1000 + b"\r\n") * 34 + b"\r\n"
        if case == "bad-chunk":
            return head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"
        raise AssertionError(case)

    CASES = {  # case: status
        "cl-differ": 400, "cl-minus": 400, "cl-plus": 400, "cl-abc": 400, "cl-list": 400,
        "te-unknown": 501, "te-gzip-chunked": 501, "obs-fold": 400, "ws-colon": 400,
        "bare-cr": 400, "bare-lf": 400, "version": 505, "no-host": 400, "huge-head": 431,
        "bad-chunk": 400,
    }

    def check_one(self, which, case, status, before):
        prefix = {"first": b"", "after-verify": self.good_verify(),
                  "after-admin": self.good_admin()}[before]
        data, closed = exchange(self.srv.port, prefix + self.hostile(which, case))
        what = "%s on %s, %s: %r" % (case, which, before, data[:600])
        rs = parse_responses(data)  # also: no stray bytes, no second status line in a body
        want = 1 if before == "first" else 2
        self.assertEqual(len(rs), want, "exactly one answer to the hostile request: " + what)
        if before != "first":
            self.assertEqual(rs[0][0], 200, what)
        st, hdrs, body = rs[-1]
        self.assertEqual(st, status, what)
        self.assertEqual(hdrs.get("content-type"), "application/problem+json", what)
        doc = json.loads(body)
        self.assertEqual(doc["status"], status, what)
        self.assertTrue(doc["type"].startswith("urn:keyward:problem:"), what)
        self.assertTrue(closed, "connection closed after the error: " + what)

    def test_hostile_framing_every_route_and_position(self):
        for which in ("verify", "admin"):
            for before in ("first", "after-verify", "after-admin"):
                for case, status in self.CASES.items():
                    with self.subTest(which=which, case=case, before=before):
                        self.check_one(which, case, status, before)
        # none of the admin-route attempts created anything
        names = [c["name"] for c in self.list_all("/v1/credentials")]
        self.assertNotIn("smug", names)

    def test_cl_and_te_chunked_wins_and_closes(self):
        """CL + TE: the chunked framing is used, the request is answered, the connection
        closes, and the bytes after the chunked body (a smuggled request) are not served."""
        for which in ("verify", "admin"):
            for before in ("first", "after-verify", "after-admin"):
                with self.subTest(which=which, before=before):
                    line, auth, _ = self.route(which)
                    body = (json.dumps({"key": self.key}) if which == "verify" else
                            json.dumps({"name": "clte-%s" % before})).encode()
                    req = (line + b"\r\nHost: t\r\n" + auth +
                           b"Content-Type: application/json\r\nContent-Length: 4\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" +
                           b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" + SMUGGLED)
                    prefix = {"first": b"", "after-verify": self.good_verify(),
                              "after-admin": self.good_admin()}[before]
                    data, closed = exchange(self.srv.port, prefix + req)
                    rs = parse_responses(data)
                    what = "%s %s: %r" % (which, before, data[:600])
                    self.assertEqual(len(rs), 1 if before == "first" else 2, what)
                    st, _, b = rs[-1]
                    self.assertEqual(st, 200 if which == "verify" else 201, what)
                    if which == "verify":
                        self.assertTrue(json.loads(b)["valid"], what)
                    self.assertTrue(closed, what)

    def test_good_chunked_keeps_connection(self):
        """A plain chunked request (no Content-Length) is served and the connection stays
        open for the next request."""
        body = json.dumps({"key": self.key}).encode()
        req = (b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               b"5\r\n" + body[:5] + b"\r\n%x;ext=1\r\n" % (len(body) - 5) + body[5:] +
               b"\r\n0\r\nX-Trailer: t\r\n\r\n")
        data, closed = exchange(self.srv.port, req + self.good_verify(), timeout=2.0)
        rs = parse_responses(data)
        self.assertEqual([r[0] for r in rs], [200, 200], data[:400])
        self.assertTrue(json.loads(rs[0][2])["valid"])
        self.assertFalse(closed)

    def test_nul_in_path_is_400_not_the_list(self):
        auth = b"Authorization: Bearer %s\r\n" % self.srv.admin_key.encode()
        for before in ("first", "after-verify", "after-admin"):
            prefix = {"first": b"", "after-verify": self.good_verify(),
                      "after-admin": self.good_admin()}[before]
            data, closed = exchange(
                self.srv.port,
                prefix + b"GET /v1/credentials/%00 HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n")
            rs = parse_responses(data)
            self.assertEqual(rs[-1][0], 400, data[:400])
            self.assertEqual(rs[-1][1].get("content-type"), "application/problem+json")
            self.assertNotIn(b"framing", rs[-1][2].replace(b"framing\"", b""))
            self.assertTrue(closed)

    def test_reserved_prefix_is_refused(self):
        data, closed = exchange(self.srv.port, b"GET /_kw/framing/x/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        rs = parse_responses(data)
        self.assertEqual(rs[0][0], 400)
        self.assertTrue(closed)

    def test_issue11_attack_list(self):
        """The requests of issue 11, as the attacker sent them."""
        # 1. two Content-Length on verify: one 400, and the smuggled request never runs
        body = b'{"key":"kw"}'
        smuggle = body + b"GET /v1/policies HTTP/1.1\r\nHost: x\r\nX: "
        data, closed = exchange(self.srv.port, (
            b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n"
            b"Content-Length: 50\r\n\r\n") + smuggle.ljust(50, b"x"))
        self.assertEqual([r[0] for r in parse_responses(data)], [400])
        self.assertTrue(closed)
        # ... and on an admin route: 16 + 99 does not create a credential
        auth = b"Authorization: Bearer %s\r\n" % self.srv.admin_key.encode()
        cbody = b'{"name":"smug1"}'
        data, closed = exchange(self.srv.port, (
            b"POST /v1/credentials HTTP/1.1\r\nHost: t\r\n" + auth +
            b"Content-Type: application/json\r\nContent-Length: 16\r\nContent-Length: 99\r\n\r\n"
            + cbody + b"POST /v1/credentials HTTP/1.1\r\nHost: t\r\n" + auth +
            b"Content-Length: 16\r\n\r\n" + b'{"name":"smug2"}'))
        self.assertEqual([r[0] for r in parse_responses(data)], [400])
        names = [c["name"] for c in self.list_all("/v1/credentials")]
        self.assertNotIn("smug1", names)
        self.assertNotIn("smug2", names)
        # 3. -1, +12, abc: exactly one status line, problem+json
        for v in (b"-1", b"+12", b"abc"):
            data, closed = exchange(self.srv.port, (
                b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Length: " + v +
                b"\r\n\r\n" + body))
            self.assertEqual(len(STATUS_LINE.findall(data)), 1, data)
            self.assertIn(b"application/problem+json", data)
            self.assertNotIn(b"<html", data.lower())
        # xchunked: answered at once (not at the request timeout)
        t0 = time.time()
        data, closed = exchange(self.srv.port, (
            b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n"))
        self.assertEqual([r[0] for r in parse_responses(data)], [501])
        self.assertLess(time.time() - t0, 2.0)
        # 2. CL + TE on an admin route: the smuggled request after the chunked body does
        # not run (no anonymous admin.request in the audit trail)
        data, closed = exchange(self.srv.port, (
            b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nc\r\n" + body + b"\r\n0\r\n\r\n" +
            b"DELETE /v1/credentials/x HTTP/1.1\r\nHost: t\r\n\r\n"))
        self.assertEqual([r[0] for r in parse_responses(data)], [200])
        self.assertTrue(closed)
        # 4. decoded NUL
        data, _ = exchange(self.srv.port, b"GET /v1/credentials/%00 HTTP/1.1\r\nHost: t\r\n"
                           + auth + b"\r\n")
        self.assertEqual([r[0] for r in parse_responses(data)], [400])

    def test_well_framed_requests_still_served(self):
        """HTTP/1.0, Expect: 100-continue, identical duplicate Content-Length: served."""
        data, closed = exchange(self.srv.port, b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual([r[0] for r in parse_responses(data)], [200])
        self.assertTrue(closed)
        body = json.dumps({"key": self.key}).encode()
        data, closed = exchange(self.srv.port, (
            b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(body), len(body))) + body, timeout=1.5)
        self.assertEqual([r[0] for r in parse_responses(data)], [200])
        self.assertFalse(closed)
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=3)
        try:
            s.sendall(b"POST /v1/keys/verify HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            first = s.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 100 "), first)
            s.sendall(body)
            got = b""
            while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(parse_responses(got)[0][0], 200)
        finally:
            s.close()

    def test_large_head_still_served(self):
        """A 31 KiB header section is framed and served (below KW_H1_MAX_HEAD, 32 KiB)."""
        for before in (b"", self.good_verify()):
            data, closed = exchange(self.srv.port, before + (
                b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (31 * 1024) +
                b"\r\n\r\n"), timeout=1.5)
            rs = parse_responses(data)
            self.assertEqual(rs[-1][0], 200, data[:300])
            self.assertFalse(closed)
