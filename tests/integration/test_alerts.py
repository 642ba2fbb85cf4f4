"""test_alerts.py - expiry alerts and their delivery against real receivers (SPEC §6, §9):
an HTTP webhook receiver started here that checks Standard Webhooks signatures with its own
hmac/hashlib code, and a real SMTP server (Debian's python3-aiosmtpd). Thresholds and
lifetimes are seconds and the scheduler runs every second, so the whole module takes well
under a minute.

Captured samples (the last e-mail and webhook body seen) are written to
$KEYWARD_ALERT_SAMPLES (default build/alert-samples/) for docs/alerts.md.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import signal
import threading
import time
import unittest

from harness import REPO, ServerTestCase, free_port

try:
    from aiosmtpd.controller import Controller
except ImportError:  # scripts/deps.sh installs python3-aiosmtpd
    Controller = None

SAMPLES = os.environ.get("KEYWARD_ALERT_SAMPLES") or os.path.join(REPO, "build", "alert-samples")
SINK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def check_signature(secret, headers, body):
    """Standard Webhooks: v1,<base64 HMAC-SHA256(key, id.ts.body)>, key = base64 after whsec_."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])).encode() + body
    want = "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    got = [s.strip() for s in headers.get("webhook-signature", "").split(" ")]
    return any(hmac.compare_digest(want, g) for g in got)


