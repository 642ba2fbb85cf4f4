#!/usr/bin/python3
"""refresh_bench.py - the watched-credential refresher's figures (docs/performance.md).

    python3 bench/refresh_bench.py [--bin build/keyward] [--clients 1000] [--quick]

1. Timing: 10 OAuth2 clients with 10 s tokens from tests/integration/oauth_server.py, until
   100 refreshes have happened; each refresh's moment as a fraction of the previous token's
   lifetime (target: mean 0.80, all within 0.75-0.85), and, from an application polling
   GET /v1/watched/{id}/token every 0.2 s, the smallest remaining life of any token handed
   out (target: never below 15 %, never a lapsed token or a 503).
2. Scale: --clients clients with --lifetime (30 s) tokens for a 60 s window: keyward's CPU (utime+stime
   from /proc) per refresh, next to the token server's CPU per token issued (the peer,
   measured in the same run). Then keyward is stopped until every token is overdue and
   started again: the token requests per second after the restart show whether they are
   spread (no thundering herd).
Everything runs on 127.0.0.1 and stops by itself.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from oauth_server import TokenServer  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK


def self_cpu():
    t = os.times()
    return t.user + t.system


class Keyward:
    def __init__(self, binary, tmp):
        self.bin, self.tmp = binary, tmp
        self.proc = None

    def start(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        log = open(os.path.join(self.tmp, "serve.log"), "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", "127.0.0.1:%d" % self.port, "--store",
             "sqlite:" + os.path.join(self.tmp, "keyward.db"), "--webhook-allow-private",
             "--log-level", "warn"], stdout=log, stderr=log, cwd=self.tmp)
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.port, timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        with open(os.path.join(self.tmp, "keyward.admin-key")) as f:
            self.key = f.read().strip().split()[-1]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)

    def call(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.key,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def watch(self, ts, cid, name):
        st, b = self.call("POST", "/v1/watched", {
            "name": name, "kind": "oauth2", "oauth2": {
                "token_url": ts.url, "grant_type": "client_credentials", "client_id": cid,
                "client_secret": ts.clients[cid]}})
        assert st == 201, b
        return b["id"]


def timing(binary, quick):
    tmp = tempfile.mkdtemp(prefix="kw-refresh-bench-")
    life = 10
    ts = TokenServer(lifetime=life).start()
    nclients = 10
    for i in range(nclients):
        ts.add_client("t%d" % i, "secret-%d-%s" % (i, os.urandom(8).hex()))
    kw = Keyward(binary, tmp)
    kw.start()
    ids = [kw.watch(ts, "t%d" % i, "timing-%d" % i) for i in range(nclients)]
    want = 30 if quick else 100
    worst_left = 1.0
    bad = []
    polls = 0
    t0 = time.time()
    while True:
        with ts.lock:
            issued = list(ts.issued)
        refreshes = len(issued) - nclients
        if refreshes >= want or time.time() - t0 > 200:
            break
        for wid in ids:
            st, b = kw.call("GET", "/v1/watched/%s/token" % wid)
            now = time.time()
            if st != 200:
                if now - t0 > 2:        # the first token takes a moment
                    bad.append((wid, st))
                continue
            polls += 1
            with ts.lock:
                rec = ts.tokens.get(b["access_token"])
            if rec is None or not (rec[1] <= now < rec[2]):
                bad.append((wid, "lapsed"))
                continue
            worst_left = min(worst_left, (rec[2] - now) / life)
        time.sleep(0.2)
    kw.stop()
    ts.stop()
    fr = []
    by = {}
    for t, cid, _tok, lt in issued:
        by.setdefault(cid, []).append((t, lt))
    for seq in by.values():
        for (a, lt), (b, _) in zip(seq, seq[1:]):
            fr.append((b - a) / lt)
    fr = fr[:want]
    shutil.rmtree(tmp, ignore_errors=True)
    return {"refreshes": len(fr), "mean": statistics.mean(fr), "min": min(fr), "max": max(fr),
            "stdev": statistics.pstdev(fr), "in_band": sum(0.75 <= f <= 0.85 for f in fr),
            "polls": polls, "bad_polls": len(bad), "worst_left": worst_left}


def scale(binary, n, quick, life=30):
    tmp = tempfile.mkdtemp(prefix="kw-refresh-scale-")
    ts = TokenServer(lifetime=life).start()
    for i in range(n):
        ts.add_client("c%d" % i, "scale-secret-%d" % i)
    kw = Keyward(binary, tmp)
    kw.start()
    t_create = time.time()
    for i in range(n):
        kw.watch(ts, "c%d" % i, "scale-%d" % i)
    t_create = time.time() - t_create
    time.sleep(life)                      # everyone has a token and is on its own schedule
    window = 30 if quick else 60
    with ts.lock:
        n0 = len(ts.issued)
    c0, p0 = cpu_s(kw.proc.pid), self_cpu()
    time.sleep(window)
    c1, p1 = cpu_s(kw.proc.pid), self_cpu()
    with ts.lock:
        n1 = len(ts.issued)
        fails = sum(1 for r in ts.requests if r[3] != 200)
        issued = list(ts.issued)
    refreshes = n1 - n0
    by, fr = {}, []
    for t, cid, _tok, lt in issued:
        by.setdefault(cid, []).append((t, lt))
    for seq in by.values():
        for (a, lt), (b, _) in zip(seq, seq[1:]):
            fr.append((b - a) / lt)
    # restart after every token is overdue
    kw.stop()
    time.sleep(life + 2)
    with ts.lock:
        r0 = len(ts.requests)
    t_restart = time.time()
    kw.start()
    time.sleep(min(65, n * 0.02 + 5))
    with ts.lock:
        after = [r[0] - t_restart for r in ts.requests[r0:]]
    kw.stop()
    ts.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    buckets = {}
    for t in after:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    return {"clients": n, "life": life, "create_s": t_create, "window_s": window, "refreshes": refreshes,
            "kw_cpu_ms_per_refresh": 1000 * (c1 - c0) / max(refreshes, 1),
            "peer_cpu_ms_per_token": 1000 * (p1 - p0) / max(refreshes, 1),
            "failures": fails, "frac_mean": statistics.mean(fr) if fr else 0,
            "frac_max": max(fr) if fr else 0, "frac_n": len(fr), "restart_requests": len(after),
            "restart_max_per_s": max(buckets.values()) if buckets else 0,
            "restart_span_s": (max(after) - min(after)) if after else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "keyward"))
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lifetime", type=int, default=30, help="token lifetime of the scale part")
    ap.add_argument("--skip-timing", action="store_true")
    a = ap.parse_args()
    if not a.skip_timing:
        t = timing(a.bin, a.quick)
        print("timing: %(refreshes)d refreshes of 10 s tokens: fraction of lifetime mean %(mean).3f"
              " stdev %(stdev).3f min %(min).3f max %(max).3f; in 0.75-0.85: %(in_band)d;"
              " application polls %(polls)d, failed or lapsed %(bad_polls)d, least life left"
              " %(worst_left).2f" % t)
    s = scale(a.bin, a.clients, a.quick, a.lifetime)
    print("scale: %(clients)d clients, %(life)d s tokens: %(refreshes)d refreshes in %(window_s)d s;"
          " keyward CPU %(kw_cpu_ms_per_refresh).3f ms per refresh; token server (peer, Python)"
          " %(peer_cpu_ms_per_token).3f ms per token; failures %(failures)d" % s)
    print("scale: %(frac_n)d refreshes before the restart at %(frac_mean).3f of the lifetime on"
          " average, latest %(frac_max).3f" % s)
    print("scale: ratio keyward/peer CPU per token %.2f" %
          (s["kw_cpu_ms_per_refresh"] / max(s["peer_cpu_ms_per_token"], 1e-9)))
    print("restart: %(restart_requests)d overdue refreshes spread over %(restart_span_s).1f s,"
          " at most %(restart_max_per_s)d in any second (creating them took %(create_s).1f s)" % s)


if __name__ == "__main__":
    main()
