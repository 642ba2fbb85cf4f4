"""Access to the admin API (SPEC §4, §8, §9; docs/api.md Authentication)."""

import os
import stat

from harness import KEY_RE, ServerTestCase, make_key


class Admin(ServerTestCase):

    def assertRefused(self, r, status, suffix):
        b = self.assertProblem(r, status)
        self.assertTrue(b["type"].endswith(suffix), "problem type %r; %s" % (b["type"], r.describe()))

    def count_creds(self):
        return len(self.list_all())

    def test_no_token_401(self):
        before = self.count_creds()
        for r in (self.srv.get("/v1/credentials", token=None),
                  self.srv.post("/v1/credentials", {"name": "nope"}, token=None),
                  self.srv.get("/v1/expiring", token=None),
                  self.srv.get("/v1/keys/key_x", token=None)):
            self.assertRefused(r, 401, "unauthorized")
        self.assertEqual(self.count_creds(), before, "an unauthenticated POST created something")

    def test_garbage_token_401(self):
        before = self.count_creds()
        for tok in ("garbage", "", make_key(), "kw_" + "A" * 49):
            r = self.srv.post("/v1/credentials", {"name": "nope"}, token=tok)
            self.assertRefused(r, 401, "unauthorized")
        r = self.srv.get("/v1/credentials", token=None, headers={"X-API-Key": make_key()})
        self.assertRefused(r, 401, "unauthorized")
        r = self.srv.get("/v1/credentials", token=None,
                         headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        self.assertRefused(r, 401, "unauthorized")
        self.assertEqual(self.count_creds(), before)

    def test_token_without_role_403(self):
        b = self.create(scopes=["orders:read", "keyward"])
        before = self.count_creds()
        s = b["secret"]
        self.assertRefused(self.srv.get("/v1/credentials", token=s), 403, "forbidden")
        self.assertRefused(self.srv.post("/v1/credentials", {"name": "x"}, token=s), 403,
                           "forbidden")
        self.assertRefused(self.srv.patch("/v1/credentials/" + b["credential"]["id"],
                                          {"scopes": ["keyward:admin"]}, token=s), 403,
                           "forbidden")
        self.assertEqual(self.get_cred(b["credential"]["id"])["scopes"], ["orders:read", "keyward"])
        self.assertEqual(self.count_creds(), before)

    def test_verifier_role_cannot_administer(self):
        b = self.create(scopes=["keyward:verifier"])
        self.assertRefused(self.srv.post("/v1/credentials", {"name": "x"}, token=b["secret"]),
                           403, "forbidden")

    def test_operator_can_create_credentials(self):
        op = self.create(scopes=["keyward:operator"])
        s = op["secret"]
        r = self.srv.post("/v1/credentials", {"name": "made-by-operator"}, token=s)
        b = self.expect(r, 201, "operator creates credential")
        self.assertRegex(b["secret"], KEY_RE)
        self.verify_code(b["secret"], "VALID")
        r = self.srv.get("/v1/credentials/" + b["credential"]["id"], token=s)
        self.expect(r, 200, "operator reads")
        r = self.srv.post("/v1/credentials/%s/keys" % b["credential"]["id"], {}, token=s)
        self.expect(r, 201, "operator adds a key")
        # X-API-Key works as well as Bearer
        r = self.srv.get("/v1/credentials", token=None, headers={"X-API-Key": s})
        self.expect(r, 200, "X-API-Key")

    def test_operator_cannot_change_policies(self):
        s = self.create(scopes=["keyward:operator"])["secret"]
        self.expect(self.srv.get("/v1/policies/default", token=s), 200, "operator reads policy")
        r = self.srv.request("PATCH", "/v1/policies/default", {"max_lifetime": "1000d"}, token=s)
        self.assertRefused(r, 403, "forbidden")
        r = self.srv.post("/v1/policies", {"name": "lax", "max_lifetime": "1000d"}, token=s)
        self.assertRefused(r, 403, "forbidden")

    def test_revoked_or_disabled_admin_key_refused(self):
        op = self.create(scopes=["keyward:admin"])
        s = op["secret"]
        self.expect(self.srv.get("/v1/credentials", token=s), 200)
        self.expect(self.srv.patch("/v1/credentials/" + op["credential"]["id"],
                                   {"disabled": True}), 200)
        r = self.srv.get("/v1/credentials", token=s)
        self.assertProblem(r, (401, 403))
        self.expect(self.srv.patch("/v1/credentials/" + op["credential"]["id"],
                                   {"disabled": False}), 200)
        self.expect(self.srv.get("/v1/credentials", token=s), 200)
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % op["key"]["id"], {}), 200)
        self.assertRefused(self.srv.get("/v1/credentials", token=s), 401, "unauthorized")

    def test_health_open(self):
        for path in ("/healthz", "/readyz"):
            r = self.srv.get(path, token=None)
            self.assertEqual(r.status, 200, r.describe())
            self.assertIsInstance(r.body, dict, r.describe())
            self.assertEqual(r.body.get("status"), "ok", r.describe())

    def test_admin_key_file(self):
        st = os.stat(self.srv.admin_key_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, "mode %o" % stat.S_IMODE(st.st_mode))
        self.assertEqual(st.st_uid, os.getuid())
        self.assertRegex(self.srv.admin_key, KEY_RE)
        v = self.verify_code(self.srv.admin_key, "VALID")
        self.assertIn("keyward:admin", v["scopes"])


class AdminKeyRestart(ServerTestCase):

    def test_admin_key_file_kept_on_restart(self):
        path = self.srv.admin_key_file
        with open(path, "rb") as f:
            before = f.read()
        ino = os.stat(path).st_ino
        old_key = self.srv.admin_key
        b = self.create()
        self.srv.restart()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before, "admin key file rewritten on restart")
        st = os.stat(path)
        self.assertEqual(st.st_ino, ino)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(self.srv.admin_key, old_key)
        self.expect(self.srv.get("/v1/credentials/" + b["credential"]["id"]), 200,
                    "the admin key still works after restart")
        # only one admin credential was ever made
        admins = [c for c in self.list_all() if "keyward:admin" in c.get("scopes", [])]
        self.assertEqual(len(admins), 1, [c["name"] for c in admins])


class VerifyRequiresRole(ServerTestCase):
    extra_args = ("--verify-requires-role",)

    def test_callers_need_verifier_key(self):
        target = self.create(scopes=["orders:read"])
        verifier = self.create(scopes=["keyward:verifier"])["secret"]
        plain = self.create(scopes=["orders:read"])["secret"]
        key = target["secret"]
        # no caller key
        r = self.srv.verify(key)
        self.assertProblem(r, (401, 403))
        # a caller without the role
        r = self.srv.verify(key, headers={"Keyward-Caller-Key": plain})
        self.assertProblem(r, 403)
        r = self.srv.verify(key, headers={"Keyward-Caller-Key": make_key()})
        self.assertProblem(r, 401)
        # a verifier
        r = self.srv.verify(key, scope="orders:read", headers={"Keyward-Caller-Key": verifier})
        self.assertEqual((r.status, r.body.get("code")), (200, "VALID"), r.describe())
        # the gateway form too
        r = self.srv.get("/v1/auth", token=key)
        self.assertIn(r.status, (401, 403), r.describe())
        r = self.srv.get("/v1/auth", token=key, headers={"Keyward-Caller-Key": verifier})
        self.assertEqual(r.status, 204, r.describe())
        # the verifier role still opens nothing else
        r = self.srv.get("/v1/credentials", token=verifier)
        self.assertProblem(r, 403)
