"""test_watched.py - watched credentials (SPEC §12) against the real binary and a real OAuth2
token endpoint of our own (oauth_server.py, on 127.0.0.1): the inventory API and its
validation, static expiry alerts once each across a restart and re-armed by a replacement,
client_credentials and refresh_token grants refreshed at 80 % of seconds-long lifetimes,
failures with backoff and recovery, malformed answers, the /token endpoint and its scope,
the token file, and no secret or token readable at rest, in logs, events, audit or metrics.
"""

import json
import os
import stat
import time

from harness import ServerTestCase
from oauth_server import TokenServer


def events(srv, typ, wid=None):
    q = {"type": typ, "limit": 500}
    if wid:
        q["credential_id"] = wid
    r = srv.get("/v1/events", query=q)
    assert r.status == 200, r.describe()
    return r.body["items"]


class WatchedBase(ServerTestCase):
    extra_args = ("--scheduler-interval", "1s", "--webhook-allow-private")
    ts = None

    @classmethod
    def setUpClass(cls):
        cls.ts = TokenServer(lifetime=4).start()
        cls.ts.add_client("app-1", "s3cr3t-client-app-1-" + os.urandom(8).hex())
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.ts.stop()

    def watched(self, status=201, **fields):
        fields.setdefault("name", "w-" + self.id().rsplit(".", 1)[-1][:40])
        r = self.srv.post("/v1/watched", fields)
        return self.expect(r, status, "create watched")

    def oauth(self, client_id="app-1", secret=None, **kw):
        if secret is None:
            secret = self.ts.clients[client_id]
        o = {"token_url": self.ts.url, "grant_type": "client_credentials",
             "client_id": client_id, "client_secret": secret}
        o.update(kw.pop("oauth2", {}))
        return self.watched(kind="oauth2", oauth2=o, **kw)

    def get(self, wid):
        return self.expect(self.srv.get("/v1/watched/" + wid), 200)

    def wait_token(self, wid, timeout=8):
        def ok():
            w = self.get(wid)
            return w["token"]["state"] == "valid" and w
        w = self.wait_for(ok, timeout=timeout)
        self.assertTrue(w, "no valid token for %s within %ss: %s" % (wid, timeout, self.get(wid)))
        return w

    def token_key(self, wid):
        b = self.create(scopes=["keyward:token:" + wid])
        return b["secret"]


