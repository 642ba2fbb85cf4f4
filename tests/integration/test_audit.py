"""The audit trail (SPEC §7; docs/api.md Audit): every change and every refused admin
request is recorded with its actor, the chain detects edits, deletions, insertions and
reorderings made directly in the SQLite file, and a change that cannot be audited is not
made (503). Tampering and the failure injection use the sqlite3 CLI on the real file."""

import json
import shutil
import subprocess

from harness import ServerTestCase


def sql(db, text):
    p = subprocess.run(["sqlite3", "-bail", "-cmd", ".timeout 5000", db, text],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("sqlite3 failed: %s %s" % (p.stdout, p.stderr))
    return p.stdout.strip()


class AuditBase(ServerTestCase):

    def audit(self, **q):
        r = self.srv.get("/v1/audit", query=q or None)
        return self.expect(r, 200, "audit list")

    def verdict(self):
        return self.expect(self.srv.get("/v1/audit/verify"), 200, "audit verify")

    def admin_id(self):
        return self.verify_code(self.srv.admin_key, "VALID")["credential_id"]


class Trail(AuditBase):

    def test_changes_are_recorded_with_actor(self):
        b = self.create(lifetime="30d", scopes=["orders:read"])
        cid, kid = b["credential"]["id"], b["key"]["id"]
        self.expect(self.srv.patch("/v1/credentials/" + cid, {"owner": "ops@example.com"}), 200)
        k2 = self.new_key(cid)
        self.expect(self.srv.post("/v1/keys/%s/renew" % kid, {"extend_by": "10d"}), 200)
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % k2["key"]["id"],
                                  {"reason": "leaked in a log"}), 200)
        self.expect(self.srv.delete("/v1/credentials/" + cid), 200)
        admin = self.admin_id()
        items = self.audit(target=cid, order="asc")["items"]
        self.assertEqual([(i["action"], i["outcome"], i["actor"]) for i in items],
                         [("credential.create", "ok", admin), ("credential.update", "ok", admin),
                          ("credential.delete", "ok", admin)])
        self.assertEqual(items[0]["detail"]["key_id"], kid)
        self.assertEqual(items[1]["detail"]["fields"], ["owner"])
        self.assertEqual([i["action"] for i in self.audit(target=kid, order="asc")["items"]],
                         ["key.renew"])
        inv = self.audit(target=k2["key"]["id"], order="asc")["items"]
        self.assertEqual([i["action"] for i in inv], ["key.create", "key.invalidate"])
        self.assertEqual(inv[1]["detail"]["reason"], "leaked in a log")
        for i in items + inv:
            self.assertRegex(i["hash"], r"^[0-9a-f]{64}$")
            self.assertRegex(i["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # no secret anywhere in the trail
        whole = json.dumps(self.list_all("/v1/audit"))
        for s in (b["secret"], k2["secret"], self.srv.admin_key):
            self.assertNotIn(s, whole)
            self.assertNotIn(s[3:40], whole)

    def test_policy_changes_and_newest_first(self):
        self.expect(self.srv.post("/v1/policies", {"name": "audited", "max_lifetime": "90d",
                                                   "default_lifetime": "30d"}), 201)
        self.expect(self.srv.patch("/v1/policies/audited", {"renewable": False}), 200)
        items = self.audit(target="audited")["items"]
        self.assertEqual([i["action"] for i in items], ["policy.update", "policy.create"])
        self.assertIs(items[0]["detail"]["renewable"], False)
        self.assertEqual(items[1]["detail"]["max_lifetime_s"], 90 * 86400)
        self.assertGreater(items[0]["seq"], items[1]["seq"])
        self.assertEqual(items[0]["prev_hash"] is None, items[0]["seq"] == 1)

    def test_refused_requests_are_recorded(self):
        op = self.create(scopes=["keyward:operator"], name="auditee-op")
        self.assertProblem(self.srv.get("/v1/audit", token=None), 401)
        self.assertProblem(self.srv.post("/v1/policies", {"name": "nope"}, token=op["secret"]), 403)
        kid = op["key"]["id"]
        self.assertProblem(self.srv.post("/v1/keys/%s/invalidate" % kid, {}, token="garbage"), 401)
        recent = self.audit(limit=20)["items"]
        mine = [i for i in recent if i["outcome"] == "denied"][:3]
        self.assertEqual([(i["actor"], i["detail"]["status"], i["detail"]["route"],
                           i["detail"]["method"], i["target"]) for i in mine],
                         [("anonymous", 401, "v1/keys/*/invalidate", "POST", kid),
                          (op["credential"]["id"], 403, "v1/policies", "POST", None),
                          ("anonymous", 401, "v1/audit", "GET", None)])
        for i in mine:
            self.assertEqual(i["action"], "admin.request")
            self.assertEqual(i["detail"]["client"], "127.0.0.1")

    def test_filters_paging_and_bad_input(self):
        for n in range(5):
            self.create(name="paged-%d" % n)
        admin = self.admin_id()
        got = self.list_all("/v1/audit", query={"actor": admin, "order": "asc"}, limit=2)
        seqs = [i["seq"] for i in got]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))
        self.assertTrue(all(i["actor"] == admin for i in got))
        desc = self.list_all("/v1/audit", limit=3)
        self.assertEqual([i["seq"] for i in desc], sorted((i["seq"] for i in desc), reverse=True))
        for q, field in (({"order": "up"}, "order"), ({"limit": "0"}, "limit"),
                         ({"cursor": "x"}, "cursor"), ({"target": ""}, "target")):
            self.assertProblem(self.srv.get("/v1/audit", query=q), 400, field)
        v = self.verdict()
        self.assertEqual((v["ok"], v["first_bad"], v["reason"]), (True, None, None))
        self.assertEqual(v["records"], desc[0]["seq"])
        self.assertEqual(v["head"], desc[0]["hash"])

    def test_cli_list_and_verify(self):
        self.create(name="cli-audited")
        p = self.srv.cli("audit", "verify")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("ok", p.stdout)
        p = self.srv.cli("audit", "list", "--limit", "5")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertIn("credential.create", p.stdout)
        p = self.srv.cli("audit", "list", "--json", "--limit", "1")
        self.assertEqual(p.returncode, 0, p.describe())
        self.assertEqual(len(json.loads(p.stdout)["items"]), 1)


