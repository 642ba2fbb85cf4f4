"""Several `keyward serve` nodes on one PostgreSQL (SPEC §10): a change on one node reaches
every node's verification index within a second; kill -9 of a node loses no acknowledged
write; the database going away degrades writes to 503 while verification keeps answering,
and everything resumes when it returns; the scheduler runs on one node at a time and a
webhook gets each event once; two nodes writing at once keep one audit chain.

Runs in the release pass only (KW_TEST_MODE=asan skips it). The module starts its own
throw-away cluster with scripts/pg.sh (it stops and restarts it), one database per class.
"""

import base64
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import Server, free_port  # noqa: F401
from test_alerts import Receiver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SH = os.path.join(ROOT, "scripts", "pg.sh")
SKIP_ASAN = os.environ.get("KW_TEST_MODE") == "asan"
SINK_SECRET = "whsec_bXVsdGlub2RlLXRlc3Qtc2lnbmluZy1zZWNyZXQ="

PG = {"dir": None, "url": None, "n": 0}


def have_pg():
    return any(os.path.exists("/usr/lib/postgresql/%s/bin/initdb" % v)
               for v in os.listdir("/usr/lib/postgresql")) if os.path.isdir(
                   "/usr/lib/postgresql") else False


def load_tests(loader, tests, pattern):
    # run.py counts a skipped test as not ok: under ASan this module contributes no tests
    return unittest.TestSuite() if SKIP_ASAN else tests


def setUpModule():
    if SKIP_ASAN or not have_pg():
        return
    PG["dir"] = tempfile.mkdtemp(prefix="kw-pg-it.")
    PG["url"] = subprocess.run([PG_SH, "start", PG["dir"]], check=True, capture_output=True,
                               text=True).stdout.strip()


def tearDownModule():
    if PG["dir"]:
        subprocess.run([PG_SH, "stop", PG["dir"]], capture_output=True)
        PG["dir"] = None