class TestWatchedAPI(WatchedBase):
    def test_static_crud_never_shows_the_secret(self):
        secret = "aw_" + os.urandom(20).hex()
        exp = int(time.time()) + 400 * 86400
        w = self.watched(kind="static", secret=secret, provider="AdaptiveWork",
                         owner="ops@example.com",
                         expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)))
        self.assertTrue(w["id"].startswith("wat_"))
        text = json.dumps(w)
        self.assertNotIn(secret, text)
        self.assertEqual(w["secret_hint"], secret[:4] + "\u2026" + secret[-4:])
        self.assertEqual(w["provider"], "AdaptiveWork")
        got = self.get(w["id"])
        self.assertNotIn(secret, json.dumps(got))
        # list with filters
        items = self.list_all("/v1/watched", query={"owner": "ops@example.com"})
        self.assertIn(w["id"], [i["id"] for i in items])
        items = self.list_all("/v1/watched", query={"kind": "oauth2"})
        self.assertNotIn(w["id"], [i["id"] for i in items])
        items = self.list_all("/v1/watched", query={"expiring_within": "30d"})
        self.assertNotIn(w["id"], [i["id"] for i in items])
        items = self.list_all("/v1/watched", query={"expiring_within": "500d"})
        self.assertIn(w["id"], [i["id"] for i in items])
        # patch, delete
        p = self.expect(self.srv.patch("/v1/watched/" + w["id"], {"name": "renamed"}), 200)
        self.assertEqual(p["name"], "renamed")
        d = self.expect(self.srv.delete("/v1/watched/" + w["id"]), 200)
        self.assertIsNotNone(d["deleted_at"])
        self.expect(self.srv.get("/v1/watched/" + w["id"]), 404)
        # audited, without the secret
        r = self.srv.get("/v1/audit", query={"target": w["id"], "limit": 50})
        acts = [a["action"] for a in self.expect(r, 200)["items"]]
        self.assertIn("watched.create", acts)
        self.assertIn("watched.delete", acts)
        self.assertNotIn(secret, json.dumps(r.body))

    def test_pages(self):
        ids = [self.watched(kind="static", owner="pager")["id"] for _ in range(5)]
        items = self.list_all("/v1/watched", query={"owner": "pager"}, limit=2)
        self.assertEqual([i["id"] for i in items], ids)

    def test_bad_input_is_400_naming_the_field(self):
        cases = [
            ({"kind": "static"}, "name"),
            ({"name": "x"}, "kind"),
            ({"name": "x", "kind": "other"}, "kind"),
            ({"name": "x", "kind": "static", "expires_at": "tomorrow"}, "expires_at"),
            ({"name": "x", "kind": "static", "policy": "nope"}, "policy"),
            ({"name": "x", "kind": "static", "oauth2": {}}, "oauth2"),
            ({"name": "x", "kind": "oauth2"}, "oauth2"),
            ({"name": "x", "kind": "oauth2", "oauth2": {"token_url": "ftp://x/", "client_id": "a",
                                                        "grant_type": "client_credentials",
                                                        "client_secret": "s"}},
             "oauth2.token_url"),
            ({"name": "x", "kind": "oauth2", "oauth2": {"token_url": self.ts.url,
                                                        "client_id": "a",
                                                        "grant_type": "password"}},
             "oauth2.grant_type"),
            ({"name": "x", "kind": "oauth2", "oauth2": {"token_url": self.ts.url,
                                                        "client_id": "a",
                                                        "grant_type": "client_credentials"}},
             "oauth2.client_secret"),
            ({"name": "x", "kind": "oauth2", "oauth2": {"token_url": self.ts.url,
                                                        "client_id": "a",
                                                        "grant_type": "refresh_token"}},
             "oauth2.refresh_token"),
            ({"name": "x", "kind": "oauth2", "oauth2": {"token_url": self.ts.url, "x": 1,
                                                        "client_id": "a",
                                                        "grant_type": "refresh_token"}},
             "oauth2"),
            ({"name": "x", "kind": "static", "token_file": "/tmp/x"}, "token_file"),
            ({"name": "x", "kind": "static", "secret": 5}, "secret"),
            ({"name": "x", "kind": "static", "bogus": 1}, "bogus"),
        ]
        before = len(self.list_all("/v1/watched"))
        for body, field in cases:
            r = self.srv.post("/v1/watched", body)
            self.assertProblem(r, 400, field)
        self.assertEqual(len(self.list_all("/v1/watched")), before)
        self.expect(self.srv.get("/v1/watched/wat_nope"), 404)
        self.expect(self.srv.get("/v1/watched", query={"kind": "x"}), 400)

    def test_private_token_url_refused_without_the_flag(self):
        # this server runs with --webhook-allow-private; the guard itself is shared with
        # webhooks (test_alerts); here: an unresolvable host is accepted, retried later
        w = self.oauth(oauth2={"token_url": "http://no-such-host.invalid/token"})
        w = self.wait_for(lambda: (lambda x: x["refresh"]["failures"] >= 1 and x)(
            self.get(w["id"])), timeout=8)
        self.assertIn("does not resolve", w["refresh"]["last_error"])


