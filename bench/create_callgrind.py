#!/usr/bin/python3
"""create_callgrind.py - (d') instructions per key creation, a deterministic figure on a
noisy machine: keyward serve runs under valgrind --tool=callgrind with instrumentation off
until 20 warm-up creations are done, then counts exactly N POST /v1/credentials (one client,
one at a time, as create_bench.py at 1 connection) and prints the instructions per creation
overall and for the main parts. Same binary and N give the same count (within the outbox's
batching), so two builds compare without timing.

    bench/create_callgrind.py [N] [OUT]        (defaults 200, build/bench/create.callgrind)

Then the floor under callgrind on the store that run left (N creations of
bench/create_floor.c: the same rows written with plain prepared sqlite3 statements, one
synchronous=FULL transaction each, only its create_one counted), and keyward's count as a
multiple of it.

Valgrind counts each iteration of a `rep stos` as one instruction, so memset of large
buffers (libmicrohttpd's 64 KiB connection pool, zeroed per request) weighs more here than
in real time."""

import http.client
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import create_bench  # noqa: E402

PARTS = ["http.c:on_request", "h_creds.c:kw_h_cred_create", "lifecycle.c:create_run",
         "store.c:kw_store_commit", "sqlite3_step", "sqlite3WalFrames", "audit.c:kw_audit_append",
         "lifecycle.c:emit", "outbox.c:worker_main", "http.c:kw_resp_json",
         "api.c:kw_api_cred_json_keys", "json_pack", "json_dumps", "json_loads",
         "__memset_avx2_unaligned_erms", "malloc.c:malloc "]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(common.REPO, "build", "bench",
                                                              "create.callgrind")
    common.build()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = common.tmpdir()
    kw = common.Keyward(tmp).start()   # creates the store and the admin key
    token = kw.admin_key()
    kw.stop()
    port = common.free_port()
    log = open(os.path.join(tmp, "valgrind.log"), "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                          "--instr-atstart=no", common.BIN, "serve", "--listen",
                          "127.0.0.1:%d" % port, "--store", "sqlite:" + kw.db,
                          "--log-level", "warn"], stdout=log, stderr=log, cwd=tmp,
                         env={k: v for k, v in os.environ.items()
                              if not k.startswith("KEYWARD_")})
    try:
        t0 = time.time()
        while True:
            try:
                if common.get(port, "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() - t0 > 300:
                sys.exit("keyward under valgrind not ready")
            time.sleep(0.2)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def create(i):
            common.create_cred(c, token, i)

        for i in range(20):
            create(i)
        ctl = ["callgrind_control", "-i"]
        subprocess.run(ctl + ["on", str(p.pid)], check=True, capture_output=True)
        for i in range(n):
            create(1000 + i)
        subprocess.run(ctl + ["off", str(p.pid)], check=True, capture_output=True)
        c.close()
    finally:
        p.terminate()
        p.wait()
    try:
        create_bench.build_floor()
        fout = out + ".floor"
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + fout,
                        "--collect-atstart=no", "--toggle-collect=create_one",
                        create_bench.FLOOR, kw.db, "0", str(n)], check=True,
                       capture_output=True)
        ftext = subprocess.run(["callgrind_annotate", fout], capture_output=True, text=True,
                               check=True).stdout
        floor = next(int(x.split()[0].replace(",", "")) for x in ftext.splitlines()
                     if "PROGRAM TOTALS" in x) / n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True,
                          text=True, check=True).stdout
    lines = text.splitlines()
    total = next(int(x.split()[0].replace(",", "")) for x in lines if "PROGRAM TOTALS" in x)
    print("instructions per creation: %.0f (%d creations, callgrind, %s)" % (total / n, n, out))
    print("floor: %.0f instructions per creation (bench/create_floor.c: the same rows, plain "
          "sqlite3, one transaction each); keyward %.2fx the floor" % (floor, total / n / floor))
    for part in PARTS:
        hit = next((x for x in lines if part in x and "(" in x
                    and x.split()[0].replace(",", "").isdigit()), None)  # "." = none counted
        if hit:
            print("  %-34s %8.0f (inclusive)" % (part.strip(), int(hit.split()[0].replace(
                ",", "")) / n))


if __name__ == "__main__":
    main()