def psql(url, sql):
    return subprocess.run(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def new_database():
    PG["n"] += 1
    name = "kw_mn_%d_%d" % (os.getpid(), PG["n"])
    psql(PG["url"], "CREATE DATABASE %s" % name)
    return PG["url"].rsplit("/", 1)[0] + "/" + name


class Node(Server):
    """A keyward node on the shared database; the admin key comes from the node that
    bootstrapped (its file), the others use the same key."""

    shared_key = None
    # every node of one database seals and opens secrets with the same key file (SPEC §3)
    secrets_file = None

    def __init__(self, url, extra_args=()):
        super().__init__(extra_args=["--secrets-key-file", Node.secrets_file] + list(extra_args))
        self.store_url = url

    def read_admin_key(self):
        if os.path.exists(self.admin_key_file):
            return super().read_admin_key()
        self.admin_key = Node.shared_key
        return self.admin_key

    def stop(self, check=True, signal_sent=False):
        super().stop(check=False, signal_sent=signal_sent)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self._out.close()
        self._err.close()


@unittest.skipIf(SKIP_ASAN, "PostgreSQL suites run in the release pass only")
class MultiNodeBase(unittest.TestCase):
    nodes = 2
    extra_args = ()

    @classmethod
    def setUpClass(cls):
        if not PG["url"]:
            raise unittest.SkipTest("no PostgreSQL server binaries (scripts/deps.sh)")
        cls.url = new_database()
        Node.secrets_file = os.path.join(tempfile.mkdtemp(prefix="kw-mn-secrets."),
                                         "keyward.secrets-key")
        cls.n = []
        for i in range(cls.nodes):
            node = Node(cls.url, ["--scheduler-interval", "1s"] + list(cls.extra_args))
            node.start()
            if i == 0:
                Node.shared_key = node.admin_key
            cls.n.append(node)

    @classmethod
    def tearDownClass(cls):
        for node in cls.n:
            try:
                node.stop()
            finally:
                node.cleanup()

    def create(self, node, **fields):
        body = {"name": "svc", "scopes": ["read"]}
        body.update(fields)
        r = node.post("/v1/credentials", body)
        self.assertEqual(r.status, 201, r.describe())
        return r.body

    def code(self, node, secret):
        r = node.verify(secret)
        self.assertEqual(r.status, 200, r.describe())
        return r.body["code"]

    def until(self, fn, timeout):
        t0 = time.time()
        while True:
            v = fn()
            if v:
                return time.time() - t0
            if time.time() - t0 > timeout:
                return None
            time.sleep(0.01)


class TestPropagation(MultiNodeBase):
    nodes = 3

    def test_one_admin_key(self):
        # three nodes started one after another bootstrapped one admin key
        files = [os.path.exists(n.admin_key_file) for n in self.n]
        self.assertEqual(files.count(True), 1, files)
        for node in self.n:
            self.assertEqual(node.get("/v1/credentials").status, 200)

    def test_create_revoke_disable_everywhere(self):
        a, b, c = self.n
        made = self.create(a)
        secret, key_id, cred_id = made["secret"], made["key"]["id"], made["credential"]["id"]
        for node in (b, c):
            t = self.until(lambda: self.code(node, secret) == "VALID", 1.0)
            self.assertIsNotNone(t, "new key not valid on another node within 1 s")
        r = a.post("/v1/keys/%s/invalidate" % key_id, {"reason": "leaked"})
        self.assertEqual(r.status, 200, r.describe())
        for node in (b, c):
            t = self.until(lambda: self.code(node, secret) == "REVOKED", 1.0)
            self.assertIsNotNone(t, "revoked key still accepted on another node after 1 s")
        # disable on B: A and C learn it
        made2 = self.create(b)
        self.assertIsNotNone(self.until(lambda: self.code(c, made2["secret"]) == "VALID", 1.0))
        r = b.patch("/v1/credentials/%s" % made2["credential"]["id"], {"disabled": True})
        self.assertEqual(r.status, 200, r.describe())
        for node in (a, c):
            self.assertIsNotNone(
                self.until(lambda: self.code(node, made2["secret"]) == "DISABLED", 1.0))
        # delete on C: the key answers REVOKED (or unknown) everywhere, never VALID
        r = c.delete("/v1/credentials/%s" % cred_id)
        self.assertIn(r.status, (200, 204), r.describe())
        self.assertIsNotNone(self.until(lambda: self.code(a, secret) == "REVOKED", 1.0))

    def test_concurrent_writers_one_audit_chain(self):
        a, b, _c = self.n
        errors = []

        def burst(node, n):
            for _ in range(n):
                r = node.post("/v1/credentials", {"name": "burst"})
                if r.status != 201:
                    errors.append(r.describe())

        ts = [threading.Thread(target=burst, args=(node, 25)) for node in (a, b, a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        for node in (a, b):
            p = node.cli("audit", "verify")
            self.assertEqual(p.returncode, 0, p.describe())
        seqs = psql(self.url, "SELECT count(*), max(seq), count(DISTINCT prev_hash) FROM audit")
        count, mx, prevs = (int(x) for x in seqs.split("|"))
        self.assertEqual(count, mx)            # no gap
        self.assertEqual(prevs, count - 1)     # every record follows a distinct one: a chain

    def test_usage_adds_across_nodes(self):
        a, b, _c = self.n
        made = self.create(a)
        self.until(lambda: self.code(b, made["secret"]) == "VALID", 1.0)
        for node in (a, b):
            for _ in range(3):
                self.assertEqual(self.code(node, made["secret"]), "VALID")
        # usage is flushed every second (harness); both nodes' counts add up: 1 + 3 + 3
        def total():
            r = a.get("/v1/keys/%s" % made["key"]["id"])
            return r.status == 200 and int(psql(
                self.url, "SELECT use_count FROM keys WHERE id = '%s'" % made["key"]["id"])) == 7
        self.assertIsNotNone(self.until(total, 5.0),
                             psql(self.url, "SELECT use_count FROM keys WHERE id = '%s'"
                                  % made["key"]["id"]))


class TestCrashAndOutage(MultiNodeBase):

    def test_kill9_mid_burst_loses_no_acknowledged_write(self):
        a, b = self.n
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def burst():
            while not stop.is_set():
                try:
                    r = a.post("/v1/credentials", {"name": "crash"}, timeout=5)
                except OSError:
                    return
                if r.status == 201:
                    with lock:
                        acked.append((r.body["credential"]["id"], r.body["secret"]))

        ts = [threading.Thread(target=burst) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        a.kill9()
        stop.set()
        for t in ts:
            t.join()
        self.assertGreater(len(acked), 5)
        for cred_id, secret in acked:
            r = b.get("/v1/credentials/%s" % cred_id)
            self.assertEqual(r.status, 200, "acknowledged %s lost: %s" % (cred_id, r.describe()))
        for _cred, secret in acked[-5:]:
            self.assertIsNotNone(self.until(lambda: self.code(b, secret) == "VALID", 1.0))
        a.start()  # comes back and catches up
        self.assertEqual(self.code(a, acked[-1][1]), "VALID")

    def test_database_down_and_back(self):
        a, b = self.n
        made = self.create(a)
        self.assertIsNotNone(self.until(lambda: self.code(b, made["secret"]) == "VALID", 1.0))
        subprocess.run([PG_SH, "down", PG["dir"]], check=True, capture_output=True)
        try:
            def degraded(node):
                r = node.get("/readyz", token=None)
                return r.status == 200 and r.body.get("status") == "degraded"
            self.assertIsNotNone(self.until(lambda: degraded(b), 5.0), b.get("/readyz").describe())
            self.assertEqual(b.get("/readyz", token=None).body.get("store"), "unreachable")
            # verification answers from memory, on both nodes
            for node in (a, b):
                self.assertEqual(self.code(node, made["secret"]), "VALID")
            # writes: 503 problem+json naming the store
            r = a.post("/v1/credentials", {"name": "down"})
            self.assertEqual(r.status, 503, r.describe())
            self.assertIn("problem+json", r.headers.get("content-type", ""))
            self.assertIn("store", r.body.get("detail", "") + r.body.get("field", ""))
        finally:
            subprocess.run([PG_SH, "up", PG["dir"]], check=True, capture_output=True)

        def ready(node):
            r = node.get("/readyz", token=None)
            return r.status == 200 and r.body.get("status") == "ok"
        for node in (a, b):
            self.assertIsNotNone(self.until(lambda: ready(node), 10.0), "did not recover")
        # writes work again and the feed resumes
        made2 = None
        for _ in range(50):
            r = a.post("/v1/credentials", {"name": "back"})
            if r.status == 201:
                made2 = r.body
                break
            time.sleep(0.1)
        self.assertIsNotNone(made2, "writes did not resume")
        r = a.post("/v1/keys/%s/invalidate" % made["key"]["id"], {"reason": "after outage"})
        self.assertEqual(r.status, 200, r.describe())
        self.assertIsNotNone(self.until(lambda: self.code(b, made["secret"]) == "REVOKED", 1.0))
        self.assertIsNotNone(self.until(lambda: self.code(b, made2["secret"]) == "VALID", 1.0))


class TestSharedStateAcrossNodes(MultiNodeBase):
    """pg2: the OAuth2, console and policy state added after the PostgreSQL backend is in
    the shared database too: a token or a console session made on one node works on the
    other, and revoking / signing out on one ends it on both."""

    def token_req(self, node, path, body, cred):
        basic = base64.b64encode(("%s:%s" % (cred["credential"]["id"], cred["secret"]))
                                 .encode()).decode()
        return node.request("POST", path, raw=urllib.parse.urlencode(body), token=None,
                            headers={"Authorization": "Basic " + basic},
                            content_type="application/x-www-form-urlencoded")

    def auth(self, node, tok):
        return node.request("GET", "/v1/auth", token=None,
                            headers={"Authorization": "Bearer " + tok}).status

    def test_audit_archive_on_a_checkpoints_for_b(self):
        a, b = self.n
        self.create(a, name="to-archive")
        time.sleep(1.1)
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(time.time())))
        time.sleep(1.1)
        total = b.get("/v1/audit/verify").body["records"]
        r = a.post("/v1/audit/archive", {"before": before})
        self.assertEqual(r.status, 200, r.describe())
        v = b.get("/v1/audit/verify").body
        self.assertTrue(v["ok"], v)
        self.assertLess(v["records"], total, v)

    def test_policy_token_lifetime_shared(self):
        a, b = self.n
        r = a.post("/v1/policies", {"name": "mn-tokens", "token_lifetime": "2m"})
        self.assertEqual(r.status, 201, r.describe())
        got = b.get("/v1/policies/mn-tokens")
        self.assertEqual(got.status, 200, got.describe())
        self.assertEqual(got.body["token_lifetime"], r.body["token_lifetime"])

    def test_token_on_a_verifies_and_revokes_on_b(self):
        a, b = self.n
        c = self.create(a, scopes=["read"])
        self.assertIsNotNone(self.until(lambda: self.code(b, c["secret"]) == "VALID", 5))
        r = self.token_req(a, "/oauth2/token", {"grant_type": "client_credentials"}, c)
        self.assertEqual(r.status, 200, r.describe())
        tok = r.body["access_token"]
        self.assertEqual(self.auth(b, tok), 204)
        r = self.token_req(a, "/oauth2/revoke", {"token": tok}, c)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(self.auth(a, tok), 401)
        # node B reloads other nodes' revocations on its flush tick
        self.assertIsNotNone(self.until(lambda: self.auth(b, tok) == 401, 10))
        # and a restarted node still knows it
        b.stop()
        b.start()
        self.assertEqual(self.auth(b, tok), 401)

    def test_console_session_on_a_works_on_b(self):
        a, b = self.n
        r = a.post("/console/api/session", token=a.admin_key)
        self.assertEqual(r.status, 201, r.describe())
        m = re.search(r"kw_session=([0-9a-f]+)", r.headers.get("set-cookie", ""))
        self.assertIsNotNone(m, r.describe())
        h = {"Cookie": "kw_session=" + m.group(1)}
        self.assertEqual(b.get("/v1/credentials", token=None, headers=h).status, 200)
        h2 = dict(h, **{"X-CSRF-Token": r.body["csrf_token"]})
        self.assertEqual(b.delete("/console/api/session", token=None, headers=h2).status, 200)
        self.assertEqual(a.get("/v1/credentials", token=None, headers=h).status, 401)


class TestWatchedAcrossNodes(MultiNodeBase):
    """pg2: watched credentials live in the shared database: made on one node, read (and
    their access token handed out) on the other; both nodes run a refresher, yet each
    refresh is made once (the first node to claim the row makes it)."""
    extra_args = ("--webhook-allow-private",)

    def test_refreshed_once_and_readable_on_both(self):
        from oauth_server import TokenServer
        a, b = self.n
        ts = TokenServer(lifetime=4).start()
        try:
            ts.add_client("mn-app", "s3cr3t-mn-app-" + os.urandom(8).hex())
            ts.slow["mn-app"] = 0.5  # a slow provider: both nodes would be in flight at once
            r = a.post("/v1/watched", {"name": "mn-w", "kind": "oauth2", "oauth2": {
                "token_url": ts.url, "grant_type": "client_credentials",
                "client_id": "mn-app", "client_secret": ts.clients["mn-app"]}})
            self.assertEqual(r.status, 201, r.describe())
            wid = r.body["id"]
            self.assertIsNotNone(self.until(lambda: b.get("/v1/watched/" + wid).body.get(
                "token", {}).get("state") == "valid", 10))
            tok = b.get("/v1/watched/%s/token" % wid)
            self.assertEqual(tok.status, 200, tok.describe())
            self.assertTrue(ts.valid(tok.body["access_token"]))
            # B's refresher learns of a row made elsewhere within 30 s; a restart makes it now
            b.stop()
            b.start()
            t0 = time.time()
            time.sleep(10)  # refreshes every ~3.7 s (80 % of a 4 s life, a 0.5 s answer)
            issued = sorted(q[0] for q in ts.requests if q[1] == "mn-app" and q[0] > t0)
            self.assertGreaterEqual(len(issued), 2, issued)
            gaps = [y - x for x, y in zip(issued, issued[1:])]
            self.assertGreater(min(gaps), 2.0, "a refresh made twice: gaps %s" % gaps)
            s = a.post("/v1/watched", {"name": "mn-static", "kind": "static",
                                       "secret": "aw_" + os.urandom(12).hex()})
            self.assertEqual(s.status, 201, s.describe())
            got = b.get("/v1/watched", query={"kind": "static"})
            self.assertIn(s.body["id"], [x["id"] for x in got.body["items"]])
        finally:
            ts.stop()


class TestRetentionOnPostgreSQL(MultiNodeBase):
    """pg2: --retention prunes old history on PostgreSQL as on SQLite (test_retention.py)."""
    nodes = 1
    extra_args = ("--retention", "4s", "--sink", "log")

    def events_of(self, node, cred_id):
        r = node.get("/v1/events", query={"credential_id": cred_id, "limit": 100})
        self.assertEqual(r.status, 200, r.describe())
        return r.body["items"]

    def test_old_history_pruned_recent_kept(self):
        a = self.n[0]
        r = a.post("/v1/policies", {"name": "short", "alert_thresholds": ["1s"],
                                    "default_lifetime": "2s", "max_lifetime": "1d"})
        self.assertEqual(r.status, 201, r.describe())
        cred = self.create(a, policy="short")["credential"]["id"]
        self.assertIsNotNone(self.until(lambda: any(
            e["type"] == "key.expired" for e in self.events_of(a, cred)), 8))
        self.assertIsNotNone(self.until(lambda: not self.events_of(a, cred), 12))
        fresh = self.create(a)["credential"]["id"]
        self.assertTrue(self.events_of(a, fresh), "a fresh event was pruned")
        self.assertEqual(psql(self.url, "SELECT count(*) FROM deliveries d WHERE NOT EXISTS"
                                        " (SELECT 1 FROM events e WHERE e.id = d.event_id)"), "0")
        v = a.get("/v1/audit/verify")
        self.assertTrue(v.body["ok"], v.describe())


@unittest.skipIf(SKIP_ASAN, "PostgreSQL suites run in the release pass only")
class TestSchedulerOnce(MultiNodeBase):
    nodes = 2

    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver()
        cls.extra_args = ("--delivery-retry-min", "1s", "--webhook-allow-private",
                          "--sink", "webhook %s %s" % (cls.rcv.url("/sink"), SINK_SECRET))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.rcv.close()

    def expiring_key(self, node):
        return self.create(node, policy="fast", lifetime="5s")

    def events(self, type_, key_id):
        out = []
        for _h, e, raw in self.rcv.got("/sink"):
            if e.get("type") == type_ and e.get("key_id") == key_id:
                out.append(e["id"])
        return out

    def test_alerts_once_and_takeover(self):
        a, b = self.n
        r = a.post("/v1/policies", {"name": "fast", "alert_thresholds": ["3s"],
                                    "default_lifetime": "1d", "max_lifetime": "1d"})
        self.assertEqual(r.status, 201, r.describe())
        k1 = self.expiring_key(b)["key"]["id"]
        self.assertIsNotNone(self.until(lambda: len(self.events("key.expired", k1)) >= 1, 15))
        time.sleep(2.5)  # nothing more must come
        for t in ("key.expiring", "key.expired", "key.created"):
            got = self.events(t, k1)
            self.assertEqual(len(got), 1, "%s delivered %d times" % (t, len(got)))
        # kill the leader (whichever node holds the lock): the other takes over
        leader = psql(self.url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                " AND classid = 19287 AND objid = 3 AND granted")
        self.assertEqual(leader, "1")
        a.kill9()
        k2 = self.expiring_key(b)["key"]["id"]
        self.assertIsNotNone(self.until(lambda: len(self.events("key.expired", k2)) >= 1, 15),
                             "no node raised the alert after the leader died")
        time.sleep(2.0)
        for t in ("key.expiring", "key.expired"):
            self.assertEqual(len(self.events(t, k2)), 1)
        a.start()


if __name__ == "__main__":
    unittest.main()


@unittest.skipIf(SKIP_ASAN, "PostgreSQL suites run in the release pass only")
class TestStoreCopy(unittest.TestCase):
    """`keyward store copy`: SQLite -> PostgreSQL -> SQLite, everything included."""

    def setUp(self):
        if not PG["url"]:
            self.skipTest("no PostgreSQL server binaries (scripts/deps.sh)")

    def copy(self, src, dst):
        from harness import BIN
        p = subprocess.run([BIN, "store", "copy", src, dst], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("audit chain verified", p.stdout)
        return p.stdout

    def test_sqlite_to_postgresql_and_back(self):
        one = Server().start()
        try:
            made = [one.post("/v1/credentials", {"name": "c%d" % i}).body for i in range(5)]
            r = one.post("/v1/keys/%s/invalidate" % made[1]["key"]["id"], {"reason": "leaked"})
            self.assertEqual(r.status, 200, r.describe())
            r = one.patch("/v1/credentials/%s" % made[2]["credential"]["id"], {"disabled": True})
            self.assertEqual(r.status, 200, r.describe())
            self.assertEqual(one.verify(made[0]["secret"]).body["code"], "VALID")
            admin = one.admin_key
            # pg2: a watched credential and a revoked OAuth2 token go along too
            w = one.post("/v1/watched", {"name": "copied-w", "kind": "static",
                                         "secret": "aw_" + os.urandom(12).hex()})
            self.assertEqual(w.status, 201, w.describe())
            basic = base64.b64encode(("%s:%s" % (made[0]["credential"]["id"], made[0]["secret"]))
                                     .encode()).decode()
            form = {"Authorization": "Basic " + basic}
            ctype = "application/x-www-form-urlencoded"
            r = one.request("POST", "/oauth2/token", raw="grant_type=client_credentials",
                            token=None, headers=form, content_type=ctype)
            self.assertEqual(r.status, 200, r.describe())
            tok = r.body["access_token"]
            r = one.request("POST", "/oauth2/revoke", raw=urllib.parse.urlencode({"token": tok}),
                            token=None, headers=form, content_type=ctype)
            self.assertEqual(r.status, 200, r.describe())
            # the token's issue record is written by the flush tick: wait for it
            t0 = time.time()
            while "token.issue" not in [a["action"] for a in one.get(
                    "/v1/audit", query={"limit": 100}).body["items"]] and time.time() - t0 < 10:
                time.sleep(0.1)
            audit_before = one.get("/v1/audit/verify").body
            self.assertGreater(audit_before["records"], 5, audit_before)
        finally:
            one.stop()
        url = new_database()
        out = self.copy("sqlite:" + one.db, url)
        self.assertIn("copied 6 credentials", out)  # the admin credential too
        self.assertIn("1 watched credentials, 1 revoked tokens", out)
        # a node on the copy answers exactly as the single node did, with the same admin key
        Node.shared_key = admin
        Node.secrets_file = os.path.join(one.tmpdir, "keyward.secrets-key")  # the source's
        node = Node(url).start()
        try:
            self.assertEqual(node.verify(made[0]["secret"]).body["code"], "VALID")
            self.assertEqual(node.verify(made[1]["secret"]).body["code"], "REVOKED")
            self.assertEqual(node.verify(made[2]["secret"]).body["code"], "DISABLED")
            got = node.get("/v1/watched/" + w.body["id"])
            self.assertEqual(got.status, 200, got.describe())
            self.assertEqual(got.body["name"], "copied-w")
            r = node.request("GET", "/v1/auth", token=None,
                             headers={"Authorization": "Bearer " + tok})
            self.assertEqual(r.status, 401, r.describe())
            after = node.get("/v1/audit/verify").body
            self.assertEqual(after.get("records"), audit_before.get("records"), after)
            self.assertTrue(after.get("ok"), after)
            n_events = len(node.get("/v1/events", query={"limit": 500}).body["items"])
            self.assertGreater(n_events, 5)
            # refuses a destination that already holds credentials
            from harness import BIN
            p = subprocess.run([BIN, "store", "copy", "sqlite:" + one.db, url],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("already holds", p.stderr)
        finally:
            node.stop()
            node.cleanup()
        # and back to a new SQLite file
        back = tempfile.mkdtemp(prefix="kw-copy-back.")
        try:
            self.copy(url, "sqlite:" + os.path.join(back, "k.db"))
            import shutil
            shutil.copy(Node.secrets_file, os.path.join(back, "k.secrets-key"))
            s2 = Server(["--secrets-key-file", Node.secrets_file], tmpdir=back)
            s2.db = os.path.join(back, "k.db")
            with open(s2.admin_key_file, "w") as f:
                f.write(admin + "\n")
            os.chmod(s2.admin_key_file, 0o600)
            s2.start()
            try:
                self.assertEqual(s2.verify(made[1]["secret"]).body["code"], "REVOKED")
                self.assertTrue(s2.get("/v1/audit/verify").body.get("ok"))
            finally:
                s2.stop(check=False)
        finally:
            import shutil
            shutil.rmtree(back, ignore_errors=True)
            one.cleanup()
