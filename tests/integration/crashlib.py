"""crashlib.py - SIGKILL the daemon at random moments while clients write, restart it, and
check that nothing acknowledged was lost (docs/reliability.md, crash safety).

Used by tests/integration/test_crash.py (short, in the suite) and bench/crash_loop.py
(long). Each client owns its credentials, so the last acknowledged state of every object is
well defined; an operation cut off by the kill is "in doubt" and may or may not have
happened, and the checks allow exactly that.

Checks after every restart:
  - every credential and key whose creation was acknowledged exists;
  - no key whose invalidation (or credential deletion) was acknowledged verifies again;
  - every other acknowledged key still verifies VALID;
  - `PRAGMA integrity_check` says ok (sqlite3 CLI);
  - GET /v1/audit/verify says ok, when the endpoint exists.
"""

import http.client
import json
import random
import signal
import subprocess
import threading
import time


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.creds = {}        # cred id -> acknowledged deleted? (bool)
        self.keys = {}         # key id -> (key text, cred id)
        self.revoked = set()   # key ids whose revocation was acknowledged
        self.doubt = set()     # key ids whose state an in-flight operation may have changed
        self.doubt_creds = set()  # credential ids whose deletion was cut off by the kill
        self.writes = 0        # acknowledged writes
        self.failures = []     # unexpected answers
        self.renew = None      # None = unknown, False = no such endpoint, True = exists


class Client(threading.Thread):
    """Writes until the server goes away."""

    def __init__(self, port, token, ledger, rng, pool):
        super().__init__(daemon=True)
        self.port, self.token, self.L, self.rng = port, token, ledger, rng
        # kept across cycles: this client's live credential ids, and their usable keys
        self.mine, self.keys = pool  # [cred id], {cred id: [key ids, newest last]}

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Authorization": "Bearer " + self.token, "Connection": "close"}
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        finally:
            c.close()

    def unexpected(self, what, st, b):
        with self.L.lock:
            self.L.failures.append("%s -> %s %s" % (what, st, json.dumps(b)[:300]))

    def run(self):
        L = self.L
        while True:
            op = self.rng.choice(["create", "create", "newkey", "roll", "roll", "invalidate",
                                  "renew", "delete"])
            if op != "create" and not self.mine:
                op = "create"
            doubt, doubt_cred = [], None
            try:
                if op == "create":
                    st, b = self.call("POST", "/v1/credentials",
                                      {"name": "crash", "scopes": ["read"]})
                    if st == 201:
                        with L.lock:
                            L.creds[b["credential"]["id"]] = False
                            L.keys[b["key"]["id"]] = (b["secret"], b["credential"]["id"])
                            L.writes += 1
                        self.mine.append(b["credential"]["id"])
                        self.keys[b["credential"]["id"]] = [b["key"]["id"]]
                    else:
                        self.unexpected(op, st, b)
                    continue
                cid = self.rng.choice(self.mine)
                kids = self.keys.get(cid, [])
                if op == "newkey":
                    st, b = self.call("POST", "/v1/credentials/%s/keys" % cid, {})
                    if st == 201:
                        with L.lock:
                            L.keys[b["key"]["id"]] = (b["secret"], cid)
                            L.writes += 1
                        kids.append(b["key"]["id"])
                    elif st != 409:
                        self.unexpected(op, st, b)
                elif op == "roll" and kids:
                    kid = kids[-1]
                    doubt = [kid]
                    st, b = self.call("POST", "/v1/keys/%s/roll" % kid, {"overlap": "1h"})
                    if st == 201:
                        with L.lock:
                            L.keys[b["key"]["id"]] = (b["secret"], cid)
                            L.writes += 1
                        kids.append(b["key"]["id"])
                    elif st not in (409, 422):
                        self.unexpected(op, st, b)
                elif op == "invalidate" and kids:
                    kid = self.rng.choice(kids)
                    doubt = [kid]
                    st, b = self.call("POST", "/v1/keys/%s/invalidate" % kid, {"reason": "crash"})
                    if st == 200:
                        with L.lock:
                            L.revoked.add(kid)
                            L.writes += 1
                        kids.remove(kid)
                    elif st != 409:
                        self.unexpected(op, st, b)
                elif op == "renew" and kids and L.renew is not False:
                    kid = kids[-1]
                    st, b = self.call("POST", "/v1/keys/%s/renew" % kid, {"extend_by": "1d"})
                    if st == 405 or (st == 404 and "no such path" in json.dumps(b)):
                        L.renew = False  # not built yet: skip from now on
                    elif st in (200, 202):
                        L.renew = True
                        with L.lock:
                            L.writes += 1
                    elif st not in (409, 422):
                        self.unexpected(op, st, b)
                elif op == "delete" and self.rng.random() < 0.3:
                    doubt, doubt_cred = list(kids), cid
                    st, b = self.call("DELETE", "/v1/credentials/%s" % cid)
                    if st in (200, 204):
                        with L.lock:
                            L.creds[cid] = True
                            L.revoked.update(kids)
                            L.writes += 1
                        self.mine.remove(cid)
                    else:
                        self.unexpected(op, st, b)
            except (OSError, http.client.HTTPException):
                with L.lock:
                    L.doubt.update(doubt)
                    if doubt_cred:
                        L.doubt_creds.add(doubt_cred)
                if doubt_cred:
                    self.mine.remove(doubt_cred)  # maybe deleted: leave it alone from now on
                return


