"""Credentials: create, list (owner, expiring_within, pagination), show, patch, delete."""

import time
import uuid

from harness import DAY, MSG, ServerTestCase, iso, parse_time


def uniq(tag):
    return "%s-%s@example.com" % (tag, uuid.uuid4().hex[:8])


class Credentials(ServerTestCase):

    def assertKeyObj(self, k, cred_id, slot):
        self.assertIsInstance(k, dict)
        self.assertTrue(str(k.get("id", "")).startswith("key_"), k)
        self.assertEqual(k.get("credential_id"), cred_id, k)
        self.assertEqual(k.get("slot"), slot, k)
        self.assertEqual(k.get("state"), "active", k)
        self.assertIsNone(k.get("revoked_at"), k)
        self.assertIsNone(k.get("revoke_reason"), k)
        self.assertIsNone(k.get("last_used_at"), k)
        self.assertEqual(k.get("use_count"), 0, k)
        self.assertIsInstance(k.get("hint"), str, k)
        parse_time(k.get("created_at"))

    def test_create_full_shape(self):
        now = time.time()
        fields = dict(name="billing", owner="ops@example.com", scopes=["orders:read", "orders:write"],
                      allowed_cidrs=["10.0.0.0/8", "192.168.1.0/24"],
                      metadata={"team": "billing", "n": 3, "nested": {"a": [1, 2]}},
                      contacts=[{"type": "log"}], disabled=False)
        b = self.create(**fields)
        c, k = b["credential"], b["key"]
        self.assertTrue(c.get("id", "").startswith("cred_"), c)
        for f, v in fields.items():
            self.assertEqual(c.get(f), v, "field %s" % f)
        self.assertEqual(c.get("policy"), "default")
        self.assertEqual(c.get("prefix"), "kw")
        self.assertLess(abs(parse_time(c["created_at"]) - now), 10)
        parse_time(c.get("updated_at"))
        self.assertKeyObj(k, c["id"], 1)
        # default lifetime 365d
        self.assertAlmostEqual(parse_time(k["expires_at"]), now + 365 * DAY, delta=15)
        # the created credential is readable and lists its key
        g = self.get_cred(c["id"])
        for f, v in fields.items():
            self.assertEqual(g.get(f), v, "GET field %s" % f)
        self.assertEqual([x["id"] for x in g.get("keys", [])], [k["id"]])
        self.assertEqual(self.get_key(k["id"])["expires_at"], k["expires_at"])

    def test_only_name_required(self):
        b = self.create(name="minimal")
        c = b["credential"]
        self.assertEqual(c["name"], "minimal")
        self.assertIsNone(c.get("owner", "missing"))
        self.assertEqual(c.get("scopes"), [])
        self.assertEqual(c.get("allowed_cidrs"), [])
        self.assertEqual(c.get("metadata"), {})
        self.assertEqual(c.get("contacts"), [])
        self.assertIs(c.get("disabled"), False)
        self.verify_code(b["secret"], "VALID")
        r = self.srv.post("/v1/credentials", {"owner": "x@example.com"})
        self.assertProblem(r, 400, "name")

    def test_create_with_lifetime_and_expires_at(self):
        now = time.time()
        b = self.create(lifetime="10d")
        self.assertAlmostEqual(parse_time(b["key"]["expires_at"]), now + 10 * DAY, delta=15)
        want = int(now) + 5 * DAY
        b = self.create(expires_at=iso(want))
        self.assertAlmostEqual(parse_time(b["key"]["expires_at"]), want, delta=1)

    def test_list_owner_filter(self):
        a, bb = uniq("ownera"), uniq("ownerb")
        ids_a = {self.create(owner=a)["credential"]["id"] for _ in range(3)}
        ids_b = {self.create(owner=bb)["credential"]["id"] for _ in range(2)}
        items = self.list_all(query={"owner": a})
        self.assertEqual(sorted(i["id"] for i in items), sorted(ids_a))
        self.assertTrue(all(i["owner"] == a for i in items))
        items = self.list_all(query={"owner": bb})
        self.assertEqual(sorted(i["id"] for i in items), sorted(ids_b))
        self.assertEqual(self.list_all(query={"owner": uniq("nobody")}), [])

    def test_pagination_covers_each_item_once(self):
        o = uniq("page")
        ids = [self.create(owner=o, name="page-%d" % i)["credential"]["id"] for i in range(7)]
        r = self.srv.get("/v1/credentials", query={"owner": o, "limit": 3})
        b = self.expect(r, 200)
        self.assertEqual(len(b["items"]), 3, r.describe())
        self.assertIsNotNone(b["next"], r.describe())
        items = self.list_all(query={"owner": o}, limit=3)
        got = [i["id"] for i in items]
        self.assertEqual(len(got), 7, got)
        self.assertEqual(sorted(got), sorted(ids))
        # over the whole collection, with a small page
        everything = [i["id"] for i in self.list_all(limit=2)]
        self.assertEqual(len(everything), len(set(everything)), "an item appears twice")
        for i in ids:
            self.assertIn(i, everything)
        one = [i["id"] for i in self.list_all(limit=1)]
        self.assertEqual(sorted(one), sorted(everything))

    def test_pagination_limit_bounds(self):
        for bad in ("0", "1001", "-1", "abc"):
            r = self.srv.get("/v1/credentials", query={"limit": bad})
            self.assertProblem(r, 400, "limit")
        r = self.srv.get("/v1/credentials", query={"cursor": "not-a-cursor!"})
        self.assertProblem(r, 400, "cursor")

    def test_expiring_within_filter(self):
        soon = self.create(lifetime="10d")["credential"]["id"]
        later = self.create(lifetime="300d")["credential"]["id"]
        ids = [i["id"] for i in self.list_all(query={"expiring_within": "30d"})]
        self.assertIn(soon, ids)
        self.assertNotIn(later, ids)
        ids = [i["id"] for i in self.list_all(query={"expiring_within": "301d"})]
        self.assertIn(soon, ids)
        self.assertIn(later, ids)
        r = self.srv.get("/v1/credentials", query={"expiring_within": "soon"})
        self.assertProblem(r, 400, "expiring_within")

    def test_show(self):
        b = self.create(owner="show@example.com", scopes=["s:1"])
        cid = b["credential"]["id"]
        nk = self.new_key(cid)
        g = self.get_cred(cid)
        self.assertEqual(g["id"], cid)
        self.assertEqual(g["owner"], "show@example.com")
        self.assertEqual(g["scopes"], ["s:1"])
        # keys newest first
        self.assertEqual([k["id"] for k in g["keys"]], [nk["key"]["id"], b["key"]["id"]])
        self.assertEqual([k["slot"] for k in g["keys"]], [2, 1])

    def test_patch_each_field(self):
        b = self.create(owner="before@example.com", scopes=["a"], allowed_cidrs=["10.0.0.0/8"],
                        metadata={"k": "v"}, contacts=[{"type": "log"}])
        cid = b["credential"]["id"]
        changes = [
            ("name", "renamed"),
            ("owner", "after@example.com"),
            ("owner", None),
            ("scopes", ["x:read", "x:write"]),
            ("scopes", []),
            ("allowed_cidrs", ["172.16.0.0/12"]),
            ("allowed_cidrs", []),
            ("metadata", {"env": "prod", "tier": 2}),
            ("contacts", [{"type": "email", "to": "alerts@example.com"}]),
            ("contacts", []),
            ("disabled", True),
            ("disabled", False),
        ]
        state = self.get_cred(cid)
        for field, value in changes:
            r = self.srv.patch("/v1/credentials/" + cid, {field: value})
            p = self.expect(r, 200, "PATCH %s" % field)
            self.assertEqual(p.get(field), value, r.describe())
            g = self.get_cred(cid)
            self.assertEqual(g.get(field), value, "GET after PATCH %s" % field)
            for other in ("name", "owner", "scopes", "allowed_cidrs", "metadata", "contacts",
                          "disabled", "prefix", "policy", "created_at"):
                if other != field:
                    self.assertEqual(g.get(other), state.get(other),
                                     "PATCH %s changed %s" % (field, other))
            state = g
        # the key still works with the final state
        self.verify_code(b["secret"], "VALID")

    def test_patch_scopes_apply_to_verification(self):
        b = self.create(scopes=["old"])
        cid = b["credential"]["id"]
        self.verify_code(b["secret"], "VALID", scope="old")
        self.expect(self.srv.patch("/v1/credentials/" + cid, {"scopes": ["new"]}), 200)
        self.verify_code(b["secret"], "FORBIDDEN_SCOPE", scope="old")
        self.verify_code(b["secret"], "VALID", scope="new")

    def test_unknown_id_404(self):
        for r in (self.srv.get("/v1/credentials/cred_doesnotexist"),
                  self.srv.patch("/v1/credentials/cred_doesnotexist", {"name": "x"}),
                  self.srv.delete("/v1/credentials/cred_doesnotexist"),
                  self.srv.post("/v1/credentials/cred_doesnotexist/keys", {}),
                  self.srv.get("/v1/keys/key_doesnotexist"),
                  self.srv.post("/v1/keys/key_doesnotexist/roll", {}),
                  self.srv.post("/v1/keys/key_doesnotexist/invalidate", {})):
            self.assertProblem(r, 404)

    def test_delete_revokes_keys(self):
        o = uniq("del")
        b = self.create(owner=o)
        cid = b["credential"]["id"]
        nk = self.new_key(cid)
        self.verify_code(b["secret"], "VALID")
        self.verify_code(nk["secret"], "VALID")
        r = self.srv.delete("/v1/credentials/" + cid)
        d = self.expect(r, 200, "DELETE")
        self.assertEqual(d.get("id"), cid, r.describe())
        self.assertProblem(self.srv.get("/v1/credentials/" + cid), 404)
        self.assertProblem(self.srv.delete("/v1/credentials/" + cid), 404)
        self.assertProblem(self.srv.patch("/v1/credentials/" + cid, {"name": "z"}), 404)
        self.assertEqual(self.list_all(query={"owner": o}), [])
        for s in (b["secret"], nk["secret"]):
            v = self.verify_code(s, "REVOKED")
            self.assertEqual(v["message"], MSG["REVOKED"])
        # no new key for a deleted credential
        r = self.srv.post("/v1/credentials/%s/keys" % cid, {})
        self.assertProblem(r, (404, 409))
        self.verify_code(b["secret"], "REVOKED")

    def test_expiring_soonest_first_usable_only(self):
        a = self.create(lifetime="5d")
        b = self.create(lifetime="2d")
        c = self.create(lifetime="9d")
        revoked = self.create(lifetime="3d")
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % revoked["key"]["id"], {}), 200)
        far = self.create(lifetime="20d")
        items = self.list_all("/v1/expiring", query={"within": "10d"})
        ids = [i["id"] for i in items]
        mine = [i for i in ids if i in (a["key"]["id"], b["key"]["id"], c["key"]["id"])]
        self.assertEqual(mine, [b["key"]["id"], a["key"]["id"], c["key"]["id"]])
        self.assertNotIn(revoked["key"]["id"], ids, "a revoked key listed as expiring")
        self.assertNotIn(far["key"]["id"], ids)
        exps = [parse_time(i["expires_at"]) for i in items]
        self.assertEqual(exps, sorted(exps), "not soonest first")
        byid = {i["id"]: i for i in items}
        self.assertEqual(byid[a["key"]["id"]].get("credential_name"), a["credential"]["name"])
        # pagination of the same list
        paged = [i["id"] for i in self.list_all("/v1/expiring", query={"within": "10d"}, limit=1)]
        self.assertEqual(paged, ids)

    def test_unicode_round_trip(self):
        name = "Z\u00fcrich \u2713 \u65e5\u672c"
        b = self.create(name=name, owner="j\u00fcrgen@example.com",
                        metadata={"note": "caf\u00e9 \U0001f600"})
        g = self.get_cred(b["credential"]["id"])
        self.assertEqual(g["name"], name)
        self.assertEqual(g["owner"], "j\u00fcrgen@example.com")
        self.assertEqual(g["metadata"], {"note": "caf\u00e9 \U0001f600"})
