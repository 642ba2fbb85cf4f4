#!/usr/bin/python3
"""framing_bench.py - what strict framing costs: the same requests with wrk against this
build and against a baseline binary (KW_BASE_BIN, e.g. main built in another directory),
servers pinned to CPU 1 and wrk to CPU 0, alternating rounds, medians printed.

    KW_BASE_BIN=/path/to/old/keyward bench/framing_bench.py [SECONDS] [ROUNDS]   (5 3)

Routes: GET /healthz and GET /v1/policies (admin, libmicrohttpd behind the gate's framing
relay since issue 11; handed to it unread before) at 8 keep-alive connections, and
GET /v1/auth with an unknown key (the gate's fast path, which must be unchanged).
Reports req/s, server CPU per request and the new/base ratios measured in this run."""

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LUA = """
wrk.method = "GET"
wrk.path = "%s"
wrk.headers["Authorization"] = "Bearer %s"
"""


def run(binary, secs, token_path):
    tmp = common.tmpdir()
    common.BIN = binary
    kw = common.Keyward(tmp, ["--threads", "1"])
    kw.start()
    try:
        admin = kw.admin_key()
        pids = [common.server_pid(kw.proc)]
        out = {}
        for name, path, tok in (("healthz", "/healthz", admin),
                                ("admin GET /v1/policies", "/v1/policies", admin),
                                ("fast GET /v1/auth", "/v1/auth", "kw_unknown")):
            r = common.measure(pids, kw.port, 8, secs, "/dev/null", tmp, script=LUA % (path, tok))
            out[name] = r
        return out
    finally:
        kw.stop()


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = os.environ.get("KW_BASE_BIN")
    if not base:
        sys.exit("set KW_BASE_BIN to the baseline keyward binary")
    new = os.path.join(common.REPO, "build", "keyward")
    subprocess.run(["make", "-s", "-C", common.REPO, "build/keyward"], check=True)
    res = {"new": [], "base": []}
    for _ in range(rounds):
        res["base"].append(run(base, secs, None))
        res["new"].append(run(new, secs, None))
        time.sleep(0.5)
    print("machine: %s; %ds x %d rounds, 8 connections, --threads 1" %
          (common.machine(), secs, rounds))
    print("%-24s %12s %12s %10s %10s %10s %8s" % ("route", "base req/s", "new req/s", "ratio",
                                                  "base us/rq", "new us/rq", "ratio"))
    for name in res["new"][0]:
        b_rps = statistics.median(r[name]["rps"] for r in res["base"])
        n_rps = statistics.median(r[name]["rps"] for r in res["new"])
        b_cpu = statistics.median(r[name]["cpu_us_per_req"] for r in res["base"])
        n_cpu = statistics.median(r[name]["cpu_us_per_req"] for r in res["new"])
        print("%-24s %12.0f %12.0f %10.2f %10.1f %10.1f %8.2f" % (
            name, b_rps, n_rps, n_rps / b_rps, b_cpu, n_cpu, n_cpu / b_cpu))


if __name__ == "__main__":
    main()
