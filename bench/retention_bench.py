#!/usr/bin/python3
"""retention_bench.py - history stays bounded under pruning (issue 11): N events, each with
a delivered delivery, written through keyward's store API on a simulated clock (100 events
a second) into two fresh stores: one pruned after every batch of 1000 as the scheduler does
(kw_store_prune, batches of 500; retention = WINDOW events), one never pruned. Prints, per
segment, the store size (file + WAL), the rows kept and the write rate, and the ratios of
the pruned store's last segment to its first after the window filled (flat = about 1).

    bench/retention_bench.py [N] [SEGMENT] [WINDOW]     (defaults 2000000 200000 200000)
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HELPER = os.path.join(common.REPO, "build", "bench", "retention_bench")


def build():
    common.sh(["make", "-s", "-C", common.REPO, "build/keyward", "build/libkwstore.a",
               "build/libkwcore.a"])
    os.makedirs(os.path.dirname(HELPER), exist_ok=True)
    pkgs = ["sqlite3", "jansson", "libcrypto", "zlib", "libcurl"]
    if subprocess.run(["pkg-config", "--exists", "libpq"]).returncode == 0:
        pkgs.append("libpq")  # libkwstore.a holds the PostgreSQL backend too
    libs = subprocess.run(["pkg-config", "--libs"] + pkgs,
                          capture_output=True, text=True, check=True).stdout.split()
    common.sh(["cc", "-std=c17", "-D_GNU_SOURCE", "-O2", "-pthread",
               "-I" + common.REPO + "/src", "-I" + common.REPO + "/include", "-o", HELPER,
               common.REPO + "/bench/retention_bench.c", "-Wl,--start-group",
               common.REPO + "/build/libkwstore.a", common.REPO + "/build/libkwcore.a",
               "-Wl,--end-group"]
              + libs + ["-lmicrohttpd", "-lm"])


def run(tmp, n, seg, window, mode):
    db = os.path.join(tmp, mode + ".db")
    out = subprocess.run([HELPER, db, str(n), str(seg), str(window), mode],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        ev, size, kept, rate = line.split()
        rows.append((int(ev), int(size), int(kept), float(rate)))
    return rows


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000000
    seg = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    build()
    with tempfile.TemporaryDirectory(prefix="kw-retention-") as tmp:
        pruned = run(tmp, n, seg, window, "prune")
        kept_all = run(tmp, n, seg, window, "noprune")
    print("machine: %s; %d events, retention window %d events" % (common.machine(), n, window))
    print("%10s | %12s %10s %10s | %12s %10s %10s" % (
        "events", "pruned MiB", "rows", "writes/s", "unpruned MiB", "rows", "writes/s"))
    for a, b in zip(pruned, kept_all):
        print("%10d | %12.1f %10d %10.0f | %12.1f %10d %10.0f" % (
            a[0], a[1] / 1048576, a[2], a[3], b[1] / 1048576, b[2], b[3]))
    steady = [r for r in pruned if r[0] > 2 * window]
    if len(steady) >= 2:
        print("pruned store, last/first segment after the window filled: size %.2f, "
              "write rate %.2f" % (steady[-1][1] / steady[0][1], steady[-1][3] / steady[0][3]))
    print("final size pruned/unpruned: %.2f" % (pruned[-1][1] / kept_all[-1][1]))


if __name__ == "__main__":
    main()
