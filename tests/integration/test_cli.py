"""The CLI (SPEC §9): the rotation walkthrough through `keyward <cmd>`, --json output, and
failures as a non-zero exit with one "keyward: ..." line on stderr."""

import json
import os

from harness import KEY_RE, MSG, ServerTestCase, key_is_well_formed, secret_part


class Cli(ServerTestCase):

    def ok(self, *args, **kw):
        p = self.srv.cli(*args, **kw)
        self.assertEqual(p.returncode, 0, p.describe())
        return p

    def ok_json(self, *args, **kw):
        p = self.ok(*(args + ("--json",)), **kw)
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.fail("--json output does not parse; " + p.describe())

    def fails(self, *args, status=None, **kw):
        p = self.srv.cli(*args, **kw)
        self.assertNotEqual(p.returncode, 0, p.describe())
        if status is not None:
            self.assertEqual(p.returncode, status, p.describe())
        err = p.stderr.rstrip("\n")
        self.assertTrue(err.startswith("keyward:"), "stderr must start with 'keyward:'; "
                        + p.describe())
        self.assertNotIn("\n", err, "stderr must be one line; " + p.describe())
        return p

    def test_walkthrough(self):
        c = self.ok_json("cred", "create", "cli-walk", "--scope", "orders:read",
                         "--owner", "cli@example.com")
        cid, k1, s1 = c["credential"]["id"], c["key"]["id"], c["secret"]
        self.assertRegex(s1, KEY_RE)
        self.assertTrue(key_is_well_formed(s1))
        self.assertEqual(c["credential"]["scopes"], ["orders:read"])
        self.assertEqual(c["credential"]["owner"], "cli@example.com")
        # the server agrees
        self.assertEqual(self.get_cred(cid)["name"], "cli-walk")

        n = self.ok_json("key", "new", cid)
        k2, s2 = n["key"]["id"], n["secret"]
        self.assertEqual(n["key"]["slot"], 2)

        for s, kid, slot in ((s1, k1, 1), (s2, k2, 2)):
            v = self.ok_json("verify", s, "--scope", "orders:read")
            self.assertEqual((v["code"], v["key_id"], v["slot"]), ("VALID", kid, slot))
            p = self.ok("verify", s)
            self.assertIn("VALID", p.stdout + p.stderr, p.describe())

        # third key refused
        p = self.fails("key", "new", cid, status=1)
        self.assertEqual(p.stdout.strip(), "", p.describe())
        self.assertEqual(len(self.get_cred(cid)["keys"]), 2)

        k = self.ok_json("key", "invalidate", k1, "--reason", "rotated")
        self.assertEqual((k["id"], k["state"], k["revoke_reason"]), (k1, "revoked", "rotated"))
        self.assertEqual(self.get_key(k1)["state"], "revoked")

        # a key that is not valid: verify exits non-zero and says why
        p = self.srv.cli("verify", s1)
        self.assertNotEqual(p.returncode, 0, p.describe())
        out = p.stdout + p.stderr
        self.assertTrue("REVOKED" in out or MSG["REVOKED"] in out, p.describe())
        self.assertNotIn(secret_part(s1), p.stdout + p.stderr, "verify echoes the secret")
        p = self.srv.cli("verify", s1, "--json")
        self.assertNotEqual(p.returncode, 0, p.describe())
        if p.stdout.strip():
            self.assertEqual(json.loads(p.stdout)["code"], "REVOKED", p.describe())
        self.ok("verify", s2)

        n3 = self.ok_json("key", "new", cid)
        self.assertEqual(n3["key"]["slot"], 1)
        self.ok("verify", n3["secret"])

        # table output of create and new: the secret printed once, readable
        p = self.ok("cred", "create", "cli-table")
        found = [m for m in p.stdout.split() if KEY_RE.match(m)]
        self.assertEqual(len(found), 1, p.describe())
        self.assertTrue(key_is_well_formed(found[0]))
        self.ok("verify", found[0])

    def test_expiring(self):
        soon = self.ok_json("cred", "create", "cli-soon", "--lifetime", "10d")
        later = self.ok_json("cred", "create", "cli-later", "--lifetime", "200d")
        e = self.ok_json("expiring", "--within", "30d")
        ids = [k["id"] for k in e["items"]]
        self.assertIn(soon["key"]["id"], ids)
        self.assertNotIn(later["key"]["id"], ids)
        p = self.ok("expiring", "--within", "30d")
        self.assertIn(soon["key"]["id"], p.stdout, p.describe())
        self.assertNotIn(later["key"]["id"], p.stdout, p.describe())
        self.fails("expiring", "--within", "soon")

    def test_list_and_show_json(self):
        c = self.ok_json("cred", "create", "cli-show", "--scope", "a", "--cidr", "10.0.0.0/8")
        cid = c["credential"]["id"]
        s = self.ok_json("cred", "show", cid)
        self.assertEqual((s["id"], s["allowed_cidrs"]), (cid, ["10.0.0.0/8"]))
        self.assertNotIn(secret_part(c["secret"]), json.dumps(s))
        lst = self.ok_json("cred", "list", "--all")
        self.assertIn(cid, [i["id"] for i in lst["items"]] if isinstance(lst, dict)
                      else [i["id"] for i in lst])
        k = self.ok_json("key", "show", c["key"]["id"])
        self.assertEqual(k["id"], c["key"]["id"])
        self.assertNotIn("secret", k)

    def test_failures_are_one_line(self):
        self.fails("key", "invalidate", "key_doesnotexist", status=1)
        self.fails("cred", "show", "cred_doesnotexist", status=1)
        self.fails("cred", "create", "bad", "--lifetime", "10x")
        self.fails("cred", "create", "bad", "--lifetime", "400d")
        self.fails("cred", "create", "bad", "--prefix", "UPPER")
        self.fails("cred", "create", "bad", "--bogus-flag", status=2)
        self.fails("cred", "create", status=2)
        self.fails("no-such-command", status=2)
        # no token at all
        self.fails("cred", "list", token=None)
        # a wrong token
        self.fails("cred", "list", token="kw_nonsense")
        # nothing listening
        self.fails("cred", "list", addr="http://127.0.0.1:1", status=2)
        # and nothing was created by the refused commands
        names = [c["name"] for c in self.list_all()]
        self.assertNotIn("bad", names)

    def test_verify_needs_no_token(self):
        c = self.ok_json("cred", "create", "cli-notoken")
        self.ok("verify", c["secret"], token=None)
        p = self.srv.cli("verify", "kw_garbage", token=None)
        self.assertEqual(p.returncode, 1, p.describe())
        out = p.stdout + p.stderr
        self.assertTrue("MALFORMED" in out or MSG["MALFORMED"] in out, p.describe())

    def test_verify_reads_key_from_stdin(self):
        # keeps the secret out of the process list
        c = self.ok_json("cred", "create", "cli-stdin", "--scope", "s")
        v = self.ok_json("verify", "-", "--scope", "s", stdin=c["secret"] + "\n")
        self.assertEqual((v["code"], v["key_id"]), ("VALID", c["key"]["id"]))
        p = self.srv.cli("verify", "-", "--scope", "t", stdin=c["secret"] + "\n")
        self.assertEqual(p.returncode, 1, p.describe())


