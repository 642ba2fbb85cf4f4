"""test_mail.py - alert e-mails written for their reader (SPEC §6, docs/mail.md), through a
real SMTP server on loopback (Debian's python3-aiosmtpd) and parsed with Python's own
`email` package (policy SMTP), independently of keyward's code:

- one golden message per event type, for the consumer (a credential's contact) and the
  operator (a global e-mail sink): CRLF only, a valid Message-ID, UTF-8 that round-trips
  (café in subject and body), the credential, the key's hint and slot, no JSON, no secret;
- renewal.requested reaches the approvers (not the requester's contacts), once per request
  across a restart; the decision goes back to the credential's contacts;
- operator templates from --mail-templates DIR, the HTML alternative, and template errors
  reported as FILE:LINE with serve refusing to start.

Golden samples are written to $KEYWARD_MAIL_SAMPLES (default build/mail-samples/).
"""

import datetime
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, REPO, Server, ServerTestCase, free_port

try:
    from aiosmtpd.controller import Controller
except ImportError:  # scripts/deps.sh installs python3-aiosmtpd
    Controller = None

SAMPLES = os.environ.get("KEYWARD_MAIL_SAMPLES") or os.path.join(REPO, "build", "mail-samples")
NAME = "café-billing ☕"
MSGID_RE = re.compile(r"^<[^@<>\s\"]+@[A-Za-z0-9.-]+>$")


class RawBox:
    """Keeps each message as the bytes the SMTP server received (dot-stuffing undone)."""

    def __init__(self):
        self.messages = []  # (rcpt list, raw bytes)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or
                                                             envelope.content)))
        return "250 OK"

    def parsed(self, rcpt, type_=None, key=None):
        out = []
        for to, raw in list(self.messages):
            if rcpt not in to:
                continue
            m = email.message_from_bytes(raw, policy=email.policy.SMTP)
            if type_ and m["X-Keyward-Event-Type"] != type_:
                continue
            if key and key not in plain(m):
                continue
            out.append((m, raw))
        return out


def plain(m):
    part = m.get_body(preferencelist=("plain",))
    # policy SMTP keeps the CRLF of the decoded text; compare lines, not line ends
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


