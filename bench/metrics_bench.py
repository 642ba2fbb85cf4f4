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
        refresh = None
        for _ in range(600):                 # the first background snapshot
            _dt, body = scrape(kw.port)
            m = re.search(rb"^keyward_metrics_expiry_refresh_seconds ([0-9.]+)", body, re.M)
            if m or b"keyward_metrics_expiry" not in body and label == "baseline":
                refresh = float(m.group(1)) if m else None
                break
            time.sleep(0.1)
        time.sleep(0.5)
        c0 = common.cpu_ticks(pid)
        times, size, series = [], 0, 0
        for _ in range(SCRAPES):
            dt, body = scrape(kw.port)
            times.append(dt)
            size = len(body)
            series = len(re.findall(rb"^keyward_credential_[a-z_]+\{", body, re.M))
        c1 = common.cpu_ticks(pid)
        cpu_ms = (c1 - c0) * 1000.0 / common.CLK / SCRAPES
        print("  %-9s scrape %8.1f kB  median %8.1f ms  max %8.1f ms  server CPU %7.1f ms/scrape"
              "  per-credential series %7d%s" % (
                  label, size / 1000.0, statistics.median(times) * 1000, max(times) * 1000,
                  cpu_ms, series,
                  "  background refresh %.1f ms (every --metrics-refresh)" % (refresh * 1000)
                  if refresh is not None else ""))
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
    print("%d scrapes each; background refresh timed by keyward_metrics_expiry_refresh_seconds" %
          SCRAPES)
    os.environ["KW_BULK_SPREAD"] = "1"
    for n in ns:
        tmp = common.tmpdir()
        try:
            common.BIN = new_bin
            kw, _keys, load_s = common.make_store(tmp, n, 10)
            print("N = %d credentials (bulk insert %.1f s)" % (n, load_s))
            # refresh 1h: the scrapes measured are not mixed with a background refresh
            t_new, s_new, c_new = measure(new_bin, tmp, "this", ["--metrics-refresh", "1h"])
            if baseline:
                t_old, s_old, c_old = measure(baseline, tmp, "baseline")
                print("  ratio this/baseline: time %.4f, size %.4f, server CPU %.4f" % (
                    t_new / t_old, s_new / s_old, c_new / c_old if c_old else float("nan")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    common.BIN = new_bin


if __name__ == "__main__":
    main()
