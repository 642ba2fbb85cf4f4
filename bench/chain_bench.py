#!/usr/bin/python3
"""chain_bench.py - (g) what a user pays end to end: wrk -> nginx with the shipped
deploy/nginx snippets (auth_request to keyward over upstream keep-alive) -> a trivial
upstream, beside wrk -> nginx checking the same keys in a static `map` -> the same upstream.
Every server process (front nginx, keyward, the upstream nginx) runs on the server CPU and
wrk on the client CPU; the total CPU per request is the utime+stime delta of all of them
divided by wrk's request count. ROUNDS alternating rounds per point, medians printed.

    bench/chain_bench.py [N] [SECONDS] [ROUNDS] [CONNS...] [browser]
                                                  (defaults 100000 5 3 32 128)

The overhead of choosing keyward over a static map is the difference of the two CPU
figures (and of the latencies); both chains proxy to the upstream with keep-alive.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import http_bench  # noqa: E402

DEPLOY = os.path.join(common.REPO, "deploy", "nginx")

HEAD = """worker_processes 1;
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
{temps}
"""

UPSTREAM = HEAD + """
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""

APP = """
    upstream app {{
        server 127.0.0.1:{up};
        keepalive 32;
    }}
"""

# The shipped snippets, as docs/operations.md tells an operator to include them.
CHAIN = HEAD + APP + """
    include {http_conf};
    server {{
        listen 127.0.0.1:{port};
        include {kw_conf};
        location / {{
            include {protect};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }}
    }}
}}
"""

MAP = HEAD + APP + """
    map_hash_max_size {hash_max};
    map_hash_bucket_size 128;
    map $http_x_api_key $kw_known {{
        default 0;
        include {map};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($kw_known = 0) {{ return 401; }}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-API-Key "";
            proxy_pass http://app;
        }}
    }}
}}
"""

WRK_LUA = common.WRK_LUA.replace('"/v1/auth"', '"/orders"')

# With "browser" as the fifth argument each request also carries what a browser or an SDK
# sends (21 more fields, a 1 KiB cookie): nginx forwards client fields to the auth
# subrequest unless told not to.
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0 Safari/537.36",
    "Accept": "application/json, text/plain, */*", "Accept-Language": "en-GB,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br", "Referer": "https://app.example.test/orders",
    "Origin": "https://app.example.test", "Cookie": "session=" + "a" * 1024,
    "Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-site",
    "Sec-Ch-Ua": '"Chromium";v="120"', "Sec-Ch-Ua-Mobile": "?0",
    "Sec-Ch-Ua-Platform": '"Linux"', "Cache-Control": "no-cache", "Pragma": "no-cache",
    "DNT": "1", "X-Request-Id": "0f8e6d4c-2b1a-4c3d-9e8f-7a6b5c4d3e2f",
    "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "X-Client-Version": "4.2.1", "X-Forwarded-Proto": "https", "Priority": "u=1, i",
}
WRK_LUA_BROWSER = WRK_LUA.replace(
    '{["X-API-Key"] = keys[i]}',
    '{["X-API-Key"] = keys[i], %s}' % ", ".join(
        '["%s"] = %s' % (k, '"' + v.replace('"', '\\"') + '"') for k, v in BROWSER.items()))


