#!/usr/bin/python3
"""startup_bench.py - (c) start-up time and resident memory of keyward holding N keys
(default 1 M): time from exec to /readyz 200, and RSS beyond an empty keyward's, per key.

    bench/startup_bench.py [N] [--rounds R] [--base BIN]
Targets: ready <= 2 s, <= 200 B/key beyond the SQLite page cache (keyward leaves SQLite's
default cache of 2 MiB per connection, which the empty baseline already holds).
The store is made once; each round starts keyward on a fresh copy of it. With --base, each
round starts BIN (another build, e.g. main's) as well, the two in alternating order, so
both see the same machine load."""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def one(pristine, run, binary, rss0, n):
    """Start binary on a fresh copy of the store in pristine: (seconds to /readyz, B/key)."""
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(pristine, run)
    kw = common.Keyward(run, binary=binary).start()
    time.sleep(0.5)
    rss = common.rss_kib(kw.proc.pid)
    kw.stop()
    return kw.ready_s, rss, (rss - rss0) * 1024.0 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--base", help="a second keyward binary to compare with")
    a = ap.parse_args()
    n = a.n
    common.build()
    print("machine: %s" % common.machine())
    empty_tmp, tmp, run = common.tmpdir(), common.tmpdir(), common.tmpdir()
    try:
        e = common.Keyward(empty_tmp).start()
        time.sleep(0.5)
        rss0 = common.rss_kib(e.proc.pid)
        e.stop()
        kw, _keys, load_s = common.make_store(tmp, n, 10)
        print("keys: %d (bulk insert %.1f s, store %.0f MiB)" % (
            n, load_s, os.path.getsize(kw.db) / 2**20))
        print("RSS empty: %d MiB" % (rss0 // 1024))
        bins = [("this", common.BIN)] + ([("base", a.base)] if a.base else [])
        for r in range(a.rounds):
            order = bins if r % 2 == 0 else bins[::-1]
            for name, b in order:
                ready, rss, per = one(tmp, run, b, rss0, n)
                print("round %d %-4s start to /readyz: %.2f s (target <= 2 s); RSS %d MiB, "
                      "%.0f B/key beyond the empty server (target <= 200); load %.1f" % (
                          r + 1, name, ready, rss // 1024, per, os.getloadavg()[0]),
                      flush=True)
    finally:
        for d in (empty_tmp, tmp, run):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