GOLDEN = os.path.join(REPO, "tests", "integration", "golden", "mail")
# What differs from run to run, in the order applied: ids, hints, times, spans of time.
NORMALIZE = [
    (r"evt_[0-9A-Za-z]+", "<evt>"), (r"cred_[0-9A-Za-z]{22}", "<cred>"),
    (r"key_[0-9A-Za-z]{22}", "<key>"), (r"ren_[0-9A-Za-z]{22}", "<ren>"),
    (r"[a-z][a-z0-9]*_[0-9A-Za-z]{4}\u2026[0-9A-Za-z]{4}", "<hint>"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>"),
    (r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d UTC", "<date>"),
    (r"\d+ (day|hour|minute|second)s?( \d+ (day|hour|minute|second)s?)?", "<span>"),
]


def normalized(m):
    text = "Subject: %s\n\n%s" % (m["Subject"], plain(m))
    for pat, rep in NORMALIZE:
        text = re.sub(pat, rep, text)
    return text


def save(name, raw):
    try:
        os.makedirs(SAMPLES, exist_ok=True)
        with open(os.path.join(SAMPLES, name), "wb") as f:
            f.write(raw)
    except OSError:
        pass


@unittest.skipIf(Controller is None, "python3-aiosmtpd not installed")
class MailBase(ServerTestCase):
    more_args = []

    @classmethod
    def setUpClass(cls):
        cls.box = RawBox()
        port = free_port()
        cls.smtp = Controller(cls.box, hostname="127.0.0.1", port=port)
        cls.smtp.start()
        cls.extra_args = ["--scheduler-interval", "1s", "--delivery-retry-min", "1s",
                          "--smtp", "smtp://127.0.0.1:%d" % port,
                          "--mail-from", "Keyward Café <keyward@example.test>",
                          "--mail-reply-to", "platform@example.test",
                          "--sink", "email ops@example.test"] + cls.more_args
        try:
            super().setUpClass()
        except BaseException:
            cls.smtp.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.smtp.stop()

    def policy(self, name, **kw):
        body = {"name": name, "default_lifetime": "1h", "max_lifetime": "1d"}
        body.update(kw)
        self.expect(self.srv.post("/v1/policies", body), 201, "create policy")
        return name

    def principal(self, scope, **kw):
        return self.create(name="p-" + scope.split(":")[1], scopes=[scope], lifetime="1d", **kw)

    def wait_mail(self, rcpt, type_, key=None, n=1, timeout=15):
        got = self.wait_for(lambda: len(self.box.parsed(rcpt, type_, key)) >= n and
                            self.box.parsed(rcpt, type_, key), timeout=timeout, interval=0.1)
        self.assertTrue(got, "no %s mail to %s about %s; have: %r" % (
            type_, rcpt, key, [(t, r[:300]) for t, r in self.box.messages]))
        return got

    def golden(self, name, m, raw):
        """The decoded subject and body, normalized, equal the committed golden file
        (tests/integration/golden/mail/NAME.txt; KEYWARD_UPDATE_GOLDEN=1 rewrites it)."""
        save(name + ".eml", raw)
        path = os.path.join(GOLDEN, name + ".txt")
        got = normalized(m)
        if os.environ.get("KEYWARD_UPDATE_GOLDEN") == "1":
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(got)
            return
        self.assertTrue(os.path.exists(path), "no golden file %s (KEYWARD_UPDATE_GOLDEN=1 "
                        "writes it)" % path)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(got, f.read(), "message differs from " + path)

    def check_message(self, m, raw, secrets, must=()):
        """What every message must be, checked on the bytes and on the parsed message."""
        # CRLF only: every LF is part of a CRLF, and no line is over 998 characters
        self.assertEqual(raw.count(b"\n"), raw.count(b"\r\n"), raw[:400])
        self.assertFalse(any(len(l) > 998 for l in raw.split(b"\r\n")))
        self.assertTrue(all(b < 0x80 for b in raw), "8-bit bytes in a 7-bit message")
        head, _, body_raw = raw.partition(b"\r\n\r\n")
        for word in re.findall(rb"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=", head):
            self.assertLessEqual(len(word), 75, word)  # RFC 2047 §2
        for line in body_raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 76, line)  # RFC 2045 §6.7 (5)
        self.assertRegex(m["Message-ID"], MSGID_RE)
        self.assertEqual(m["MIME-Version"], "1.0")
        self.assertEqual(m["Auto-Submitted"], "auto-generated")
        self.assertEqual(m["Reply-To"], "platform@example.test")
        self.assertEqual(m["From"].addresses[0].display_name, "Keyward Café")
        self.assertEqual(m["From"].addresses[0].addr_spec, "keyward@example.test")
        self.assertTrue(m["Date"].datetime is not None)
        body = m.get_body(preferencelist=("plain",))
        self.assertEqual(body.get_content_type(), "text/plain")
        self.assertEqual(body.get_content_charset(), "utf-8")
        text = plain(m)
        self.assertNotIn('{"', text, "a JSON dump")
        self.assertNotIn("\ufffd", text)
        for s in secrets:
            self.assertNotIn(s, text)
            self.assertNotIn(s, str(m["Subject"]))
        for want in must:
            self.assertIn(want, text)
        return text


class TestGoldenMessages(MailBase):
    more_args = ["--public-url", "https://keyward.example.test/"]

    def test_every_key_and_renewal_event(self):
        pol = self.policy("mail-approve", renewal_requires_approval=True,
                          alert_thresholds=["3s"])
        appr = self.principal("keyward:approver",
                              contacts=[{"type": "email", "to": "approver@example.test"}])
        op = self.principal("keyward:operator",
                            contacts=[{"type": "email", "to": "requester@example.test"}])
        consumer = "consumer@example.test"
        b = self.create(name=NAME, policy=pol, lifetime="1h",
                        contacts=[{"type": "email", "to": consumer}])
        cred, k1 = b["credential"]["id"], b["key"]
        secrets = [b["secret"], appr["secret"], op["secret"], self.srv.admin_key]
        link = "https://keyward.example.test/console/credentials/" + cred

        # key.created
        (m, raw), = self.wait_mail(consumer, "key.created", k1["hint"])
        text = self.check_message(m, raw, secrets, [NAME, k1["hint"], "slot 1", "primary",
                                                    link, "platform@example.test"])
        self.assertIn(NAME, m["Subject"])
        self.assertIn(k1["hint"], m["Subject"])
        self.assertNotIn("keyward key", text, "a consumer gets no CLI commands")
        self.golden("key.created.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "key.created", k1["hint"])
        text = self.check_message(m, raw, secrets, [cred, k1["id"], "keyward cred show " + cred])
        self.golden("key.created.operator", m, raw)

        # key.rolled: the old key's end of overlap
        r = self.srv.post("/v1/keys/%s/roll" % k1["id"], {"overlap": "2h"})
        rolled = self.expect(r, 201, "roll")
        k2, prev = rolled["key"], rolled["previous"]
        secrets.append(rolled["secret"])
        (m, raw), = self.wait_mail(consumer, "key.rolled", k2["hint"])
        text = self.check_message(m, raw, secrets, [NAME, k2["hint"], k1["hint"], "slot 2",
                                                    "slot 1", link])
        self.assertNotIn("keyward key", text)
        self.assertIn("before", str(m["Subject"]))
        self.golden("key.rolled.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "key.rolled", k2["hint"])
        self.check_message(m, raw, secrets, ["keyward key invalidate " + k1["id"]])
        self.golden("key.rolled.operator", m, raw)

        # renewal.requested: to the approver (and the ops sink), not to the consumer, not to
        # the requester's own contacts; names requester, key, extension and reason
        reason = "café launch; still needed"
        r = self.srv.post("/v1/keys/%s/renew" % k2["id"], {"extend_by": "3h", "reason": reason},
                          token=op["secret"])
        ren = self.expect(r, 202, "request renewal")["renewal"]
        (m, raw), = self.wait_mail("approver@example.test", "renewal.requested", k2["hint"])
        text = self.check_message(m, raw, secrets, [
            NAME, k2["hint"], "slot 2", ren["id"], "p-operator (%s)" % op["credential"]["id"],
            "3 hours more (3h)", "café launch; still needed",
            "https://keyward.example.test/console/renewals",
            "keyward renewal approve " + ren["id"], "keyward renewal reject " + ren["id"]])
        self.assertIn("waits", str(m["Subject"]))
        self.golden("renewal.requested.approver", m, raw)
        self.wait_mail("ops@example.test", "renewal.requested", k2["hint"])
        time.sleep(1.0)
        self.assertEqual(self.box.parsed(consumer, "renewal.requested"), [])
        self.assertEqual(self.box.parsed("requester@example.test", "renewal.requested"), [])

        # renewal.approved: new expiry (date and countdown), who approved, the note
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {"note": "ok for the café"},
                          token=appr["secret"])
        d = self.expect(r, 200, "approve")
        new_exp = d["key"]["expires_at"]
        (m, raw), = self.wait_mail(consumer, "renewal.approved", k2["hint"])
        text = self.check_message(m, raw, secrets, [
            NAME, k2["hint"], "slot 2", "p-approver (%s)" % appr["credential"]["id"],
            "ok for the café", "works until", "(in 3 hours 5", "Keep using the same key"])
        want_date = datetime.datetime.strptime(new_exp, "%Y-%m-%dT%H:%M:%SZ").strftime(
            "%a %-d %b %Y %H:%M UTC")
        self.assertIn(want_date, text)
        self.assertIn(want_date, str(m["Subject"]))
        self.assertNotIn("keyward key", text)
        self.golden("renewal.approved.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "renewal.approved", k2["hint"])
        self.check_message(m, raw, secrets, [new_exp, ren["id"]])
        self.golden("renewal.approved.operator", m, raw)
        # the key.renewed that comes with an approval is not mailed a second time
        time.sleep(1.0)
        self.assertEqual(self.box.parsed(consumer, "key.renewed", k2["hint"]), [])

        # renewal.rejected: the note and what to do instead
        r = self.srv.post("/v1/keys/%s/renew" % k2["id"], {"extend_by": "1h"}, token=op["secret"])
        ren2 = self.expect(r, 202)["renewal"]
        r = self.srv.post("/v1/renewals/%s/reject" % ren2["id"],
                          {"note": "use the new billing key instead"}, token=appr["secret"])
        self.expect(r, 200, "reject")
        (m, raw), = self.wait_mail(consumer, "renewal.rejected", k2["hint"])
        text = self.check_message(m, raw, secrets, [
            NAME, k2["hint"], "use the new billing key instead", "What to do instead",
            "platform@example.test", "still expires"])
        self.golden("renewal.rejected.consumer", m, raw)

        # key.invalidated
        r = self.srv.post("/v1/keys/%s/invalidate" % k1["id"], {"reason": "rotated — café"})
        self.expect(r, 200, "invalidate")
        (m, raw), = self.wait_mail(consumer, "key.invalidated", k1["hint"])
        self.check_message(m, raw, secrets, [NAME, k1["hint"], "slot 1", "rotated — café",
                                             "refused"])
        self.golden("key.invalidated.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "key.invalidated", k1["hint"])
        self.check_message(m, raw, secrets, ["keyward key new " + cred])
        self.golden("key.invalidated.operator", m, raw)

        # the events API shows the approver's delivery beside the others (one outbox)
        ev = self.expect(self.srv.get("/v1/events", query={"credential_id": cred,
                                                           "type": "renewal.requested"}), 200)
        chans = {d["channel"] for e in ev["items"] for d in e["deliveries"]}
        self.assertIn("email approver@example.test", chans)
        self.assertNotIn("email " + consumer, chans)

    def test_renewed_expiring_expired(self):
        pol = self.policy("mail-fast", alert_thresholds=["6s"])
        consumer = "fast@example.test"
        b = self.create(name=NAME + " fast", policy=pol, lifetime="8s",
                        contacts=[{"type": "email", "to": consumer}])
        k = b["key"]
        secrets = [b["secret"], self.srv.admin_key]
        (m, raw), = self.wait_mail(consumer, "key.expiring", k["hint"], timeout=10)
        text = self.check_message(m, raw, secrets, [NAME, k["hint"], "slot 1", "6s reminder",
                                                    "stops working on"])
        self.assertRegex(str(m["Subject"]), r"expires in \d+ seconds?$")
        self.assertNotIn("keyward key", text)
        self.golden("key.expiring.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "key.expiring", k["hint"])
        self.check_message(m, raw, secrets, ["keyward key roll " + k["id"],
                                             "keyward key renew " + k["id"]])
        self.golden("key.expiring.operator", m, raw)
        (m, raw), = self.wait_mail(consumer, "key.expired", k["hint"], timeout=10)
        self.check_message(m, raw, secrets, [NAME, k["hint"], "expired on", "refused"])
        self.assertIn("EXPIRED", str(m["Subject"]))
        self.golden("key.expired.consumer", m, raw)
        (m, raw), = self.wait_mail("ops@example.test", "key.expired", k["hint"])
        self.check_message(m, raw, secrets, ["keyward key new " + b["credential"]["id"]])
        self.golden("key.expired.operator", m, raw)

        # key.renewed (a policy without approval)
        b2 = self.create(name=NAME + " renew", lifetime="1h",
                         contacts=[{"type": "email", "to": consumer}])
        r = self.srv.post("/v1/keys/%s/renew" % b2["key"]["id"], {"extend_by": "2d"})
        new_exp = self.expect(r, 200, "renew")["key"]["expires_at"]
        (m, raw), = self.wait_mail(consumer, "key.renewed", b2["key"]["hint"])
        self.check_message(m, raw, secrets + [b2["secret"]],
                           [NAME, b2["key"]["hint"], "now works until", "(in 2 days",
                            "instead of"])
        self.assertNotIn(new_exp, plain(m))  # people read dates, not RFC 3339
        self.golden("key.renewed.consumer", m, raw)

    def test_watched_events(self):
        """watched.* events (SPEC §12) come from another module: inserted here into the
        outbox as that module will write them, they reach the global sink through the same
        delivery path. Their fields: watched_id, name, provider, kind, expires_at,
        threshold, http_status, error, error_description."""
        import sqlite3
        now = int(time.time())
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3 * 86400 + 60))
        base = {"watched_id": "wat_" + "W" * 22, "name": "Azure billing café",
                "provider": "Azure", "kind": "oauth2", "expires_at": exp}
        events = {
            "watched.expiring": dict(base, threshold="3d"),
            "watched.expired": dict(base, expires_at=time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5))),
            "watched.refresh_failed": dict(base, http_status=401, error="invalid_client",
                                           error_description="secret expired"),
            "watched.recovered": dict(base),
        }
        con = sqlite3.connect(self.srv.db, timeout=10)
        try:
            with con:
                for i, (t, p) in enumerate(events.items()):
                    eid = "evt_watched%011d%s" % (now, "ABCD"[i])
                    p = dict(p, id=eid, type=t, occurred_at=time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
                    con.execute("INSERT INTO events (id, type, occurred_at, payload) "
                                "VALUES (?, ?, ?, ?)", (eid, t, now, json.dumps(p)))
        finally:
            con.close()
        musts = {
            "watched.expiring": ["expires on", "in 3 days", "3d warning", "PATCH /v1/watched/"],
            "watched.expired": ["expired on", "503"],
            "watched.refresh_failed": ["HTTP status: 401", "invalid_client (secret expired)",
                                       "retries"],
            "watched.recovered": ["refreshed after earlier failures"],
        }
        for t, must in musts.items():
            (m, raw), = self.wait_mail("ops@example.test", t, "Azure billing café")
            self.check_message(m, raw, [], ["Azure billing café", base["watched_id"]] + must)
            self.assertIn("Azure billing café", str(m["Subject"]))
            self.golden(t + ".operator", m, raw)


class TestApproversOnceAcrossRestart(MailBase):
    """renewal.requested reaches each approver channel exactly once, also when the server
    restarts (cleanly, and by SIGKILL) after the delivery."""

    def test_once(self):
        pol = self.policy("mail-once", renewal_requires_approval=True)
        appr = self.principal("keyward:approver",
                              contacts=[{"type": "email", "to": "a1@example.test"}])
        self.create(name="second approver", scopes=["keyward:approver"],
                    contacts=[{"type": "email", "to": "a2@example.test"}])
        self.create(name="disabled approver", scopes=["keyward:approver"], disabled=True,
                    contacts=[{"type": "email", "to": "a3@example.test"}])
        b = self.create(name="once", policy=pol, contacts=[{"type": "email",
                                                             "to": "c@example.test"}])
        r = self.srv.post("/v1/keys/%s/renew" % b["key"]["id"], {"extend_by": "1h",
                                                                  "reason": "quarter end"})
        ren = self.expect(r, 202)["renewal"]
        for rcpt in ("a1@example.test", "a2@example.test"):
            self.wait_mail(rcpt, "renewal.requested", ren["id"])
        self.srv.stop()
        self.srv.start()
        time.sleep(2.5)
        self.srv.proc.kill()
        self.srv.proc.wait()
        self.srv.stop(check=False)
        self.srv.start()
        time.sleep(2.5)
        for rcpt in ("a1@example.test", "a2@example.test"):
            self.assertEqual(len(self.box.parsed(rcpt, "renewal.requested", ren["id"])), 1, rcpt)
        self.assertEqual(self.box.parsed("a3@example.test", "renewal.requested"), [])
        self.assertEqual(self.box.parsed("c@example.test", "renewal.requested"), [])
        # the admin credential has no contacts by default; with --renewal-notify-admins an
        # admin's contacts hear too: give the admin credential a contact and ask again
        admin = self.expect(self.srv.get("/v1/credentials", query={"limit": 500}), 200)["items"]
        adm = [c for c in admin if "keyward:admin" in c["scopes"]][0]
        self.expect(self.srv.patch("/v1/credentials/" + adm["id"], {
            "contacts": [{"type": "email", "to": "admin@example.test"}]}), 200)
        r = self.srv.post("/v1/renewals/%s/reject" % ren["id"], {"note": "no"},
                          token=appr["secret"])
        self.expect(r, 200)
        self.srv.stop()
        self.srv.extra_args = self.srv.extra_args + ["--renewal-notify-admins"]
        self.srv.start()
        r = self.srv.post("/v1/keys/%s/renew" % b["key"]["id"], {"extend_by": "1h"})
        # the admin asked: its own contacts are not told to decide its request
        ren2 = self.expect(r, 202)["renewal"]
        self.wait_mail("a1@example.test", "renewal.requested", ren2["id"])
        time.sleep(1.0)
        self.assertEqual(self.box.parsed("admin@example.test", "renewal.requested"), [])
        op = self.principal("keyward:operator")
        r = self.srv.post("/v1/renewals/%s/reject" % ren2["id"], {"note": "no"},
                          token=appr["secret"])
        self.expect(r, 200)
        r = self.srv.post("/v1/keys/%s/renew" % b["key"]["id"], {"extend_by": "1h"},
                          token=op["secret"])
        ren3 = self.expect(r, 202)["renewal"]
        self.wait_mail("admin@example.test", "renewal.requested", ren3["id"])


CUSTOM_CREATED = """{{! an operator's own words }}
Subject: Neuer Schlüssel für {{credential.name}}

Hallo {{recipient}},
Kunde: {{credential.name}}
.
..two dots (SMTP dot-stuffing keeps both)
From now on, a line may start with From.
{{#audience.consumer}}
Schlüssel {{key.hint}} (Platz {{key.slot}}) gilt bis {{key.expires_date}}.
{{/audience.consumer}}
{{^link.credential}}
(kein Link)
{{/link.credential}}
<b>not markup</b>
"""


@unittest.skipIf(Controller is None, "python3-aiosmtpd not installed")
class TestCustomTemplates(MailBase):
    tmpdir = None

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="keyward-mail-")
        with open(os.path.join(cls.tmpdir, "key.created.txt"), "w") as f:
            f.write(CUSTOM_CREATED)
        with open(os.path.join(cls.tmpdir, "key.invalidated.html"), "w") as f:
            f.write("<p>Ung&uuml;ltig: <b>{{credential.name}}</b> ({{key.hint}})</p>\n")
        with open(os.path.join(cls.tmpdir, "README.md"), "w") as f:
            f.write("not a template: ignored\n")
        cls.more_args = ["--mail-templates", cls.tmpdir, "--mail-html"]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def test_custom_words_and_html(self):
        b = self.create(name="Müller <GmbH> & Co", lifetime="1h",
                        contacts=[{"type": "email", "to": "m@example.test"}])
        (m, raw), = self.wait_mail("m@example.test", "key.created", b["key"]["hint"])
        self.assertEqual(m.get_content_type(), "multipart/alternative")
        text = self.check_message(m, raw, [b["secret"]], [
            "Hallo m@example.test,", "Schlüssel %s (Platz 1) gilt bis" % b["key"]["hint"],
            "(kein Link)", "<b>not markup</b>", "Kunde: Müller <GmbH> & Co\n.\n..two dots"])
        self.assertNotIn("http", text)  # no --public-url: no link
        self.assertIn("\nFrom now on, a line may start with From.\n", text)
        self.assertNotIn(b"\r\nFrom ", raw)  # encoded (=46rom), so no store mangles it
        self.assertEqual(str(m["Subject"]), "Neuer Schlüssel für Müller <GmbH> & Co")
        html = m.get_body(preferencelist=("html",))
        self.assertIsNotNone(html)
        h = html.get_content()
        self.assertIn("Müller &lt;GmbH&gt; &amp; Co", h)
        self.assertIn("&lt;b&gt;not markup&lt;/b&gt;", h)  # the text part, escaped as a whole
        save("key.created.custom-html.eml", raw)
        # events without a custom template keep the built-in words
        r = self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {})
        self.expect(r, 200)
        (m, raw), = self.wait_mail("m@example.test", "key.invalidated", b["key"]["hint"])
        self.check_message(m, raw, [b["secret"]], ["was invalidated"])
        # ... and a custom HTML part, its values escaped
        h = m.get_body(preferencelist=("html",)).get_content()
        self.assertIn("<p>Ung&uuml;ltig: <b>Müller &lt;GmbH&gt; &amp; Co</b> (%s)</p>"
                      % b["key"]["hint"], h)


