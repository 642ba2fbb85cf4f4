#!/usr/bin/python3
"""propagation_bench.py - revocation propagation across keyward nodes on one PostgreSQL
(SPEC §10): N revocations made on node A, each observed on node B by polling GET /v1/auth
with the revoked key until it answers 401. Reports p50/p99/max of the time from A's 200 to
B's first 401 (and from the revoke request being sent). Starts its own throw-away cluster
(scripts/pg.sh) and two nodes; nothing else.

    bench/propagation_bench.py [N]      (default 1000)
"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, REPO, free_port, machine  # noqa: E402

PG_SH = os.path.join(REPO, "scripts", "pg.sh")


class Conn:
    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def req(self, method, path, body=None, token=None):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                raw = r.read()
                return r.status, raw
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    raise


def start_node(url, tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    port = free_port()
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--store", url,
                          "--log-level", "warn", "--auth-fail-limit", "1000000",
                          # one secrets key for every node of the cluster
                          "--secrets-key-file", os.path.join(tmp, "kw.secrets-key")],
                         stdout=log, stderr=log, cwd=d,
                         env={k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")})
    t0 = time.time()
    while True:
        try:
            if Conn(port).req("GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        if p.poll() is not None or time.time() - t0 > 30:
            raise RuntimeError("node %s did not start (see %s/log)" % (name, d))
        time.sleep(0.02)
    return p, port, d


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    subprocess.run(["make", "-s", "-C", REPO, "build/keyward"], check=True)
    tmp = tempfile.mkdtemp(prefix="kw-prop.")
    pgdir = tempfile.mkdtemp(prefix="kw-pg.")  # its own: pg.sh hands it to an unprivileged user
    url = subprocess.run([PG_SH, "start", pgdir], check=True, capture_output=True,
                         text=True).stdout.strip()
    procs = []
    try:
        pa, port_a, dir_a = start_node(url, tmp, "a")
        procs.append(pa)
        with open(os.path.join(dir_a, "keyward.admin-key")) as f:
            admin = f.read().strip()
        pb, port_b, _ = start_node(url, tmp, "b")
        procs.append(pb)

        keys = []
        lock = threading.Lock()

        def creator(count):
            c = Conn(port_a)
            for _ in range(count):
                st, raw = c.req("POST", "/v1/credentials", {"name": "p"}, admin)
                assert st == 201, raw
                b = json.loads(raw)
                with lock:
                    keys.append((b["key"]["id"], b["secret"]))
        ts = [threading.Thread(target=creator, args=(n // 8 + (i < n % 8),)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cb = Conn(port_b)
        for _kid, sec in keys:  # every key valid on B first
            while cb.req("GET", "/v1/auth", token=sec)[0] != 204:
                time.sleep(0.001)

        ca = Conn(port_a)
        from_ack, from_send = [], []
        for kid, sec in keys:
            t_send = time.perf_counter()
            st, raw = ca.req("POST", "/v1/keys/%s/invalidate" % kid, {"reason": "bench"}, admin)
            t_ack = time.perf_counter()
            assert st == 200, raw
            while cb.req("GET", "/v1/auth", token=sec)[0] != 401:
                pass
            t_seen = time.perf_counter()
            from_ack.append(max(0.0, t_seen - t_ack) * 1000)
            from_send.append((t_seen - t_send) * 1000)
        print("machine: %s" % machine())
        print("revocations: %d on node A, each polled on node B (GET /v1/auth until 401)" % n)
        for name, xs in (("from A's 200", from_ack), ("from the revoke request", from_send)):
            print("%-26s p50 %6.2f ms   p99 %6.2f ms   max %6.2f ms"
                  % (name, pct(xs, 50), pct(xs, 99), max(xs)))
        print("target p99 < 100 ms, never > 1 s: %s"
              % ("met" if pct(from_ack, 99) < 100 and max(from_ack) < 1000 else "NOT met"))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        subprocess.run([PG_SH, "stop", pgdir], capture_output=True)
        subprocess.run(["rm", "-rf", tmp, pgdir])


if __name__ == "__main__":
    main()
