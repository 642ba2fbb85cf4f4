"""Secrets never leak (SPEC §3, §6, §7; docs/reliability.md): keys issued through every
path - create (several prefixes), new key, roll, the bootstrap admin key and its roll,
renew when it exists - and webhook contact secrets; then the database files (and a full
`sqlite3 .dump`, which also reads the WAL and the outbox/events table), the logs at debug
level, the audit trail (GET /v1/audit, when it exists), /metrics (when it exists) and
error answers that were handed a key where it does not belong: zero hits. Webhook secrets
are HMAC keys the server signs with: they are stored sealed (AES-256-GCM under the secrets
key file, SPEC section 3), so they appear nowhere either - not in the raw database, its WAL
or a copy of it. SecretsAtRest: file modes, a copy without the key file, the in-place
migration of secrets an older version stored in clear, and binding before creating."""

import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, ServerTestCase, free_port, secret_part


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
            # webhook secrets included: sealed at rest, they are nowhere in clear
            for n in needles:
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
                    self.assertNotIn(n.encode(), data, "secret in %s after restart" % name)
        self.assertGreaterEqual(len(where), 4, list(where))


def raw_files(d):
    out = {}
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[name] = f.read()
    return out


class SecretsAtRest(ServerTestCase):
    extra_args = ("--webhook-allow-private",)

    def hook_cred(self, hook):
        return self.create(contacts=[{"type": "webhook", "url": "http://127.0.0.1:9/hook",
                                      "secret": hook}])

    def test_files_are_0600_and_secrets_sealed(self):
        hook = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.hook_cred(hook)
        s = self.srv
        for name in ("keyward.db", "keyward.db-wal", "keyward.db-shm", "keyward.admin-key",
                     "keyward.secrets-key"):
            p = os.path.join(s.tmpdir, name)
            if name.endswith(("-wal", "-shm")) and not os.path.exists(p):
                continue
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, name)
        rows = subprocess.run(["sqlite3", s.db, "SELECT contacts FROM credentials"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn('"secret":"kws1.', rows)
        for name, data in raw_files(s.tmpdir).items():
            self.assertNotIn(hook[6:].encode(), data, name)

    def test_copy_without_key_file_reveals_nothing_and_does_not_start(self):
        hook = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.hook_cred(hook)
        copy = tempfile.mkdtemp(prefix="keyward-copy-")
        try:
            for name in ("keyward.db", "keyward.db-wal"):
                p = os.path.join(self.srv.tmpdir, name)
                if os.path.exists(p):
                    shutil.copy(p, copy)
            # SQLite reads the copy (WAL included) and finds only sealed text
            dump = subprocess.run(["sqlite3", os.path.join(copy, "keyward.db"), ".dump"],
                                  capture_output=True, timeout=60)
            self.assertNotIn(hook[6:].encode(), dump.stdout)
            self.assertIn(b"kws1.", dump.stdout)
            for name, data in raw_files(copy).items():
                self.assertNotIn(hook[6:].encode(), data, name)
            # and keyward refuses to start on it without the key (no fresh key file made)
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(),
                                "--store", "sqlite:" + os.path.join(copy, "keyward.db")],
                               capture_output=True, text=True, timeout=30, cwd=copy)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("secrets key file", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(copy, "keyward.secrets-key")))
        finally:
            shutil.rmtree(copy)

    def test_clear_text_store_migrated_in_place(self):
        """A store written by an older version (a webhook secret in clear, the file 0644):
        the restart warns once about the mode, seals the secret and leaves no clear copy in
        the file or its WAL; the credential still reads back."""
        b = self.hook_cred("whsec_" + base64.b64encode(os.urandom(32)).decode())
        cid = b["credential"]["id"]
        s = self.srv
        s.stop()
        old = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        contacts = json.dumps([{"type": "webhook", "url": "http://127.0.0.1:9/hook",
                                "secret": old}])
        subprocess.run(["sqlite3", s.db, "UPDATE credentials SET contacts = '%s' WHERE id = '%s'"
                        % (contacts, cid)], check=True)
        os.chmod(s.db, 0o644)
        self.assertIn(old[6:].encode(), raw_files(s.tmpdir)["keyward.db"])
        s.start()
        log = s.stderr_text() + open(s.log_paths[-2], encoding="utf-8").read()
        warns = [ln for ln in log.splitlines() if "readable or writable by other users" in ln
                 and ln.rstrip().find("keyward.db\"") >= 0]
        self.assertEqual(len(warns), 1, log)
        self.assertIn("sealed", log)
        for name, data in raw_files(s.tmpdir).items():
            self.assertNotIn(old[6:].encode(), data, name)
        rows = subprocess.run(["sqlite3", s.db, "SELECT contacts FROM credentials WHERE id = '%s'"
                               % cid], capture_output=True, text=True, check=True).stdout
        self.assertIn('"secret":"kws1.', rows)
        r = s.get("/v1/credentials/%s" % cid)
        self.expect(r, 200)
        s.stop()  # the WAL goes with a clean stop; it is made again with the file's mode
        os.chmod(s.db, 0o600)
        s.start()


class BindFirst(unittest.TestCase):
    def test_port_in_use_creates_nothing(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        d = tempfile.mkdtemp(prefix="keyward-busy-")
        try:
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % busy.getsockname()[1],
                                "--store", "sqlite:" + os.path.join(d, "sub", "keyward.db")],
                               capture_output=True, text=True, timeout=30, cwd=d)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("cannot listen", p.stderr)
            self.assertEqual(os.listdir(d), [], "nothing created before the bind")
        finally:
            busy.close()
            shutil.rmtree(d)
