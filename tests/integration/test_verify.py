"""Verification outcomes, messages and precedence (SPEC §4)."""

import json
import time

from harness import (B62, DAY, MSG, ServerTestCase, check_chars, make_key, parse_time,
                     scope_msg)

FOUND_FIELDS = ("credential_id", "key_id", "slot", "scopes", "expires_at", "expires_in_s")


class Verify(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Keys that need to expire are created first so one sleep serves every test.
        srv = cls.srv
        r = srv.post("/v1/credentials", {"name": "short", "lifetime": "2s",
                                         "allowed_cidrs": ["10.0.0.0/8"], "scopes": ["a"]})
        assert r.status == 201, r.describe()
        cls.expiring = r.body
        # a second short-lived credential that will also be disabled and revoked
        r = srv.post("/v1/credentials", {"name": "short-revoked", "lifetime": "2s"})
        assert r.status == 201, r.describe()
        cls.expiring_revoked = r.body
        r = srv.post("/v1/keys/%s/invalidate" % r.body["key"]["id"], {})
        assert r.status == 200, r.describe()
        r = srv.post("/v1/credentials", {"name": "short-disabled", "lifetime": "2s"})
        assert r.status == 201, r.describe()
        cls.expiring_disabled = r.body
        cls.expiry_deadline = time.time() + 3.0

    def wait_expiry(self):
        d = self.expiry_deadline - time.time()
        if d > 0:
            time.sleep(d)

    def check(self, key, code, scope=None, ip=None, found=True):
        v = self.verify_code(key, code, scope=scope, ip=ip)
        if code == "FORBIDDEN_SCOPE":
            self.assertEqual(v.get("message"), scope_msg(scope))
        elif code == "VALID":
            self.assertEqual(v.get("message"), "OK")
        else:
            self.assertEqual(v.get("message"), MSG[code])
        self.assertIsInstance(v.get("warnings"), list, v)
        if found:
            for f in ("credential_id", "key_id"):
                self.assertIsInstance(v.get(f), str, "%s missing for %s: %s" % (f, code, v))
        else:
            for f in FOUND_FIELDS:
                self.assertIsNone(v.get(f), "%s present for %s: %s" % (f, code, v))
        return v

    # -- MALFORMED
    def test_malformed(self):
        b = self.create()
        s = b["secret"]
        last = s[-1]
        flipped = s[:-1] + B62[(B62.index(last) + 1) % 62]
        body_changed = s[:5] + ("A" if s[5] != "A" else "B") + s[6:]
        for bad in (flipped, body_changed, "", "hello", "kw_", "kw_" + "0" * 49,
                    s[:-1], s + "0", "KW" + s[2:], " " + s, s + "\n", "x" * 5000,
                    s.replace("_", "-", 1), "kw_" + "!" * 49):
            with self.subTest(key=bad[:30]):
                self.check(bad, "MALFORMED", found=False)
        self.check(s, "VALID")

    def test_malformed_before_anything_else(self):
        # a revoked key with a broken check digit is MALFORMED, not REVOKED
        b = self.create()
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {}), 200)
        s = b["secret"]
        bad = s[:-1] + ("0" if s[-1] != "0" else "1")
        self.check(bad, "MALFORMED", found=False)
        self.check(s, "REVOKED")

    # -- NOT_FOUND
    def test_not_found(self):
        for prefix in ("kw", "acme"):
            self.check(make_key(prefix), "NOT_FOUND", found=False)
        # an issued key with another prefix is a different key
        b = self.create(prefix="pa")
        s = b["secret"]
        body = "pb" + s[2:-6]
        self.check(body + check_chars(body), "NOT_FOUND", found=False)

    # -- REVOKED
    def test_revoked(self):
        b = self.create(scopes=["a"], allowed_cidrs=["10.0.0.0/8"])
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {}), 200)
        v = self.check(b["secret"], "REVOKED")
        self.assertEqual(v["key_id"], b["key"]["id"])
        self.assertEqual(v["credential_id"], b["credential"]["id"])
        # revoked comes before disabled, forbidden ip and forbidden scope
        self.expect(self.srv.patch("/v1/credentials/" + b["credential"]["id"],
                                   {"disabled": True}), 200)
        self.check(b["secret"], "REVOKED", scope="zzz", ip="192.0.2.1")

    def test_revoked_before_expired(self):
        self.wait_expiry()
        self.check(self.expiring_revoked["secret"], "REVOKED")

    # -- EXPIRED
    def test_expired(self):
        self.wait_expiry()
        s = self.expiring["secret"]
        v = self.check(s, "EXPIRED")
        self.assertEqual(v["key_id"], self.expiring["key"]["id"])
        # expired comes before forbidden ip and scope
        self.check(s, "EXPIRED", ip="192.0.2.1", scope="nope")
        k = self.get_key(self.expiring["key"]["id"])
        self.assertEqual(k["state"], "expired")

    def test_expired_before_disabled(self):
        cid = self.expiring_disabled["credential"]["id"]
        self.expect(self.srv.patch("/v1/credentials/" + cid, {"disabled": True}), 200)
        self.wait_expiry()
        self.check(self.expiring_disabled["secret"], "EXPIRED")

    # -- DISABLED
    def test_disabled(self):
        b = self.create(scopes=["a"], allowed_cidrs=["10.0.0.0/8"])
        cid, s = b["credential"]["id"], b["secret"]
        self.check(s, "VALID", scope="a", ip="10.1.2.3")
        self.expect(self.srv.patch("/v1/credentials/" + cid, {"disabled": True}), 200)
        self.check(s, "DISABLED")
        # disabled comes before forbidden ip and forbidden scope
        self.check(s, "DISABLED", ip="192.0.2.1", scope="b")
        self.expect(self.srv.patch("/v1/credentials/" + cid, {"disabled": False}), 200)
        self.check(s, "VALID", scope="a", ip="10.1.2.3")

    def test_created_disabled(self):
        b = self.create(disabled=True)
        self.check(b["secret"], "DISABLED")

    # -- FORBIDDEN_IP
    def test_forbidden_ip(self):
        b = self.create(scopes=["a"], allowed_cidrs=["10.0.0.0/8", "192.168.1.0/24"])
        s = b["secret"]
        for ip in ("10.0.0.1", "10.255.255.255", "192.168.1.77"):
            self.check(s, "VALID", ip=ip, scope="a")
        for ip in ("11.0.0.1", "9.255.255.255", "192.168.2.1", "127.0.0.1"):
            with self.subTest(ip=ip):
                self.check(s, "FORBIDDEN_IP", ip=ip, scope="a")
        # forbidden ip comes before forbidden scope
        self.check(s, "FORBIDDEN_IP", ip="11.0.0.1", scope="zzz")
        # no restriction: any address
        b2 = self.create()
        self.check(b2["secret"], "VALID", ip="203.0.113.9")

    def test_forbidden_ip_v6(self):
        b = self.create(allowed_cidrs=["2001:db8::/32"])
        self.check(b["secret"], "VALID", ip="2001:db8::1")
        self.check(b["secret"], "FORBIDDEN_IP", ip="2001:db9::1")
        self.check(b["secret"], "FORBIDDEN_IP", ip="10.0.0.1")

    # -- FORBIDDEN_SCOPE
    def test_forbidden_scope(self):
        b = self.create(scopes=["orders:read", "y"])
        s = b["secret"]
        self.check(s, "FORBIDDEN_SCOPE", scope="x")
        self.check(s, "FORBIDDEN_SCOPE", scope="orders:write")
        self.check(s, "FORBIDDEN_SCOPE", scope="orders")
        self.check(s, "VALID", scope="orders:read")
        self.check(s, "VALID", scope="y")
        b2 = self.create()
        self.check(b2["secret"], "FORBIDDEN_SCOPE", scope="x")

    # -- VALID
    def test_valid(self):
        now = time.time()
        b = self.create(scopes=["orders:read", "orders:write"], lifetime="100d")
        v = self.check(b["secret"], "VALID")
        self.assertEqual(v["credential_id"], b["credential"]["id"])
        self.assertEqual(v["key_id"], b["key"]["id"])
        self.assertEqual(v["slot"], 1)
        self.assertEqual(sorted(v["scopes"]), ["orders:read", "orders:write"])
        self.assertEqual(v["expires_at"], b["key"]["expires_at"])
        self.assertIsInstance(v["expires_in_s"], int)
        self.assertAlmostEqual(v["expires_in_s"], 100 * DAY, delta=15)
        self.assertAlmostEqual(parse_time(v["expires_at"]), now + 100 * DAY, delta=15)
        self.assertEqual(v["warnings"], [])

    def test_never_refused_by_default_policy(self):
        # allow_never_expire is false on the default policy: the answer says so, and
        # nothing is created
        r = self.srv.post("/v1/credentials", {"name": "forever", "lifetime": "never"})
        self.assertProblem(r, 422, "lifetime")

    def test_no_admin_key_needed(self):
        b = self.create()
        r = self.srv.verify(b["secret"], token=None)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.body["code"], "VALID")

    def test_warnings(self):
        b = self.create(lifetime="10d")
        v = self.check(b["secret"], "VALID")
        self.assertTrue(v["warnings"], "no warning for a key expiring in 10 days: %s" % v)
        self.assertTrue(all(isinstance(w, str) and w.strip() for w in v["warnings"]), v)
        b = self.create(lifetime="365d")
        v = self.check(b["secret"], "VALID")
        self.assertEqual(v["warnings"], [])
        b = self.create(lifetime="31d")
        self.assertEqual(self.check(b["secret"], "VALID")["warnings"], [])

    def test_usage_recorded(self):
        b = self.create(scopes=["a"])
        kid = b["key"]["id"]
        k = self.get_key(kid)
        self.assertEqual((k["use_count"], k["last_used_at"]), (0, None))
        t0 = time.time()
        for _ in range(3):
            self.check(b["secret"], "VALID", scope="a")
        self.wait_for(lambda: self.get_key(kid)["use_count"] >= 3, timeout=3.5)
        k = self.get_key(kid)
        self.assertEqual(k["use_count"], 3)
        self.assertIsNotNone(k["last_used_at"])
        self.assertAlmostEqual(parse_time(k["last_used_at"]), t0, delta=5)

    def test_always_200(self):
        for body in ({"key": make_key()}, {"key": "junk"}, {"key": ""}):
            r = self.srv.request("POST", "/v1/keys/verify", body, token=None)
            self.assertEqual(r.status, 200, r.describe())
            self.assertTrue(r.ctype.startswith("application/json"), r.describe())

    # -- GET /v1/auth (gateway form)
    def test_auth_endpoint(self):
        b = self.create(scopes=["orders:read"], lifetime="10d")
        s, cid, kid = b["secret"], b["credential"]["id"], b["key"]["id"]
        r = self.srv.get("/v1/auth", token=s)
        self.assertEqual(r.status, 204, r.describe())
        self.assertEqual(r.headers.get("keyward-credential"), cid, r.headers)
        self.assertEqual(r.headers.get("keyward-key"), kid, r.headers)
        self.assertIn("orders:read", r.headers.get("keyward-scopes", ""), r.headers)
        self.assertIn("keyward-expires", r.headers)
        self.assertIn("sunset", r.headers, "no Sunset for a key expiring in 10 days")
        r = self.srv.get("/v1/auth", token=None, headers={"X-API-Key": s,
                                                          "X-Keyward-Scope": "orders:read"})
        self.assertEqual(r.status, 204, r.describe())
        r = self.srv.get("/v1/auth", token=s, headers={"X-Keyward-Scope": "orders:write"})
        self.assertEqual(r.status, 403, r.describe())
        r = self.srv.get("/v1/auth", token=make_key())
        self.assertEqual(r.status, 401, r.describe())
        www = r.headers.get("www-authenticate", "")
        self.assertIn('error="invalid_token"', www)
        self.assertIn(MSG["NOT_FOUND"], www)
        r = self.srv.get("/v1/auth", token=None)
        self.assertEqual(r.status, 401, r.describe())
        b2 = self.create()
        r = self.srv.get("/v1/auth", token=b2["secret"])
        self.assertEqual(r.status, 204, r.describe())
        self.assertNotIn("sunset", r.headers, "Sunset on a key with a year to live")


