"""The gateway fast path (src/server/gate.c): GET /v1/auth and POST /v1/keys/verify are
answered by the gate's own event loop; every other request goes to libmicrohttpd - unread
when it is a connection's first request, relayed when a connection turns to other routes
after the gate answered some of its requests. Whichever path answers, the client sees the
same answers, in order, on one keep-alive connection."""

import http.client
import json
import socket
import time

from harness import ServerTestCase


def split_responses(data):
    """Parse concatenated HTTP/1.1 responses: [(status, {lower-name: value}, body)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("incomplete response: %r" % data[:200])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


class Gate(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.srv.post("/v1/credentials", {"name": "gate", "scopes": ["orders:read"]})
        assert r.status == 201, r.describe()
        cls.cred = r.body
        cls.key = r.body["secret"]

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)

    def auth(self, c, key=None):
        c.request("GET", "/v1/auth", headers={"Authorization": "Bearer " + (key or self.key)})
        r = c.getresponse()
        r.read()
        return r

    def verify(self, c, key=None):
        body = json.dumps({"key": key or self.key})
        c.request("POST", "/v1/keys/verify", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r, json.loads(r.read())

    def admin_get(self, c, path):
        c.request("GET", path, headers={"Authorization": "Bearer " + self.srv.admin_key})
        r = c.getresponse()
        return r, json.loads(r.read())

    def test_mixed_keepalive_connection(self):
        """verify, auth, admin, auth, admin, verify on one connection: all right, in order."""
        c = self.conn()
        try:
            r, b = self.verify(c)
            self.assertEqual((r.status, b["code"]), (200, "VALID"))
            sock = c.sock
            self.assertEqual(self.auth(c).status, 204)
            r, b = self.admin_get(c, "/v1/credentials/" + self.cred["credential"]["id"])
            self.assertEqual(r.status, 200, b)
            self.assertEqual(b["id"], self.cred["credential"]["id"])
            a = self.auth(c)
            self.assertEqual(a.status, 204)
            self.assertEqual(a.getheader("Keyward-Credential"), self.cred["credential"]["id"])
            self.assertEqual(self.auth(c, "kw_nope").status, 401)
            r, b = self.admin_get(c, "/healthz")
            self.assertEqual((r.status, b), (200, {"status": "ok"}))
            r, b = self.verify(c)
            self.assertEqual(b["code"], "VALID")
            self.assertIs(c.sock, sock, "the connection was reopened")
        finally:
            c.close()

    def test_admin_first_then_auth(self):
        c = self.conn()
        try:
            r, b = self.admin_get(c, "/healthz")
            self.assertEqual(r.status, 200)
            sock = c.sock
            for _ in range(3):
                self.assertEqual(self.auth(c).status, 204)
            self.assertIs(c.sock, sock)
        finally:
            c.close()

    def test_same_answer_from_both_paths(self):
        """The gate's answer and libmicrohttpd's (the same request after an admin one on
        the connection) carry the same status, Keyward-* headers and body."""
        def both(req):
            fast = split_responses(self.srv.raw_send(req, timeout=5))
            slow = split_responses(self.srv.raw_send(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + req, timeout=5))[1:]
            self.assertEqual(len(fast), 1)
            self.assertEqual(len(slow), 1)
            return fast[0], slow[0]

        k = self.key.encode()
        reqs = [
            b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + k +
            b"\r\nConnection: close\r\n\r\n",
            b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " + k +
            b"\r\nX-Keyward-Scope: admin\r\nConnection: close\r\n\r\n",
            b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: kw_bad\r\nConnection: close\r\n\r\n",
        ]
        for body in (b'{"key":"' + k + b'"}', b'{"key":"kw_x"}', b'{"key":1}', b'[',
                     b'{"key":"' + k + b'","scope":"nope"}'):
            reqs.append(b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                        % len(body) + body)
        for req in reqs:
            f, s = both(req)
            self.assertEqual(f[0], s[0], req)
            for h in set(f[1]) | set(s[1]):
                if h.startswith("keyward-") or h in ("www-authenticate", "content-type",
                                                     "cache-control", "sunset"):
                    self.assertEqual(f[1].get(h), s[1].get(h), "%s: %r" % (h, req))
            fb = json.loads(f[2]) if f[2] else None
            sb = json.loads(s[2]) if s[2] else None
            if fb and "expires_in_s" in fb:  # seconds may tick between the two
                self.assertLessEqual(abs(fb.pop("expires_in_s") - sb.pop("expires_in_s")), 2)
            self.assertEqual(fb, sb, req)

    def test_pipelined_mixed(self):
        k = self.key.encode()
        auth = b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " + k + b"\r\n\r\n"
        admin = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = split_responses(self.srv.raw_send(auth + auth + admin + auth + admin + auth,
                                                timeout=5))
        self.assertEqual([g[0] for g in got], [204, 204, 200, 204, 200, 204])

    def test_trickled_request(self):
        """A request arriving a few bytes at a time is answered once complete."""
        req = (b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " + self.key.encode() +
               b"\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            for i in range(0, len(req), 7):
                s.sendall(req[i:i + 7])
                time.sleep(0.01)
            got = s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 204"), got)
            # and again on the same connection (READ mode), trickled too
            for i in range(0, len(req), 5):
                s.sendall(req[i:i + 5])
                time.sleep(0.01)
            got = s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 204"), got)
        finally:
            s.close()

    def test_large_requests_go_to_the_library(self):
        """Heads or bodies larger than the gate's 8 KiB window are the library's to answer
        (here: a valid verify with a padded body, first request and after a fast one)."""
        body = b'{"key":"' + self.key.encode() + b'"' + b" " * 12000 + b"}"
        req = (b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        auth = b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " + self.key.encode() + b"\r\n\r\n"
        for data in (req, auth + req + auth):
            got = split_responses(self.srv.raw_send(data, timeout=5))
            verifies = [g for g in got if g[0] == 200]
            self.assertEqual(len(verifies), 1, got)
            self.assertEqual(json.loads(verifies[0][2])["code"], "VALID")
        big = (b"GET /v1/auth HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 9000 +
               b"\r\nX-API-Key: " + self.key.encode() + b"\r\n\r\n")
        got = self.srv.raw_send(big, timeout=5)
        self.assertTrue(got.startswith(b"HTTP/1.1 "), got[:100])

    def test_connection_close_honoured(self):
        got = self.srv.raw_send(b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API-Key: " +
                                self.key.encode() + b"\r\nConnection: close\r\n\r\n" +
                                b"GET /v1/auth HTTP/1.1\r\nHost: x\r\n\r\n", shutdown=False,
                                timeout=5)
        got = split_responses(got)
        self.assertEqual(len(got), 1, "answered past Connection: close")
        self.assertEqual(got[0][1].get("connection"), "close")

    def test_client_leaving_mid_request(self):
        for data in (b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-API", b"POST /v1/keys/verify "
                     b"HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\""):
            self.srv.raw_send(data, read=False)
        self.assertEqual(self.auth(self.conn()).status, 204)

    def test_connection_metrics(self):
        """Each path a connection takes is counted: the mixed connection above is relayed,
        an admin-first one handed over, a verify-only one neither."""
        before = self.srv.connection_counts()
        for k in ("accepted", "handed", "relayed", "refused"):
            self.assertIn(k, before)
        c = self.conn()
        self.auth(c)
        self.auth(c)
        c.close()
        mid = self.srv.connection_counts()  # this scrape's own connection is handed over too
        self.assertEqual(mid["relayed"], before["relayed"])
        self.assertEqual(mid["handed"], before["handed"] + 1)
        c = self.conn()
        self.auth(c)
        self.admin_get(c, "/healthz")
        c.close()
        after = self.srv.connection_counts()
        self.assertEqual(after["relayed"], mid["relayed"] + 1)
        self.assertEqual(after["accepted"], mid["accepted"] + 2)
