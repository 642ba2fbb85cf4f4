"""Key text and hint (SPEC §3), and the secret shown exactly once."""

import json
import zlib

from harness import (B62, KEY_RE, ServerTestCase, check_chars, key_is_well_formed,
                     secret_part)


def b62_decode(s):
    n = 0
    for c in s:
        n = n * 62 + B62.index(c)
    return n


class KeyFormat(ServerTestCase):

    def assertKeyText(self, key, prefix):
        self.assertRegex(key, KEY_RE)
        self.assertTrue(key.startswith(prefix + "_"), key[:20])
        body, check = key[:-6], key[-6:]
        self.assertEqual(len(key), len(prefix) + 1 + 43 + 6)
        # Recompute the check independently: zlib crc32 of prefix_secret, base62, width 6.
        crc = zlib.crc32(body.encode()) & 0xFFFFFFFF
        self.assertEqual(b62_decode(check), crc, "check digits do not encode crc32 of the key")
        self.assertEqual(check, check_chars(body))
        # The secret is a 256-bit number written in base62.
        self.assertLess(b62_decode(secret_part(key)), 1 << 256)

    def test_default_prefix_and_check_digits(self):
        b = self.create()
        self.assertKeyText(b["secret"], "kw")
        self.assertEqual(b["credential"].get("prefix"), "kw")
        # the text that passed the offline check is the one the server accepts
        self.verify_code(b["secret"], "VALID")

    def test_many_keys_are_distinct_and_well_formed(self):
        seen = set()
        for i in range(10):
            b = self.create(name="distinct-%d" % i)
            self.assertKeyText(b["secret"], "kw")
            seen.add(secret_part(b["secret"]))
        self.assertEqual(len(seen), 10, "secrets repeat")

    def test_custom_prefix(self):
        for prefix in ("acme", "z", "a1b2c3", "p" + "x" * 15):
            b = self.create(prefix=prefix)
            self.assertKeyText(b["secret"], prefix)
            self.assertEqual(b["credential"].get("prefix"), prefix)
            self.assertTrue(b["key"]["hint"].startswith(prefix + "_"), b["key"]["hint"])
            self.verify_code(b["secret"], "VALID")
            # keys added later carry the credential's prefix too
            nk = self.new_key(b["credential"]["id"])
            self.assertKeyText(nk["secret"], prefix)
            self.verify_code(nk["secret"], "VALID")

    def assertHint(self, key_obj, secret):
        prefix = secret[:secret.index("_")]
        want = prefix + "_" + secret_part(secret)[:4] + "\u2026" + secret[-4:]
        self.assertEqual(key_obj.get("hint"), want)

    def test_hint(self):
        b = self.create(prefix="hint")
        self.assertHint(b["key"], b["secret"])
        self.assertHint(self.get_key(b["key"]["id"]), b["secret"])
        nk = self.new_key(b["credential"]["id"])
        self.assertHint(nk["key"], nk["secret"])
        # the hint is a partial record: far shorter than the key
        self.assertLess(len(b["key"]["hint"]), 20)

    def test_secret_only_in_creating_response(self):
        b = self.create(owner="once@example.com", scopes=["a:b"])
        s1 = b["secret"]
        cid, kid = b["credential"]["id"], b["key"]["id"]
        self.assertNotIn("secret", b["key"])
        self.assertNotIn("secret", b["credential"])
        nk = self.new_key(cid)
        s2 = nk["secret"]
        self.assertTrue(key_is_well_formed(s2))
        self.assertNotEqual(s1, s2)
        self.assertNotIn(secret_part(s1), json.dumps(nk), "old secret in a later response")
        # every later read: credential, keys, lists, expiring, verify
        reads = [
            self.srv.get("/v1/credentials/" + cid),
            self.srv.get("/v1/keys/" + kid),
            self.srv.get("/v1/keys/" + nk["key"]["id"]),
            self.srv.get("/v1/credentials", query={"owner": "once@example.com"}),
            self.srv.get("/v1/credentials"),
            self.srv.get("/v1/expiring", query={"within": "400d"}),
            self.srv.verify(s1),
            self.srv.verify(s2, scope="a:b"),
        ]
        for r in reads:
            self.assertEqual(r.status, 200, r.describe())
            text = r.raw.decode("utf-8", "replace")
            for s in (s1, s2):
                self.assertNotIn(secret_part(s), text, "secret returned by a read: %s %s"
                                 % (r.method, r.path))
            self.assertNotIn('"secret"', text, "a read carries a secret member: %s %s"
                             % (r.method, r.path))
        # the credential lists both keys, by hint, newest first
        c = reads[0].body
        self.assertEqual([k["id"] for k in c.get("keys", [])], [nk["key"]["id"], kid])

    def test_roll_shows_only_the_new_secret(self):
        b = self.create()
        r = self.srv.post("/v1/keys/%s/roll" % b["key"]["id"], {"overlap": "1h"})
        self.expect(r, 201, "roll")
        self.assertTrue(key_is_well_formed(r.body.get("secret", "")), r.describe())
        self.assertNotIn("secret", r.body.get("previous", {}), r.describe())
        self.assertNotIn("secret", r.body.get("key", {}), r.describe())
        self.assertNotIn(secret_part(b["secret"]), r.raw.decode(), "old secret in roll answer")
        self.assertHint(r.body["key"], r.body["secret"])
