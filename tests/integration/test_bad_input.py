"""Bad input: every write endpoint answers a clear 4xx problem naming the field and changes
nothing (SPEC §5 Errors; docs/api.md Errors); hostile bytes never take the daemon down."""

import json
import re
import socket
import time

from harness import DAY, ServerTestCase, iso

BIG = 70 * 1024  # over the 64 KiB default --max-body

CREATE = ("POST", "/v1/credentials", "create")
PATCH = ("PATCH", "/v1/credentials/{cred}", "patch")
NEWKEY = ("POST", "/v1/credentials/{cred}/keys", "newkey")
ROLL = ("POST", "/v1/keys/{key}/roll", "roll")
INVALIDATE = ("POST", "/v1/keys/{key}/invalidate", "invalidate")
VERIFY = ("POST", "/v1/keys/verify", "verify")

# (endpoint, label, body, want status(es), field named in the problem)
# body: a Python value sent as JSON, or bytes sent raw.
CASES = []


def case(ep, label, body, status, field=None, ctype="application/json"):
    CASES.append((ep, label, body, status, field, ctype))


def N(**kw):
    """A create body: name plus the fields under test."""
    return dict({"name": "bad-input"}, **kw)


def past():
    return "2000-01-01T00:00:00Z"


for ep, base in ((CREATE, N()), (PATCH, {}), (NEWKEY, {}), (ROLL, {}), (INVALIDATE, {}),
                 (VERIFY, {"key": "kw_x"})):
    case(ep, "malformed_json", b'{"name": ', 400)
    case(ep, "trailing_comma", b'{"name": "x",}', 400)
    case(ep, "not_json", b"name=x", 400)
    case(ep, "invalid_utf8", b'{"name": "\xff\xfe"}', 400)
    case(ep, "deep_nesting", b"[" * 50000, 400)
    for label, raw in (("array", b"[]"), ("string", b'"x"'), ("number", b"42"),
                       ("null", b"null"), ("true", b"true")):
        case(ep, "non_object_" + label, raw, 400)
    case(ep, "unknown_field", dict(base, bogus_field=1), 400, "bogus_field")
    case(ep, "wrong_content_type_text", dict(base), 415, ctype="text/plain")
    case(ep, "wrong_content_type_form", dict(base), 415,
         ctype="application/x-www-form-urlencoded")
    case(ep, "oversized_body", dict(base, padding="a" * BIG), 413)

# POST /v1/credentials
case(CREATE, "missing_name", {}, 400, "name")
case(CREATE, "empty_name", N(name=""), 400, "name")
for f, vals in (("name", [5, None, [], {}]),
                ("owner", [5, [], {}, True]),
                ("scopes", ["orders:read", [1], {"a": 1}, [None], 5]),
                ("allowed_cidrs", ["10.0.0.0/8", [5], {}]),
                ("metadata", [[], "x", 5, True]),
                ("contacts", [{}, "log", [5], ["log"]]),
                ("disabled", ["yes", 1, "true"]),
                ("prefix", [5, ["kw"]]),
                ("policy", [5, []]),
                ("lifetime", [5, True, ["30d"]]),
                ("expires_at", [5, True, {}])):
    for i, v in enumerate(vals):
        case(CREATE, "wrong_type_%s_%d" % (f, i), N(**{f: v}), 400, f)
for i, v in enumerate(["10x", "", "d", "-5d", "0s", "5", "1.5d", "30 d", "99999999999999d", "30dd"]):
    case(CREATE, "bad_duration_%d" % i, N(lifetime=v), 400, "lifetime")
for i, v in enumerate(["10.0.0.0/33", "300.1.1.1/8", "abc", "10.0.0.0/", "", "10.0.0.0/8/8",
                       "2001:db8::/129", "10.0.0.0/-1", "1.2.3/24"]):
    case(CREATE, "bad_cidr_%d" % i, N(allowed_cidrs=["192.168.0.0/16", v]), 400, "allowed_cidrs")
for i, v in enumerate(["KW", "Kw", "a" * 17, "1ab", "a-b", "", "a_b", "\u00e9t\u00e9", "_kw", "kw "]):
    case(CREATE, "bad_prefix_%d" % i, N(prefix=v), 400, "prefix")
