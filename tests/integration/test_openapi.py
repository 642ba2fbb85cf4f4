"""docs/openapi.yaml (OpenAPI 3.1) against the program: the server serves it as
/v1/openapi.json; an independent validator (@redocly/cli, pinned in tools/openapi) accepts
it; and every route of src/server/api.c's table is documented and every documented route is
answered (a route added to the table without documentation fails here, by name)."""

import json
import os
import re
import subprocess
import unittest

import yaml

from harness import REPO, ServerTestCase, release_only

DOC = os.path.join(REPO, "docs", "openapi.yaml")
API_C = os.path.join(REPO, "src", "server", "api.c")
REDOCLY = os.path.join(REPO, "tools", "openapi", "node_modules", ".bin", "redocly")
METHODS = ("get", "post", "put", "patch", "delete")


def documented():
    with open(DOC, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    out = set()
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                out.add((m.upper(), re.sub(r"\{[^}]+\}", "*", path)))
    return doc, out


def route_table():
    """(METHOD, /pattern) of every row of `routes[]` in api.c."""
    with open(API_C, encoding="utf-8") as f:
        src = f.read()
    body = src[src.index("static const route_t routes[] = {"):]
    body = body[:body.index("\n};")]
    rows = re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)",', body)
    assert len(rows) > 20, "could not read the route table of api.c"
    return {(m, "/" + p) for m, p in rows}


class OpenApi(ServerTestCase):

    def test_served_document_is_the_yaml(self):
        r = self.srv.request("GET", "/v1/openapi.json", token=None)
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(r.ctype.startswith("application/json"), r.ctype)
        doc, _ = documented()
        self.assertEqual(r.body, json.loads(json.dumps(doc)))
        self.assertTrue(r.body["openapi"].startswith("3.1"))

    def test_every_route_documented_and_served(self):
        _, doc_routes = documented()
        table = route_table()
        missing = sorted(table - doc_routes)
        extra = sorted(doc_routes - table)
        self.assertEqual(missing, [], "routes of src/server/api.c missing from docs/openapi.yaml: "
                         + ", ".join("%s %s" % r for r in missing))
        self.assertEqual(extra, [], "routes in docs/openapi.yaml that api.c does not have: "
                         + ", ".join("%s %s" % r for r in extra))
        # and the running server answers every documented one (not "no such path", not 405)
        for method, path in sorted(doc_routes):
            concrete = path.replace("*", "x_doesnotexist")
            body = {} if method in ("POST", "PATCH", "PUT") else None
            if body is None:
                r = self.srv.request(method, concrete)
            else:
                r = self.srv.request(method, concrete, body)
            what = "%s %s -> %s" % (method, concrete, r.describe()[:400])
            self.assertNotEqual(r.status, 405, what)
            if r.status == 404 and isinstance(r.body, dict):
                self.assertFalse(str(r.body.get("detail", "")).startswith("no such path"), what)

    @release_only
    def test_redocly_lint(self):
        if not os.path.exists(REDOCLY):
            self.fail("%s missing: run scripts/deps.sh (scripts/npm-ci.sh tools/openapi)" % REDOCLY)
        r = subprocess.run([REDOCLY, "lint", "--format", "stylish", DOC], capture_output=True,
                           text=True, timeout=300, cwd=os.path.join(REPO, "tools", "openapi"))
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
