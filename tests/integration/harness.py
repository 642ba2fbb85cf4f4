"""harness.py - start the real keyward binary on 127.0.0.1 with a temporary SQLite store
and talk to it the way a user does: JSON over HTTP, raw bytes over a socket, the CLI.

Every secret the tests see (the "secret" member of any response, any key text the CLI
prints, the admin key) is remembered in SECRETS; stopping a server checks that it exited 0
on SIGTERM and that none of those secrets appears in its logs or in any file of its store
directory other than the admin key file (SPEC §3: only a digest is stored, and secrets never
reach logs).

Standard library only. Binary: $KEYWARD_BIN, default <repo>/build/keyward.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import string
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import zlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("KEYWARD_BIN") or os.path.join(REPO, "build", "keyward")
if not os.path.isabs(BIN):
    BIN = os.path.join(REPO, BIN)

# Every secret the tests have seen, across all servers of the run.
SECRETS = set()

KEY_RE = re.compile(r"^[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{49}$")
KEY_FIND_RE = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{49}(?![A-Za-z0-9])")
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

MSG = {
    "MALFORMED": "Authentication failed: malformed API key",
    "NOT_FOUND": "Authentication failed: unknown API key",
    "REVOKED": "Authentication failed: API key has been invalidated",
    "EXPIRED": "Authentication Failed \u2013 Expired API Key",
    "DISABLED": "Authentication failed: credential is disabled",
    "FORBIDDEN_IP": "Forbidden: client address not allowed for this key",
}


def scope_msg(scope):
    return "Forbidden: API key lacks scope '%s'" % scope


# ---------------------------------------------------------------- key text (SPEC §3)

def b62(n, width):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def check_chars(body):
    """The 6 check characters for everything before them (prefix_secret)."""
    return b62(zlib.crc32(body.encode()) & 0xFFFFFFFF, 6)


def make_key(prefix="kw"):
    """A well-formed key (correct check digits) that no server has issued."""
    secret = b62(int.from_bytes(os.urandom(32), "big"), 43)
    body = "%s_%s" % (prefix, secret)
    return body + check_chars(body)


def key_is_well_formed(key):
    return bool(KEY_RE.match(key)) and check_chars(key[:-6]) == key[-6:]


def secret_part(key):
    """The 43 random characters of a key: the part that must never leak."""
    i = key.index("_")
    return key[i + 1:i + 44]


def remember(secret):
    if isinstance(secret, str) and secret:
        SECRETS.add(secret)


def _collect_secrets(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "secret" and isinstance(v, str):
                remember(v)
            else:
                _collect_secrets(v)
    elif isinstance(obj, list):
        for v in obj:
            _collect_secrets(v)


def remember_keys_in_text(text):
    for m in KEY_FIND_RE.findall(text or ""):
        if key_is_well_formed(m):
            remember(m)


# ---------------------------------------------------------------- times

def parse_time(s):
    """RFC 3339 UTC text -> epoch seconds (float). Raises ValueError if not RFC 3339 UTC."""
    if not isinstance(s, str) or not re.match(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$", s):
        raise ValueError("not an RFC 3339 UTC time: %r" % (s,))
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


DAY = 86400


# ---------------------------------------------------------------- responses

class Resp:
    """One HTTP exchange. Unpacks as (status, headers, body); describe() gives the exact
    request and response for failure messages."""

    def __init__(self, method, path, req_headers, req_body, status, headers, raw, body):
        self.method, self.path = method, path
        self.req_headers, self.req_body = req_headers, req_body
        self.status, self.headers, self.raw, self.body = status, headers, raw, body

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    @property
    def ctype(self):
        return self.headers.get("content-type", "")

    def describe(self):
        rb = self.req_body
        if isinstance(rb, (bytes, bytearray)):
            rb = rb.decode("utf-8", "replace")
        if rb and len(rb) > 300:
            rb = rb[:300] + "...(%d bytes)" % len(self.req_body)
        hdrs = {k: v for k, v in self.req_headers.items()
                if k.lower() not in ("authorization", "x-api-key")}
        raw = self.raw.decode("utf-8", "replace")
        if len(raw) > 800:
            raw = raw[:800] + "..."
        return "request: %s %s %s%s -> response: %s %s %s" % (
            self.method, self.path, json.dumps(hdrs) if hdrs else "",
            (" body=" + rb) if rb else "", self.status,
            self.headers.get("content-type", ""), raw)


_NO_BODY = object()
_ADMIN = object()


# Suites that need outside servers (PostgreSQL, Chromium, Node) run once, in the release
# pass of scripts/test.sh, not again under the sanitizers: decorate them with this. run.py
# counts such a skip as skipped only when KW_TEST_MODE=asan; any other skip is a failure.
release_only = unittest.skipIf(os.environ.get("KW_TEST_MODE") == "asan",
                               "release-only: runs once, in the release pass")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- the server

class Server:
    def __init__(self, extra_args=(), tmpdir=None):
        self.extra_args = list(extra_args)
        self.own_tmpdir = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="keyward-it-")
        self.db = os.path.join(self.tmpdir, "keyward.db")
        self.store_url = None  # e.g. postgresql://... (test_multinode); None: the SQLite file
        self.admin_key_file = os.path.join(self.tmpdir, "keyward.admin-key")
        self.proc = None
        self.port = None
        self.admin_key = None
        self.admin_key_mode = None
        self.starts = 0
        self.log_paths = []

    # -- life cycle
    @property
    def addr(self):
        return "http://127.0.0.1:%d" % self.port

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        return env

    def start(self, timeout=20):
        if not os.path.exists(BIN):
            raise RuntimeError("keyward binary not found at %s (set KEYWARD_BIN or run make)" % BIN)
        self.port = free_port()
        self.starts += 1
        out = os.path.join(self.tmpdir, "server-%d.stdout" % self.starts)
        err = os.path.join(self.tmpdir, "server-%d.stderr" % self.starts)
        self.log_paths += [out, err]
        self._out, self._err = open(out, "wb"), open(err, "wb")
        # Every test talks from 127.0.0.1, and many fail admin authentication on purpose:
        # lift the per-address limit (test_limits sets its own; the last flag wins).
        cmd = [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port,
               "--store", self.store_url or ("sqlite:" + self.db), "--auth-fail-limit", "100000",
               "--usage-flush-interval", "1s"] + self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.tmpdir, env=self._env())
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("keyward serve exited with %s before answering /healthz; "
                                   "stderr: %s" % (self.proc.returncode, self.stderr_text()[-2000:]))
            try:
                r = self.request("GET", "/healthz", token=None, timeout=2)
                if r.status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("keyward serve did not answer /healthz within %ss; stderr: %s"
                                   % (timeout, self.stderr_text()[-2000:]))
            time.sleep(0.05)
        self.read_admin_key()
        return self

    def read_admin_key(self):
        st = os.stat(self.admin_key_file)
        self.admin_key_mode = stat.S_IMODE(st.st_mode)
        with open(self.admin_key_file) as f:
            text = f.read()
        m = KEY_FIND_RE.search(text)
        self.admin_key = m.group(0) if m else text.strip()
        remember(self.admin_key)
        return self.admin_key

    def stderr_text(self):
        if not self.log_paths:
            return ""
        with open(self.log_paths[-1], "rb") as f:
            return f.read().decode("utf-8", "replace")

    def all_logs(self):
        data = b""
        for p in self.log_paths:
            with open(p, "rb") as f:
                data += f.read()
        return data

    def stop(self, check=True, signal_sent=False):
        """SIGTERM, wait, then check: exit status 0, admin key file 0600, and none of the
        secrets seen so far in the logs or the store files. Raises AssertionError listing
        every problem."""
        problems = []
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if not signal_sent:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("did not exit within 20 s of SIGTERM (killed)")
        rc = self.proc.returncode
        self.proc = None
        self._out.close()
        self._err.close()
        if not check:
            return
        if rc != 0:
            problems.append("exit status %s after SIGTERM, want 0; stderr tail: %s"
                            % (rc, self.stderr_text()[-600:]))
        if self.admin_key_mode is not None and self.admin_key_mode != 0o600:
            problems.append("admin key file mode %o, want 600" % self.admin_key_mode)
        problems += self.scan_for_secrets()
        if problems:
            raise AssertionError("server teardown: " + "; ".join(problems))

    def scan_for_secrets(self):
        problems = []
        # The scanner must be able to find a secret where one is (the admin key file), or
        # a clean scan would prove nothing.
        with open(self.admin_key_file, "rb") as f:
            if self.admin_key and secret_part(self.admin_key).encode() not in f.read():
                problems.append("scanner self-check: admin key not found in its own file")
        if not os.path.exists(self.db) or os.path.getsize(self.db) == 0:
            problems.append("store file %s missing or empty: nothing to scan" % self.db)
        needles = [(s, secret_part(s).encode()) for s in SECRETS if "_" in s]
        for root, _dirs, files in os.walk(self.tmpdir):
            for name in files:
                path = os.path.join(root, name)
                if path == self.admin_key_file:
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                for s, n in needles:
                    if n in data:
                        problems.append("secret %s… found in %s" % (s[:len(s) - 45], name))
        return problems

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait()
            except OSError:
                pass
        if self.own_tmpdir and not os.environ.get("KEYWARD_IT_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- HTTP
    def request(self, method, path, body=_NO_BODY, token=_ADMIN, headers=None, raw=None,
                content_type="application/json", timeout=15, query=None):
        """body: a JSON value to send; raw: bytes/str sent as-is. token: _ADMIN (default)
        uses the admin key, None sends no Authorization, a string is sent as Bearer."""
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        hdrs = {"Connection": "close"}
        if token is _ADMIN:
            token = self.admin_key
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not _NO_BODY:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            rawresp = r.read()
            rh = {}
            for k, v in r.getheaders():
                k = k.lower()
                rh[k] = (rh[k] + ", " + v) if k in rh else v
            status = r.status
        finally:
            conn.close()
        parsed = None
        if rawresp:
            try:
                parsed = json.loads(rawresp)
            except ValueError:
                parsed = rawresp.decode("utf-8", "replace")
        _collect_secrets(parsed)
        return Resp(method, path, hdrs, data, status, rh, rawresp, parsed)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, {} if body is None else body, **kw)

    def patch(self, path, body, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def verify(self, key, scope=None, ip=None, **kw):
        b = {"key": key}
        if scope is not None:
            b["scope"] = scope
        if ip is not None:
            b["ip"] = ip
        kw.setdefault("token", None)   # verification needs no admin key
        return self.request("POST", "/v1/keys/verify", b, **kw)

    # -- raw socket
    def connection_counts(self):
        """keyward_http_connections_total by event, from /metrics (this scrape's own
        connection is counted too: it is handed to the general HTTP server)."""
        r = self.get("/metrics", token=None)
        out = {}
        for ln in r.raw.decode().splitlines():
            if ln.startswith("keyward_http_connections_total{"):
                out[ln.split('"')[1]] = int(ln.rsplit(" ", 1)[1])
        return out

    def raw_send(self, data, read=True, timeout=3.0, shutdown=True):
        """Send bytes as-is; return what came back before the server closed or the timeout."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        got = b""
        try:
            try:
                s.sendall(data)
                if shutdown:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass   # the server may close early on garbage; that is fine
            if read:
                deadline = time.time() + timeout
                while time.time() < deadline:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        break
                    except OSError:
                        break
                    if not chunk:
                        break
                    got += chunk
        finally:
            s.close()
        return got

    # -- CLI
    def cli(self, *args, token=_ADMIN, addr=None, env=None, timeout=30, stdin=None):
        e = self._env()
        e["KEYWARD_ADDR"] = addr or self.addr
        if token is _ADMIN:
            token = self.admin_key
        if token is not None:
            e["KEYWARD_TOKEN"] = token
        if env:
            e.update(env)
        # Not the store directory: the CLI falls back to ./keyward.admin-key, and a test of
        # "no token" must not find one there.
        cwd = os.path.join(self.tmpdir, "cli-cwd")
        os.makedirs(cwd, exist_ok=True)
        kw = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin.encode()}
        p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, env=e,
                           timeout=timeout, cwd=cwd, **kw)
        p.stdout = p.stdout.decode("utf-8", "replace")
        p.stderr = p.stderr.decode("utf-8", "replace")
        remember_keys_in_text(p.stdout)
        remember_keys_in_text(p.stderr)
        p.describe = lambda: "command: keyward %s -> exit %s, stdout=%r, stderr=%r" % (
            " ".join(str(a) for a in args), p.returncode, p.stdout[:800], p.stderr[:800])
        return p


