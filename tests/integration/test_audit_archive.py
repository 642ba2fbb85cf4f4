"""Archiving the audit trail (issue 11): `keyward audit archive --before T FILE` exports the
records older than T (the server verifies the whole chain first), replaces them with a
checkpoint signed under the secrets key file, and `audit verify` accepts the shortened
trail - but not a forged checkpoint."""

import json
import os
import stat
import subprocess
import time
from datetime import datetime, timezone

from harness import ServerTestCase


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AuditArchive(ServerTestCase):

    def verify(self):
        return self.expect(self.srv.get("/v1/audit/verify"), 200, "audit verify")

    def test_archive_then_verify_then_forged_checkpoint(self):
        for i in range(3):
            self.create(name="before-%d" % i)
        time.sleep(1.1)
        cut = int(time.time())
        time.sleep(1.1)
        self.create(name="after")
        total = self.verify()["records"]
        out = os.path.join(self.srv.tmpdir, "cli-cwd", "audit-archive.jsonl")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        p = self.srv.cli("audit", "archive", "--before", iso(cut), out)
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        with open(out) as f:
            recs = [json.loads(ln) for ln in f]
        self.assertGreaterEqual(len(recs), 4, recs)  # bootstrap + 3 creations at least
        self.assertEqual(recs[0]["seq"], 1)
        for a, b in zip(recs, recs[1:]):  # a contiguous, linked segment
            self.assertEqual(b["seq"], a["seq"] + 1)
            self.assertEqual(b["prev_hash"], a["hash"])
        self.assertTrue(all(r["action"] != "audit.archive" for r in recs))
        # the trail starts after the checkpoint and verifies; the archive is itself audited
        v = self.verify()
        self.assertTrue(v["ok"], v)
        self.assertEqual(v["records"], total - len(recs) + 1, v)
        first = self.expect(self.srv.get("/v1/audit", query={"order": "asc", "limit": 1}), 200)
        self.assertEqual(first["items"][0]["seq"], recs[-1]["seq"] + 1)
        self.assertEqual(first["items"][0]["prev_hash"], recs[-1]["hash"])
        p = self.srv.cli("audit", "verify")
        self.assertEqual(p.returncode, 0, p.describe())
        acts = [r["action"] for r in self.expect(self.srv.get("/v1/audit"), 200)["items"]]
        self.assertIn("audit.archive", acts)
        # the same FILE is never overwritten; nothing left before the cut
        p = self.srv.cli("audit", "archive", "--before", iso(cut), out)
        self.assertNotEqual(p.returncode, 0, p.describe())
        p = self.srv.cli("audit", "archive", "--before", iso(cut), out + ".2")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("nothing to archive", p.stdout)
        # a checkpoint edited behind keyward's back (moved to another record) is refused
        self.srv.stop()
        subprocess.run(["sqlite3", self.srv.db, "UPDATE meta SET value = '%d:%s' WHERE key ="
                        " 'audit_checkpoint'" % (recs[-2]["seq"], recs[-2]["hash"])],
                       check=True)
        self.srv.start()
        v = self.verify()
        self.assertFalse(v["ok"], v)
        self.assertIn("checkpoint", v["reason"])
        p = self.srv.cli("audit", "verify")
        self.assertNotEqual(p.returncode, 0)
        # and a broken trail is not archived
        r = self.srv.post("/v1/audit/archive", {"before": iso(int(time.time()))})
        self.assertProblem(r, 409)

    def test_bad_before(self):
        for v in ("yesterday", iso(int(time.time()) + 3600), 5):
            self.assertProblem(self.srv.post("/v1/audit/archive", {"before": v}), 400, "before")