class Nginx:
    def __init__(self, tmp, name, text):
        self.tmp, self.name = tmp, name
        self.conf = os.path.join(tmp, name + "-nginx.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.base = [common.NGINX, "-p", tmp, "-c", self.conf, "-e",
                     os.path.join(tmp, name + "-error.log")]
        t = subprocess.run(self.base + ["-t"], capture_output=True, text=True)
        if t.returncode != 0:
            raise RuntimeError("nginx -t refused %s: %s" % (name, t.stderr))

    def start(self, port, expect):
        self.proc = subprocess.Popen(["taskset", "-c", common.SERVER_CPU] + self.base,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while True:
            try:
                if common.get(port, "/orders")[0] == expect:
                    break
            except OSError:
                pass
            if time.time() - t0 > 300:
                self.proc.kill()
                raise RuntimeError("nginx %s did not start" % self.name)
            time.sleep(0.05)
        self.pids = [self.proc.pid] + [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()]
        return self

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def measure(groups, port, conns, secs, keys, tmp):
    """common.measure over all groups' pids, plus each group's CPU per request."""
    c0 = {g: sum(common.cpu_ticks(p) for p in pids) for g, pids in groups.items()}
    r = common.measure([p for pids in groups.values() for p in pids], port, conns, secs, keys,
                       tmp, LUA)
    for g, pids in groups.items():
        c1 = sum(common.cpu_ticks(p) for p in pids)
        r[g] = (c1 - c0[g]) / common.CLK * 1e6 / max(r["requests"], 1)
    return r


def split(rs, groups):
    return ", ".join("%s %.2f" % (g, sorted(r[g] for r in rs)[len(rs) // 2]) for g in groups)


def fmt(r):
    return "%8.0f req/s  %6.2f us CPU/req (all servers)  p50 %7.0f us  p99 %7.0f us%s" % (
        r["rps"], r["cpu_us_per_req"], r.get("p50", -1), r.get("p99", -1),
        ("  NON-2xx %d" % r["non2xx"]) if r["non2xx"] else "")


def main():
    args = sys.argv[1:]
    n = int(args[0]) if len(args) > 0 else 100000
    secs = int(args[1]) if len(args) > 1 else 5
    rounds = int(args[2]) if len(args) > 2 else 3
    global LUA
    LUA = WRK_LUA_BROWSER if "browser" in args[3:] else WRK_LUA
    conns_list = [int(c) for c in args[3:] if c != "browser"] or [32, 128]
    common.build()
    tmp = common.tmpdir()
    print("machine: %s" % common.machine())
    print("keys: %d; wrk -t1, %d s per point, %d rounds; servers on CPU %s, wrk on CPU %s; "
          "client fields: %s" % (n, secs, rounds, common.SERVER_CPU, common.CLIENT_CPU,
                                 "browser-like" if LUA is WRK_LUA_BROWSER else "key only"))
    mapf = os.path.join(tmp, "map.conf")
    kw, keys, _ = common.make_store(tmp, n, 10000, mapf)
    kw.extra = ["--threads", "1"]
    kw.start()
    started = []
    try:
        port_up, port_chain, port_map = common.free_port(), common.free_port(), common.free_port()
        with open(os.path.join(DEPLOY, "keyward-http.conf")) as f:
            http_conf = f.read()
        assert "server 127.0.0.1:8420;" in http_conf
        with open(os.path.join(tmp, "keyward-http.conf"), "w") as f:
            f.write(http_conf.replace("server 127.0.0.1:8420;", "server 127.0.0.1:%d;" % kw.port))
        hash_max = 1
        while hash_max < 2 * n:
            hash_max *= 2
        common_args = dict(tmp=tmp, user="user root;" if os.geteuid() == 0 else "", up=port_up,
                           temps="".join("    %s_temp_path %s/%s;\n" % (t, tmp, t) for t in (
                               "client_body", "proxy", "fastcgi", "uwsgi", "scgi")))
        up = Nginx(tmp, "upstream", UPSTREAM.format(name="upstream", port=port_up, **common_args))
        chain = Nginx(tmp, "chain", CHAIN.format(
            name="chain", port=port_chain, http_conf=os.path.join(tmp, "keyward-http.conf"),
            kw_conf=os.path.join(DEPLOY, "keyward.conf"),
            protect=os.path.join(DEPLOY, "keyward-protect.conf"), **common_args))
        mp = Nginx(tmp, "map", MAP.format(name="map", port=port_map, hash_max=hash_max, map=mapf,
                                          **common_args))
        fwd = None
        if LUA is WRK_LUA_BROWSER:
            # the shipped snippet as it was before it said proxy_pass_request_headers off
            with open(os.path.join(DEPLOY, "keyward.conf")) as f:
                kc = f.read()
            assert "    proxy_pass_request_headers off;\n" in kc
            with open(os.path.join(tmp, "keyward-fwd.conf"), "w") as f:
                f.write(kc.replace("    proxy_pass_request_headers off;\n", ""))
            port_fwd = common.free_port()
            fwd = Nginx(tmp, "fwd", CHAIN.format(
                name="fwd", port=port_fwd, http_conf=os.path.join(tmp, "keyward-http.conf"),
                kw_conf=os.path.join(tmp, "keyward-fwd.conf"),
                protect=os.path.join(DEPLOY, "keyward-protect.conf"), **common_args))
            started.append(fwd.start(port_fwd, 401))
        for srv, p, code in ((up, port_up, 200), (chain, port_chain, 401), (mp, port_map, 401)):
            started.append(srv.start(p, code))
        with open(keys) as f:
            k0 = f.readline().strip()
        for p in (port_chain, port_map):
            st, body = common.get(p, "/orders", {"X-API-Key": k0})
            assert st == 200 and body == b"hello\n", (p, st, body)
        pa = {"front nginx": chain.pids, "keyward": [kw.proc.pid], "upstream": up.pids}
        pb = {"front nginx": mp.pids, "upstream": up.pids}
        for conns in conns_list:
            ka, nb, fa = [], [], []
            for _ in range(rounds):
                ka.append(measure(pa, port_chain, conns, secs, keys, tmp))
                nb.append(measure(pb, port_map, conns, secs, keys, tmp))
                if fwd:
                    fa.append(measure(dict(pa, **{"front nginx": fwd.pids}), port_fwd, conns,
                                      secs, keys, tmp))
            if fwd:
                f = http_bench.median_result(fa)
                print("%3d conns  same, client fields forwarded to keyward (the snippet without "
                      "proxy_pass_request_headers off): %s; %s" % (conns, fmt(f), split(fa, pa)))
            a, b = http_bench.median_result(ka), http_bench.median_result(nb)
            print("%3d conns  nginx+keyward %s" % (conns, fmt(a)))
            print("%3d conns  nginx map     %s" % (conns, fmt(b)))
            print("%3d conns  us CPU/req by process (medians): keyward chain: %s; map chain: %s"
                  % (conns, split(ka, pa), split(nb, pb)))
            print("%3d conns  overhead of keyward: %+.2f us CPU per request (ratio %.2f), "
                  "p50 %+.0f us, p99 %+.0f us, throughput ratio %.2f  (per-round CPU ratio: %s)"
                  % (conns, a["cpu_us_per_req"] - b["cpu_us_per_req"],
                     a["cpu_us_per_req"] / max(b["cpu_us_per_req"], 1e-9),
                     a.get("p50", 0) - b.get("p50", 0), a.get("p99", 0) - b.get("p99", 0),
                     a["rps"] / max(b["rps"], 1),
                     " ".join("%.2f" % (x["cpu_us_per_req"] / max(y["cpu_us_per_req"], 1e-9))
                              for x, y in zip(ka, nb))))
    finally:
        for s in started:
            s.stop()
        kw.stop()
        if not os.environ.get("KW_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