for i, v in enumerate([{"type": "pigeon"}, {"type": "webhook"}, {"type": "email"},
                       {"type": "webhook", "url": "not a url", "secret": "s"},
                       {"type": "email", "to": "not-an-address"}, {"url": "https://x.example"}]):
    case(CREATE, "bad_contact_%d" % i, N(contacts=[v]), 400, "contacts")
case(CREATE, "lifetime_above_max", N(lifetime="366d"), 422, "lifetime")
case(CREATE, "lifetime_far_above_max", N(lifetime="3650d"), 422, "lifetime")
case(CREATE, "lifetime_never_not_allowed", N(lifetime="never"), 422, "lifetime")
case(CREATE, "expires_at_past", N(expires_at=past()), (400, 422), "expires_at")
case(CREATE, "expires_at_now_minus_1m", "PAST_1M", (400, 422), "expires_at")
case(CREATE, "expires_at_beyond_max", "FUTURE_400D", 422, "expires_at")
case(CREATE, "expires_at_not_a_time", N(expires_at="tomorrow"), 400, "expires_at")
case(CREATE, "expires_at_bad_date", N(expires_at="2030-13-45T00:00:00Z"), 400, "expires_at")
case(CREATE, "lifetime_and_expires_at", "BOTH", 400)
case(CREATE, "unknown_policy", N(policy="no-such-policy"), (400, 404, 422), "policy")

# PATCH /v1/credentials/{id}
case(PATCH, "empty_name", {"name": ""}, 400, "name")
case(PATCH, "null_name", {"name": None}, 400, "name")
for f, vals in (("name", [5, []]), ("owner", [5, {}]), ("scopes", ["a", [1]]),
                ("allowed_cidrs", ["10.0.0.0/8", ["bad"]]), ("metadata", [[], "x"]),
                ("contacts", [{}, [{"type": "pigeon"}]]), ("disabled", ["true", 0, None]),
                ("policy", [5, "no-such-policy"])):
    for i, v in enumerate(vals):
        case(PATCH, "bad_%s_%d" % (f, i), {f: v}, (400, 404, 422) if v == "no-such-policy"
             else 400, f)
for f, v in (("prefix", "zz"), ("id", "cred_other"), ("created_at", iso(0)), ("keys", [])):
    case(PATCH, "not_patchable_%s" % f, {f: v}, 400, f)
case(PATCH, "valid_then_bad", {"name": "changed", "scopes": "oops"}, 400, "scopes")

# POST /v1/credentials/{id}/keys
for i, v in enumerate([5, "xx", "", "0s", True]):
    case(NEWKEY, "bad_lifetime_%d" % i, {"lifetime": v}, 400, "lifetime")
case(NEWKEY, "lifetime_above_max", {"lifetime": "366d"}, 422, "lifetime")
case(NEWKEY, "lifetime_never_not_allowed", {"lifetime": "never"}, 422, "lifetime")
case(NEWKEY, "expires_at_past", {"expires_at": past()}, (400, 422), "expires_at")
case(NEWKEY, "expires_at_garbage", {"expires_at": "garbage"}, 400, "expires_at")
case(NEWKEY, "expires_at_wrong_type", {"expires_at": 1700000000}, 400, "expires_at")
case(NEWKEY, "credential_field", {"name": "x"}, 400, "name")

# POST /v1/keys/{id}/roll
for i, v in enumerate([5, "bad", "-1h", ""]):
    case(ROLL, "bad_overlap_%d" % i, {"overlap": v}, 400, "overlap")
case(ROLL, "overlap_above_max", {"overlap": "8d"}, (400, 422), "overlap")
case(ROLL, "lifetime_above_max", {"lifetime": "366d"}, 422, "lifetime")
case(ROLL, "bad_lifetime", {"lifetime": "x"}, 400, "lifetime")
case(ROLL, "expires_at_past", {"expires_at": past()}, (400, 422), "expires_at")

# POST /v1/keys/{id}/invalidate
case(INVALIDATE, "reason_wrong_type", {"reason": 5}, 400, "reason")
case(INVALIDATE, "reason_object", {"reason": {"a": 1}}, 400, "reason")
for i, v in enumerate(["bad", 5, "", "-1h"]):
    case(INVALIDATE, "bad_unused_for_%d" % i, {"unused_for": v}, 400, "unused_for")

