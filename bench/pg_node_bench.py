#!/usr/bin/python3
"""pg_node_bench.py - a node on PostgreSQL beside a node on SQLite holding the same N keys:
start-up to /readyz (the index load from the database) and GET /v1/auth throughput and
server CPU per request with wrk (the database is not on the verification path, so these
must match within noise). The N keys are made by bench/bulkload.c into SQLite, then moved
into PostgreSQL with COPY (triggers off during the bulk move, as a restore would).
Starts its own throw-away cluster (scripts/pg.sh).

    bench/pg_node_bench.py [N] [SECONDS]      (default 1000000 keys, 5 s per wrk run)
    bench/pg_node_bench.py N --base BIN [--rounds R]
With --base, start-up only: each round starts this build and BIN (another build, e.g.
main's) on each store, the two in alternating order, so both see the same machine load.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PG_SH = os.path.join(common.REPO, "scripts", "pg.sh")
CRED = ("id, name, owner, scopes, cidrs, metadata, contacts, policy, prefix, disabled, "
        "created_at, updated_at, deleted_at")
KEY = ("id, cred_id, slot, live_slot, hint, digest, created_at, expires_at, revoked_at, "
       "revoke_reason, last_used_at, use_count")


def move(db, url):
    """credentials and keys of the SQLite file db into the PostgreSQL at url."""
    def pipe(select, copy):
        exp = subprocess.Popen(["sqlite3", "-csv", db, select], stdout=subprocess.PIPE)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", copy],
                       stdin=exp.stdout, check=True)
        exp.stdout.close()
        if exp.wait() != 0:
            raise RuntimeError("sqlite3 export failed")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                    "ALTER TABLE credentials DISABLE TRIGGER USER;"
                    " ALTER TABLE keys DISABLE TRIGGER USER;"
                    " CREATE UNLOGGED TABLE kstage (id TEXT, cred_id TEXT, slot INT,"
                    " live_slot INT, hint TEXT, digest TEXT, created_at BIGINT,"
                    " expires_at BIGINT, revoked_at BIGINT, revoke_reason TEXT,"
                    " last_used_at BIGINT, use_count BIGINT)"], check=True)
    pipe("SELECT %s FROM credentials WHERE name <> 'admin'" % CRED,
         "\\copy credentials (%s) FROM STDIN WITH (FORMAT csv)" % CRED)
    pipe("SELECT %s FROM keys WHERE cred_id IN (SELECT id FROM credentials WHERE name <> 'admin')"
         % KEY.replace("digest", "hex(digest)"),
         "\\copy kstage FROM STDIN WITH (FORMAT csv)")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                    "INSERT INTO keys (%s, next_alert_at) SELECT id, cred_id, slot, live_slot,"
                    " hint, decode(digest, 'hex'), created_at, expires_at, revoked_at,"
                    " revoke_reason, last_used_at, use_count, CASE WHEN expires_at IS NOT NULL"
                    " AND revoked_at IS NULL THEN 0 END FROM kstage;"
                    " DROP TABLE kstage;"
                    " ALTER TABLE credentials ENABLE TRIGGER USER;"
                    " ALTER TABLE keys ENABLE TRIGGER USER" % KEY], check=True)
    subprocess.run(["psql", "-q", url, "-c", "VACUUM ANALYZE"], check=True)


def startups(sq, pgtmp, pgargs, base, rounds):
    """Alternating rounds of start-up to /readyz: this build and base, on both stores."""
    bins = [("this", common.BIN), ("base", base)]
    for r in range(rounds):
        for name, b in (bins if r % 2 == 0 else bins[::-1]):
            for store, kw in (("SQLite", common.Keyward(sq.tmp, binary=b)),
                              ("PostgreSQL", common.Keyward(pgtmp, pgargs, binary=b))):
                kw.start()
                kw.stop()
                print("round %d %-4s %-10s start to /readyz %.2f s (load %.1f)" % (
                    r + 1, name, store, kw.ready_s, os.getloadavg()[0]), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000000)
    ap.add_argument("secs", nargs="?", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--base", help="a second keyward binary: compare start-up only")
    a = ap.parse_args()
    n, secs = a.n, a.secs
    common.build()
    print("machine: %s" % common.machine())
    pgdir = tempfile.mkdtemp(prefix="kw-pg.")
    url = subprocess.run([PG_SH, "start", pgdir], check=True, capture_output=True,
                         text=True).stdout.strip()
    tmp = common.tmpdir()
    try:
        sq, keys, load_s = common.make_store(tmp, n)
        pgtmp = os.path.join(tmp, "pg")
        os.makedirs(pgtmp)
        pgargs = ["--store", url, "--admin-key-file", os.path.join(pgtmp, "kw.admin-key"),
                  "--secrets-key-file", os.path.join(pgtmp, "kw.secrets-key")]
        pk = common.Keyward(pgtmp, pgargs).start()
        pk.stop()  # schema in place
        move(sq.db, url)
        if a.base:
            startups(sq, pgtmp, pgargs, a.base, a.rounds)
            return
        res = {}
        for name, kw in (("SQLite", sq), ("PostgreSQL", pk)):
            kw.start()
            r = common.measure([kw.proc.pid], kw.port, 32, secs, keys, tmp)
            res[name] = (kw.ready_s, r)
            kw.stop()
        print("keys: %d" % n)
        for name, (ready, r) in res.items():
            print("%-10s start to /readyz %.2f s | GET /v1/auth %7.0f req/s, %.1f us server "
                  "CPU each, p99 %.0f us (%d non-2xx)" % (name, ready, r["rps"],
                                                         r["cpu_us_per_req"], r.get("p99", 0),
                                                         r["non2xx"]))
        a, b = res["SQLite"][1], res["PostgreSQL"][1]
        print("PostgreSQL / SQLite: throughput %.2fx, CPU per request %.2fx" % (
            b["rps"] / a["rps"], b["cpu_us_per_req"] / a["cpu_us_per_req"]))
    finally:
        subprocess.run([PG_SH, "stop", pgdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pgdir, ignore_errors=True)


if __name__ == "__main__":
    main()
