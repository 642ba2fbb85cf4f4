"""Renewal and the approval workflow (SPEC §2, §5; docs/api.md Renewals, docs/approvals.md).

Every case runs against the real daemon; events are read back from the outbox table of the
live SQLite file (read-only, WAL allows it) to check they were written with the change."""

import json
import sqlite3
import time

from harness import DAY, ServerTestCase, iso, parse_time


class RenewalBase(ServerTestCase):

    counter = 0

    def policy(self, **fields):
        RenewalBase.counter += 1
        fields.setdefault("name", "p%d-%s" % (RenewalBase.counter, self.id().rsplit(".", 1)[-1][5:30].replace("_", "-")))
        r = self.srv.post("/v1/policies", fields)
        return self.expect(r, 201, "create policy")["name"]

    def principal(self, role):
        return self.create(scopes=[role], name="p-" + role)

    def key_of(self, b):
        return b["key"]

    def renew(self, key_id, body, token=None, status=None):
        kw = {} if token is None else {"token": token}
        r = self.srv.post("/v1/keys/%s/renew" % key_id, body, **kw)
        if status is not None:
            self.expect(r, status, "renew")
        return r

    def events(self, key_id):
        db = sqlite3.connect("file:%s?mode=ro" % self.srv.db, uri=True, timeout=5)
        try:
            rows = db.execute("SELECT type, payload FROM events ORDER BY seq").fetchall()
        finally:
            db.close()
        out = []
        for t, p in rows:
            pl = json.loads(p)
            if pl.get("key_id") == key_id:
                out.append((t, pl))
        return out

    def audit_actions(self, target):
        r = self.srv.get("/v1/audit", query={"target": target, "order": "asc"})
        return [a["action"] for a in self.expect(r, 200, "audit")["items"]]


