#!/usr/bin/python3
"""pg_create_bench.py - durable key creation (POST /v1/credentials, 201 only after the
commit) on PostgreSQL beside SQLite, at 1/8/32 connections for SECONDS each, and the floor:
pgbench running a plain `INSERT ...; COMMIT` (autocommit) loop with as many clients on the
same database. Also /v1/auth throughput on a PostgreSQL-backed node beside a SQLite-backed
one holding the same keys (the database is not on the verification path). Starts its own
throw-away cluster (scripts/pg.sh); synchronous_commit stays on.

    bench/pg_create_bench.py [SECONDS]      (default 5)
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from create_bench import LUA  # noqa: E402

PG_SH = os.path.join(common.REPO, "scripts", "pg.sh")
PGBENCH = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))[-1]


def creations(kw, secs, tmp):
    out = {}
    token = kw.admin_key()
    for conns in (1, 8, 32):
        r = common.measure([kw.proc.pid], kw.port, conns, secs, token, tmp, LUA)
        out[conns] = (r["requests"] - r["non2xx"]) / secs, r
    return out


def pgbench(url, secs, tmp):
    subprocess.run(["psql", "-q", url, "-c",
                    "CREATE TABLE IF NOT EXISTS floor (id BIGSERIAL PRIMARY KEY, v TEXT)"],
                   check=True, capture_output=True)
    script = os.path.join(tmp, "floor.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO floor (v) VALUES ('x');\n")
    out = {}
    for conns in (1, 8, 32):
        p = subprocess.run([PGBENCH, "-n", "-c", str(conns), "-j", "2", "-T", str(secs),
                            "-f", script, url], capture_output=True, text=True, check=True)
        m = re.search(r"tps = ([\d.]+)", p.stdout)
        out[conns] = float(m.group(1)) if m else 0.0
    return out


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    common.build()
    print("machine: %s" % common.machine())
    pgdir = tempfile.mkdtemp(prefix="kw-pg.")
    url = subprocess.run([PG_SH, "start", pgdir], check=True, capture_output=True,
                         text=True).stdout.strip()
    tmp = common.tmpdir()
    try:
        os.makedirs(os.path.join(tmp, "sq"))
        sq = common.Keyward(os.path.join(tmp, "sq")).start()
        try:
            res_sq = creations(sq, secs, tmp)
        finally:
            sq.stop()
        pgtmp = os.path.join(tmp, "pg")
        os.makedirs(pgtmp)
        pk = common.Keyward(pgtmp, ["--store", url, "--admin-key-file",
                                    os.path.join(pgtmp, "kw.admin-key"),
                                    "--secrets-key-file",
                                    os.path.join(pgtmp, "kw.secrets-key")]).start()
        try:
            res_pg = creations(pk, secs, tmp)
        finally:
            pk.stop()
        floor = pgbench(url, secs, tmp)
        print("durable creations/s (credential + first key, %ds each):" % secs)
        for c in (1, 8, 32):
            print("%2d conns: SQLite %6.0f/s | PostgreSQL %6.0f/s (p99 %.1f ms) | pgbench INSERT;"
                  "COMMIT floor %6.0f/s | PostgreSQL / floor %.2fx" % (
                      c, res_sq[c][0], res_pg[c][0], res_pg[c][1].get("p99", 0) / 1000,
                      floor[c], res_pg[c][0] / floor[c] if floor[c] else 0))
    finally:
        subprocess.run([PG_SH, "stop", pgdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pgdir, ignore_errors=True)


if __name__ == "__main__":
    main()