class TestStaticAlerts(WatchedBase):
    def test_expiring_and_expired_once_each_across_restart_and_rearmed(self):
        r = self.srv.post("/v1/policies", {"name": "wshort", "alert_thresholds": ["6s", "3s"],
                                           "default_lifetime": "1d", "max_lifetime": "2d"})
        self.expect(r, 201)
        exp = int(time.time()) + 9
        w = self.watched(kind="static", secret="azure-" + os.urandom(16).hex(), policy="wshort",
                         expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)))
        wid = w["id"]
        ok = self.wait_for(lambda: len(events(self.srv, "watched.expiring", wid)) >= 1, timeout=8)
        self.assertTrue(ok)
        ev = events(self.srv, "watched.expiring", wid)[0]
        p = ev if "watched_id" in ev else ev.get("payload", ev)
        for k in ("watched_id", "name", "provider", "expires_at", "threshold"):
            self.assertIn(k, json.dumps(ev))
        # restart in the middle: nothing raised twice
        self.srv.restart()
        self.wait_for(lambda: len(events(self.srv, "watched.expired", wid)) >= 1, timeout=12)
        time.sleep(2)
        exp_ev = events(self.srv, "watched.expiring", wid)
        self.assertEqual(len(exp_ev), 2, exp_ev)
        self.assertEqual(len(events(self.srv, "watched.expired", wid)), 1)
        self.srv.restart()
        time.sleep(2.5)
        self.assertEqual(len(events(self.srv, "watched.expiring", wid)), 2)
        self.assertEqual(len(events(self.srv, "watched.expired", wid)), 1)
        # a replacement (new secret and expiry) re-arms
        new_exp = int(time.time()) + 5
        r = self.srv.patch("/v1/watched/" + wid, {
            "secret": "azure-" + os.urandom(16).hex(),
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(new_exp))})
        self.expect(r, 200)
        ok = self.wait_for(lambda: len(events(self.srv, "watched.expired", wid)) >= 2, timeout=10)
        self.assertTrue(ok)
        self.assertGreaterEqual(len(events(self.srv, "watched.expiring", wid)), 3)
        r = self.srv.get("/v1/audit", query={"target": wid, "limit": 50})
        self.assertIn("watched.replace", [a["action"] for a in r.body["items"]])