def _raw_head(raw):
    """(status, [(name, value bytes)], body bytes) of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = [(ln.split(b":", 1)[0].decode().lower(), ln.split(b":", 1)[1].strip())
              for ln in lines[1:]]
    return int(lines[0].split()[1]), fields, body


class AuthChallenge(ServerTestCase):
    """GET /v1/auth refusals on both paths (the gateway loop and, for a request too large for
    its window, libmicrohttpd): a request without a key gets a bare `Bearer` challenge (RFC
    6750 §3.1), every header value is ASCII, and the body is problem+json."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.srv.post("/v1/credentials", {"name": "short", "lifetime": "2s"})
        assert r.status == 201, r.describe()
        cls.expiring = r.body
        cls.expiry_deadline = time.time() + 3.0

    def wait_expiry(self):
        time.sleep(max(0.0, self.expiry_deadline - time.time()))

    PAD = b"X-Pad: " + b"a" * 9000 + b"\r\n"  # past the gate's 8 KiB window: libmicrohttpd

    def auth_raw(self, extra=b"", pad=False):
        req = (b"GET /v1/auth HTTP/1.1\r\nHost: x\r\n" + (self.PAD if pad else b"") + extra +
               b"Connection: close\r\n\r\n")
        return _raw_head(self.srv.raw_send(req))

    def test_no_key_bare_challenge(self):
        for pad in (False, True):
            for extra in (b"", b"Authorization: Basic dXNlcjpwYXNz\r\n", b"X-API-Key: \r\n"):
                st, fields, body = self.auth_raw(extra, pad)
                what = "pad=%s extra=%r" % (pad, extra)
                self.assertEqual(st, 401, what)
                www = [v for n, v in fields if n == "www-authenticate"]
                self.assertEqual(www, [b"Bearer"], what)
                ct = [v for n, v in fields if n == "content-type"]
                self.assertEqual(ct, [b"application/problem+json"], what)
                p = json.loads(body)
                self.assertEqual(p["status"], 401, p)
                self.assertIn("no API key", p["detail"])

    def test_header_values_ascii(self):
        self.wait_expiry()
        key = self.expiring["secret"].encode()
        for pad in (False, True):
            st, fields, body = self.auth_raw(b"X-API-Key: " + key + b"\r\n", pad)
            self.assertEqual(st, 401)
            for n, v in fields:
                self.assertTrue(all(b < 0x80 for b in v), "non-ASCII in %s: %r" % (n, v))
            www = [v for n, v in fields if n == "www-authenticate"]
            self.assertEqual(www, [b'Bearer error="invalid_token", error_description='
                                   b'"Authentication Failed - Expired API Key"'], pad)
            self.assertEqual(dict(fields)["keyward-code"], b"EXPIRED")
            p = json.loads(body)
            self.assertEqual(p["detail"], MSG["EXPIRED"])  # the JSON keeps the en dash
            # a forbidden scope is 403 with a problem body too
            good = self.create(scopes=["a"])["secret"].encode()
            st, fields, body = self.auth_raw(b"X-API-Key: " + good + b"\r\nX-Keyward-Scope: b\r\n",
                                             pad)
            self.assertEqual(st, 403)
            self.assertEqual(json.loads(body)["detail"], scope_msg("b"))
            self.assertIn(b'error="insufficient_scope"', dict(fields)["www-authenticate"])



class KeyCreatedEvent(ServerTestCase):
    """key.created names the credential, as the expiry events do (credential_name)."""

    def test_key_created_has_credential_name(self):
        b = self.create(name="billing-prod")
        cid = b["credential"]["id"]
        self.new_key(cid)
        r = self.srv.get("/v1/events", query={"credential_id": cid, "type": "key.created"})
        items = self.expect(r, 200)["items"]
        self.assertEqual(len(items), 2, items)
        for ev in items:
            self.assertEqual(ev.get("credential_name"), "billing-prod", ev)