class CliOperator(ServerTestCase):
    """What an operator reaches for on day one (issue 16): help for every command, version as
    JSON, credentials by name, paging with --cursor, terminal-safe tables, exact usage errors,
    and KEYWARD_TOKEN_FILE= meaning no token file."""

    ok, ok_json, fails = Cli.ok, Cli.ok_json, Cli.fails

    def test_help_serve_and_columns(self):
        p = self.ok("help", "serve", token=None)
        self.assertIn("--check-config", p.stdout)
        self.assertIn("--listen HOST:PORT", p.stdout)
        for args in (("--help",), ("renewal", "--help"), ("help", "key"), ("help", "version")):
            p = self.ok(*args, token=None)
            for line in p.stdout.splitlines():
                # "  <command> <USAGE>  <description>": the usage never runs into the text
                if line.startswith("  ") and "RENEWAL_ID" in line:
                    self.assertRegex(line, r"RENEWAL_ID {2,}\S", line)
        p = self.ok("renewal", "show", "--help", token=None)
        self.assertIn("usage: keyward renewal show RENEWAL_ID", p.stdout)

    def test_version_json(self):
        v = self.ok_json("version", token=None)
        self.assertRegex(v["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(json.loads(self.ok("--json", "version", token=None).stdout), v)
        self.assertEqual(self.ok("version", token=None).stdout.split()[:2],
                         ["keyward", v["version"]])

    def test_usage_messages(self):
        c = self.ok_json("cred", "create", "cli-usage")
        p = self.fails("key", "renew", c["key"]["id"], "--extend-by", "1d", "--expires-at",
                       "2030-01-01T00:00:00Z", status=2)
        self.assertIn("not both", p.stderr)
        p = self.fails("key", "renew", c["key"]["id"], status=2)
        self.assertNotIn("not both", p.stderr)
        p = self.fails("cred", "create", "cli-bad-mail", "--contact-email", "not-an-address",
                       status=1)
        self.assertIn("'to' must be one address", p.stderr)
        self.assertNotIn("needs a 'to'", p.stderr)

    def test_request_rows(self):
        """Commands that are one request row: flags with a field become body members, the
        row's checks run before anything is sent, the answer is printed by the row's printer."""
        c = self.ok_json("cred", "create", "cli-rows", "--scope", "a", "--scope", "b",
                         "--owner", "o")
        cid, kid = c["credential"]["id"], c["key"]["id"]
        self.assertEqual((c["credential"]["scopes"], c["credential"]["owner"]), (["a", "b"], "o"))
        for args, msg in ((("cred", "update", cid), "nothing to update"),
                          (("cred", "update", cid, "--enable", "--disable"),
                           "--enable and --disable contradict each other"),
                          (("cred", "update", cid, "--clear-cidrs", "--cidr", "10.0.0.0/8"),
                           "--clear-cidrs and --cidr contradict each other"),
                          (("policy", "update", "default"),
                           "nothing to change: give at least one option"),
                          (("policy", "create", "cli-rows", "--renewable", "maybe"),
                           "--renewable takes yes or no, not 'maybe'")):
            p = self.fails(*args, status=2)
            self.assertIn(msg, p.stderr)
        self.assertEqual(self.get_cred(cid)["scopes"], ["a", "b"])
        p = self.ok("cred", "disable", cid)
        self.assertEqual(p.stdout, "Disabled credential %s (cli-rows).\n" % cid)
        self.assertTrue(self.get_cred(cid)["disabled"])
        self.ok("cred", "enable", cid)
        self.ok("cred", "update", cid, "--clear-scopes", "--name", "cli-rows-2", "--owner", "")
        got = self.get_cred(cid)
        self.assertEqual((got["scopes"], got["name"], got["owner"], got["disabled"]),
                         ([], "cli-rows-2", None, False))
        pol = self.ok_json("policy", "create", "cli-rows", "--max-lifetime", "400d",
                           "--renewable", "no")
        self.assertEqual((pol["name"], pol["max_lifetime"], pol["renewable"]),
                         ("cli-rows", "400d", False))
        p = self.ok("key", "invalidate", kid, "--reason", "rows")
        self.assertTrue(p.stdout.startswith("Invalidated key %s (" % kid), p.describe())
        self.assertEqual(self.ok_json("renewal", "list", "--key", kid, "--state", "all")["items"],
                         [])

    def test_untrusted_text_is_terminal_safe(self):
        evil = "inv\u202egnp.exe\u2028line\u2066x\u2069\u200f\x1b[31mred\u0085"
        r = self.srv.post("/v1/credentials", {"name": evil})
        if r.status != 201:   # the server may refuse C0/C1 controls in names: keep the rest
            evil = "inv\u202egnp.exe\u2028line\u2066x\u2069\u200fred"
            r = self.srv.post("/v1/credentials", {"name": evil})
        cid = self.expect(r, 201)["credential"]["id"]
        for args in (("cred", "list", "--all"), ("cred", "show", cid)):
            out = self.ok(*args).stdout
            for bad in ("\u202e", "\u2028", "\u2066", "\u2069", "\u200f", "\x1b", "\u0085"):
                self.assertNotIn(bad, out, "%r printed raw by %s" % (bad, args))
            self.assertIn("inv\\u202Egnp.exe\\u2028line", out)
        # --json keeps the exact text (JSON escapes it)
        self.assertEqual(self.ok_json("cred", "show", cid)["name"], evil)

    def test_credential_by_name(self):
        c = self.ok_json("cred", "create", "billing-prod")
        cid = c["credential"]["id"]
        self.assertEqual(self.ok_json("cred", "show", "billing-prod")["id"], cid)
        self.assertIn(cid, self.ok("cred", "show", "billing-prod").stdout)
        n = self.ok_json("key", "new", "billing-prod")
        self.assertEqual(n["key"]["credential_id"], cid)
        self.ok("cred", "update", "billing-prod", "--owner", "ops")
        self.assertEqual(self.get_cred(cid)["owner"], "ops")
        self.ok("cred", "disable", "billing-prod")
        self.assertTrue(self.get_cred(cid)["disabled"])
        self.ok("cred", "enable", "billing-prod")
        ev = self.ok_json("events", "list", "--credential", "billing-prod")
        self.assertTrue(ev["items"])
        self.assertEqual({e["credential_id"] for e in ev["items"]}, {cid})
        # the id still works, and an unknown name is one line, exit 1
        self.assertEqual(self.ok_json("cred", "show", cid)["id"], cid)
        p = self.fails("cred", "show", "no-such-name", status=1)
        self.assertIn("no-such-name", p.stderr)
        # two credentials with one name: an error naming both ids, nothing changed
        d = self.ok_json("cred", "create", "billing-dup")["credential"]["id"]
        e = self.ok_json("cred", "create", "billing-dup")["credential"]["id"]
        p = self.fails("cred", "delete", "billing-dup", "--yes", status=1)
        self.assertIn(d, p.stderr)
        self.assertIn(e, p.stderr)
        self.assertFalse(self.get_cred(d)["disabled"])
        self.expect(self.srv.get("/v1/credentials/" + e), 200)
        self.ok("cred", "delete", d, "--yes")

    def test_cursor(self):
        for i in range(3):
            self.ok_json("cred", "create", "cli-page-%d" % i, "--lifetime", "5d")
        cmds = (("cred", "list"), ("expiring", "--within", "30d"), ("events", "list"),
                ("audit", "list"))
        for cmd in cmds:
            first = self.ok_json(*cmd, "--limit", "1")
            self.assertEqual(len(first["items"]), 1, cmd)
            self.assertIsInstance(first["next"], str, cmd)
            second = self.ok_json(*cmd, "--limit", "1", "--cursor", first["next"])
            self.assertEqual(len(second["items"]), 1, cmd)
            self.assertNotEqual(first["items"][0], second["items"][0], cmd)
            rest = self.ok_json(*cmd, "--cursor", first["next"], "--all")
            self.assertEqual(rest["items"][0], second["items"][0], cmd)
            self.assertIsNone(rest["next"], cmd)
            self.fails(*cmd, "--cursor", "garbage", status=1)

    def test_empty_token_file_means_none(self):
        cwd = os.path.join(self.srv.tmpdir, "cli-cwd")
        os.makedirs(cwd, exist_ok=True)
        with open(os.path.join(cwd, "keyward.admin-key"), "w") as f:
            f.write(self.srv.admin_key + "\n")
        try:
            self.ok("cred", "list", token=None)   # the ./keyward.admin-key fallback
            p = self.fails("cred", "list", token=None, env={"KEYWARD_TOKEN_FILE": ""}, status=1)
            self.assertIn("401", p.stderr)
        finally:
            os.unlink(os.path.join(cwd, "keyward.admin-key"))
