#!/usr/bin/python3
"""pg_create_bench.py - durable key creation (POST /v1/credentials, 201 only after the
commit) on PostgreSQL beside SQLite, at 1/8/32 connections for SECONDS each, and the floor:
pgbench running a plain `INSERT ...; COMMIT` (autocommit) loop with as many clients on the
same database. Starts its own throw-away cluster (scripts/pg.sh); synchronous_commit stays on.

Where the time goes, per PostgreSQL level: the server's CPU per creation (utime + stime of
keyward, /proc), PostgreSQL's CPU per creation (the postmaster's children and its reaped
children), creations per PostgreSQL commit (pg_stat_database.xact_commit: the group-commit
batch size; approximate: PostgreSQL publishes a backend's counts at most once a second, and
the outbox's own transactions count too), and the machine's bound: the rate os.cpu_count()
CPUs reach if they did nothing but keyward's and PostgreSQL's work for a creation. The floor
gets the same PostgreSQL CPU reading per INSERT.

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


def pg_cpu_ticks(pgdir):
    """utime + stime of the cluster's postmaster, its live children and its reaped ones."""
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        pm = int(f.readline())
    with open("/proc/%d/stat" % pm) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    for kid in open("/proc/%d/task/%d/children" % (pm, pm)).read().split():
        try:
            total += common.cpu_ticks(int(kid))
        except OSError:
            pass  # exited meanwhile: counted in cutime from now on
    return total


def pg_commits(url):
    out = subprocess.run(["psql", "-qAt", url, "-c",
                          "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip() or 0)


def creations(kw, secs, tmp, pgdir=None, url=None):
    out = {}
    token = kw.admin_key()
    for conns in (1, 8, 32):
        if pgdir:
            p0, x0 = pg_cpu_ticks(pgdir), pg_commits(url)
        r = common.measure([kw.proc.pid], kw.port, conns, secs, token, tmp, LUA)
        n = max(r["requests"] - r["non2xx"], 1)
        if pgdir:
            r["pg_cpu_us"] = (pg_cpu_ticks(pgdir) - p0) / common.CLK * 1e6 / n
            r["per_commit"] = n / max(pg_commits(url) - x0 - 1, 1)  # -1: pg_commits' own
        out[conns] = (r["requests"] - r["non2xx"]) / secs, r
    return out


def pgbench(url, secs, tmp, pgdir):
    subprocess.run(["psql", "-q", url, "-c",
                    "CREATE TABLE IF NOT EXISTS floor (id BIGSERIAL PRIMARY KEY, v TEXT)"],
                   check=True, capture_output=True)
    script = os.path.join(tmp, "floor.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO floor (v) VALUES ('x');\n")
    out = {}
    for conns in (1, 8, 32):
        c0 = pg_cpu_ticks(pgdir)
        p = subprocess.run([PGBENCH, "-n", "-c", str(conns), "-j", "2", "-T", str(secs),
                            "-f", script, url], capture_output=True, text=True, check=True)
        m = re.search(r"tps = ([\d.]+)", p.stdout)
        m2 = re.search(r"number of transactions actually processed: (\d+)", p.stdout)
        tps = float(m.group(1)) if m else 0.0
        n = int(m2.group(1)) if m2 else max(tps * secs, 1)
        out[conns] = tps, (pg_cpu_ticks(pgdir) - c0) / common.CLK * 1e6 / max(n, 1)
    return out


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    common.build()
    print("machine: %s" % common.machine())
    pgdir = tempfile.mkdtemp(prefix="kw-pg.")
    url = subprocess.run([PG_SH, "start", pgdir], check=True, capture_output=True,
                         text=True).stdout.strip()
    tmp = common.tmpdir()
    load0 = os.getloadavg()[0]
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
            res_pg = creations(pk, secs, tmp, pgdir, url)
        finally:
            pk.stop()
        floor = pgbench(url, secs, tmp, pgdir)
        ncpu = os.cpu_count()
        print("load average before / after: %s" % " / ".join(
            "%.1f" % x for x in (load0, os.getloadavg()[0])))
        print("durable creations/s (credential + first key, %ds each):" % secs)
        for c in (1, 8, 32):
            f = floor[c][0]
            print("%2d conns: SQLite %6.0f/s | PostgreSQL %6.0f/s (p99 %.1f ms) | pgbench INSERT;"
                  "COMMIT floor %6.0f/s | PostgreSQL / floor %.2fx" % (
                      c, res_sq[c][0], res_pg[c][0], res_pg[c][1].get("p99", 0) / 1000,
                      f, res_pg[c][0] / f if f else 0))
        print("where a PostgreSQL creation goes, and the bound %d CPUs put on it:" % ncpu)
        for c in (1, 8, 32):
            r = res_pg[c][1]
            cpu = r["cpu_us_per_req"] + r["pg_cpu_us"]
            print("%2d conns: keyward CPU %5.0f us + PostgreSQL CPU %5.0f us per creation -> "
                  "bound %6.0f/s (%.2fx the floor) | %4.1f creations per commit | "
                  "floor: PostgreSQL CPU %4.0f us per INSERT" % (
                      c, r["cpu_us_per_req"], r["pg_cpu_us"], ncpu * 1e6 / cpu if cpu else 0,
                      ncpu * 1e6 / cpu / floor[c][0] if cpu and floor[c][0] else 0,
                      r["per_commit"], floor[c][1]))
    finally:
        subprocess.run([PG_SH, "stop", pgdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pgdir, ignore_errors=True)


if __name__ == "__main__":
    main()
