#!/usr/bin/python3
"""startup_bench.py - (c) start-up time and resident memory of keyward holding N keys
(default 1 M): time from exec to /readyz 200, and RSS beyond an empty keyward's, per key.

    bench/startup_bench.py [N]
Targets: ready <= 2 s, <= 200 B/key beyond the SQLite page cache (keyward leaves SQLite's
default cache of 2 MiB per connection, which the empty baseline already holds)."""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    common.build()
    print("machine: %s" % common.machine())
    empty_tmp, tmp = common.tmpdir(), common.tmpdir()
    try:
        e = common.Keyward(empty_tmp).start()
        time.sleep(0.5)
        rss0 = common.rss_kib(e.proc.pid)
        e.stop()
        kw, _keys, load_s = common.make_store(tmp, n, 10)
        print("keys: %d (bulk insert %.1f s, store %.0f MiB)" % (
            n, load_s, os.path.getsize(kw.db) / 2**20))
        kw.start()
        time.sleep(0.5)
        rss = common.rss_kib(kw.proc.pid)
        print("start to /readyz: %.2f s (target <= 2 s)" % kw.ready_s)
        print("RSS empty: %d MiB; RSS with %d keys: %d MiB" % (rss0 // 1024, n, rss // 1024))
        print("bytes per key beyond the empty server: %.0f (target <= 200)" % (
            (rss - rss0) * 1024.0 / n))
        kw.stop()
    finally:
        shutil.rmtree(empty_tmp, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
