"""OAuth2 access tokens (SPEC §13): independent standard clients obtain tokens from
POST /oauth2/token (Debian's python3-requests-oauthlib BackendApplicationClient +
fetch_token; the certified Node library oauth4webapi from tests/oauth-client), nginx in
front of an upstream accepts them through /v1/auth, and a token dies at once with its key,
with its credential's disabling, at its own expiry (seconds-long token_lifetime) and when
revoked (RFC 7009, persisted across a restart). Introspection (RFC 7662), metadata
(RFC 8414), the policy field, the batched audit of issued tokens, metrics, and every bad
input answered with RFC 6749 §5.2 JSON, never a 5xx."""

import base64
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import MSG, REPO, Server, ServerTestCase, remember

try:
    import requests_oauthlib  # Debian: python3-requests-oauthlib (scripts/deps.sh)
except ImportError:  # a Python other than Debian's first on PATH (pyenv): use Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
    import requests_oauthlib
from oauthlib.oauth2 import BackendApplicationClient

import test_nginx

EXPIRED_TOKEN = "The access token provided has expired"
# oauthlib refuses plain http unless told: the test server listens on 127.0.0.1 only
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
NODE_DIR = os.path.join(REPO, "tests", "oauth-client")


def form(d):
    return urllib.parse.urlencode(d)


class OAuthBase(ServerTestCase):
    def token_req(self, body, basic=None, headers=None, ctype="application/x-www-form-urlencoded",
                  path="/oauth2/token"):
        h = dict(headers or {})
        if basic is not None:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (urllib.parse.quote_plus(basic[0]), urllib.parse.quote_plus(
                    basic[1]))).encode()).decode()
        r = self.srv.request("POST", path, raw=body if isinstance(body, (str, bytes))
                             else form(body), token=None, headers=h, content_type=ctype)
        if isinstance(r.body, dict) and "access_token" in r.body:
            remember(r.body["access_token"])
        return r

    def get_token(self, cred, scope=None, status=200):
        b = {"grant_type": "client_credentials"}
        if scope is not None:
            b["scope"] = scope
        r = self.token_req(b, basic=(cred["credential"]["id"], cred["secret"]))
        body = self.expect(r, status, "token")
        return body["access_token"] if status == 200 else body

    def auth(self, tok, scope=None):
        h = {"Authorization": "Bearer " + tok}
        if scope:
            h["X-Keyward-Scope"] = scope
        return self.srv.request("GET", "/v1/auth", token=None, headers=h)

    def assertOAuthError(self, r, status, error):
        self.assertEqual(r.status, status, r.describe())
        self.assertIsInstance(r.body, dict, r.describe())
        self.assertEqual(r.body.get("error"), error, r.describe())
        self.assertIsInstance(r.body.get("error_description"), str, r.describe())
        self.assertEqual(r.headers.get("cache-control"), "no-store", r.describe())
        self.assertTrue(r.ctype.startswith("application/json"), r.describe())
        if status == 401:
            self.assertIn("Basic", r.headers.get("www-authenticate", ""), r.describe())


