#!/usr/bin/python3
"""http_bench.py - (b) GET /v1/auth over keep-alive with wrk: keyward holding N keys
(default 1 M) beside nginx answering the same request from a static `map` of the same
keys, at 32 and 128 connections, servers pinned to CPU 1 and wrk to CPU 0. Reports req/s,
server CPU time per request (utime+stime deltas from /proc), p50/p99, and the
keyward/nginx ratios, all measured in this run.

    bench/http_bench.py [N] [SECONDS] [ROUNDS]     (defaults 1000000 10 3)

Each point is ROUNDS alternating keyward/nginx runs; medians are printed. keyward runs
with --threads 1 (nginx: worker_processes 1) and its default --usage-flush-interval.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    map_hash_max_size {hash_max};
    map_hash_bucket_size 128;
{temps}
    map $http_x_api_key $kw_known {{
        default 0;
        include {map};
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /v1/auth {{
            if ($kw_known = 0) {{ return 401; }}
            return 204;
        }}
    }}
}}
"""


def fmt(r):
    return "%8.0f req/s  %6.2f us CPU/req  p50 %7.0f us  p99 %7.0f us%s" % (
        r["rps"], r["cpu_us_per_req"], r.get("p50", -1), r.get("p99", -1),
        ("  NON-2xx %d" % r["non2xx"]) if r["non2xx"] else "")


def median_result(rs):
    """Per-metric median of several measure() results."""
    out = dict(rs[0])
    for k in ("rps", "cpu_us_per_req", "p50", "p99"):
        vals = sorted(r.get(k, 0) for r in rs)
        out[k] = vals[len(vals) // 2]
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    common.build()
    tmp = common.tmpdir()
    print("machine: %s" % common.machine())
    print("keys: %d; wrk -t1, %d s per point; servers on CPU %s, wrk on CPU %s" % (
        n, secs, common.SERVER_CPU, common.CLIENT_CPU))
    mapf = os.path.join(tmp, "map.conf")
    kw, keys, load_s = common.make_store(tmp, n, 10000, mapf)
    print("bulk insert: %.1f s" % load_s)
    # Same resources for both: nginx runs one worker process on the server CPU, keyward one
    # event-loop thread there (its default is one per CPU it may run on).
    kw.extra = ["--threads", "1"]
    kw.start()
    print("keyward ready in %.2f s, RSS %d MiB" % (kw.ready_s, common.rss_kib(kw.proc.pid) // 1024))

    port = common.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    temps = "".join("    %s_temp_path %s/%s;\n" % (t, tmp, t)
                    for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    hash_max = 1
    while hash_max < 2 * n:
        hash_max *= 2
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, user="user root;" if os.geteuid() == 0 else "",
                                  hash_max=hash_max, temps=temps, map=mapf, port=port))
    base = [common.NGINX, "-p", tmp, "-c", conf, "-e", os.path.join(tmp, "nginx-error.log")]
    t = subprocess.run(base + ["-t"], capture_output=True, text=True)
    print("nginx -t: %s" % ("ok" if t.returncode == 0 else t.stderr))
    if t.returncode != 0:
        sys.exit(1)
    ng = subprocess.Popen(["taskset", "-c", common.SERVER_CPU] + base,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while True:
        try:
            if common.get(port, "/v1/auth")[0] == 401:
                break
        except OSError:
            pass
        if time.time() - t0 > 300:
            sys.exit("nginx did not start")
        time.sleep(0.05)
    print("nginx ready in %.1f s" % (time.time() - t0))
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True,
                                              text=True).stdout.split()]
    try:
        with open(keys) as f:
            k0 = f.readline().strip()
        assert common.get(kw.port, "/v1/auth", {"X-API-Key": k0})[0] == 204
        assert common.get(port, "/v1/auth", {"X-API-Key": k0})[0] == 204
        for conns in (32, 128):
            # ROUNDS alternating pairs (keyward, nginx): steal and noise from other work
            # hit both; the medians and the ratio of medians are reported.
            ka, nb = [], []
            for _ in range(rounds):
                ka.append(common.measure([kw.proc.pid], kw.port, conns, secs, keys, tmp))
                nb.append(common.measure(workers + [ng.pid], port, conns, secs, keys, tmp))
            a, b = median_result(ka), median_result(nb)
            print("%3d conns  keyward %s" % (conns, fmt(a)))
            print("%3d conns  nginx   %s" % (conns, fmt(b)))
            print("%3d conns  ratio keyward/nginx: throughput %.2f, CPU per request %.2f, "
                  "p50 %.2f, p99 %.2f  (medians of %d rounds; CPU ratio per round: %s)" % (
                      conns, a["rps"] / max(b["rps"], 1),
                      a["cpu_us_per_req"] / max(b["cpu_us_per_req"], 1e-9),
                      a.get("p50", 0) / max(b.get("p50", 1), 1e-9),
                      a.get("p99", 0) / max(b.get("p99", 1), 1e-9), rounds,
                      " ".join("%.2f" % (x["cpu_us_per_req"] / max(y["cpu_us_per_req"], 1e-9))
                               for x, y in zip(ka, nb))))
    finally:
        ng.terminate()
        ng.wait()
        kw.stop()
        if not os.environ.get("KW_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
