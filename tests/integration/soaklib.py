"""soaklib.py - mixed traffic against a running daemon for a set time, counting answers
and sampling its resident memory (docs/reliability.md, soak). Used by
tests/integration/test_soak.py (short, in the suite) and bench/soak.py (10 minutes).

Traffic: verification of valid, expired, revoked, unknown and malformed keys (POST
/v1/keys/verify and GET /v1/auth, keep-alive), and admin reads and writes (patch, create
and delete, roll, list, and bad admin keys from other addresses, which the per-address
limit turns into 429s without touching the admin's own requests). Every answer is checked
against what that key must give. The server must trust X-Forwarded-For (SERVER_ARGS)."""

import http.client
import json
import os
import random
import string
import threading
import time

import harness


SERVER_ARGS = ("--trusted-ip-header", "X-Forwarded-For")


def rss_kb(pid):
    """(VmRSS, RssAnon) in kB. VmRSS also counts the SQLite file pages the readers map
    (mmap_size), which grow with the database; RssAnon is the heap and stacks alone."""
    got = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon"):
                got[k] = int(line.split()[1])
    return got.get("VmRSS", 0), got.get("RssAnon", 0)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.by_class = {}
        self.errors = []

    def add(self, status, problem=None):
        with self.lock:
            self.requests += 1
            k = "%dxx" % (status // 100)
            self.by_class[k] = self.by_class.get(k, 0) + 1
            if (status >= 500 or problem) and len(self.errors) < 50:
                self.errors.append(problem or "HTTP %d" % status)


def malformed(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(0, 80)))
    if kind == 1:
        k = harness.make_key()
        return k[:-1] + ("0" if k[-1] != "0" else "1")  # bad check digits
    if kind == 2:
        return "kw_" + "x" * rng.randrange(0, 200)
    if kind == 3:
        return harness.make_key("UPPER")
    return "\u00e9\u0000\u2028" * rng.randrange(1, 5)