def kill9(srv):
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv.proc = None
    srv._out.close()
    srv._err.close()


def check(srv, L, sample=None, rng=None):
    """Returns a list of problems after a restart (and counts what was checked). sample:
    check every revoked key but at most this many other keys and credentials (None = all)."""
    problems = []
    checked = 0
    with L.lock:
        creds = dict(L.creds)
        keys = dict(L.keys)
        revoked, doubt, doubt_creds = set(L.revoked), set(L.doubt), set(L.doubt_creds)
    if sample is not None:
        rng = rng or random.Random()
        if len(creds) > sample:
            creds = {c: creds[c] for c in rng.sample(sorted(creds), sample)}
        others = sorted(k for k in keys if k not in revoked)
        if len(others) > sample:
            keep = set(rng.sample(others, sample)) | revoked
            keys = {k: v for k, v in keys.items() if k in keep}
    for cid in creds:
        r = srv.get("/v1/credentials/%s" % cid)
        checked += 1
        gone_ok = creds[cid] or cid in doubt_creds
        if r.status not in (200, 404) or (r.status == 404 and not gone_ok):
            problems.append("acknowledged credential %s: GET %s" % (cid, r.status))
    for kid, (text, cid) in keys.items():
        r = srv.verify(text)
        checked += 1
        code = r.body.get("code") if isinstance(r.body, dict) else None
        if kid in revoked:
            if code != "REVOKED":
                problems.append("key %s revoked (acknowledged) but verifies %s" % (kid, code))
        elif kid in doubt:
            if code not in ("VALID", "REVOKED"):
                problems.append("key %s (in doubt) verifies %s" % (kid, code))
        elif code != "VALID":
            problems.append("acknowledged key %s verifies %s" % (kid, code))
    p = subprocess.run(["sqlite3", srv.db, "PRAGMA integrity_check"], capture_output=True,
                       text=True, timeout=60)
    if p.stdout.strip() != "ok":
        problems.append("integrity_check: %s %s" % (p.stdout.strip()[:300], p.stderr[:300]))
    r = srv.get("/v1/audit/verify")
    audit = None
    if r.status == 200 and isinstance(r.body, dict):
        audit = r.body
        if r.body.get("ok") is not True:
            problems.append("audit chain: %s" % json.dumps(r.body)[:300])
    elif r.status not in (404, 405):
        problems.append("GET /v1/audit/verify: %s" % r.status)
    return problems, checked, audit


def run(srv, cycles, clients=4, min_s=0.2, max_s=1.2, seed=None, log=None, sample=None):
    """srv: a started harness.Server. Returns a dict of figures and 'problems'. sample: see
    check(); the last cycle always checks everything."""
    rng = random.Random(seed)
    L = Ledger()
    pools = [([], {}) for _ in range(clients)]
    checked_total = 0
    problems = []
    audit = None
    t0 = time.time()
    for cycle in range(cycles):
        ts = [Client(srv.port, srv.admin_key, L, random.Random(rng.random()), pools[i])
              for i in range(clients)]
        for t in ts:
            t.start()
        time.sleep(rng.uniform(min_s, max_s))
        kill9(srv)
        for t in ts:
            t.join(15)
        srv.start()
        p, n, audit = check(srv, L, None if cycle == cycles - 1 else sample, rng)
        checked_total += n
        problems += ["cycle %d: %s" % (cycle + 1, x) for x in p]
        if log:
            log("cycle %d: %d acknowledged writes so far, %d checks, %d problems"
                % (cycle + 1, L.writes, n, len(p)))
        if problems:
            break
    return {
        "cycles": cycle + 1,
        "acknowledged_writes": L.writes,
        "credentials": len(L.creds),
        "keys": len(L.keys),
        "revoked": len(L.revoked),
        "in_doubt": len(L.doubt) + len(L.doubt_creds),
        "checks": checked_total,
        "renew_endpoint": L.renew,
        "audit": audit,
        "seconds": round(time.time() - t0, 1),
        "problems": problems + ["unexpected answer: " + f for f in L.failures],
    }
