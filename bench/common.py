"""common.py - shared helpers of the HTTP benchmarks: build, a keyward store holding N
keys (bench/bulkload.c), starting keyward and nginx pinned to a CPU, /proc CPU and memory
readings, and running wrk and parsing its report. Python standard library only."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "build", "keyward")
BULK = os.path.join(REPO, "build", "bench", "bulkload")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = os.environ.get("KW_BENCH_SERVER_CPU", "1")
CLIENT_CPU = os.environ.get("KW_BENCH_CLIENT_CPU", "0")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    sh(["make", "-s", "-C", REPO, "build/keyward", "build/libkwstore.a", "build/libkwcore.a"])
    os.makedirs(os.path.dirname(BULK), exist_ok=True)
    pkgs = ["sqlite3", "jansson", "libcrypto", "zlib"]
    if subprocess.run(["pkg-config", "--exists", "libpq"]).returncode == 0:
        pkgs.append("libpq")  # the store's PostgreSQL backend is in libkwstore.a
    libs = subprocess.run(["pkg-config", "--libs"] + pkgs,
                          capture_output=True, text=True, check=True).stdout.split()
    sh(["cc", "-std=c17", "-D_GNU_SOURCE", "-O2", "-pthread", "-I" + REPO + "/src",
        "-I" + REPO + "/include", "-o", BULK, REPO + "/bench/bulkload.c",
        "-Wl,--start-group", REPO + "/build/libkwstore.a", REPO + "/build/libkwcore.a",
        "-Wl,--end-group"] + libs)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d CPUs, %s" % (os.cpu_count(), model)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(port, path, headers=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()



def create_cred(conn, token, i):
    """POST /v1/credentials "bench-I" on an open HTTPConnection; asserts the 201."""
    conn.request("POST", "/v1/credentials",
                 body=json.dumps({"name": "bench-%d" % i, "scopes": ["bench:read"]}),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 201, r.status

class Keyward:
    def __init__(self, tmp, extra=(), binary=None):
        self.tmp, self.extra = tmp, list(extra)
        self.bin = binary or BIN  # another build to compare with (--base in the benches)
        self.db = os.path.join(tmp, "kw.db")
        self.proc = None

    def start(self, timeout=120):
        self.port = free_port()
        self.log = open(os.path.join(self.tmp, "keyward.log"), "ab")
        t0 = time.time()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, self.bin, "serve", "--listen", "127.0.0.1:%d" % self.port,
             "--store", "sqlite:" + self.db, "--log-level", "warn"] + self.extra,
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, cwd=self.tmp,
            env={k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")})
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("keyward exited: see %s/keyward.log" % self.tmp)
            try:
                if get(self.port, "/readyz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() - t0 > timeout:
                raise RuntimeError("keyward not ready in %ss" % timeout)
            time.sleep(0.01)
        self.ready_s = time.time() - t0
        return self

    def admin_key(self):
        with open(os.path.join(self.tmp, "kw.admin-key")) as f:
            m = re.search(r"[a-z][a-z0-9]*_[0-9A-Za-z]{49}", f.read())
            return m.group(0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def make_store(tmp, n, sample=10000, map_out=None):
    """A keyward store in tmp holding n keys; returns (keyward, keys_file)."""
    kw = Keyward(tmp).start()          # creates the schema and the admin key
    kw.stop()
    keys = os.path.join(tmp, "keys.txt")
    t0 = time.time()
    sh([BULK, kw.db, str(n), keys, str(sample)] + ([map_out] if map_out else []))
    return kw, keys, time.time() - t0


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_pid(proc):
    """keyward runs under taskset, which execs: the Popen pid is the server."""
    return proc.pid


WRK_LUA = r'''
local keys = {}
local i = 0
init = function(args)
    for line in io.lines(args[1]) do keys[#keys + 1] = line end
end
request = function()
    i = i % #keys + 1
    return wrk.format("GET", "/v1/auth", {["X-API-Key"] = keys[i]})
end
'''


def wrk(port, conns, secs, keys_file, tmp, script=None):
    lua = os.path.join(tmp, "auth.lua")
    with open(lua, "w") as f:
        f.write(script or WRK_LUA)
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c%d" % conns,
                          "-d%ds" % secs, "--latency", "-s", lua,
                          "http://127.0.0.1:%d" % port, "--", keys_file],
                         capture_output=True, text=True, check=True).stdout
    res = {"raw": out}
    m = re.search(r"(\d+) requests in ([\d.]+)s", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["errors"] = m.group(1) if m else ""
    for p in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
            res["p" + p] = v
    return res


def measure(pids, port, conns, secs, keys_file, tmp, script=None):
    c0 = sum(cpu_ticks(p) for p in pids)
    r = wrk(port, conns, secs, keys_file, tmp, script)
    c1 = sum(cpu_ticks(p) for p in pids)
    r["cpu_us_per_req"] = (c1 - c0) / CLK * 1e6 / max(r["requests"], 1)
    return r


def tmpdir():
    return tempfile.mkdtemp(prefix="keyward-bench-")
