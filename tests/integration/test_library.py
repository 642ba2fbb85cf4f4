"""libkeyward as a user gets it: `make install PREFIX=<tmp>`, then a tiny C program built
with `pkg-config keyward` (shared, and static with --static) checks keys against the
running keyward over one kept-alive connection (include/keyward.h, docs/library.md)."""

import os
import shutil
import subprocess
import tempfile

from harness import MSG, REPO, ServerTestCase, make_key

PROG = r'''
#include <stdio.h>
#include <string.h>
#include <keyward.h>

int main(int argc, char **argv)
{
    keyward_client_t *c;
    keyward_result_t r;
    if (argc < 3 || keyward_client_new(argv[1], 3000, &c) != 0)
        return 2;
    printf("version %s %d\n", keyward_version(), KEYWARD_VERSION_NUM);
    for (int i = 2; i < argc; i++) {
        const char *key = argv[i], *scope = NULL;
        char *at = strchr(argv[i], '@');   /* KEY@SCOPE */
        if (at) { *at = '\0'; scope = at + 1; }
        printf("check %d\n", keyward_key_check(key, strlen(key)));
        int rc = keyward_auth(c, key, scope, NULL, &r);
        printf("auth %d %d %s %s|%s|%s|%s\n", rc, r.http_status, r.code, r.credential_id,
               r.key_id, r.sunset, r.message);
        rc = keyward_verify(c, key, scope, NULL, &r);
        printf("verify %d %d %s %s|%s|%s|%s\n", rc, r.valid, r.code, r.credential_id,
               r.key_id, r.scopes, r.message);
    }
    keyward_client_free(c);
    return 0;
}
'''


class Library(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prefix = tempfile.mkdtemp(prefix="keyward-lib-")
        r = subprocess.run(["make", "-s", "-C", REPO, "MODE=release", "install",
                            "PREFIX=" + cls.prefix], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("make install failed: %s %s" % (r.stdout[-1500:], r.stderr[-1500:]))
        cls.env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(cls.prefix, "lib", "pkgconfig"))
        src = os.path.join(cls.prefix, "prog.c")
        with open(src, "w") as f:
            f.write(PROG)
        cls.bins = {}
        for kind, flags in (("shared", "--cflags --libs keyward"),
                            ("static", "--static --cflags --libs keyward")):
            pc = subprocess.run(["pkg-config"] + flags.split(), capture_output=True, text=True,
                                env=cls.env)
            if pc.returncode != 0:
                raise RuntimeError("pkg-config keyward: %s" % pc.stderr)
            out = os.path.join(cls.prefix, "prog-" + kind)
            libs = pc.stdout.split()
            if kind == "static":   # link libkeyward.a itself, the rest as pkg-config says
                libs = [("-l:libkeyward.a" if x == "-lkeyward" else x) for x in libs]
            cmd = ["cc", "-std=c17", "-Wall", "-Werror", src, "-o", out] + libs + [
                "-Wl,-rpath," + os.path.join(cls.prefix, "lib")]
            b = subprocess.run(cmd, capture_output=True, text=True)
            if b.returncode != 0:
                raise RuntimeError("building against keyward.pc failed: %s\n%s"
                                   % (" ".join(cmd), b.stderr))
            cls.bins[kind] = out

    @classmethod
    def tearDownClass(cls):
        try:
            shutil.rmtree(cls.prefix, ignore_errors=True)
        finally:
            super().tearDownClass()

    def run_prog(self, kind, *args):
        r = subprocess.run([self.bins[kind], self.srv.addr] + list(args), capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_installed_files(self):
        for p in ("include/keyward.h", "lib/libkeyward.a", "lib/libkeyward.so",
                  "lib/libkeyward.so.0", "lib/pkgconfig/keyward.pc"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, p)), p)
        v = subprocess.run(["pkg-config", "--modversion", "keyward"], capture_output=True,
                           text=True, env=self.env)
        self.assertEqual(v.stdout.strip(), "0.1.0")

    def test_checks_against_running_keyward(self):
        good = self.create(scopes=["orders:read"])
        soon = self.create(lifetime="3d")
        gone = self.create()
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % gone["key"]["id"], {}), 200)
        unknown = make_key()
        for kind in ("shared", "static"):
            out = self.run_prog(kind, good["secret"], good["secret"] + "@orders:write",
                                soon["secret"], gone["secret"], unknown, "kw_junk")
            self.assertTrue(out[0].startswith("version 0.1.0 256"), out)
            want = [
                ("check 0", "auth 0 204 VALID %s|%s||OK" % (good["credential"]["id"],
                                                          good["key"]["id"]),
                 "verify 0 1 VALID %s|%s|orders:read|OK" % (good["credential"]["id"],
                                                          good["key"]["id"])),
                # /v1/auth names the credential only on 204 (SPEC §4); verify always does
                ("check 0", "auth 0 403 FORBIDDEN_SCOPE |||Forbidden: API key lacks scope "
                 "'orders:write'",
                 "verify 0 0 FORBIDDEN_SCOPE %s|%s|orders:read|Forbidden: API key lacks scope "
                 "'orders:write'" % (good["credential"]["id"], good["key"]["id"])),
            ]
            self.assertEqual(tuple(out[1:4]), want[0], out)
            self.assertEqual(tuple(out[4:7]), want[1], out)
            # 3d left under the default 30d threshold: the Sunset header reaches the client
            self.assertRegex(out[8], r"^auth 0 204 VALID cred_\S+\|key_\S+\|\w{3}, \d\d \w{3} "
                                     r"\d{4} \d\d:\d\d:\d\d GMT\|OK$")
            self.assertTrue(out[11].startswith("auth 0 401 REVOKED "), out[11])
            self.assertTrue(out[11].endswith("|" + MSG["REVOKED"]), out[11])
            self.assertEqual(out[14], "auth 0 401 NOT_FOUND |||" + MSG["NOT_FOUND"])
            self.assertEqual(out[15], "verify 0 0 NOT_FOUND |||" + MSG["NOT_FOUND"])
            self.assertEqual(out[16], "check -1")
            self.assertEqual(out[17], "auth 0 401 MALFORMED |||" + MSG["MALFORMED"])


    def test_access_token(self):
        """oauth (SPEC §13): libkeyward sends an OAuth2 access token to keyward (it is not a
        key, so keyward_key_check still says -1) instead of refusing it offline."""
        import base64
        from harness import remember
        c = self.create(scopes=["orders:read"])
        basic = base64.b64encode(("%s:%s" % (c["credential"]["id"], c["secret"])).encode())
        r = self.srv.request("POST", "/oauth2/token", raw="grant_type=client_credentials",
                             token=None, content_type="application/x-www-form-urlencoded",
                             headers={"Authorization": "Basic " + basic.decode()})
        tok = self.expect(r, 200, "token")["access_token"]
        remember(tok)
        ids = (c["credential"]["id"], c["key"]["id"])
        for kind in ("shared", "static"):
            out = self.run_prog(kind, tok + "@orders:read", tok[:-11] + "@orders:read")
            self.assertEqual(out[1:4], ["check -1", "auth 0 204 VALID %s|%s||OK" % ids,
                                        "verify 0 1 VALID %s|%s|orders:read|OK" % ids], out)
            self.assertEqual(out[5], "auth 0 401 MALFORMED |||" + MSG["MALFORMED"], out)
