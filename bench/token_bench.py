#!/usr/bin/python3
"""token_bench.py - OAuth2 access tokens (SPEC §13), measured with wrk against keyward
pinned to one CPU (--threads 1), wrk on the other:

  (a) issuance: POST /oauth2/token (client_credentials, HTTP Basic, a different client per
      request) at 1 and 32 connections: tokens/s and server CPU per token;
  (b) GET /v1/auth with an access token against the same with an API key (the keys that
      obtained those tokens), at 32 connections: CPU per request and its ratio
      token/key, ROUNDS alternating runs, medians.

    bench/token_bench.py [N] [SECONDS] [ROUNDS] [CLIENTS]    (defaults 100000 5 3 1000)

N background keys are bulk-loaded (bench/bulkload.c) so the index is not toy-sized; CLIENTS
credentials are created through the API and each obtains one token for (b).
"""

import base64
import json
import os
import shutil
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ISSUE_LUA = r'''
local auths = {}
local i = 0
init = function(args)
    for line in io.lines(args[1]) do auths[#auths + 1] = line end
end
request = function()
    i = i % #auths + 1
    return wrk.format("POST", "/oauth2/token", {
        ["Authorization"] = "Basic " .. auths[i],
        ["Content-Type"] = "application/x-www-form-urlencoded"},
        "grant_type=client_credentials")
end
'''

AUTH_LUA = r'''
local keys = {}
local i = 0
init = function(args)
    for line in io.lines(args[1]) do keys[#keys + 1] = line end
end
request = function()
    i = i % #keys + 1
    return wrk.format("GET", "/v1/auth", {["Authorization"] = "Bearer " .. keys[i]})
end
'''


def api(port, method, path, body=None, token=None, form=None, basic=None):
    data, hdrs = None, {}
    if body is not None:
        data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, hdrs["Content-Type"] = form.encode(), "application/x-www-form-urlencoded"
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if basic:
        hdrs["Authorization"] = "Basic " + basic
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 headers=hdrs, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def median(rs, k):
    v = sorted(r[k] for r in rs)
    return v[len(v) // 2]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    common.build()
    tmp = common.tmpdir()
    print("machine: %s" % common.machine())
    print("background keys: %d; clients: %d; wrk -t1, %d s per point; keyward on CPU %s "
          "(--threads 1), wrk on CPU %s" % (n, clients, secs, common.SERVER_CPU,
                                            common.CLIENT_CPU))
    kw, _keys, _ = common.make_store(tmp, n, 10)
    kw.extra = ["--threads", "1", "--auth-fail-limit", "0"]
    kw.start()
    try:
        admin = kw.admin_key()
        auths, keys, tokens = [], [], []
        for i in range(clients):
            c = api(kw.port, "POST", "/v1/credentials",
                    {"name": "bench-%d" % i, "scopes": ["orders:read", "orders:write"]}, admin)
            basic = base64.b64encode(("%s:%s" % (c["credential"]["id"], c["secret"])).encode())
            auths.append(basic.decode())
            keys.append(c["secret"])
            t = api(kw.port, "POST", "/oauth2/token", form="grant_type=client_credentials",
                    basic=basic.decode())
            tokens.append(t["access_token"])
        files = {}
        for name, lines in (("auths", auths), ("keys", keys), ("tokens", tokens)):
            files[name] = os.path.join(tmp, name + ".txt")
            with open(files[name], "w") as f:
                f.write("\n".join(lines) + "\n")
        assert common.get(kw.port, "/v1/auth", {"Authorization": "Bearer " + tokens[0]})[0] == 204

        print("(a) POST /oauth2/token (client_credentials, HTTP Basic):")
        for conns in (1, 32):
            rs = [common.measure([kw.proc.pid], kw.port, conns, secs, files["auths"], tmp,
                                 ISSUE_LUA) for _ in range(rounds)]
            bad = sum(r["non2xx"] for r in rs)
            print("  %2d conns: %8.0f tokens/s  %6.2f us CPU/token  p50 %6.0f us  p99 %7.0f us"
                  "%s  (median of %d)" % (conns, median(rs, "rps"), median(rs, "cpu_us_per_req"),
                                          median(rs, "p50"), median(rs, "p99"),
                                          ("  NON-2xx %d" % bad) if bad else "", rounds))

        print("(b) GET /v1/auth, 32 conns, token vs key (same %d clients):" % clients)
        ka, tb = [], []
        for _ in range(rounds):
            ka.append(common.measure([kw.proc.pid], kw.port, 32, secs, files["keys"], tmp,
                                     AUTH_LUA))
            tb.append(common.measure([kw.proc.pid], kw.port, 32, secs, files["tokens"], tmp,
                                     AUTH_LUA))
        for label, rs in (("key  ", ka), ("token", tb)):
            bad = sum(r["non2xx"] for r in rs)
            print("  %s %8.0f req/s  %6.2f us CPU/req  p50 %6.0f us  p99 %7.0f us%s" % (
                label, median(rs, "rps"), median(rs, "cpu_us_per_req"), median(rs, "p50"),
                median(rs, "p99"), ("  NON-2xx %d" % bad) if bad else ""))
        print("  ratio token/key: CPU per request %.2f, throughput %.2f  (per round: %s)" % (
            median(tb, "cpu_us_per_req") / max(median(ka, "cpu_us_per_req"), 1e-9),
            median(tb, "rps") / max(median(ka, "rps"), 1),
            " ".join("%.2f" % (t["cpu_us_per_req"] / max(k["cpu_us_per_req"], 1e-9))
                     for k, t in zip(ka, tb))))
    finally:
        kw.stop()
        if not os.environ.get("KW_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
