"""Roles (SPEC §8; docs/api.md "Roles"): every endpoint against every role. A principal with
the role gets past authorization (its answer is not 401/403); one without gets 403, changes
nothing, and the refusal is in the audit trail under its own id. The matrix below must be
the one documented in docs/api.md."""

import os
import re

from harness import _NO_BODY, REPO, ServerTestCase

ROLES = ("admin", "operator", "approver", "auditor", "verifier")
READ = {"admin", "operator", "approver", "auditor"}
WRITE = {"admin", "operator"}
DECIDE = {"admin", "approver"}
AUDIT = {"admin", "auditor"}
ALL = set(ROLES)

FAKE_CRED = "cred_" + "Z" * 22
FAKE_KEY = "key_" + "Z" * 22
FAKE_REN = "ren_" + "Z" * 22
FAKE_EVT = "evt_" + "Z" * 22
FAKE_WAT = "wat_" + "Z" * 22

# (method, documented path, concrete path, body, roles allowed)
MATRIX = [
    ("POST", "/v1/credentials", "/v1/credentials", {"name": "made-by-{role}"}, WRITE),
    ("GET", "/v1/credentials", "/v1/credentials", None, READ),
    ("GET", "/v1/credentials/{id}", "/v1/credentials/" + FAKE_CRED, None, READ),
    ("PATCH", "/v1/credentials/{id}", "/v1/credentials/" + FAKE_CRED, {"owner": "x"}, WRITE),
    ("DELETE", "/v1/credentials/{id}", "/v1/credentials/" + FAKE_CRED, None, WRITE),
    ("POST", "/v1/credentials/{id}/keys", "/v1/credentials/%s/keys" % FAKE_CRED, {}, WRITE),
    ("GET", "/v1/keys/{id}", "/v1/keys/" + FAKE_KEY, None, READ),
    ("POST", "/v1/keys/{id}/roll", "/v1/keys/%s/roll" % FAKE_KEY, {}, WRITE),
    ("POST", "/v1/keys/{id}/invalidate", "/v1/keys/%s/invalidate" % FAKE_KEY, {}, WRITE),
    ("POST", "/v1/keys/{id}/renew", "/v1/keys/%s/renew" % FAKE_KEY, {"extend_by": "1d"}, WRITE),
    ("GET", "/v1/expiring", "/v1/expiring", None, READ),
    ("GET", "/v1/policies", "/v1/policies", None, READ),
    ("POST", "/v1/policies", "/v1/policies", {"name": "made-by-{role}"}, {"admin"}),
    ("GET", "/v1/policies/{name}", "/v1/policies/default", None, READ),
    ("PATCH", "/v1/policies/{name}", "/v1/policies/no-such-policy", {"renewable": True}, {"admin"}),
    ("GET", "/v1/renewals", "/v1/renewals", None, READ),
    ("GET", "/v1/renewals/{id}", "/v1/renewals/" + FAKE_REN, None, READ),
    ("POST", "/v1/renewals/{id}/approve", "/v1/renewals/%s/approve" % FAKE_REN, {}, DECIDE),
    ("POST", "/v1/renewals/{id}/reject", "/v1/renewals/%s/reject" % FAKE_REN, {}, DECIDE),
    ("GET", "/v1/audit", "/v1/audit", None, AUDIT),
    ("GET", "/v1/audit/verify", "/v1/audit/verify", None, AUDIT),
    ("POST", "/v1/audit/archive", "/v1/audit/archive", {"before": "2000-01-01T00:00:00Z"},
     {"admin"}),
    ("POST", "/v1/keys/verify", "/v1/keys/verify", {"key": "kw_x"}, ALL),
    ("GET", "/v1/auth", "/v1/auth", None, ALL),
    ("GET", "/healthz", "/healthz", None, ALL),
    ("GET", "/readyz", "/readyz", None, ALL),
    ("GET", "/metrics", "/metrics", None, ALL),
    ("GET", "/v1/events", "/v1/events", None, READ),
    ("GET", "/v1/events/{id}", "/v1/events/" + FAKE_EVT, None, READ),
    ("POST", "/v1/events/{id}/retry", "/v1/events/%s/retry" % FAKE_EVT, {}, WRITE),
    # watched credentials (SPEC 12); GET /v1/watched/{id}/token goes by scope, not role
    ("POST", "/v1/watched", "/v1/watched", {"name": "made-by-{role}", "kind": "static"}, WRITE),
    ("GET", "/v1/watched", "/v1/watched", None, READ),
    ("GET", "/v1/watched/{id}", "/v1/watched/" + FAKE_WAT, None, READ),
    ("PATCH", "/v1/watched/{id}", "/v1/watched/" + FAKE_WAT, {"owner": "x"}, WRITE),
    ("DELETE", "/v1/watched/{id}", "/v1/watched/" + FAKE_WAT, None, WRITE),
    ("POST", "/v1/secrets/rotate-key", "/v1/secrets/rotate-key", {}, {"admin"}),
]
OPEN = {"/v1/keys/verify", "/v1/auth", "/healthz", "/readyz", "/metrics"}