class Renew(RenewalBase):

    def test_extend_by_adds_to_current_expiry(self):
        b = self.create(lifetime="30d")
        k = b["key"]
        old = parse_time(k["expires_at"])
        r = self.renew(k["id"], {"extend_by": "90d", "reason": "contract extended"}, status=200)
        nk = r.body["key"]
        self.assertEqual(nk["id"], k["id"])
        self.assertEqual(parse_time(nk["expires_at"]), old + 90 * DAY, r.describe())
        self.assertIs(r.body["capped"], False)
        self.assertEqual(nk["state"], "active")
        # the stored key, verification and the outbox agree
        self.assertEqual(self.get_key(k["id"])["expires_at"], nk["expires_at"])
        v = self.verify_code(b["secret"], "VALID")
        self.assertEqual(v["expires_at"], nk["expires_at"])
        ev = [p for t, p in self.events(k["id"]) if t == "key.renewed"]
        self.assertEqual(len(ev), 1, self.events(k["id"]))
        self.assertEqual(ev[0]["expires_at"], nk["expires_at"])
        self.assertEqual(ev[0]["previous_expires_at"], k["expires_at"])
        self.assertNotIn(b["secret"], json.dumps(ev))
        self.assertIn("key.renew", self.audit_actions(k["id"]))

    def test_capped_at_now_plus_max_lifetime(self):
        b = self.create(lifetime="300d")
        t0 = time.time()
        r = self.renew(b["key"]["id"], {"extend_by": "200d"}, status=200)
        exp = parse_time(r.body["key"]["expires_at"])
        self.assertTrue(t0 + 365 * DAY - 1 <= exp <= time.time() + 365 * DAY + 1, r.describe())
        self.assertIs(r.body["capped"], True)

    def test_already_at_cap_is_409(self):
        b = self.create()  # default lifetime = max_lifetime = 365d
        r = self.renew(b["key"]["id"], {"extend_by": "1d"})
        self.assertProblem(r, 409)
        self.assertIn("already expires", r.body["detail"])
        self.assertEqual(self.get_key(b["key"]["id"])["expires_at"], b["key"]["expires_at"])

    def test_expires_at_form(self):
        b = self.create(lifetime="10d")
        kid = b["key"]["id"]
        want = iso(time.time() + 100 * DAY)
        r = self.renew(kid, {"expires_at": want}, status=200)
        self.assertEqual(r.body["key"]["expires_at"], want)
        # beyond now + max_lifetime: refused, not silently moved
        self.assertProblem(self.renew(kid, {"expires_at": iso(time.time() + 400 * DAY)}), 422,
                           "expires_at")
        # not later than the current expiry
        self.assertProblem(self.renew(kid, {"expires_at": iso(time.time() + 50 * DAY)}), 409,
                           "expires_at")
        # in the past
        self.assertProblem(self.renew(kid, {"expires_at": iso(time.time() - 60)}), 400,
                           "expires_at")
        self.assertEqual(self.get_key(kid)["expires_at"], want)

    def test_never_expiring_revoked_expired_and_policy_409(self):
        never = self.policy(allow_never_expire=True)
        b = self.create(policy=never, lifetime="never")
        r = self.renew(b["key"]["id"], {"extend_by": "1d"})
        self.assertProblem(r, 409)
        self.assertIn("never expires", r.body["detail"])

        b = self.create(lifetime="30d")
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {}), 200)
        r = self.renew(b["key"]["id"], {"extend_by": "1d"})
        self.assertProblem(r, 409)
        self.assertIn("invalidated", r.body["detail"])

        b = self.create(lifetime="1s")
        time.sleep(1.5)
        r = self.renew(b["key"]["id"], {"extend_by": "1d"})
        self.assertProblem(r, 409)
        self.assertIn("expired", r.body["detail"])
        self.verify_code(b["secret"], "EXPIRED")

        fixed = self.policy(renewable=False)
        b = self.create(policy=fixed, lifetime="30d")
        r = self.renew(b["key"]["id"], {"extend_by": "1d"})
        self.assertProblem(r, 409)
        self.assertIn("does not allow renewal", r.body["detail"])
        self.assertEqual(self.get_key(b["key"]["id"])["expires_at"], b["key"]["expires_at"])
        self.assertEqual([t for t, _ in self.events(b["key"]["id"])], ["key.created"])

    def test_bad_input(self):
        b = self.create(lifetime="30d")
        kid = b["key"]["id"]
        for body, field in (({}, "extend_by"),
                            ({"extend_by": "1d", "expires_at": iso(time.time() + DAY)}, "extend_by"),
                            ({"extend_by": "soon"}, "extend_by"), ({"extend_by": 90}, "extend_by"),
                            ({"extend_by": "0d"}, "extend_by"),
                            ({"expires_at": "tomorrow"}, "expires_at"),
                            ({"extend_by": "1d", "reason": 5}, "reason"),
                            ({"extend_by": "1d", "reason": "x" * 201}, "reason"),
                            ({"extend_by": "1d", "why": "x"}, "why")):
            self.assertProblem(self.renew(kid, body), 400, field)
        self.assertProblem(self.renew("key_" + "A" * 22, {"extend_by": "1d"}), 404)
        self.assertProblem(self.renew("nope", {"extend_by": "1d"}), 404)
        self.assertEqual(self.get_key(kid)["expires_at"], b["key"]["expires_at"])