# POST /v1/keys/verify (no admin key)
case(VERIFY, "missing_key", {}, 400, "key")
case(VERIFY, "key_wrong_type", {"key": 5}, 400, "key")
case(VERIFY, "scope_wrong_type", {"key": "kw_x", "scope": 5}, 400, "scope")
case(VERIFY, "ip_wrong_type", {"key": "kw_x", "ip": 5}, 400, "ip")
case(VERIFY, "ip_not_an_address", {"key": "kw_x", "ip": "not-an-ip"}, 400, "ip")


def _drop_usage(obj):
    if "use_count" in obj:
        obj = {k: v for k, v in obj.items() if k not in ("use_count", "last_used_at")}
    return obj


def _label(ep, label):
    return "test_%s_%s" % (ep[2], re.sub(r"[^0-9a-zA-Z_]", "_", label))


class BadInput(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A credential with one key: slot 2 is free, so a bad request that slipped through
        # would visibly change something (a new key, a roll, a revocation).
        r = cls.srv.post("/v1/credentials", {"name": "fixture", "owner": "fx@example.com",
                                             "scopes": ["s"], "allowed_cidrs": ["10.0.0.0/8"],
                                             "metadata": {"m": 1}})
        assert r.status == 201, r.describe()
        cls.fixture = r.body

    def snapshot(self):
        c = self.fixture["credential"]["id"]
        k = self.fixture["key"]["id"]
        snap = {"list": self.list_all(),
                "cred": self.get_cred(c),
                "key": self.get_key(k),
                "expiring": self.list_all("/v1/expiring", query={"within": "400d"})}
        # The admin key's own usage counts every admin request; usage is not state a
        # refused request could have changed, so it is left out of the comparison.
        return json.loads(json.dumps(snap), object_hook=_drop_usage)

    def run_case(self, ep, label, body, status, field, ctype):
        method, path, _ = ep
        path = path.format(cred=self.fixture["credential"]["id"], key=self.fixture["key"]["id"])
        now = time.time()
        if body == "PAST_1M":
            body = N(expires_at=iso(now - 60))
        elif body == "FUTURE_400D":
            body = N(expires_at=iso(now + 400 * DAY))
        elif body == "BOTH":
            body = N(lifetime="30d", expires_at=iso(now + 10 * DAY))
        before = self.snapshot()
        token = None if ep is VERIFY else self.srv.admin_key
        if isinstance(body, bytes):
            r = self.srv.request(method, path, raw=body, content_type=ctype, token=token)
        else:
            r = self.srv.request(method, path, body, content_type=ctype, token=token)
        self.assertProblem(r, status, field)
        self.assertLess(r.status, 500)
        after = self.snapshot()
        for part in before:
            self.assertEqual(json.dumps(after[part], sort_keys=True),
                             json.dumps(before[part], sort_keys=True),
                             "a refused request changed %s; %s" % (part, r.describe()))

    # -- unknown paths and wrong methods
    def test_unknown_path_404(self):
        k = self.fixture["key"]["id"]
        c = self.fixture["credential"]["id"]
        for method, path in (("GET", "/v1/nope"), ("GET", "/nope"), ("GET", "/v2/credentials"),
                             ("GET", "/v1/credentials/%s/nope" % c),
                             ("POST", "/v1/keys/%s/nope" % k), ("GET", "/v1/keys/%s/x/y" % k),
                             ("GET", "/v1/credentials/%2e%2e/x")):
            if method == "POST":
                r = self.srv.request(method, path, {})
            else:
                r = self.srv.request(method, path)
            self.assertProblem(r, 404)

    def test_wrong_method_405(self):
        before = self.snapshot()
        k = self.fixture["key"]["id"]
        c = self.fixture["credential"]["id"]
        for method, path in (("PUT", "/v1/credentials"), ("DELETE", "/v1/credentials"),
                             ("PUT", "/v1/credentials/" + c), ("POST", "/v1/credentials/" + c),
                             ("GET", "/v1/keys/verify"), ("GET", "/v1/keys/%s/roll" % k),
                             ("DELETE", "/v1/keys/%s/invalidate" % k),
                             ("DELETE", "/v1/keys/" + k), ("PATCH", "/v1/keys/" + k),
                             ("POST", "/healthz"), ("DELETE", "/v1/credentials/%s/keys" % c)):
            if method == "GET":
                r = self.srv.request(method, path)
            else:
                r = self.srv.request(method, path, {"name": "x"})
            self.assertProblem(r, 405)
            self.assertIn("allow", r.headers, "405 without Allow header; " + r.describe())
        self.assertEqual(self.snapshot(), before)


def _make(c):
    def t(self):
        self.run_case(*c)
    t.__doc__ = None
    return t


for _c in CASES:
    _name = _label(_c[0], _c[1])
    assert not hasattr(BadInput, _name), _name
    setattr(BadInput, _name, _make(_c))


class HostileBytes(ServerTestCase):
    """Whatever arrives on the socket, the daemon keeps answering."""

    def assertAlive(self, what):
        self.assertIsNone(self.srv.proc.poll(), "server died after %s" % what)
        r = self.srv.get("/healthz", token=None, timeout=5)
        self.assertEqual(r.status, 200, "after %s: %s" % (what, r.describe()))

    @staticmethod
    def status_of(resp):
        m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
        return int(m.group(1)) if m else None

    def test_garbage_bytes(self):
        import os
        for i in range(5):
            got = self.srv.raw_send(os.urandom(8192))
            st = self.status_of(got)
            # 501 is HTTP's answer to an unknown method; anything else must be a 4xx
            self.assertTrue(st is None or 400 <= st < 500 or st == 501,
                            "garbage answered %r" % got[:200])
        self.srv.raw_send(b"GARBAGE\r\n\r\n")
        self.srv.raw_send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500)
        self.srv.raw_send(b"GET /v1/cred\x00entials HTTP/1.1\r\nHost: x\r\n\r\n")
        self.srv.raw_send(b"GET / HTTP/9.9\r\n\r\n")
        self.srv.raw_send(b"\r\n" * 10000)
        self.assertAlive("garbage bytes")

    def test_huge_header(self):
        req = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        got = self.srv.raw_send(req, timeout=5)
        st = self.status_of(got)
        self.assertTrue(st is None or st in (400, 413, 431), "huge header answered %r" % got[:200])
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-H: v\r\n" * 20000 + b"\r\n"
        got = self.srv.raw_send(req, timeout=5)
        st = self.status_of(got)
        self.assertTrue(st is None or st in (400, 413, 431), "many headers answered %r" % got[:200])
        self.assertAlive("huge header")

    def test_half_sent_request_then_close(self):
        name = "half-sent-%d" % int(time.time() * 1000)
        body = json.dumps({"name": name}).encode()
        head = ("POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                % (self.srv.admin_key, len(body))).encode()
        self.srv.raw_send(head + body[:len(body) // 2], read=False, shutdown=False)
        self.srv.raw_send(head[:30], read=False, shutdown=False)
        self.srv.raw_send(b"GET /heal", read=False, shutdown=False)
        self.assertAlive("half-sent requests")
        time.sleep(0.3)
        self.assertFalse([c for c in self.list_all() if c["name"] == name],
                         "a half-sent request created a credential")

    def test_idle_connections_do_not_block(self):
        socks = []
        try:
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
                s.sendall(b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n")
                socks.append(s)
            t0 = time.time()
            r = self.srv.get("/healthz", token=None, timeout=5)
            self.assertEqual(r.status, 200, r.describe())
            self.assertLess(time.time() - t0, 2.0, "healthz slow while 40 requests hang")
        finally:
            for s in socks:
                s.close()
        self.assertAlive("40 hanging connections")

    def test_declared_huge_body(self):
        req = (b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + self.srv.admin_key.encode() +
               b"\r\nContent-Length: 99999999999\r\n\r\n{\"name\": \"x\"")
        got = self.srv.raw_send(req, timeout=5)
        self.assertEqual(self.status_of(got), 413, "declared 100 GB body answered %r" % got[:300])
        for cl in (b"-1", b"abc", b"1, 2"):
            got = self.srv.raw_send(b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                    + cl + b"\r\n\r\n{}", timeout=5)
            st = self.status_of(got)
            self.assertTrue(st is None or 400 <= st < 500,
                            "Content-Length %r answered %r" % (cl, got[:200]))
        got = self.srv.raw_send(b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", timeout=5)
        st = self.status_of(got)
        self.assertTrue(st is None or 400 <= st < 500, "bad chunk answered %r" % got[:200])
        self.assertAlive("bad lengths")

    def test_oversized_chunked_body(self):
        chunk = b"a" * 8192
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
        req = (b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + self.srv.admin_key.encode() +
               b"\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        got = self.srv.raw_send(req, timeout=5)
        self.assertEqual(self.status_of(got), 413, "80 KiB chunked body answered %r" % got[:300])
        self.assertAlive("oversized chunked body")