class TestOAuth(WatchedBase):
    def test_client_credentials_refresh_at_80_percent_token_endpoint_and_file(self):
        tf = os.path.join(self.srv.tmpdir, "app-token")
        w = self.oauth(token_file=tf)
        wid = w["id"]
        self.assertNotIn(self.ts.clients["app-1"], json.dumps(w))
        self.wait_token(wid)
        # /token: scoped key yes, other key no, no key 401, admin yes
        key = self.token_key(wid)
        other = self.create(scopes=["keyward:token:wat_other"])["secret"]
        r = self.srv.get("/v1/watched/%s/token" % wid, token=key)
        tok = self.expect(r, 200)
        self.assertTrue(self.ts.valid(tok["access_token"]))
        self.assertEqual(tok["token_type"], "Bearer")
        self.expect(self.srv.get("/v1/watched/%s/token" % wid, token=other), 403)
        self.expect(self.srv.get("/v1/watched/%s/token" % wid, token=None), 401)
        self.expect(self.srv.get("/v1/watched/%s/token" % wid), 200)
        # the token file holds the current token, mode 0600
        st = os.stat(tf)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(tf) as f:
            self.assertTrue(self.ts.valid(f.read()))
        # refreshes at 80 % of the 4 s life; the application always has a valid token
        t_end = time.time() + 9
        while time.time() < t_end:
            tok = self.expect(self.srv.get("/v1/watched/%s/token" % wid, token=key), 200)
            self.assertTrue(self.ts.valid(tok["access_token"]), "handed out a lapsed token")
            time.sleep(0.25)
        issued = [i for i in self.ts.issued if i[1] == "app-1"]
        self.assertGreaterEqual(len(issued), 3)
        gaps = [b[0] - a[0] for a, b in zip(issued, issued[1:])]
        for g in gaps[-2:]:
            self.assertTrue(0.70 * 4 <= g <= 0.90 * 4, "refresh gaps %s" % gaps)
        # audited without the token
        r = self.srv.get("/v1/audit", query={"target": wid, "limit": 100})
        self.assertIn("watched.token.read", [a["action"] for a in r.body["items"]])
        self.assertNotIn(tok["access_token"], json.dumps(r.body))
        m = self.srv.get("/metrics", token=None).body
        m = m if isinstance(m, str) else m.decode() if isinstance(m, bytes) else str(m)
        self.assertIn('keyward_oauth_refresh_total{id="%s",result="success"}' % wid, m)
        self.assertIn('keyward_oauth_token_expiry_timestamp_seconds{id="%s"' % wid, m)

    def test_failures_back_off_then_recover(self):
        self.ts.add_client("app-2", "client-two-" + os.urandom(8).hex())
        self.ts.fail_only = "app-2"
        self.ts.fail_next = 2
        self.ts.fail_status = 503
        w = self.oauth(client_id="app-2")
        wid = w["id"]
        w = self.wait_token(wid, timeout=20)   # 5 s then 10 s backoff
        fails = events(self.srv, "watched.refresh_failed", wid)
        self.assertEqual(len(fails), 2, fails)
        self.assertIn("503", json.dumps(fails[0]))
        self.assertIn("temporarily_unavailable", json.dumps(fails[0]))
        # events are listed by watched id once the outbox has fanned them out
        self.wait_for(lambda: events(self.srv, "watched.recovered", wid), timeout=3)
        rec = events(self.srv, "watched.recovered", wid)
        self.assertEqual(len(rec), 1)
        reqs = [r[0] for r in self.ts.requests if r[1] == "app-2"]
        self.assertTrue(4.0 <= reqs[1] - reqs[0] <= 6.5, reqs)
        self.assertTrue(9.0 <= reqs[2] - reqs[1] <= 12.5, reqs)
        self.assertEqual(w["refresh"]["failures"], 0)

    def test_lapsed_token_503_expired_event_then_recovery(self):
        self.ts.add_client("app-3", "client-three-" + os.urandom(8).hex())
        w = self.oauth(client_id="app-3")
        wid = w["id"]
        self.wait_token(wid)
        self.ts.fail_only = "app-3"
        self.ts.fail_forever = True
        try:
            ok = self.wait_for(lambda: len(events(self.srv, "watched.expired", wid)) >= 1,
                               timeout=10)
            self.assertTrue(ok)
            ev = events(self.srv, "watched.expired", wid)[0]
            self.assertIn("access_token", json.dumps(ev))
            r = self.srv.get("/v1/watched/%s/token" % wid)
            self.assertProblem(r, 503)
        finally:
            self.ts.fail_forever = False
        self.wait_token(wid, timeout=15)
        self.assertEqual(len(events(self.srv, "watched.expired", wid)), 1)
        self.expect(self.srv.get("/v1/watched/%s/token" % wid), 200)

    def test_malformed_answers_are_failures_with_a_clear_error(self):
        self.ts.add_client("app-4", "client-four-" + os.urandom(8).hex())
        for mode, want in (("no_expires_in", "expires_in"), ("not_json", "not a JSON object"),
                           ("huge", "larger than")):
            self.ts.mode = mode
            try:
                w = self.oauth(client_id="app-4")
                got = self.wait_for(lambda: (lambda x: x["refresh"]["failures"] >= 1 and x)(
                    self.get(w["id"])), timeout=8)
                self.assertTrue(got)
                self.assertIn(want, got["refresh"]["last_error"])
                self.assertEqual(got["token"]["state"], "none")
            finally:
                self.ts.mode = "ok"
            self.expect(self.srv.get("/healthz", token=None), 200)
            self.expect(self.srv.delete("/v1/watched/" + w["id"]), 200)
        self.ts.mode = "string_expires_in"   # "3600" as a string is tolerated
        try:
            w = self.oauth(client_id="app-4")
            self.wait_token(w["id"])
        finally:
            self.ts.mode = "ok"

    def test_refresh_token_rotation_survives_restart(self):
        self.ts.add_client("app-5", None)   # a public client: refresh token only
        rt = self.ts.new_refresh_token("app-5")
        self.ts.rotate = True
        try:
            w = self.watched(kind="oauth2", oauth2={
                "token_url": self.ts.url, "grant_type": "refresh_token", "client_id": "app-5",
                "refresh_token": rt, "auth_method": "post"})
            wid = w["id"]
            self.assertNotIn(rt, json.dumps(w))
            self.wait_token(wid)
            time.sleep(4)   # at least one more rotation
            n1 = len([i for i in self.ts.issued if i[1] == "app-5"])
            self.assertGreaterEqual(n1, 2)
            self.srv.restart()
            time.sleep(5)
            n2 = len([i for i in self.ts.issued if i[1] == "app-5"])
            self.assertGreater(n2, n1)
            w = self.get(wid)
            self.assertEqual(w["refresh"]["failures"], 0, w)
            self.assertEqual(w["token"]["state"], "valid")
            bad = [r for r in self.ts.requests if r[1] == "app-5" and r[3] != 200]
            self.assertEqual(bad, [])
        finally:
            self.ts.rotate = False