def documented_matrix():
    """{(method, path): set of roles} from the Roles table of docs/api.md."""
    with open(os.path.join(REPO, "docs", "api.md")) as f:
        text = f.read()
    sec = text.split("## Roles", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in sec.splitlines():
        m = re.match(r"^\| ((?:`(?:GET|POST|PATCH|DELETE) [^`]+`(?:, )?)+) \|(.*)\|\s*$", line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        for meth, path in re.findall(r"`(GET|POST|PATCH|DELETE) ([^`]+)`", m.group(1)):
            out[(meth, path)] = {r for r, c in zip(ROLES, cells) if c}
    return out


class Roles(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokens = {}
        cls.ids = {}
        for role in ROLES:
            r = cls.srv.post("/v1/credentials", {"name": "role-" + role,
                                                 "scopes": ["keyward:" + role]})
            assert r.status == 201, r.describe()
            cls.tokens[role] = r.body["secret"]
            cls.ids[role] = r.body["credential"]["id"]
        r = cls.srv.post("/v1/credentials", {"name": "no-role", "scopes": ["orders:read"]})
        cls.tokens["none"] = r.body["secret"]
        cls.ids["none"] = r.body["credential"]["id"]

    def call(self, method, path, body, role):
        if isinstance(body, dict):
            body = {k: (v.replace("{role}", role) if isinstance(v, str) else v)
                    for k, v in body.items()}
        tok = self.tokens[role]
        if path in OPEN and path != "/v1/auth":
            tok = None  # open endpoints: the role's key is not sent (on /v1/auth it is the key checked)
        return self.srv.request(method, path, _NO_BODY if body is None else body, token=tok)

    def test_docs_match_matrix(self):
        doc = documented_matrix()
        want = {(m, p): roles for m, p, _c, _b, roles in MATRIX}
        self.assertEqual(set(doc), set(want), "endpoints in docs/api.md Roles table differ")
        for k in want:
            self.assertEqual(doc[k], want[k], "roles of %s %s" % k)

    def test_every_endpoint_every_role(self):
        before = len(self.list_all())
        refused = {r: 0 for r in ROLES + ("none",)}
        for method, doc_path, path, body, allowed in MATRIX:
            for role in ROLES + ("none",):
                r = self.call(method, path, body, role)
                what = "%s %s as %s" % (method, doc_path, role)
                if role in allowed or path in OPEN:
                    self.assertNotIn(r.status, (401, 403), what + ": " + r.describe())
                    self.assertLess(r.status, 500, what + ": " + r.describe())
                else:
                    b = self.assertProblem(r, 403)
                    self.assertIn("lacks the role", b["detail"], what)
                    refused[role] += 1
        # what the allowed roles created: one credential each for admin and operator, one
        # policy for admin; nothing by anybody else
        names = sorted(c["name"] for c in self.list_all() if c["name"].startswith("made-by-"))
        self.assertEqual(names, ["made-by-admin", "made-by-operator"])
        self.assertEqual(len(self.list_all()), before + 2)
        pols = [p["name"] for p in self.expect(self.srv.get("/v1/policies"), 200)["items"]]
        self.assertEqual([p for p in pols if p.startswith("made-by-")], ["made-by-admin"])
        # every refusal is in the trail under the refused principal
        for role, n in refused.items():
            items = self.list_all("/v1/audit", query={"actor": self.ids[role]})
            denied = [i for i in items if i["outcome"] == "denied"]
            self.assertEqual(len(denied), n, "denied records for %s" % role)
        self.assertEqual(refused["verifier"], len([m for m in MATRIX if m[2] not in OPEN]))
        self.assertEqual(refused["admin"], 0)


class VerifierRole(ServerTestCase):
    extra_args = ("--verify-requires-role",)

    def test_only_verifier_and_admin_may_verify(self):
        target = self.create(scopes=["orders:read"])["secret"]
        callers = {}
        for role in ROLES:
            callers[role] = self.create(scopes=["keyward:" + role], name="v-" + role)["secret"]
        for role, key in callers.items():
            r = self.srv.verify(target, headers={"Keyward-Caller-Key": key})
            r2 = self.srv.get("/v1/auth", token=target, headers={"Keyward-Caller-Key": key})
            if role in ("verifier", "admin"):
                self.assertEqual((r.status, r.body.get("code")), (200, "VALID"), r.describe())
                self.assertEqual(r2.status, 204, r2.describe())
            else:
                self.assertProblem(r, 403)
                self.assertEqual(r2.status, 403, r2.describe())
