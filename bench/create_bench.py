#!/usr/bin/python3
"""create_bench.py - (d) durable key creation through the API: POST /v1/credentials
(each creates a credential and its first key, committed with synchronous=FULL before the
201) with wrk at 1, 8 and 32 connections for SECONDS each, against a fresh store, the
server in its default configuration (admin requests run on a thread per connection, so
concurrent creations are group-committed, docs/internals/store.md). Server CPU per creation is utime+stime of the server
process (all its threads: HTTP, the committing leader, checkpointer, outbox) / requests.

    bench/create_bench.py [SECONDS] [-- extra keyward serve flags, e.g. --log-level debug]
Target: >= 5000 creations/s.

Two floors are measured first, in the same run: the fsync floor (commits/s of a lone writer
on this file system) and the CPU floor (bench/create_floor.c: the rows one creation leaves,
written with plain prepared sqlite3 statements, one synchronous=FULL transaction each, into
a store keyward made, so with its schema, indexes and triggers). Each line then gives
keyward's rate as a share of the fsync floor and its CPU per creation as a multiple of the
CPU floor."""

import http.client
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LUA = r'''
local token
local n = 0
init = function(args) token = args[1] end
request = function()
    n = n + 1
    return wrk.format("POST", "/v1/credentials",
        {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
        '{"name":"bench-' .. n .. '","scopes":["bench:read"]}')
end
'''


def fsync_floor(tmp, secs=2.0, size=21 * 4096):
    """Commits/s a lone writer can reach on this file system: append SIZE bytes (about the
    WAL frames of one creation, 21 pages) and fdatasync, as SQLite's WAL commit does, in a
    file that wraps at 4 MiB like a checkpointed WAL. The bound for 1 connection."""
    path = os.path.join(tmp, "fsync-floor")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    buf = b"\x5a" * size
    n, off, t0 = 0, 0, time.time()
    try:
        while time.time() - t0 < secs:
            os.pwrite(fd, buf, off)
            os.fdatasync(fd)
            off = (off + size) % (4 << 20)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return n / (time.time() - t0)


FLOOR = os.path.join(common.REPO, "build", "bench", "create_floor")


def build_floor():
    os.makedirs(os.path.dirname(FLOOR), exist_ok=True)
    subprocess.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-O2", "-g", "-Wall", "-Wextra",
                    "-Werror", "-o", FLOOR, os.path.join(common.REPO, "bench", "create_floor.c"),
                    "-lsqlite3"], check=True)


def cpu_floor(secs, warm=50):
    """bench/create_floor.c on a store keyward made and filled with WARM creations through
    the API (the templates of the rows it writes); pinned to the server's CPU."""
    build_floor()
    tmp = common.tmpdir()
    try:
        kw = common.Keyward(tmp).start()
        try:
            token = kw.admin_key()
            c = http.client.HTTPConnection("127.0.0.1", kw.port, timeout=30)
            for i in range(warm):
                common.create_cred(c, token, i)
            c.close()
            time.sleep(0.5)  # the outbox marks the last events fanned out
        finally:
            kw.stop()
        out = subprocess.run(["taskset", "-c", common.SERVER_CPU, FLOOR, kw.db, str(secs)],
                             check=True, capture_output=True, text=True).stdout.split()
        return {out[i]: float(out[i + 1]) for i in range(0, len(out), 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    secs = int(args[0]) if args else 5
    common.build()
    print("machine: %s" % common.machine())
    tmp = common.tmpdir()
    floor = fsync_floor(tmp)
    print("fsync floor: %.0f commits/s (write %d KiB + fdatasync in the store's directory)" % (
        floor, 21 * 4))
    cf = cpu_floor(secs)
    print("CPU floor: %.1f us CPU per creation (user %.1f + system %.1f; %.0f/s, one "
          "synchronous=FULL transaction each, plain sqlite3: bench/create_floor.c)" % (
              cf["cpu_us"], cf["user_us"], cf["sys_us"], cf["rate"]))
    kw = common.Keyward(tmp, extra).start()
    try:
        token = kw.admin_key()
        for conns in (1, 8, 32):
            r = common.measure([kw.proc.pid], kw.port, conns, secs, token, tmp, LUA)
            ok = r["requests"] - r["non2xx"]
            print("%2d conns: %6.0f creations/s  (%d created, %d refused/failed, p50 %.0f us, "
                  "p99 %.0f us, %.1f us server CPU each)  target >= 5000/s; %.2fx the fsync "
                  "floor, %.2fx the CPU floor's rate; CPU %.1fx the CPU floor" % (
                      conns, ok / secs, ok, r["non2xx"], r.get("p50", -1), r.get("p99", -1),
                      r["cpu_us_per_req"], ok / secs / max(floor, 1),
                      ok / secs / max(cf["rate"], 1), r["cpu_us_per_req"] / max(cf["cpu_us"], 1e-9)))
    finally:
        kw.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