class TestSlowEndpoint(WatchedBase):
    def test_a_hanging_endpoint_does_not_hold_up_the_others(self):
        self.ts.add_client("app-slow", "slow-" + os.urandom(6).hex())
        self.ts.add_client("app-fast", "fast-" + os.urandom(6).hex())
        self.ts.slow["app-slow"] = 30          # past keyward's 15 s timeout
        try:
            slow = [self.oauth(client_id="app-slow", name="slow-%d" % i)["id"] for i in range(2)]
            fast = self.oauth(client_id="app-fast")["id"]
            self.wait_token(fast)
            key = self.token_key(fast)
            t_end = time.time() + 9
            while time.time() < t_end:
                r = self.srv.get("/v1/watched/%s/token" % fast, token=key)
                self.expect(r, 200)
                self.assertTrue(self.ts.valid(r.body["access_token"]))
                time.sleep(0.3)
            n = len([i for i in self.ts.issued if i[1] == "app-fast"])
            self.assertGreaterEqual(n, 3)
            for wid in slow:
                self.assertEqual(self.get(wid)["token"]["state"], "none")
        finally:
            self.ts.slow.clear()


class TestRotationFallback(WatchedBase):
    def test_kept_refresh_token_used_when_the_new_one_is_refused(self):
        """The provider rotated, keyward stored the new token and kept the old one; the
        provider then refuses the new one (as if its own write was lost) but still accepts
        the old one once: keyward falls back to the kept token without a failure."""
        self.ts.add_client("app-g", None)
        rt = self.ts.new_refresh_token("app-g")
        self.ts.rotate = True
        self.ts.refresh_grace = True
        try:
            w = self.watched(kind="oauth2", oauth2={
                "token_url": self.ts.url, "grant_type": "refresh_token", "client_id": "app-g",
                "refresh_token": rt, "auth_method": "post"})
            wid = w["id"]
            issued = lambda: [i for i in self.ts.issued if i[1] == "app-g"]
            self.assertTrue(self.wait_for(lambda: len(issued()) >= 1, timeout=6))
            with self.ts.lock:   # the one keyward now holds as current
                current = [k for k, v in self.ts.refresh.items() if v == "app-g"]
                self.assertEqual(len(current), 1)
                del self.ts.refresh[current[0]]
            self.assertTrue(self.wait_for(lambda: len(issued()) >= 2, timeout=8))
            reqs = [r for r in self.ts.requests if r[1] == "app-g"]
            self.assertEqual([r[3] for r in reqs][-2:], [400, 200], reqs)
            w = self.get(wid)
            self.assertEqual(w["refresh"]["failures"], 0, w)
            self.assertEqual(w["token"]["state"], "valid")
            self.assertEqual(events(self.srv, "watched.refresh_failed", wid), [])
        finally:
            self.ts.rotate = False
            self.ts.refresh_grace = False


