#!/usr/bin/python3
"""restart_bench.py - (issue 20) what a restart costs clients, and how long a stop takes
whatever receivers do.

    bench/restart_bench.py [SECONDS_OF_LOAD_AROUND_THE_RESTART]

1. A restart under 32 keep-alive connections of GET /v1/auth load (Python clients), two
   ways in the same run: through systemd-socket-activate (tests/integration/sockhold.py
   holds the socket and restarts keyward as systemctl restart does), and the peer, a plain
   stop-and-start on --listen. Reported: requests refused or failed (target 0 with socket
   activation), the longest a single request took (the stall a client saw), and the time
   from SIGTERM to exit.
2. SIGTERM to exit with 0, 100 and 10 000 deliveries queued to a webhook receiver that
   accepts connections and never answers (--shutdown-timeout 10s, the default).
Only 127.0.0.1; every loop is bounded in count and time."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SOCKHOLD = os.path.join(common.REPO, "tests", "integration", "sockhold.py")
ACTIVATE = shutil.which("systemd-socket-activate")
CONNS = 32


def env():
    return {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}


def wait_ready(port, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("keyward exited")
        try:
            if common.get(port, "/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("not ready")


def admin(tmp):
    return common.Keyward(tmp).admin_key()


def post(port, token, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("POST", path, body=json.dumps(body),
                  headers={"Authorization": "Bearer " + token,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


class Load:
    """CONNS client threads, each on its own keep-alive connection, GET /v1/auth in a loop;
    a failed request counts once and the client reconnects after 10 ms."""

    def __init__(self, port, key):
        self.port, self.key = port, key
        self.ok = self.failed = 0
        self.errors = {}
        self.longest = 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(CONNS)]

    def run(self):
        c = None
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                c.request("GET", "/v1/auth", headers={"Authorization": "Bearer " + self.key})
                r = c.getresponse()
                r.read()
                good = r.status == 204
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
                err = None if good else "HTTP %d" % r.status
            except (OSError, http.client.HTTPException) as e:
                err = type(e).__name__
                if c:
                    c.close()
                c = None
            dt = time.monotonic() - t0
            with self.lock:
                self.longest = max(self.longest, dt)
                if err:
                    self.failed += 1
                    self.errors[err] = self.errors.get(err, 0) + 1
                else:
                    self.ok += 1
            if err:
                time.sleep(0.01)
        if c:
            c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def restart_activated(secs):
    tmp = common.tmpdir()
    port = common.free_port()
    status = os.path.join(tmp, "sockhold.status")
    log = open(os.path.join(tmp, "keyward.log"), "ab")
    p = subprocess.Popen([ACTIVATE, "-l", "127.0.0.1:%d" % port, sys.executable, SOCKHOLD,
                          status, "--", "taskset", "-c", common.SERVER_CPU, common.BIN,
                          "serve", "--store",
                          "sqlite:" + os.path.join(tmp, "kw.db"), "--log-level", "warn"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=tmp, env=env())
    try:
        wait_ready(port, p)
        key = post(port, admin(tmp), "/v1/credentials", {"name": "gw"})[1]["secret"]
        with Load(port, key) as ld:
            time.sleep(secs / 2)
            os.kill(p.pid, signal.SIGUSR1)
            end = time.time() + 30
            while time.time() < end:
                with open(status) as f:
                    lines = [ln.split() for ln in f if ln.startswith("exited")]
                if lines:
                    break
                time.sleep(0.05)
            time.sleep(secs / 2)
        ex = lines[0]
        return ld, int(ex[2]), float(ex[3])
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def restart_plain(secs):
    tmp = common.tmpdir()
    kw = common.Keyward(tmp).start()
    try:
        key = post(kw.port, kw.admin_key(), "/v1/credentials", {"name": "gw"})[1]["secret"]
        with Load(kw.port, key) as ld:
            time.sleep(secs / 2)
            t0 = time.monotonic()
            kw.proc.send_signal(signal.SIGTERM)
            rc = kw.proc.wait(timeout=60)
            took = time.monotonic() - t0
            port = kw.port
            kw.proc = subprocess.Popen(  # same port, as a service manager would
                ["taskset", "-c", common.SERVER_CPU, common.BIN, "serve", "--listen",
                 "127.0.0.1:%d" % port, "--store", "sqlite:" + kw.db, "--log-level", "warn"],
                stdout=kw.log, stderr=kw.log, stdin=subprocess.DEVNULL, cwd=tmp, env=env())
            time.sleep(secs / 2)
        return ld, rc, took
    finally:
        kw.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1024)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                self.conns.append(self.ls.accept()[0])
            except OSError:
                return

    def close(self):
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()
        for c in self.conns:
            c.close()


def stop_with_queue(n):
    tmp = common.tmpdir()
    rcv = Silent()
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    kw = common.Keyward(tmp, ["--webhook-allow-private", "--sink",
                              "webhook http://127.0.0.1:%d/h %s" % (rcv.port, secret)]).start()
    try:
        token = kw.admin_key()
        todo = list(range(n))
        lock = threading.Lock()

        def make():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                post(kw.port, token, "/v1/credentials", {"name": "q%d" % i})
        ts = [threading.Thread(target=make) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(600)
        time.sleep(1.0 if n else 0.2)   # the workers are inside their held sends
        t0 = time.monotonic()
        kw.proc.send_signal(signal.SIGTERM)
        rc = kw.proc.wait(timeout=120)
        took = time.monotonic() - t0
        kw.proc = None
        import sqlite3
        con = sqlite3.connect(kw.db)
        states = dict(con.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        # events the held workers had not fanned out yet: queued too, in the events table
        states["events not fanned out"] = con.execute(
            "SELECT count(*) FROM events WHERE fanout_at IS NULL").fetchone()[0]
        con.close()
        return rc, took, states
    finally:
        kw.stop()
        rcv.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    common.build()
    print("machine: %s" % common.machine())
    print("1. restart under %d connections of GET /v1/auth (%.0f s of load around it)"
          % (CONNS, secs))
    rows = []
    if ACTIVATE:
        rows.append(("socket activation", restart_activated(secs)))
    else:
        print("   systemd-socket-activate missing (scripts/deps.sh installs systemd)")
    rows.append(("plain stop+start (peer)", restart_plain(secs)))
    for name, (ld, rc, took) in rows:
        print("   %-24s answered %6d  refused/failed %5d %s  longest request %.3f s  "
              "SIGTERM->exit %.3f s (rc %d)" % (name, ld.ok, ld.failed, ld.errors or "",
                                                ld.longest, took, rc))
    if len(rows) == 2:
        print("   failed requests, activation / peer: %d / %d" % (rows[0][1][0].failed,
                                                               rows[1][1][0].failed))
    print("2. SIGTERM to exit with deliveries queued to a receiver that never answers "
          "(--shutdown-timeout 10s)")
    for n in (0, 100, 10000):
        rc, took, states = stop_with_queue(n)
        print("   %6d queued: exit %d after %.3f s; deliveries by state: %s"
              % (n, rc, took, states))


if __name__ == "__main__":
    main()