class OAuth(OAuthBase):
    extra_args = ("--trusted-ip-header", "X-Real-IP", "--scheduler-interval", "1s")

    # reuse test_nginx's nginx in front of an echoing upstream
    start_nginx = test_nginx.Nginx.__dict__["start_nginx"]
    stop_nginx = test_nginx.Nginx.__dict__["stop_nginx"]
    error_log = test_nginx.Nginx.__dict__["error_log"]
    get_via_nginx = test_nginx.Nginx.__dict__["get_via_nginx"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="keyward-oauth-nginx-")
        cls.nginx = None
        cls.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), test_nginx.EchoHandler)
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        try:
            cls.start_nginx()
        except BaseException:
            cls.stop_nginx()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stop_nginx()
        finally:
            super().tearDownClass()

    # ---------------------------------------------------------------- standard clients

    def test_requests_oauthlib_and_nginx(self):
        c = self.create(scopes=["orders:read", "orders:write"])
        cid, secret = c["credential"]["id"], c["secret"]
        url = self.srv.addr + "/oauth2/token"
        for include_client_id in (False, True):  # HTTP Basic, then form fields
            sess = requests_oauthlib.OAuth2Session(client=BackendApplicationClient(client_id=cid))
            tok = sess.fetch_token(token_url=url, client_id=cid, client_secret=secret,
                                   scope=["orders:read"], include_client_id=include_client_id)
            remember(tok["access_token"])
            self.assertEqual(tok["token_type"], "Bearer")
            self.assertEqual(tok["expires_in"], 3600)
            self.assertEqual(tok["scope"], ["orders:read"])
            self.assertNotIn("refresh_token", tok)
            # through nginx: the upstream learns who called, never the token
            st, h, body = self.get_via_nginx("/app/x", key=tok["access_token"])
            self.assertEqual(st, 200, (h, body, self.error_log()[-800:]))
            seen = json.loads(body)["headers"]
            self.assertEqual(seen.get("keyward-credential"), cid)
            self.assertEqual(seen.get("keyward-key"), c["key"]["id"])
            self.assertEqual(seen.get("keyward-scopes"), "orders:read")
            self.assertNotIn(tok["access_token"], body.decode() if isinstance(body, bytes)
                             else body)
            # the scope the token lacks, through nginx's scope rule
            st, h, body = self.get_via_nginx("/scoped/x", key=tok["access_token"])
            self.assertEqual(st, 403, (h, body))
        # all scopes when none is asked for
        sess = requests_oauthlib.OAuth2Session(client=BackendApplicationClient(client_id=cid))
        tok = sess.fetch_token(token_url=url, client_id=cid, client_secret=secret)
        remember(tok["access_token"])
        self.assertEqual(sorted(tok["scope"]), ["orders:read", "orders:write"])
        st, h, body = self.get_via_nginx("/scoped/x", key=tok["access_token"])
        self.assertEqual(st, 200, (h, body))

    # Node runs in the release pass only (common brief); run.py counts a skip as a failure,
    # so under ASan the test is not defined at all.
    if os.environ.get("KW_TEST_MODE") != "asan":
        def test_node_oauth4webapi(self):
            self._node_oauth4webapi()

    def _node_oauth4webapi(self):
        self.assertTrue(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "oauth4webapi")),
                        "run scripts/deps.sh (scripts/npm-ci.sh tests/oauth-client)")
        c = self.create(scopes=["orders:read", "orders:write"])
        p = subprocess.run(["node", os.path.join(NODE_DIR, "client.mjs"), self.srv.addr,
                            c["credential"]["id"], c["secret"], "orders:write"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        out = json.loads(p.stdout.strip().splitlines()[-1])
        remember(out["access_token"])
        self.assertEqual(out["token_endpoint"], self.srv.addr + "/oauth2/token")
        self.assertEqual(out["token_type"].lower(), "bearer")
        self.assertEqual(out["scope"], "orders:write")
        self.assertEqual(out["expires_in"], 3600)
        self.assertEqual((out["auth_status"], out["auth_code"]), (204, "VALID"))
        self.assertEqual((out["after_revoke_status"], out["after_revoke_code"]), (401, "REVOKED"))

    # ---------------------------------------------------------------- a token dies with...

    def test_invalidated_key_tokens_refused_at_once(self):
        c = self.create(scopes=["a"])
        second = self.new_key(c["credential"]["id"])
        t1 = self.get_token(c)
        t2 = self.get_token({"credential": c["credential"], "secret": second["secret"]})
        self.assertEqual(self.auth(t1).status, 204)
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % c["key"]["id"], {}), 200)
        # the very next request, through nginx and directly
        st, h, body = self.get_via_nginx("/app/x", key=t1)
        self.assertEqual(st, 401, (h, body))
        r = self.auth(t1)
        self.assertEqual(r.status, 401, r.describe())
        self.assertEqual(r.headers.get("keyward-code"), "REVOKED")
        self.assertEqual(r.headers.get("keyward-message"), MSG["REVOKED"])
        b = self.verify_code(t1, "REVOKED")
        self.assertEqual(b["key_id"], c["key"]["id"])
        # the other slot's token lives on; the revoked key gets no new token
        self.assertEqual(self.auth(t2).status, 204)
        r = self.token_req({"grant_type": "client_credentials"},
                           basic=(c["credential"]["id"], c["secret"]))
        self.assertOAuthError(r, 401, "invalid_client")
        self.assertEqual(r.body["error_description"], MSG["REVOKED"])

    def test_disabled_credential(self):
        c = self.create(scopes=["a"])
        t = self.get_token(c)
        self.expect(self.srv.patch("/v1/credentials/%s" % c["credential"]["id"],
                                   {"disabled": True}), 200)
        self.verify_code(t, "DISABLED")
        self.assertEqual(self.auth(t).status, 401)
        r = self.token_req({"grant_type": "client_credentials"},
                           basic=(c["credential"]["id"], c["secret"]))
        self.assertOAuthError(r, 401, "invalid_client")
        self.expect(self.srv.patch("/v1/credentials/%s" % c["credential"]["id"],
                                   {"disabled": False}), 200)
        self.verify_code(t, "VALID")

    def test_expiry_and_policy_field(self):
        r = self.srv.post("/v1/policies", {"name": "short-tokens", "token_lifetime": "2s"})
        b = self.expect(r, 201, "policy")
        self.assertEqual(b["token_lifetime"], "2s")
        for bad in ("25h", "0s", "soon", 5):
            r = self.srv.post("/v1/policies", {"name": "bad-tokens", "token_lifetime": bad})
            self.assertProblem(r, 400, "token_lifetime")
        b = self.expect(self.srv.get("/v1/policies/default"), 200)
        self.assertEqual(b["token_lifetime"], "1h")
        c = self.create(scopes=["a"], policy="short-tokens")
        r = self.token_req({"grant_type": "client_credentials"},
                           basic=(c["credential"]["id"], c["secret"]))
        body = self.expect(r, 200)
        self.assertEqual(body["expires_in"], 2)
        t = body["access_token"]
        b = self.verify_code(t, "VALID")
        self.assertLessEqual(b["expires_in_s"], 2)
        time.sleep(2.2)
        b = self.verify_code(t, "EXPIRED")
        self.assertEqual(b["message"], EXPIRED_TOKEN)
        r = self.auth(t)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("keyward-message"), EXPIRED_TOKEN)
        self.assertIn('error_description="%s"' % EXPIRED_TOKEN, r.headers.get("www-authenticate"))
        # a token never outlives its key
        k = self.create(scopes=["a"], lifetime="3s")
        body = self.expect(self.token_req({"grant_type": "client_credentials"},
                                          basic=(k["credential"]["id"], k["secret"])), 200)
        remember(body["access_token"])
        self.assertLessEqual(body["expires_in"], 3)
        # the CLI sets and shows it
        p = self.srv.cli("policy", "update", "short-tokens", "--token-lifetime", "30m")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("30m", self.srv.cli("policy", "show", "short-tokens").stdout)
        p = self.srv.cli("policy", "update", "short-tokens", "--token-lifetime", "2d")
        self.assertNotEqual(p.returncode, 0, p.describe())
        self.assertIn("token_lifetime", p.stderr + p.stdout)

    # ---------------------------------------------------------------- revoke, introspect

    def test_revoke_and_introspect(self):
        c = self.create(scopes=["a", "b"])
        other = self.create(scopes=["a"])
        verifier = self.create(scopes=["keyward:verifier"])
        plain = self.create(scopes=["a"])
        t1, t2 = self.get_token(c, scope="a"), self.get_token(c)
        cid = c["credential"]["id"]

        def introspect(tok, key):
            return self.srv.request("POST", "/oauth2/introspect", raw=form({"token": tok}),
                                    token=key, content_type="application/x-www-form-urlencoded")

        r = introspect(t1, verifier["secret"])
        b = self.expect(r, 200, "introspect")
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        self.assertIs(b["active"], True)
        self.assertEqual((b["client_id"], b["scope"], b["token_type"]), (cid, "a", "Bearer"))
        self.assertLessEqual(b["iat"], b["exp"])
        self.assertRegex(b["jti"], r"^[0-9a-f]{24}$")
        self.assertIs(self.expect(introspect("kw_at_junk", verifier["secret"]), 200)["active"],
                      False)
        self.assertIs(self.expect(introspect(c["secret"], verifier["secret"]), 200)["active"],
                      False)
        self.assertEqual(introspect(t1, plain["secret"]).status, 403)
        r = self.srv.request("POST", "/oauth2/introspect", raw=form({"token": t1}), token=None,
                             content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 401, r.describe())
        # another client may not revoke it
        r = self.token_req({"token": t1}, basic=(other["credential"]["id"], other["secret"]),
                           path="/oauth2/revoke")
        self.assertOAuthError(r, 400, "invalid_grant")
        self.assertEqual(self.auth(t1).status, 204)
        # its own client may (form-field authentication)
        r = self.token_req({"token": t1, "token_type_hint": "access_token", "client_id": cid,
                            "client_secret": c["secret"]}, path="/oauth2/revoke")
        self.expect(r, 200, "revoke")
        r = self.auth(t1)
        self.assertEqual((r.status, r.headers.get("keyward-code")), (401, "REVOKED"))
        self.assertIs(self.expect(introspect(t1, verifier["secret"]), 200)["active"], False)
        self.assertEqual(self.auth(t2).status, 204)  # its sibling lives on
        # an admin may revoke any token; junk and API keys are not tokens
        r = self.srv.request("POST", "/oauth2/revoke", raw=form({"token": t2}),
                             content_type="application/x-www-form-urlencoded")
        self.expect(r, 200, "admin revoke")
        self.assertEqual(self.auth(t2).status, 401)
        r = self.token_req({"token": "kw_at_garbage"}, basic=(cid, c["secret"]),
                           path="/oauth2/revoke")
        self.expect(r, 200, "junk revoke")
        r = self.token_req({"token": c["secret"]}, basic=(cid, c["secret"]),
                           path="/oauth2/revoke")
        self.assertOAuthError(r, 400, "unsupported_token_type")
        r = self.token_req({"token": t1}, path="/oauth2/revoke")
        self.assertOAuthError(r, 401, "invalid_client")
        # audited, without the token
        self.wait_for(lambda: any(
            a["action"] == "token.revoke" and a["actor"] == cid
            for a in self.expect(self.srv.get("/v1/audit", query={"limit": 200}), 200)["items"]))
        # persisted: still refused after a restart; a live token survives it
        t3 = self.get_token(c)
        self.srv.restart()
        self.assertEqual(self.auth(t1).status, 401)
        self.assertEqual(self.auth(t3).status, 204)

    def test_metadata_audit_metrics(self):
        r = self.srv.request("GET", "/.well-known/oauth-authorization-server", token=None)
        b = self.expect(r, 200)
        self.assertEqual(b["issuer"], self.srv.addr)
        self.assertEqual(b["token_endpoint"], b["issuer"] + "/oauth2/token")
        self.assertEqual(b["grant_types_supported"], ["client_credentials"])
        self.assertIn("client_secret_basic", b["token_endpoint_auth_methods_supported"])
        c = self.create(scopes=["a"])
        tok = self.get_token(c)
        kid = c["key"]["id"]

        def issued():
            items = self.expect(self.srv.get("/v1/audit", query={"target": kid}), 200)["items"]
            return [a for a in items if a["action"] == "token.issue"]

        self.wait_for(lambda: issued(), timeout=8)
        rec = issued()[0]
        self.assertEqual(rec["actor"], c["credential"]["id"])
        self.assertNotIn(tok, json.dumps(rec))
        self.assertNotIn(tok[6:40], json.dumps(rec))
        m = self.srv.request("GET", "/metrics", token=None).raw.decode()
        line = [l for l in m.splitlines() if l.startswith("keyward_oauth_tokens_issued_total ")]
        self.assertTrue(line and int(line[0].split()[1]) >= 1, m[-1500:])
        self.assertNotIn(tok, m)
        self.expect(self.srv.get("/v1/audit/verify"), 200)

    # ---------------------------------------------------------------- bad input

    def test_bad_input(self):
        c = self.create(scopes=["a", "b"])
        other = self.create(scopes=["z"])
        cid, sec = c["credential"]["id"], c["secret"]
        good = {"grant_type": "client_credentials"}
        cases = [
            # (body, basic, ctype, status, error)
            (json.dumps(good), (cid, sec), "application/json", 400, "invalid_request"),
            (form(good), (cid, sec), None, 400, "invalid_request"),
            ("grant_type=client_credentials&grant_type=client_credentials", (cid, sec),
             "", 400, "invalid_request"),
            ("grant_type=client_credentials&scope=a&scope=b", (cid, sec), "", 400,
             "invalid_request"),
            ("grant_type=%zz", (cid, sec), "", 400, "invalid_request"),
            ("grant_type=client_credentials&x=%00", (cid, sec), "", 400, "invalid_request"),
            ("=&&&", (cid, sec), "", 400, "invalid_request"),
            ("", (cid, sec), "", 400, "invalid_request"),
            ("&".join("p%d=1" % i for i in range(40)), (cid, sec), "", 400, "invalid_request"),
            (form({"grant_type": "password", "username": "u", "password": "p"}), (cid, sec), "",
             400, "unsupported_grant_type"),
            (form({"grant_type": "refresh_token", "refresh_token": "x"}), (cid, sec), "", 400,
             "unsupported_grant_type"),
            (form({"grant_type": "client_credentials", "scope": "a c"}), (cid, sec), "", 400,
             "invalid_scope"),
            (form({"grant_type": "client_credentials", "scope": " ".join(["a"] * 3000)}),
             (cid, sec), "", 400, "invalid_scope"),
            (form({"grant_type": "client_credentials", "scope": "a  b"}), (cid, sec), "", 400,
             "invalid_scope"),
            (form({"grant_type": "client_credentials", "scope": "a\"b"}), (cid, sec), "", 400,
             "invalid_scope"),
            (form(dict(good, client_secret=sec)), (cid, sec), "", 400, "invalid_request"),
            (form(dict(good, client_id=other["credential"]["id"])), (cid, sec), "", 400,
             "invalid_request"),
            (form(good), None, "", 401, "invalid_client"),
            (form(dict(good, client_id=cid)), None, "", 401, "invalid_client"),
            (form(dict(good, client_secret=sec)), None, "", 400, "invalid_request"),
            (form(good), (cid, sec[:-1] + ("A" if sec[-1] != "A" else "B")), "", 401,
             "invalid_client"),
            (form(good), (cid, other["secret"]), "", 401, "invalid_client"),
            (form(good), ("cred_nope", sec), "", 401, "invalid_client"),
            (form(good), (cid, "x" * 5000), "", 401, "invalid_client"),
        ]
        for body, basic, ctype, status, error in cases:
            with self.subTest(body=body[:80], basic=basic and basic[0], ctype=ctype):
                r = self.token_req(body, basic=basic,
                                   ctype=ctype if ctype != "" else
                                   "application/x-www-form-urlencoded")
                self.assertOAuthError(r, status, error)
        # a malformed Basic header, a token as client_secret
        for hdr in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic "):
            r = self.token_req(form(good), headers={"Authorization": hdr})
            self.assertOAuthError(r, 401, "invalid_client")
        tok = self.get_token(c)
        r = self.token_req(form(good), basic=(cid, tok))
        self.assertOAuthError(r, 401, "invalid_client")
        # RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic
        weird = self.create(scopes=["a"])
        raw = "%s:%s" % (urllib.parse.quote(weird["credential"]["id"], safe=""),
                         urllib.parse.quote(weird["secret"], safe=""))
        r = self.token_req(form(good), headers={
            "Authorization": "Basic " + base64.b64encode(raw.encode()).decode()})
        self.expect(r, 200)
        remember(r.body["access_token"])
        # the general server answers it the same (a query string is not the fast path's)
        r = self.token_req(form(good), basic=(cid, sec), path="/oauth2/token?via=general")
        self.expect(r, 200, "token through libmicrohttpd")
        self.assertEqual(r.headers.get("pragma"), "no-cache")
        r = self.token_req(form({"grant_type": "nope"}), basic=(cid, sec),
                           path="/oauth2/token?via=general")
        self.assertOAuthError(r, 400, "unsupported_grant_type")
        # other methods and oversized bodies never reach a 5xx
        r = self.srv.request("GET", "/oauth2/token", token=None)
        self.assertEqual(r.status, 405, r.describe())
        r = self.token_req("grant_type=client_credentials&pad=" + "x" * 70000, basic=(cid, sec))
        self.assertLess(r.status, 500, r.describe())
        # a forged token: right shape, wrong MAC
        forged = tok[:-5] + ("00000" if tok[-5:] != "00000" else "11111")
        self.assertIn(self.srv.verify(forged).body["code"], ("NOT_FOUND", "MALFORMED"))
        self.assertEqual(self.auth(forged).status, 401)