class AuditFailure(AuditBase):
    """A change that cannot be audited is not made: the audit table is made read-only with a
    trigger (from outside, with the sqlite3 CLI) while the daemon runs."""

    def test_unauditable_change_is_refused_with_503(self):
        b = self.create(lifetime="30d")
        before_creds = len(self.list_all())
        before = self.verdict()["records"]
        sql(self.srv.db, "CREATE TRIGGER audit_ro BEFORE INSERT ON audit "
                         "BEGIN SELECT RAISE(ABORT, 'audit is read-only'); END;")
        try:
            calls = [
                lambda: self.srv.post("/v1/credentials", {"name": "unaudited"}),
                lambda: self.srv.patch("/v1/credentials/" + b["credential"]["id"], {"owner": "x"}),
                lambda: self.srv.post("/v1/keys/%s/renew" % b["key"]["id"], {"extend_by": "1d"}),
                lambda: self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {}),
                lambda: self.srv.post("/v1/policies", {"name": "unaudited"}),
            ]
            for c in calls:
                r = c()
                p = self.assertProblem(r, 503)
                self.assertIn("audit", p["detail"])
                self.assertNotIn("secret", r.body)
        finally:
            sql(self.srv.db, "DROP TRIGGER audit_ro;")
        self.assertEqual(len(self.list_all()), before_creds)
        k = self.get_key(b["key"]["id"])
        self.assertEqual((k["state"], k["expires_at"]), ("active", b["key"]["expires_at"]))
        self.verify_code(b["secret"], "VALID")
        self.assertProblem(self.srv.get("/v1/policies/unaudited"), 404)
        self.assertIsNone(self.get_cred(b["credential"]["id"])["owner"])
        v = self.verdict()
        self.assertEqual((v["ok"], v["records"]), (True, before))
        # and once the trail accepts records again, changes go through
        self.expect(self.srv.patch("/v1/credentials/" + b["credential"]["id"], {"owner": "x"}), 200)


class Tamper(AuditBase):
    """Each tampering is done on a copy of the stopped daemon's file, then the daemon is
    started on it and asked to verify."""

    def tampered(self, text):
        shutil.copy(self.pristine, self.srv.db)
        if text:
            sql(self.srv.db, text)
        self.srv.start()
        try:
            v = self.verdict()
            p = self.srv.cli("audit", "verify")
        finally:
            self.srv.stop()
        return v, p

    def test_edit_delete_insert_reorder_detected(self):
        for n in range(4):
            b = self.create(name="tamper-%d" % n, lifetime="30d")
            self.expect(self.srv.post("/v1/keys/%s/renew" % b["key"]["id"], {"extend_by": "1d"}),
                        200)
        n = self.verdict()["records"]
        self.assertGreaterEqual(n, 9)
        self.srv.stop()
        self.pristine = self.srv.db + ".pristine"
        shutil.copy(self.srv.db, self.pristine)
        cols = "at, actor, action, target, outcome, detail, prev_hash, hash"
        cases = [
            ("untouched", "", None),
            ("edit detail", "UPDATE audit SET detail = '{\"name\":\"innocent\"}' WHERE seq = 3;", 3),
            ("edit actor", "UPDATE audit SET actor = 'cred_someoneElse' WHERE seq = 6;", 6),
            ("delete middle", "DELETE FROM audit WHERE seq = 4;", 5),
            ("delete last", "DELETE FROM audit WHERE seq = %d;" % n, n),
            ("delete first", "DELETE FROM audit WHERE seq = 1;", 2),
            ("insert at end",
             "INSERT INTO audit (seq, %s) SELECT seq + 1, at, actor, action, target, outcome, "
             "detail, hash, randomblob(32) FROM audit WHERE seq = %d;" % (cols, n), n + 1),
            ("insert in middle",
             "UPDATE audit SET seq = -seq WHERE seq >= 5; "
             "UPDATE audit SET seq = 1 - seq WHERE seq < 0; "
             "INSERT INTO audit (seq, %s) SELECT 5, at, 'anonymous', 'key.create', target, "
             "outcome, detail, hash, randomblob(32) FROM audit WHERE seq = 4;" % cols, 5),
            ("reorder",
             "UPDATE audit SET seq = -3 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; "
             "UPDATE audit SET seq = 4 WHERE seq = -3;", 3),
            ("recompute nothing, swap hashes",
             "UPDATE audit SET hash = (SELECT hash FROM audit WHERE seq = 2) WHERE seq = 7;", 7),
        ]
        for name, text, bad in cases:
            v, p = self.tampered(text)
            if bad is None:
                self.assertEqual((v["ok"], v["first_bad"], v["records"]), (True, None, n), name)
                self.assertEqual(p.returncode, 0, p.describe())
            else:
                self.assertIs(v["ok"], False, "%s: %s" % (name, v))
                self.assertEqual(v["first_bad"], bad, "%s: %s" % (name, v))
                self.assertTrue(v["reason"], name)
                self.assertNotEqual(p.returncode, 0, "%s: %s" % (name, p.describe()))
                self.assertIn(str(bad), p.stderr + p.stdout, "%s: %s" % (name, p.describe()))
        shutil.copy(self.pristine, self.srv.db)
        self.srv.start()