class Approval(RenewalBase):

    def setUp(self):
        self.pol = self.policy(renewal_requires_approval=True)
        self.op = self.principal("keyward:operator")
        self.appr = self.principal("keyward:approver")

    def request(self, b, token=None, **body):
        body = body or {"extend_by": "30d"}
        r = self.renew(b["key"]["id"], body, token=token or self.op["secret"], status=202)
        ren = r.body["renewal"]
        self.assertRegex(ren["id"], r"^ren_[0-9A-Za-z]{22}$")
        return ren

    def test_request_then_approve_by_second_principal(self):
        b = self.create(policy=self.pol, lifetime="10d")
        kid = b["key"]["id"]
        ren = self.request(b, extend_by="30d", reason="still in use")
        self.assertEqual((ren["key_id"], ren["requested_by"], ren["extend_by"], ren["reason"],
                          ren["state"], ren["decided_by"], ren["decided_at"], ren["note"]),
                         (kid, self.op["credential"]["id"], "30d", "still in use", "pending",
                          None, None, None))
        self.assertIsNone(ren["expires_at"])
        parse_time(ren["created_at"])
        # the key is unchanged until a decision
        self.assertEqual(self.get_key(kid)["expires_at"], b["key"]["expires_at"])
        pend = self.list_all("/v1/renewals", query={"state": "pending"})
        self.assertIn(ren["id"], [x["id"] for x in pend])
        # the operator may ask but not decide
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.op["secret"])
        self.assertProblem(r, 403)
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {"note": "ok, one more month"},
                          token=self.appr["secret"])
        d = self.expect(r, 200, "approve")
        self.assertEqual((d["state"], d["decided_by"], d["note"]),
                         ("approved", self.appr["credential"]["id"], "ok, one more month"))
        want = iso(parse_time(b["key"]["expires_at"]) + 30 * DAY)
        self.assertEqual(d["key"]["expires_at"], want)
        self.assertEqual(self.get_key(kid)["expires_at"], want)
        self.assertEqual(self.verify_code(b["secret"], "VALID")["expires_at"], want)
        # a decision is final
        for verb in ("approve", "reject"):
            r = self.srv.post("/v1/renewals/%s/%s" % (ren["id"], verb), {}, token=self.appr["secret"])
            self.assertProblem(r, 409)
        self.assertEqual(self.get_key(kid)["expires_at"], want)
        types = [t for t, _ in self.events(kid)]
        self.assertEqual(types, ["key.created", "renewal.requested", "key.renewed",
                                 "renewal.approved"])
        got = self.expect(self.srv.get("/v1/renewals/" + ren["id"], token=self.appr["secret"]), 200)
        self.assertEqual(got["state"], "approved")
        self.assertEqual(self.audit_actions(ren["id"]), ["renewal.request", "admin.request", "renewal.approve"])  # the operator's refused approve is recorded too

    def test_nobody_decides_their_own_request(self):
        b = self.create(policy=self.pol, lifetime="10d")
        ren = self.request(b, token=self.srv.admin_key)
        self.assertEqual(ren["requested_by"], self.get_admin_id())
        for verb in ("approve", "reject"):
            r = self.srv.post("/v1/renewals/%s/%s" % (ren["id"], verb), {})
            self.assertProblem(r, 403)
            self.assertIn("cannot decide", r.body["detail"])
        self.assertEqual(self.expect(self.srv.get("/v1/renewals/" + ren["id"]), 200)["state"],
                         "pending")
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        self.expect(r, 200)

    def get_admin_id(self):
        v = self.verify_code(self.srv.admin_key, "VALID")
        return v["credential_id"]

    def test_reject_keeps_key(self):
        b = self.create(policy=self.pol, lifetime="10d")
        ren = self.request(b)
        r = self.srv.post("/v1/renewals/%s/reject" % ren["id"], {"note": "rotate instead"},
                          token=self.appr["secret"])
        d = self.expect(r, 200)
        self.assertEqual((d["state"], d["note"]), ("rejected", "rotate instead"))
        self.assertNotIn("key", d)
        self.assertEqual(self.get_key(b["key"]["id"])["expires_at"], b["key"]["expires_at"])
        self.assertEqual([t for t, _ in self.events(b["key"]["id"])],
                         ["key.created", "renewal.requested", "renewal.rejected"])
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        self.assertProblem(r, 409)

    def test_one_pending_request_per_key(self):
        b = self.create(policy=self.pol, lifetime="10d")
        ren = self.request(b)
        r = self.renew(b["key"]["id"], {"extend_by": "5d"}, token=self.op["secret"])
        self.assertProblem(r, 409)
        self.assertIn(ren["id"], r.body["detail"])

    def test_request_cancelled_when_key_expires_first(self):
        b = self.create(policy=self.pol, lifetime="2s")
        ren = self.request(b, extend_by="1h")
        time.sleep(2.5)
        pend = self.list_all("/v1/renewals", query={"state": "pending"})
        self.assertNotIn(ren["id"], [x["id"] for x in pend])
        got = self.expect(self.srv.get("/v1/renewals/" + ren["id"]), 200)
        self.assertEqual((got["state"], got["decided_by"]), ("cancelled", "system"))
        self.assertIn("expired", got["note"])
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        self.assertProblem(r, 409)
        self.verify_code(b["secret"], "EXPIRED")
        self.assertIn("renewal.cancel", self.audit_actions(ren["id"]))

    def test_cancelled_on_decide_when_key_revoked(self):
        b = self.create(policy=self.pol, lifetime="10d")
        ren = self.request(b)
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % b["key"]["id"], {}), 200)
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        self.assertProblem(r, 409)
        got = self.expect(self.srv.get("/v1/renewals/" + ren["id"]), 200)
        self.assertEqual(got["state"], "cancelled")
        self.assertIn("invalidated", got["note"])

    def test_rechecked_against_policy_at_decision(self):
        pol = self.policy(renewal_requires_approval=True, max_lifetime="100d",
                          default_lifetime="10d")
        b = self.create(policy=pol, lifetime="10d")
        ren = self.request(b, extend_by="50d")
        self.expect(self.srv.patch("/v1/policies/" + pol, {"renewable": False}), 200)
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        self.assertProblem(r, 409)
        self.assertEqual(self.expect(self.srv.get("/v1/renewals/" + ren["id"]), 200)["state"],
                         "pending")
        # renewable again but with a lower cap: approval applies the cap of decision time
        self.expect(self.srv.patch("/v1/policies/" + pol, {"renewable": True,
                                                          "max_lifetime": "20d"}), 200)
        t0 = time.time()
        r = self.srv.post("/v1/renewals/%s/approve" % ren["id"], {}, token=self.appr["secret"])
        d = self.expect(r, 200)
        exp = parse_time(d["key"]["expires_at"])
        self.assertTrue(t0 + 20 * DAY - 2 <= exp <= time.time() + 20 * DAY + 1, r.describe())

    def test_expires_at_request(self):
        b = self.create(policy=self.pol, lifetime="10d")
        want = iso(time.time() + 40 * DAY)
        ren = self.request(b, expires_at=want)
        self.assertEqual((ren["expires_at"], ren["extend_by"]), (want, None))
        d = self.expect(self.srv.post("/v1/renewals/%s/approve" % ren["id"], {},
                                      token=self.appr["secret"]), 200)
        self.assertEqual(d["key"]["expires_at"], want)

    def test_list_filters_paging_and_bad_input(self):
        ids = []
        for _ in range(3):
            ids.append(self.request(self.create(policy=self.pol, lifetime="10d"))["id"])
        got = [x["id"] for x in self.list_all("/v1/renewals", query={"state": "pending"}, limit=1)]
        for i in ids:
            self.assertIn(i, got)
        self.assertEqual(len(got), len(set(got)))
        for q, field in (({"state": "open"}, "state"), ({"limit": "0"}, "limit"),
                         ({"cursor": "abc"}, "cursor"), ({"key_id": "x"}, "key_id")):
            self.assertProblem(self.srv.get("/v1/renewals", query=q), 400, field)
        self.assertProblem(self.srv.get("/v1/renewals/ren_" + "A" * 22), 404)
        self.assertProblem(self.srv.post("/v1/renewals/%s/approve" % ids[0], {"note": 1},
                                         token=self.appr["secret"]), 400, "note")
        self.assertProblem(self.srv.post("/v1/renewals/%s/approve" % ids[0], {"x": 1},
                                         token=self.appr["secret"]), 400, "x")
