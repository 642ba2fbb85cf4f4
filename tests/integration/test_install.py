"""What an operator installs (SPEC §9, issue 16): `make install DESTDIR=... PREFIX=...` lays out
the binary, library, headers, pkg-config file, man pages generated from the tables behind
--help, bash and zsh completion, the systemd unit and the config example; the real tools
accept them (man, bash, zsh, systemd-analyze); and `keyward serve --check-config` validates
flags, environment and config file without creating anything."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, REPO

MODE = "asan" if os.path.basename(os.path.dirname(BIN)) == "build-asan" else "release"
DEPLOY = os.path.join(REPO, "deploy")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="keyward-install-")
        r = run(["make", "-s", "-C", REPO, "MODE=" + MODE, "install", "DESTDIR=" + cls.dest,
                 "PREFIX=/usr/local"], timeout=600)
        if r.returncode != 0:
            raise RuntimeError("make install failed: %s %s" % (r.stdout[-1500:], r.stderr[-1500:]))
        cls.root = os.path.join(cls.dest, "usr", "local")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def test_tree(self):
        for rel in ("bin/keyward", "include/keyward.h", "lib/libkeyward.a", "lib/libkeyward.so",
                    "lib/pkgconfig/keyward.pc", "share/man/man1/keyward.1",
                    "share/man/man8/keyward-serve.8", "share/man/man5/keyward.conf.5",
                    "share/bash-completion/completions/keyward",
                    "share/zsh/site-functions/_keyward", "lib/systemd/system/keyward.service",
                    "share/doc/keyward/keyward.conf.example"):
            self.assertTrue(os.path.isfile(self.path(rel)), "not installed: " + rel)
        self.assertTrue(os.access(self.path("bin/keyward"), os.X_OK))
        v = run([self.path("bin/keyward"), "version"])
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertTrue(v.stdout.startswith("keyward "), v.stdout)
        # nothing outside DESTDIR's prefix
        self.assertEqual(os.listdir(self.dest), ["usr"])
        with open(self.path("lib/systemd/system/keyward.service")) as f:
            self.assertIn("ExecStart=/usr/local/bin/keyward serve", f.read())

    def man(self, page, section):
        src = self.path("share/man/man%s/%s.%s" % (section, page, section))
        r = run(["man", "--warnings", "-l", src],
                env=dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8", MANPAGER="cat",
                         PAGER="cat"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "", "man warnings for %s(%s)" % (page, section))
        # rendered text; man may hyphenate, so compare words without soft breaks
        return re.sub(r"[\u2010\-]\n\s+", "", r.stdout)

    def test_man_pages_follow_help(self):
        serve_help = run([BIN, "serve", "--help"]).stdout
        flags = re.findall(r"^  (--[a-z-]+)", serve_help, re.M)
        self.assertGreater(len(flags), 20)
        text8 = self.man("keyward-serve", "8")
        text5 = self.man("keyward.conf", "5")
        self.assertIn("KEYWARD-SERVE(8)", text8)
        for flag in flags:
            self.assertIn(flag, text8, "keyward-serve(8) lacks %s" % flag)
            if flag not in ("--config", "--check-config"):
                self.assertRegex(text5, r"(?m)^\s+%s\b" % re.escape(flag[2:]),
                                 "keyward.conf(5) lacks %s" % flag[2:])
        text1 = self.man("keyward", "1")
        main_help = run([BIN, "--help"]).stdout
        cmds = re.findall(r"^  ([a-z]+(?: [a-z]+)?) ", main_help, re.M)
        self.assertIn("cred create", cmds)
        for c in cmds:
            if c.split()[0] in ("serve", "version", "help"):
                self.assertIn(c.split()[0], text1)
            else:
                self.assertIn("keyward " + c, text1, "keyward(1) lacks %s" % c)
        # every option of every command, as its --help lists it
        for c in cmds:
            if c.split()[0] in ("serve", "version", "help"):
                continue
            h = run([BIN] + c.split() + ["--help"]).stdout
            for opt in re.findall(r"^  (--[a-z-]+)", h, re.M):
                if opt not in ("--json",):
                    self.assertIn(opt, text1, "keyward(1) lacks %s of %s" % (opt, c))

    def complete(self, *words):
        """COMPREPLY for `keyward WORDS...` with the cursor on the last word."""
        script = self.path("share/bash-completion/completions/keyward")
        ws = " ".join("'%s'" % w for w in ("keyward",) + words)
        r = run(["bash", "--norc", "--noprofile", "-c",
                 'source "$0"; complete -p keyward >/dev/null || exit 3; COMP_WORDS=(%s); '
                 'COMP_CWORD=%d; _keyward; printf "%%s\\n" "${COMPREPLY[@]}"' % (ws, len(words)),
                 script])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_bash_completion(self):
        self.assertEqual(self.complete("cr"), ["cred"])
        self.assertIn("serve", self.complete(""))
        self.assertEqual(self.complete("cred", "sh"), ["show"])
        self.assertEqual(self.complete("serve", "--check"), ["--check-config"])
        self.assertIn("--cursor", self.complete("cred", "list", "--c"))
        # every group completes to exactly the commands its --help lists
        for group in ("cred", "key", "renewal", "policy", "audit", "events"):
            h = run([BIN, group, "--help"]).stdout
            want = sorted(re.findall(r"^  ([a-z]+)", h.split("Commands:")[1], re.M))
            got = sorted(w for w in self.complete(group, "") if not w.startswith("-"))
            self.assertEqual(got, want, group)

    @unittest.skipUnless(shutil.which("zsh"), "zsh not installed (scripts/deps.sh installs it)")
    def test_zsh_completion(self):
        script = self.path("share/zsh/site-functions/_keyward")
        r = run(["zsh", "-n", script])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(script) as f:
            text = f.read()
        self.assertTrue(text.startswith("#compdef keyward"))

        def offered(*words):
            # compadd stubbed to print its candidates (zsh itself filters them by prefix)
            r = run(["zsh", "-fc", 'compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }; '
                     'words=(keyward %s); CURRENT=%d; source "$0"'
                     % (" ".join(words), len(words) + 1), script])
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout.split()

        self.assertIn("--check-config", offered("serve", "--"))
        self.assertIn("cred", offered(""))
        for group in ("cred", "key", "renewal", "policy", "audit", "events"):
            h = run([BIN, group, "--help"]).stdout
            want = sorted(re.findall(r"^  ([a-z]+)", h.split("Commands:")[1], re.M))
            got = sorted(w for w in offered(group, "") if not w.startswith("-"))
            self.assertEqual(got, want, group)

    def test_systemd_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.fail("systemd-analyze not installed (scripts/deps.sh installs systemd)")
        unit = self.path("lib/systemd/system/keyward.service")
        with open(unit) as f:
            text = f.read()
        for d in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=keyward",
                  "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes",
                  "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
            self.assertIn(d, text)
        # the installed binary stands in for /usr/local/bin (outside DESTDIR it is not there)
        tmp = tempfile.mkdtemp(prefix="keyward-unit-")
        try:
            with open(os.path.join(tmp, "keyward.service"), "w") as f:
                f.write(text.replace("/usr/local/bin/keyward", self.path("bin/keyward")))
            # MANPATH: the Documentation= man pages must be the installed ones
            r = run([analyze, "verify", os.path.join(tmp, "keyward.service")],
                    env=dict(os.environ, MANPATH=self.path("share/man")))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stderr.strip(), "", r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class CheckConfig(unittest.TestCase):
    """`keyward serve --check-config`: exit 0 and "configuration OK" for a good setup, one
    line naming the bad setting (and file:line) otherwise; never creates a file."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="keyward-check-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        e.update(env or {})
        before = sorted(os.listdir(self.tmp))
        r = run([BIN, "serve", "--check-config"] + list(args), env=e, cwd=self.tmp)
        self.assertEqual(sorted(os.listdir(self.tmp)), before, "--check-config created a file")
        return r

    def test_example_config_passes(self):
        ex = os.path.join(DEPLOY, "keyward.conf.example")
        # the example's paths are the unit's (/var/lib/keyward); point them here
        r = self.check("--config", ex, "--store", "sqlite:%s/k.db" % self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)
        # and the unit's own path fails only for the directory, naming it
        if not os.path.isdir("/var/lib/keyward"):
            r = self.check("--config", ex)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("/var/lib/keyward", r.stderr)

    def test_bad_mail_template_named_with_file_and_line(self):
        tpl = os.path.join(self.tmp, "tpl")
        os.mkdir(tpl)
        with open(os.path.join(tpl, "key.created.txt"), "w") as f:
            f.write("Subject: new key\n\nHello {{credential.nope}}\n")
        r = self.check("--mail-templates", tpl, "--store", "sqlite:%s/k.db" % self.tmp)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("key.created.txt:3", r.stderr)

    def test_example_config_serves(self):
        """The example runs as written (paths and port aside): /healthz answers."""
        import http.client
        import signal
        import time
        from harness import free_port
        port = free_port()
        e = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        p = subprocess.Popen([BIN, "serve", "--config", os.path.join(DEPLOY, "keyward.conf.example"),
                              "--store", "sqlite:%s/k.db" % self.tmp,
                              "--listen", "127.0.0.1:%d" % port], env=e, cwd=self.tmp,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline, status = time.time() + 20, None
            while time.time() < deadline and p.poll() is None and status != 200:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/healthz")
                    status = c.getresponse().status
                    c.close()
                except OSError:
                    time.sleep(0.1)
            self.assertEqual(status, 200, "keyward did not start with the example config")
            self.assertTrue(os.path.exists(os.path.join(self.tmp, "k.admin-key")))
        finally:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err[-1000:])

    def test_defaults_pass_and_create_nothing(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "keyward: configuration OK")

    def test_bad_settings_named(self):
        conf = os.path.join(self.tmp, "k.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:8420\n# comment\nthreads = 0\n")
        r = self.check("--config", conf)
        self.assertEqual(r.returncode, 2)
        self.assertIn("k.conf:3: threads:", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:8420\nthred = 4\n")
        r = self.check("--config", conf)
        self.assertEqual(r.returncode, 2)
        self.assertIn("k.conf:2: unknown setting 'thred'", r.stderr)
        r = self.check(env={"KEYWARD_LISTEN": "::1:80"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("KEYWARD_LISTEN", r.stderr)
        r = self.check("--threads", "99")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--threads", r.stderr)
        r = self.check("--store", "sqlite:/nonexistent-dir/k.db")
        self.assertEqual(r.returncode, 2)
        self.assertIn("store", r.stderr)
        r = self.check("--pepper-file", os.path.join(self.tmp, "missing"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("pepper-file", r.stderr)
        # a flag only: KEYWARD_CHECK_CONFIG is not a variable, --check-config not a file line
        with open(conf, "w") as f:
            f.write("check-config\n")
        r = self.check("--config", conf)
        self.assertEqual(r.returncode, 2)
        self.assertIn("k.conf:1: check-config: not allowed inside a config file", r.stderr)
