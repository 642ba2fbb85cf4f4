"""Secrets never leak (SPEC §3, §6, §7; docs/reliability.md): keys issued through every
path - create (several prefixes), new key, roll, the bootstrap admin key and its roll,
renew when it exists - and webhook contact secrets; then the database files (and a full
`sqlite3 .dump`, which also reads the WAL and the outbox/events table), the logs at debug
level, the audit trail (GET /v1/audit, when it exists), /metrics (when it exists) and
error answers that were handed a key where it does not belong: zero hits. (Webhook secrets
are HMAC keys the server signs with, so they are stored in the credentials table; they must
not appear anywhere else.)"""

import json
import os
import subprocess

from harness import ServerTestCase, secret_part


class Secrets(ServerTestCase):
    extra_args = ("--log-level", "debug", "--webhook-allow-private")

    def issue(self):
        s = self.srv
        issued = [s.admin_key]
        hooks = []
        for i, prefix in enumerate(["kw", "ab", "z9", "longprefix123456"]):
            hook = "whsec_%032x" % (i + 77777)
            hooks.append(hook)
            b = self.create(prefix=prefix, scopes=["read"],
                            contacts=[{"type": "webhook", "url": "http://127.0.0.1:9/hook",
                                       "secret": hook}, {"type": "log"}])
            issued.append(b["secret"])
            cid, kid = b["credential"]["id"], b["key"]["id"]
            issued.append(self.new_key(cid)["secret"])
            r = s.post("/v1/keys/%s/invalidate" % kid, {"reason": "rotate"})
            self.expect(r, 200)
            r = s.post("/v1/credentials/%s/keys" % cid, {"lifetime": "30d"})
            issued.append(self.expect(r, 201)["secret"])
            kid2 = r.body["key"]["id"]
            r = s.post("/v1/keys/%s/roll" % kid2, {"overlap": "1h"})
            rolled = self.expect(r, (201, 409))
            if r.status == 201:
                issued.append(rolled["secret"])
            r = s.post("/v1/keys/%s/renew" % kid2, {"extend_by": "1d"})
            self.assertNotIn(r.status, range(500, 600), r.describe())
            for k in issued[-3:]:
                self.srv.verify(k)  # use them: usage write-back must not carry text
        # the admin key itself rotates like any other
        r = s.verify(s.admin_key)
        admin_kid = r.body.get("key_id")
        r = s.post("/v1/keys/%s/roll" % admin_kid, {"overlap": "1h"})
        self.expect(r, 201, "roll the admin key")
        issued.append(r.body["secret"])
        # keys handed to places that must not echo them
        k = issued[1]
        probes = [s.get("/v1/keys/%s" % k), s.get("/v1/credentials/%s" % k),
                  s.get("/%s" % k), s.post("/v1/keys/%s/roll" % k, {}),
                  s.post("/v1/credentials", {"name": "x", "prefix": k}),
                  s.post("/v1/credentials", {"name": "x", "expires_at": k}),
                  s.post("/v1/credentials", {"name": "x", "lifetime": k}),
                  s.verify(k + "x"), s.verify(k, scope="no-such-scope"),
                  s.get("/v1/credentials", token=k + "x"),
                  s.get("/v1/credentials", query={"cursor": k, "owner": k})]
        for r in probes:
            self.assertNotIn(secret_part(k), r.raw.decode("utf-8", "replace"),
                             "an answer echoed a key: " + r.describe())
            for name, v in r.headers.items():
                self.assertNotIn(secret_part(k), v, "header %s echoed a key" % name)
        return issued, hooks

    def test_no_secret_anywhere(self):
        issued, hooks = self.issue()
        self.assertGreaterEqual(len(issued), 12)
        needles = [secret_part(k) for k in issued] + hooks
        s = self.srv
        where = {}
        # audit trail, events and metrics, as a user reads them
        r = s.get("/v1/audit", query={"limit": 1000})
        if r.status == 200:
            where["GET /v1/audit"] = r.raw
            self.assertTrue(r.raw.strip(), r.describe())
        r = s.get("/metrics", token=None)
        if r.status == 200:
            where["/metrics"] = r.raw
        # everything in the store, through SQLite (reads the WAL too), table by table
        dump = subprocess.run(["sqlite3", s.db, ".dump"], capture_output=True, timeout=60)
        self.assertEqual(dump.returncode, 0, dump.stderr)
        where["sqlite3 .dump"] = dump.stdout
        tables = subprocess.run(["sqlite3", s.db, ".tables"], capture_output=True, text=True)
        for t in tables.stdout.split():
            if t in ("outbox", "events", "audit", "deliveries"):
                rows = subprocess.run(["sqlite3", s.db, "SELECT * FROM %s" % t],
                                      capture_output=True)
                where["table " + t] = rows.stdout
        # logs so far (debug level) and the raw files
        where["logs"] = s.all_logs()
        for name in os.listdir(s.tmpdir):
            p = os.path.join(s.tmpdir, name)
            if os.path.isfile(p) and p != s.admin_key_file and not name.endswith(".so"):
                with open(p, "rb") as f:
                    where["file " + name] = f.read()
        # the scan finds what is there: the admin key file holds the admin key
        with open(s.admin_key_file, "rb") as f:
            self.assertIn(secret_part(s.admin_key).encode(), f.read())
        hits = []
        for label, data in where.items():
            # webhook secrets are HMAC keys the server must keep to sign with: they may sit
            # in the credentials table (hence in the raw files and the full dump), nowhere else
            store_copy = label == "sqlite3 .dump" or label.startswith("file keyward.db")
            for n in needles:
                if n in hooks and store_copy:
                    continue
                if n.encode() in data:
                    hits.append("%s… in %s" % (n[:6], label))
        self.assertFalse(hits, "secrets found: %s" % hits)
        # and after a clean stop (usage flushed, WAL checkpointed) the files are still clean
        s.restart()
        for name in os.listdir(s.tmpdir):
            p = os.path.join(s.tmpdir, name)
            if os.path.isfile(p) and p != s.admin_key_file:
                with open(p, "rb") as f:
                    data = f.read()
                for n in needles:
                    if n not in hooks:
                        self.assertNotIn(n.encode(), data, "secret in %s after restart" % name)
        self.assertGreaterEqual(len(where), 4, list(where))