class OAuthRateLimit(OAuthBase):
    extra_args = ("--auth-fail-limit", "3", "--auth-fail-window", "60s")

    def test_failed_client_auth_counts(self):
        c = self.create(scopes=["a"])
        good = form({"grant_type": "client_credentials"})
        for _ in range(3):
            r = self.token_req(good, basic=(c["credential"]["id"], "kw_wrong"))
            self.assertOAuthError(r, 401, "invalid_client")
        r = self.token_req(good, basic=(c["credential"]["id"], c["secret"]))
        self.assertEqual(r.status, 429, r.describe())
        self.assertIn("retry-after", r.headers)
        self.assertEqual(r.body.get("error"), "invalid_request")


class OAuthKeyFile(OAuthBase):
    """The token key is sealed under --secrets-key-file (default beside the store, 0600):
    tokens survive a restart; another key file does not open it and keyward refuses to
    start, naming the setting; the database holds no token key in clear."""

    def test_sealed_token_key(self):
        kf = os.path.join(self.srv.tmpdir, "keyward.secrets-key")
        self.assertEqual(os.stat(kf).st_mode & 0o777, 0o600)
        c = self.create(scopes=["a"])
        tok = self.get_token(c)
        row = subprocess.run(["sqlite3", self.srv.db,
                              "SELECT value FROM meta WHERE key = 'oauth_token_key'"],
                             capture_output=True, text=True).stdout.strip()
        self.assertTrue(row.startswith("kws1."), row[:20])  # sealed (core/seal.h), not clear
        self.srv.stop()
        other = os.path.join(self.srv.tmpdir, "other.secrets-key")
        self.srv.extra_args = ["--secrets-key-file", other]
        with self.assertRaises(RuntimeError) as cm:
            self.srv.start()
        self.srv.proc = None  # exited (status 2); the harness keeps the dead process
        self.assertIn("--secrets-key-file", str(cm.exception))
        self.srv.extra_args = []
        self.srv.start()
        self.assertEqual(self.auth(tok).status, 204)


class OAuthTwoNodes(OAuthBase):
    """Two keyward processes on one store share the sealed token key: a token issued by
    one verifies on the other, and a token revoked on one is refused by the other within
    --usage-flush-interval (1s here; the revocation set is re-read on each flush)."""

    def test_shared_store(self):
        # SQLite nodes load keys at start only (live key updates between nodes are the
        # PostgreSQL backend's, SPEC §10): the credential exists before node B starts
        c = self.create(scopes=["a"])
        b = Server(tmpdir=self.srv.tmpdir)
        try:
            b.start()
            tok = self.get_token(c)

            def on_b():
                return b.request("GET", "/v1/auth", token=None,
                                 headers={"Authorization": "Bearer " + tok}).status

            self.assertEqual(on_b(), 204)
            r = self.token_req({"token": tok}, basic=(c["credential"]["id"], c["secret"]),
                               path="/oauth2/revoke")
            self.expect(r, 200, "revoke on node A")
            self.assertEqual(self.auth(tok).status, 401)
            self.wait_for(lambda: on_b() == 401, timeout=5)
        finally:
            b.stop()
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