class TestTemplateErrors(unittest.TestCase):
    """serve refuses to start on a bad template, with one line naming FILE:LINE."""

    def run_serve(self, files):
        d = tempfile.mkdtemp(prefix="keyward-badmail-")
        try:
            for name, text in files.items():
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(),
                                "--store", "sqlite:" + os.path.join(d, "k.db"),
                                "--mail-templates", d], capture_output=True, timeout=20,
                               cwd=d, env={k: v for k, v in os.environ.items()
                                           if not k.startswith("KEYWARD_")})
            self.assertFalse(os.path.exists(os.path.join(d, "k.db")), "created a store")
            return p.returncode, p.stderr.decode(), d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def check(self, files, want):
        rc, err, d = self.run_serve(files)
        self.assertEqual(rc, 2, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(want.replace("DIR", d), lines[0])

    def test_errors_name_file_and_line(self):
        self.check({"key.expiring.txt": "Subject: x\n\nline 3\nline 4 {{credentail.name}}\n"},
                   "DIR/key.expiring.txt:4: unknown field 'credentail.name'")
        self.check({"key.rolled.txt": "Subject: {{previous.hint\n\nbody\n"},
                   "DIR/key.rolled.txt:1: '{{' without '}}'")
        self.check({"renewal.approved.txt": "Subject: ok\n\n{{#renewal.note}}\nx\n"},
                   "DIR/renewal.approved.txt:3: section 'renewal.note' is never closed")
        self.check({"key.created.txt": "Subject: ok\nBcc: x@example.test\n\nbody\n"},
                   "DIR/key.created.txt:2: only a 'Subject:' header")
        self.check({"key.created.txt": "no header, no blank line\n"},
                   "DIR/key.created.txt:1: only a 'Subject:' header")
        self.check({"key.expird.txt": "Subject: x\n\ny\n"},
                   "DIR/key.expird.txt: not a template name")
        # a field of another event type is unknown here
        self.check({"key.created.txt": "Subject: x\n\n{{renewal.note}}\n"},
                   "DIR/key.created.txt:3: unknown field 'renewal.note'")

    def test_missing_directory(self):
        p = subprocess.run([BIN, "serve", "--mail-templates", "/nonexistent/mail"],
                           capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/mail", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