class Soak:
    def __init__(self, srv, seconds, verify_threads=3, seed=None, new_keys=True):
        """new_keys=False: admin writes only patch (no create/delete/roll), so the state -
        and with it the memory the daemon needs - stays the same size all run long."""
        self.srv, self.seconds, self.vt = srv, seconds, verify_threads
        self.new_keys = new_keys
        self.created = 0
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.stop = threading.Event()
        self.samples = []  # (t, VmRSS kB, RssAnon kB)
        self.writes = 0

    # -- setup: keys of each kind
    def setup(self):
        s = self.srv
        self.valid, self.revoked, self.expired = [], [], []
        for i in range(20):
            r = s.post("/v1/credentials", {"name": "soak-%d" % i, "scopes": ["read"]})
            assert r.status == 201, r.describe()
            self.valid.append(r.body["secret"])
        for i in range(10):
            r = s.post("/v1/credentials", {"name": "soak-rev-%d" % i})
            assert r.status == 201, r.describe()
            self.revoked.append(r.body["secret"])
            r2 = s.post("/v1/keys/%s/invalidate" % r.body["key"]["id"], {})
            assert r2.status == 200, r2.describe()
        for i in range(10):
            r = s.post("/v1/credentials", {"name": "soak-exp-%d" % i, "lifetime": "1s"})
            assert r.status == 201, r.describe()
            self.expired.append(r.body["secret"])
        self.admin_creds = []
        for i in range(5):
            r = s.post("/v1/credentials", {"name": "soak-admin-%d" % i})
            self.admin_creds.append((r.body["credential"]["id"], r.body["key"]["id"]))
        time.sleep(1.5)

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)

    def verify_loop(self, seed):
        rng = random.Random(seed)
        c = self.conn()
        while not self.stop.is_set():
            x = rng.random()
            if x < 0.4:
                key, want = rng.choice(self.valid), "VALID"
            elif x < 0.5:
                key, want = rng.choice(self.expired), "EXPIRED"
            elif x < 0.6:
                key, want = rng.choice(self.revoked), "REVOKED"
            elif x < 0.75:
                key, want = harness.make_key(), "NOT_FOUND"
            else:
                key, want = malformed(rng), "MALFORMED"
            use_auth = rng.random() < 0.3 and all(32 <= ord(ch) < 127 for ch in key)
            try:
                if use_auth:
                    c.request("GET", "/v1/auth", headers={"Authorization": "Bearer " + key,
                                                          "X-Keyward-Scope": "read"})
                else:
                    c.request("POST", "/v1/keys/verify", body=json.dumps({"key": key}),
                              headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.stats.add(599, "connection error: %r" % e)
                c.close()
                c = self.conn()
                continue
            problem = None
            if use_auth:
                got = r.getheader("Keyward-Code")
                if want == "VALID" and r.status != 204:
                    problem = "auth valid key -> %d" % r.status
                elif want != "VALID" and r.status != 401:
                    problem = "auth %s key -> %d" % (want, r.status)
                elif got and got != want and want != "MALFORMED":
                    problem = "auth code %s, want %s" % (got, want)
            else:
                try:
                    code = json.loads(raw).get("code")
                except ValueError:
                    code = None
                if "\x00" in key:  # JSON text with \u0000: jansson refuses it, a clean 400
                    if r.status != 400:
                        problem = "verify NUL key -> %d %s" % (r.status, raw[:120])
                elif r.status != 200 or code != want:
                    problem = "verify %s key -> %d %s" % (want, r.status, raw[:120])
            self.stats.add(r.status, problem)
        c.close()

    def admin_loop(self, seed):
        rng = random.Random(seed)
        s = self.srv
        while not self.stop.is_set():
            x = rng.random()
            if not self.new_keys and 0.5 <= x < 0.7:
                x = 0.0  # a patch instead of a create/delete or roll
            cid, kid = rng.choice(self.admin_creds)
            try:
                if x < 0.5:
                    r = s.patch("/v1/credentials/%s" % cid, {"metadata": {"n": rng.random()}})
                    ok = r.status == 200
                elif x < 0.6:
                    r = s.post("/v1/credentials", {"name": "soak-tmp"})
                    ok = r.status == 201
                    if ok:
                        self.created += 1
                        r = s.delete("/v1/credentials/%s" % r.body["credential"]["id"])
                        ok = r.status in (200, 204)
                elif x < 0.7:
                    r = s.post("/v1/keys/%s/roll" % kid, {"overlap": "1s"})
                    ok = r.status in (201, 409)
                    if r.status == 201:
                        self.created += 1
                        i = [c for c, _ in self.admin_creds].index(cid)
                        self.admin_creds[i] = (cid, r.body["key"]["id"])
                elif x < 0.75:
                    # a bad admin key from "another address" (the server trusts
                    # X-Forwarded-For): limited to 401s then 429s, never the admin's own
                    r = s.get("/v1/credentials", token="kw_" + "B" * 49,
                              headers={"X-Forwarded-For": "198.51.100.%d" % rng.randrange(4)})
                    ok = r.status in (401, 429)
                else:
                    r = s.get("/v1/credentials", query={"limit": 50})
                    ok = r.status == 200
            except (OSError, http.client.HTTPException) as e:
                self.stats.add(599, "admin connection error: %r" % e)
                continue
            self.writes += 1
            self.stats.add(r.status, None if ok else "admin: " + r.describe()[:300])
            time.sleep(0.02)

    def sample_loop(self, t0):
        while not self.stop.wait(2.0):
            if self.srv.proc is None or self.srv.proc.poll() is not None:
                self.stats.add(599, "server process died")
                return
            self.samples.append((round(time.time() - t0, 1),) + rss_kb(self.srv.proc.pid))

    def run(self):
        self.setup()
        t0 = time.time()
        ts = [threading.Thread(target=self.verify_loop, args=(self.rng.random(),), daemon=True)
              for _ in range(self.vt)]
        ts.append(threading.Thread(target=self.admin_loop, args=(self.rng.random(),), daemon=True))
        ts.append(threading.Thread(target=self.sample_loop, args=(t0,), daemon=True))
        for t in ts:
            t.start()
        self.stop.wait(self.seconds)
        self.stop.set()
        for t in ts:
            t.join(20)
        elapsed = time.time() - t0
        # warm-up: the first fifth of the run; "flat" compares the rest, on the heap
        after = [anon for t, _, anon in self.samples if t >= self.seconds * 0.2]
        warm = after[0] if after else 0
        peak = max(after) if after else 0
        vm = [v for t, v, _ in self.samples if t >= self.seconds * 0.2]
        return {
            "seconds": round(elapsed, 1),
            "requests": self.stats.requests,
            "req_per_s": round(self.stats.requests / elapsed),
            "by_class": self.stats.by_class,
            "admin_requests": self.writes,
            "keys_created": self.created,
            "vmrss_start_kb": self.samples[0][1] if self.samples else 0,
            "vmrss_after_warmup_kb": vm[0] if vm else 0,
            "vmrss_end_kb": vm[-1] if vm else 0,
            "rss_start_kb": self.samples[0][2] if self.samples else 0,  # RssAnon from here
            "rss_after_warmup_kb": warm,
            "rss_peak_after_warmup_kb": peak,
            "rss_end_kb": after[-1] if after else 0,
            "rss_growth_after_warmup_kb": peak - warm,
            "samples": len(self.samples),
            "errors": self.stats.errors,
        }
