#!/usr/bin/python3
"""metrics_bench.py - /metrics at scale: scrape size, wall time and server CPU per scrape with
N credentials (one key each, expiries spread over the next year so about 8 % sit inside the
default policy's 30d threshold), and the background refresh's CPU; beside the same figures
for another keyward binary (--baseline BIN, e.g. one built from before the bounded metrics).

    bench/metrics_bench.py [--baseline BIN] [N ...]      (default N: 10000 100000 1000000)
Targets at 1 M: scrape <= 1 MB and <= 50 ms; per-credential series <= --metrics-expiry-series."""

import os
import re
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SCRAPES = 10
IDLE_S = 10


def scrape(port):
    t0 = time.perf_counter()
    st, body = common.get(port, "/metrics", timeout=120)
    dt = time.perf_counter() - t0
    assert st == 200, st
    return dt, body


def measure(binary, tmp, label, extra=()):
    common.BIN = binary
    kw = common.Keyward(tmp, list(extra)).start()
    try:
        pid = kw.proc.pid
        time.sleep(2.5)                      # a background snapshot has been taken
        c0 = common.cpu_ticks(pid)
        times, size, series = [], 0, 0
        for _ in range(SCRAPES):
            dt, body = scrape(kw.port)
            times.append(dt)
            size = len(body)
            series = len(re.findall(rb"^keyward_credential_[a-z_]+\{", body, re.M))
        c1 = common.cpu_ticks(pid)
        cpu_ms = (c1 - c0) * 1000.0 / common.CLK / SCRAPES
        # idle: only the background refresh (every 1 s here) runs
        i0 = common.cpu_ticks(pid)
        time.sleep(IDLE_S)
        idle_ms = (common.cpu_ticks(pid) - i0) * 1000.0 / common.CLK / IDLE_S
        print("  %-9s scrape %8.1f kB  median %8.1f ms  max %8.1f ms  server CPU %7.1f ms/scrape"
              "  per-credential series %7d  idle CPU %5.1f ms/s" % (
                  label, size / 1000.0, statistics.median(times) * 1000, max(times) * 1000,
                  cpu_ms, series, idle_ms))
        return statistics.median(times), size, cpu_ms
    finally:
        kw.stop()


def main():
    args = sys.argv[1:]
    baseline = None
    if args[:1] == ["--baseline"]:
        baseline, args = args[1], args[2:]
    ns = [int(a) for a in args] or [10000, 100000, 1000000]
    common.build()
    new_bin = common.BIN
    print("machine: %s" % common.machine())
    print("%d scrapes each; --metrics-refresh 1s; idle CPU = background refresh per second" %
          SCRAPES)
    os.environ["KW_BULK_SPREAD"] = "1"
    for n in ns:
        tmp = common.tmpdir()
        try:
            common.BIN = new_bin
            kw, _keys, load_s = common.make_store(tmp, n, 10)
            print("N = %d credentials (bulk insert %.1f s)" % (n, load_s))
            t_new, s_new, c_new = measure(new_bin, tmp, "this", ["--metrics-refresh", "1s"])
            if baseline:
                t_old, s_old, c_old = measure(baseline, tmp, "baseline")
                print("  ratio this/baseline: time %.4f, size %.4f, server CPU %.4f" % (
                    t_new / t_old, s_new / s_old, c_new / c_old if c_old else float("nan")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    common.BIN = new_bin


if __name__ == "__main__":
    main()