class Receiver:
    """A webhook receiver on 127.0.0.1. plan[path] is a list of statuses answered in turn
    (then 200); delay[path] seconds to wait before answering."""

    def __init__(self):
        self.port = free_port()
        self.hits = []          # (path, headers dict lower-case, body bytes, status)
        self.plan = {}
        self.delay = {}
        self.started = []       # paths, as each request arrives (before any delay)
        self.lock = threading.Lock()
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rcv.lock:
                    rcv.started.append(self.path)
                d = rcv.delay.get(self.path, 0)
                if d:
                    time.sleep(d)
                with rcv.lock:
                    seq = rcv.plan.get(self.path) or []
                    status = seq.pop(0) if seq else 200
                    rcv.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                     body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def got(self, path, ok_only=True):
        with self.lock:
            return [(h, json.loads(b), b) for p, h, b, s in self.hits
                    if p == path and (s == 200 or not ok_only)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def save_sample(name, text):
    try:
        os.makedirs(SAMPLES, exist_ok=True)
        with open(os.path.join(SAMPLES, name), "w") as f:
            f.write(text)
    except OSError:
        pass


class AlertTestBase(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver()
        cls.box = Mailbox()
        cls.smtp = None
        args = ["--scheduler-interval", "1s", "--delivery-retry-min", "1s",
                "--metrics-refresh", "1s", "--webhook-allow-private", "--sink", "log",
                "--sink", "webhook %s %s" % (cls.rcv.url("/sink"), SINK_SECRET)]
        if Controller is not None:
            port = free_port()
            cls.smtp = Controller(cls.box, hostname="127.0.0.1", port=port)
            cls.smtp.start()
            args += ["--smtp", "smtp://127.0.0.1:%d" % port, "--mail-from", "keyward@example.test"]
        cls.extra_args = args
        try:
            super().setUpClass()
        except BaseException:
            cls.rcv.close()
            if cls.smtp:
                cls.smtp.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.rcv.close()
            if cls.smtp:
                cls.smtp.stop()

    def policy(self, name, thresholds, lifetime="1d"):
        r = self.srv.post("/v1/policies", {"name": name, "alert_thresholds": thresholds,
                                           "default_lifetime": lifetime, "max_lifetime": "1d"})
        self.expect(r, 201, "create policy")

    def events_of(self, cred_id, type_=None):
        q = {"credential_id": cred_id, "limit": 500}
        if type_:
            q["type"] = type_
        return self.expect(self.srv.get("/v1/events", query=q), 200, "list events")["items"]


class TestAlerts(AlertTestBase):

    def test_expiry_alerts_webhook_email_log(self):
        self.policy("fast", ["6s", "3s"])
        b = self.create(policy="fast", lifetime="8s", contacts=[
            {"type": "webhook", "url": self.rcv.url("/c1")},
            {"type": "email", "to": "ops@example.test"}])
        cred, key = b["credential"]["id"], b["key"]["id"]
        # a webhook given without a secret gets one, shown once
        gen = b.get("signing_secrets")
        self.assertIsInstance(gen, list, "no signing_secrets in %r" % b)
        self.assertEqual(gen[0]["url"], self.rcv.url("/c1"))
        secret = gen[0]["signing_secret"]
        self.assertTrue(secret.startswith("whsec_"))
        shown = self.get_cred(cred)["contacts"]
        self.assertTrue(shown[0].get("has_secret"))
        self.assertNotIn("secret", shown[0])

        def done():
            got = [e["type"] for _h, e, _b in self.rcv.got("/c1") if e.get("key_id") == key]
            return got.count("key.expired") == 1 and got
        got = self.wait_for(done, timeout=16, interval=0.2)
        self.assertTrue(got, "alerts never all arrived: %r" % self.rcv.got("/c1"))
        time.sleep(1.5)  # nothing more must come
        hits = [(h, e, raw) for h, e, raw in self.rcv.got("/c1") if e.get("key_id") == key]
        expiring = [e for _h, e, _r in hits if e["type"] == "key.expiring"]
        self.assertEqual(sorted(e["threshold"] for e in expiring), ["3s", "6s"], hits)
        self.assertEqual([e["type"] for _h, e, _r in hits].count("key.expired"), 1)
        ids = [h["webhook-id"] for h, _e, _r in hits]
        self.assertEqual(len(ids), len(set(ids)), "an event was delivered twice: %r" % ids)
        for h, e, raw in hits:
            self.assertEqual(h["webhook-id"], e["id"])
            self.assertTrue(check_signature(secret, h, raw), "bad signature on %r" % e)
            self.assertLess(abs(int(h["webhook-timestamp"]) - time.time()), 30)
            self.assertEqual(e["hint"], b["key"]["hint"])
            self.assertNotIn(b["secret"], raw.decode())
        for e in expiring:
            self.assertEqual(e["expires_at"], b["key"]["expires_at"])
            self.assertEqual(e["credential_id"], cred)
        save_sample("webhook-key.expiring.json", json.dumps(expiring[0], indent=2) + "\n")
        # webhook secrets are stored (they key the HMAC) but never logged
        self.assertNotIn(secret[6:].encode(), self.srv.all_logs())
        self.assertNotIn(SINK_SECRET[6:].encode(), self.srv.all_logs())
        # the global webhook sink got the same events, signed with its own secret
        sink = [(h, e, raw) for h, e, raw in self.rcv.got("/sink") if e.get("key_id") == key]
        self.assertEqual(sorted(e["id"] for _h, e, _r in sink), sorted(ids))
        for h, e, raw in sink:
            self.assertTrue(check_signature(SINK_SECRET, h, raw))
        # the API shows every channel delivered
        evs = self.events_of(cred, "key.expiring")
        self.assertEqual(len(evs), 2)
        for ev in evs:
            chans = {d["channel"]: d for d in ev["deliveries"]}
            self.assertEqual(set(chans), {"log", "email ops@example.test",
                                          "webhook " + self.rcv.url("/c1"),
                                          "webhook " + self.rcv.url("/sink")}, ev)
            for d in ev["deliveries"]:
                self.assertEqual(d["state"], "delivered", ev)
        # the log channel: one JSON line per event
        logs = self.srv.all_logs().decode("utf-8", "replace")
        for eid in ids:
            lines = [l for l in logs.splitlines() if eid in l and '"msg":"event"' in l]
            self.assertEqual(len(lines), 1, eid)
        # e-mail through a real SMTP server
        if self.smtp is None:
            self.skipTest("python3-aiosmtpd not installed")
        # (messages are quoted-printable: read them decoded, with the email package)
        def mails_of(type_):
            out = []
            for frm_, to_, raw in self.box.messages:
                m = email.message_from_string(raw, policy=email.policy.SMTP)
                body = m.get_body(preferencelist=("plain",)).get_content()
                if m["X-Keyward-Event-Type"] == type_ and b["key"]["hint"] in body:
                    out.append((frm_, to_, raw, m, body.replace("\r\n", "\n")))
            return out
        mails = self.wait_for(lambda: mails_of("key.expiring"), timeout=5)
        self.assertTrue(mails, [m[2][:200] for m in self.box.messages])
        frm, to, text, msg, body = mails[0]
        self.assertEqual(frm, "keyward@example.test")
        self.assertEqual(to, ["ops@example.test"])
        self.assertRegex(str(msg["Subject"]), r"^\[keyward\] API key .* expires in \d+ seconds?$")
        # a credential's contact reads a consumer's message: what to do, by when, no CLI
        for want in (b["credential"]["name"], b["key"]["hint"], "slot 1", "stops working on"):
            self.assertIn(want, body)
        self.assertNotIn("keyward key", body)
        self.assertNotIn(b["secret"], text)
        save_sample("email-key.expiring.txt", text)
        expired = self.wait_for(lambda: mails_of("key.expired"), timeout=5)
        self.assertEqual(len(expired), 1)
        self.assertIn("EXPIRED", str(expired[0][3]["Subject"]))

    def test_flaky_receiver_gets_each_event_once(self):
        self.rcv.plan["/flaky"] = [503, 503, 500]
        b = self.create(lifetime="1d", contacts=[
            {"type": "webhook", "url": self.rcv.url("/flaky"), "secret": SINK_SECRET}])
        cred = b["credential"]["id"]
        ok = self.wait_for(lambda: self.rcv.got("/flaky"), timeout=15, interval=0.2)
        self.assertTrue(ok, "never delivered after the receiver recovered")
        time.sleep(1.0)
        all_hits = self.rcv.got("/flaky", ok_only=False)
        okh = self.rcv.got("/flaky")
        self.assertEqual(len(okh), 1, "delivered %d times" % len(okh))
        self.assertEqual(len(all_hits), 4, [(h["webhook-id"], ) for h, _e, _r in all_hits])
        self.assertEqual(len({h["webhook-id"] for h, _e, _r in all_hits}), 1,
                         "retries must keep the webhook-id")
        ev = self.events_of(cred, "key.created")[0]
        d = [d for d in ev["deliveries"] if d["channel"].endswith("/flaky")][0]
        self.assertEqual(d["state"], "delivered")
        self.assertEqual(d["attempts"], 4)
        r = self.srv.post("/v1/events/%s/retry" % ev["id"])
        self.assertProblem(r, 409)

    def test_410_disables_webhook_until_retry(self):
        self.rcv.plan["/gone"] = [410]
        b = self.create(lifetime="1d", contacts=[
            {"type": "webhook", "url": self.rcv.url("/gone"), "secret": SINK_SECRET}])
        cred, key = b["credential"]["id"], b["key"]["id"]

        def state():
            ev = self.events_of(cred, "key.created")[0]
            ds = [d for d in ev["deliveries"] if d["channel"].endswith("/gone")]
            return ds[0]["state"] if ds else None
        self.assertEqual(self.wait_for(lambda: state() == "disabled" and "disabled",
                                       timeout=6), "disabled")
        n = len(self.rcv.got("/gone", ok_only=False))
        # a later event to that webhook is not sent while it is disabled
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % key, {"reason": "t"}), 200)
        inv = self.wait_for(lambda: [e for e in self.events_of(cred, "key.invalidated")
                                     if e["deliveries"] and all(
                                         d["state"] not in ("pending", "sending")
                                         for d in e["deliveries"])], timeout=6)
        self.assertTrue(inv)
        dd = [d for d in inv[0]["deliveries"] if d["channel"].endswith("/gone")]
        self.assertTrue(dd, inv)
        dd = dd[0]
        self.assertEqual(dd["state"], "disabled")
        self.assertEqual(len(self.rcv.got("/gone", ok_only=False)), n)
        # retry re-enables it and delivers
        ev = self.events_of(cred, "key.created")[0]
        p = self.srv.cli("events", "retry", ev["id"])
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("Re-queued 1", p.stdout)
        got = self.wait_for(lambda: self.rcv.got("/gone"), timeout=6)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][1]["id"], ev["id"])
        p = self.srv.cli("events", "show", ev["id"])
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("delivered", p.stdout)
        p = self.srv.cli("events", "list", "--credential", cred, "--json")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertGreaterEqual(len(json.loads(p.stdout)["items"]), 2)

    def test_events_api_errors(self):
        self.assertProblem(self.srv.get("/v1/events", query={"limit": "0"}), 400, "limit")
        self.assertProblem(self.srv.get("/v1/events", query={"cursor": "x"}), 400, "cursor")
        self.assertProblem(self.srv.get("/v1/events", query={"credential_id": "nope"}), 400,
                           "credential_id")
        self.assertProblem(self.srv.get("/v1/events/evt_nope"), 404)
        self.assertProblem(self.srv.post("/v1/events/evt_AAAAAAAAAAAAAAAAAAAAAA/retry"), 404)
        self.assertProblem(self.srv.get("/v1/events", token=None), 401)
        # paging: newest first, cursors walk back without repeats
        items = self.list_all("/v1/events", limit=2)
        seqs = [e["id"] for e in items]
        self.assertEqual(len(seqs), len(set(seqs)))

    def test_contacts_validation(self):
        bad = [
            [{"type": "webhook", "url": "ftp://x.example/"}],
            [{"type": "webhook", "url": "http://user:pw@example.com/"}],
            [{"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "nope"}],
            [{"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "whsec_c2hvcnQ="}],
            [{"type": "email", "to": "a@b@c"}],
        ]
        for c in bad:
            r = self.srv.post("/v1/credentials", {"name": "bad-contacts", "contacts": c})
            self.assertProblem(r, 400, "contacts")
        # PATCH with the contact as read back (no secret) keeps the secret
        b = self.create(contacts=[{"type": "webhook", "url": self.rcv.url("/keep")}])
        cred = b["credential"]["id"]
        shown = self.get_cred(cred)["contacts"]
        r = self.srv.patch("/v1/credentials/%s" % cred, {"contacts": [
            {"type": "webhook", "url": s["url"]} for s in shown]})
        body = self.expect(r, 200)
        self.assertNotIn("signing_secrets", body)

    def test_metrics(self):
        b = self.create(lifetime="1h")
        self.verify_code(b["secret"], "VALID")
        series = 'keyward_credential_next_expiry_timestamp_seconds{credential_id="%s"' % (
            b["credential"]["id"])

        def scrape():
            r = self.srv.get("/metrics", token=None)
            self.assertEqual(r.status, 200, r.describe())
            self.assertTrue(r.ctype.startswith("text/plain"), r.ctype)
            return r.raw.decode()
        # the expiry figures are a snapshot refreshed every --metrics-refresh (1s here)
        self.wait_for(lambda: series in scrape(), timeout=4, interval=0.2)
        text = scrape()
        vals = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, v = line.rpartition(" ")
                vals[name] = float(v)
        self.assertGreaterEqual(vals['keyward_keys{state="active"}'], 1)
        self.assertGreaterEqual(vals['keyward_verifications_total{code="VALID"}'], 1)
        self.assertGreaterEqual(vals["keyward_verify_duration_seconds_count"], 1)
        self.assertIn('keyward_keys_expiring{within="30d",within_seconds="2592000"}', vals)
        self.assertTrue(any(k.startswith(series) for k in vals), text[:2000])
        for k in ("keyward_outbox_pending", "keyward_outbox_oldest_pending_age_seconds",
                  "keyward_renewals_pending", 'keyward_deliveries_total{channel="webhook",'
                  'result="delivered"}'):
            self.assertIn(k, vals)
        self.assertNotIn(b["secret"], text)
        self.assertNotIn(b["key"]["hint"], text)


class TestAlertsRestart(AlertTestBase):
    """Downtime and crashes: each test restarts the class's server."""

    def test_downtime_raises_only_the_most_urgent_missed(self):
        self.policy("steps", ["7s", "5s", "3s"])
        b = self.create(policy="steps", lifetime="10s")
        cred, key = b["credential"]["id"], b["key"]["id"]
        t0 = time.time()
        # Wait until a scheduler pass has looked at the key (next_alert_at set to its first
        # threshold). A key the scheduler never saw before the downtime is the documented gap
        # in docs/internals/alerts.md: its thresholds are skipped, not raised late.
        looked = self.wait_for(lambda: self._next_alert_at(key) > 0, timeout=2.5, interval=0.05)
        self.assertTrue(looked, "no scheduler pass within 2.5 s of creating the key")
        self.srv.stop()
        time.sleep(max(0, t0 + 8.2 - time.time()))   # 7s, 5s and 3s thresholds pass while down
        self.srv.start()
        got = self.wait_for(lambda: [e for e in self.events_of(cred, "key.expired")], timeout=6)
        self.assertTrue(got, "no key.expired after restart")
        exp = self.events_of(cred, "key.expiring")
        self.assertEqual(len(exp), 1, exp)
        self.assertEqual(exp[0]["threshold"], "3s")
        self.assertEqual(sorted(exp[0].get("skipped_thresholds", [])), ["5s", "7s"])
        self.assertEqual(len(self.events_of(cred, "key.expired")), 1)
        hits = [e for _h, e, _r in self.rcv.got("/sink") if e.get("key_id") == key]
        self.assertEqual(sorted(e["type"] for e in hits),
                         ["key.created", "key.expired", "key.expiring"])

    def test_sigkill_mid_delivery_loses_nothing(self):
        self.rcv.delay["/slow"] = 2.0
        b = self.create(lifetime="1d", contacts=[
            {"type": "webhook", "url": self.rcv.url("/slow"), "secret": SINK_SECRET}])
        cred = b["credential"]["id"]
        # wait until keyward is inside the request (the receiver is sleeping on it)
        started = self.wait_for(lambda: "/slow" in self.rcv.started, timeout=6, interval=0.05)
        self.assertTrue(started, "keyward never called the receiver")
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait()
        self.srv.stop(check=False)
        self.rcv.delay["/slow"] = 0
        self.srv.start()
        got = self.wait_for(lambda: len(self.rcv.got("/slow")) >= 2 and
                            self._delivered(cred), timeout=10)
        self.assertTrue(got, "not delivered after the restart: %r" % self.rcv.got("/slow"))
        hits = self.rcv.got("/slow")
        ids = {h["webhook-id"] for h, _e, _r in hits}
        self.assertEqual(len(ids), 1, "a duplicate must carry the same webhook-id: %r" % ids)
        ev = self.events_of(cred, "key.created")[0]
        self.assertEqual(ev["id"], ids.pop())

    def _next_alert_at(self, key):
        import sqlite3
        con = sqlite3.connect("file:%s?mode=ro" % self.srv.db, uri=True, timeout=5)
        try:
            row = con.execute("SELECT next_alert_at FROM keys WHERE id = ?", (key,)).fetchone()
        finally:
            con.close()
        return row[0] if row and row[0] is not None else 0

    def _delivered(self, cred):
        evs = self.events_of(cred, "key.created")
        return evs and all(d["state"] == "delivered" for d in evs[0]["deliveries"])


class TestSSRFGuard(ServerTestCase):
    """Without --webhook-allow-private, loopback, private, link-local and reserved
    addresses are refused when contacts are written."""

    def test_private_urls_refused(self):
        for url in ("http://127.0.0.1:8080/h", "http://10.1.2.3/h", "http://192.168.0.1/h",
                    "http://172.16.5.4/h", "http://169.254.169.254/latest", "http://[::1]/h",
                    "http://[fe80::1]/h", "http://0.0.0.0/h", "http://localhost/h",
                    "http://[::ffff:127.0.0.1]/h", "http://100.64.0.1/h"):
            r = self.srv.post("/v1/credentials", {"name": "ssrf", "contacts": [
                {"type": "webhook", "url": url}]})
            b = self.assertProblem(r, 400, "contacts")
            self.assertIn("webhook-allow-private", b["detail"], url)
        # a public address literal passes the guard (nothing is sent at creation)
        b = self.create(contacts=[{"type": "webhook", "url": "https://93.184.216.34/hook"}])
        sec = b["signing_secrets"][0]["signing_secret"]
        self.assertTrue(sec.startswith("whsec_"))
        self.assertNotIn(sec[6:].encode(), self.srv.all_logs())


if __name__ == "__main__":
    unittest.main()