# ---------------------------------------------------------------- test base

class ServerTestCase(unittest.TestCase):
    """One server per test class (state is shared between the class's tests, so each
    test creates its own credentials). Teardown stops it with all the checks of stop()."""

    extra_args = ()
    srv = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cls.extra_args)
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    # -- helpers shared by the modules
    def expect(self, r, status, what=""):
        if isinstance(status, (tuple, list, range)):
            ok = r.status in status
        else:
            ok = r.status == status
        if not ok:
            self.fail("%swant HTTP %s; %s" % (what + ": " if what else "", status, r.describe()))
        return r.body

    def create(self, status=201, **fields):
        fields.setdefault("name", "it-" + self.id().rsplit(".", 1)[-1][:40])
        r = self.srv.post("/v1/credentials", fields)
        b = self.expect(r, status, "create credential")
        if status == 201:
            self.assertIsInstance(b, dict, r.describe())
            for k in ("credential", "key", "secret"):
                self.assertIn(k, b, r.describe())
        return b

    def new_key(self, cred_id, status=201, **fields):
        r = self.srv.post("/v1/credentials/%s/keys" % cred_id, fields)
        return self.expect(r, status, "new key")

    def get_key(self, key_id):
        r = self.srv.get("/v1/keys/%s" % key_id)
        return self.expect(r, 200, "get key")

    def get_cred(self, cred_id):
        r = self.srv.get("/v1/credentials/%s" % cred_id)
        return self.expect(r, 200, "get credential")

    def verify_code(self, key, code, scope=None, ip=None):
        r = self.srv.verify(key, scope=scope, ip=ip)
        b = self.expect(r, 200, "verify")
        self.assertIsInstance(b, dict, r.describe())
        self.assertEqual(b.get("code"), code, r.describe())
        self.assertIs(b.get("valid"), code == "VALID", r.describe())
        return b

    def assertProblem(self, r, status, field=None):
        """r is an RFC 9457 problem with the given status (int or collection), and its
        detail (or field member) names the bad field."""
        self.expect(r, status)
        self.assertTrue(r.ctype.startswith("application/problem+json"),
                        "content-type %r, want application/problem+json; %s"
                        % (r.ctype, r.describe()))
        b = r.body
        self.assertIsInstance(b, dict, r.describe())
        for k, t in (("type", str), ("title", str), ("status", int), ("detail", str)):
            self.assertIsInstance(b.get(k), t, "problem member %r missing/wrong; %s"
                                  % (k, r.describe()))
        self.assertEqual(b["status"], r.status, r.describe())
        self.assertTrue(b["detail"].strip(), r.describe())
        if field is not None:
            self.assertTrue(field in b["detail"] or b.get("field") == field,
                            "problem does not name field %r; %s" % (field, r.describe()))
        return b

    def list_all(self, path="/v1/credentials", query=None, limit=None):
        """Follow next cursors; returns the concatenated items."""
        items, seen_cursors = [], set()
        q = dict(query or {})
        if limit:
            q["limit"] = limit
        for _ in range(1000):
            r = self.srv.get(path, query=q or None)
            b = self.expect(r, 200, "list " + path)
            self.assertIsInstance(b.get("items"), list, r.describe())
            self.assertIn("next", b, r.describe())
            items += b["items"]
            nxt = b["next"]
            if nxt is None:
                return items
            self.assertIsInstance(nxt, str, r.describe())
            self.assertNotIn(nxt, seen_cursors, "cursor repeats; " + r.describe())
            seen_cursors.add(nxt)
            q["cursor"] = nxt
        self.fail("pagination did not end after 1000 pages")

    def wait_for(self, fn, timeout=5.0, interval=0.1):
        """Poll fn() until it returns a true value or the timeout passes; returns the last
        value."""
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v or time.time() > deadline:
                return v
            time.sleep(interval)