class TestSecretsAtRest(WatchedBase):
    def test_no_secret_or_token_in_store_logs_events_audit_metrics(self):
        csec = self.ts.clients["app-1"]
        static = "mailchimp-" + os.urandom(20).hex()
        self.watched(kind="static", secret=static)
        self.ts.add_client("app-r", None)
        rt = self.ts.new_refresh_token("app-r")
        self.ts.rotate = True
        try:
            w1 = self.oauth()
            w2 = self.watched(kind="oauth2", oauth2={
                "token_url": self.ts.url, "grant_type": "refresh_token", "client_id": "app-r",
                "refresh_token": rt})
            self.wait_token(w1["id"])
            self.wait_token(w2["id"])
            time.sleep(3.5)  # a refresh each, with a rotation
            self.expect(self.srv.get("/v1/watched/%s/token" % w1["id"]), 200)
            # rotate the secrets key: everything re-sealed and still usable
            r = self.expect(self.srv.post("/v1/secrets/rotate-key", {}), 200)
            self.assertGreaterEqual(r["resealed"], 4)
            with open(os.path.join(self.srv.tmpdir, "keyward.secrets-key")) as f:
                self.assertEqual(len(f.read().split("\n")), 3)  # two keys
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(
                self.srv.tmpdir, "keyward.secrets-key")).st_mode), 0o600)
            time.sleep(3.5)
            self.expect(self.srv.get("/v1/watched/%s/token" % w1["id"]), 200)
            self.assertEqual(self.get(w2["id"])["refresh"]["failures"], 0)
        finally:
            self.ts.rotate = False
        with self.ts.lock:
            tokens = [i[2] for i in self.ts.issued] + list(self.ts.refresh) + list(self.ts.grace)
        needles = [csec, static, rt] + tokens
        blobs = {}
        blobs["events"] = json.dumps(self.srv.get("/v1/events", query={"limit": 500}).body)
        blobs["audit"] = json.dumps(self.srv.get("/v1/audit", query={"limit": 500}).body)
        m = self.srv.get("/metrics", token=None)
        blobs["metrics"] = str(m.body)
        blobs["list"] = json.dumps(self.srv.get("/v1/watched", query={"limit": 500}).body)
        self.srv.stop()
        try:
            for root, _d, files in os.walk(self.srv.tmpdir):
                for name in files:
                    if name == "app-token":
                        continue
                    with open(os.path.join(root, name), "rb") as f:
                        blobs[name] = f.read().decode("latin-1")
            self.assertIn("keyward.db", blobs)
            hits = [(n[:12], where) for n in needles for where, text in blobs.items()
                    if n in text]
            self.assertEqual(hits, [], "secrets found at rest")
            self.assertGreater(len(needles), 8)
        finally:
            self.srv.start()


class TestWatchedCLI(WatchedBase):
    def test_cli_create_list_show_update_token_delete(self):
        secret = "cli-oauth-" + os.urandom(12).hex()
        self.ts.add_client("cli-app", secret)
        p = self.srv.cli("watched", "create", "cli-client", "--kind", "oauth2",
                         "--provider", "Example", "--token-url", self.ts.url,
                         "--grant-type", "client_credentials", "--client-id", "cli-app",
                         "--client-secret-file", "-", "--json", stdin=secret + "\n")
        self.assertEqual(p.returncode, 0, p.describe())
        w = json.loads(p.stdout)
        wid = w["id"]
        self.assertNotIn(secret, p.stdout)
        self.wait_token(wid)
        p = self.srv.cli("watched", "list", "--kind", "oauth2")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn(wid, p.stdout)
        self.assertIn("valid", p.stdout)
        p = self.srv.cli("watched", "show", wid)
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("client secret", p.stdout)
        self.assertNotIn(secret, p.stdout)
        key = self.token_key(wid)
        p = self.srv.cli("watched", "token", wid, token=key)
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertTrue(self.ts.valid(p.stdout.strip()))
        p = self.srv.cli("watched", "token", "wat_nope", token=key)
        self.assertNotEqual(p.returncode, 0)
        p = self.srv.cli("watched", "update", wid, "--provider", "Other", "--json")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertEqual(json.loads(p.stdout)["provider"], "Other")
        p = self.srv.cli("watched", "create", "k", "--secret-file", "/nonexistent")
        self.assertEqual(p.returncode, 2, p.describe())
        p = self.srv.cli("secrets", "rotate-key")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("re-sealed", p.stdout)
        p = self.srv.cli("watched", "delete", wid)
        self.assertEqual(p.returncode, 0, p.describe())


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1 signed by it, plus a self-signed one
    that nobody trusts, with the openssl command line."""
    import subprocess

    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=keyward test CA")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san.ext")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
        "rogue.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
        "subjectAltName=IP:127.0.0.1")
    return {k: os.path.join(d, k) for k in ("ca.pem", "srv.pem", "srv.key", "rogue.pem",
                                            "rogue.key")}


class TestTLSAndGuard(WatchedBase):
    """HTTPS token endpoints: verified against --ca-file; an untrusted certificate fails."""
    import tempfile as _t
    pkidir = _t.mkdtemp(prefix="kw-pki-")
    pki = make_pki(pkidir)
    extra_args = ("--scheduler-interval", "1s", "--webhook-allow-private",
                  "--ca-file", pki["ca.pem"])

    def test_tls_verified_with_ca_file_and_untrusted_refused(self):
        good = TokenServer(lifetime=4, tls=(self.pki["srv.pem"], self.pki["srv.key"])).start()
        rogue = TokenServer(lifetime=4, tls=(self.pki["rogue.pem"], self.pki["rogue.key"])).start()
        try:
            for s in (good, rogue):
                s.add_client("tls-app", "tls-secret-" + os.urandom(6).hex())
            w1 = self.watched(kind="oauth2", oauth2={
                "token_url": good.url, "grant_type": "client_credentials",
                "client_id": "tls-app", "client_secret": good.clients["tls-app"]})
            self.assertTrue(good.url.startswith("https://"))
            self.wait_token(w1["id"])
            w2 = self.watched(kind="oauth2", oauth2={
                "token_url": rogue.url, "grant_type": "client_credentials",
                "client_id": "tls-app", "client_secret": rogue.clients["tls-app"]})
            got = self.wait_for(lambda: (lambda x: x["refresh"]["failures"] >= 1 and x)(
                self.get(w2["id"])), timeout=8)
            self.assertTrue(got)
            err = got["refresh"]["last_error"]
            self.assertIn("unreachable", err)
            self.assertTrue("ssl" in err.lower() or "certificate" in err.lower(), err)
            self.assertEqual(got["token"]["state"], "none")
            self.assertEqual(rogue.issued, [])
        finally:
            good.stop()
            rogue.stop()


class TestSSRFGuard(ServerTestCase):
    """Without --webhook-allow-private a token URL on loopback is refused."""

    def test_loopback_token_url_refused(self):
        r = self.srv.post("/v1/watched", {"name": "ssrf", "kind": "oauth2", "oauth2": {
            "token_url": "http://127.0.0.1:9/token", "grant_type": "client_credentials",
            "client_id": "a", "client_secret": "b"}})
        self.assertProblem(r, 400, "oauth2.token_url")
        self.assertIn("webhook-allow-private", r.body["detail"])
