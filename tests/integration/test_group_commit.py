"""Group commit (docs/internals/store.md): concurrent writes are committed together, one
transaction and one fsync per batch, each request's change in a savepoint of its own.
Many creations sent at once all succeed and survive a SIGKILL right after their 201s;
third keys refused with 409 in the same bursts change nothing and do not disturb the
requests committed beside them; the audit chain and the file stay sound."""

import subprocess
import threading

import crashlib
from harness import ServerTestCase


class GroupCommit(ServerTestCase):
    def burst(self, calls):
        """Run calls (functions returning a Resp) at once from one thread each; returns
        their responses in order."""
        out = [None] * len(calls)
        gate = threading.Barrier(len(calls))

        def run(i):
            gate.wait()
            out[i] = calls[i]()

        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        return out

    def test_concurrent_creations_are_durable_and_conflicts_stay_alone(self):
        s = self.srv
        full = self.create(name="gc-full")
        self.new_key(full["credential"]["id"])
        halves = [self.create(name="gc-half-%d" % i) for i in range(6)]
        before = self.expect(s.get("/v1/audit/verify"), 200, "audit verify")["records"]

        calls = []
        for i in range(40):
            calls.append(lambda i=i: s.post("/v1/credentials", {"name": "gc-%d" % i,
                                                                "scopes": ["gc"]}))
        for _ in range(4):  # a third usable key: always refused
            calls.append(lambda: s.post("/v1/credentials/%s/keys" % full["credential"]["id"], {}))
        for h in halves:  # one free slot each: exactly one of two wins
            for _ in range(2):
                calls.append(lambda h=h: s.post("/v1/credentials/%s/keys"
                                                % h["credential"]["id"], {}))
        rs = self.burst(calls)

        created = []
        for r in rs[:40]:
            b = self.expect(r, 201, "create in a burst")
            created.append((b["credential"]["id"], b["key"]["id"], b["secret"]))
        for r in rs[40:44]:
            self.assertProblem(r, 409)
        won = []
        for i, h in enumerate(halves):
            pair = rs[44 + 2 * i:46 + 2 * i]
            self.assertEqual(sorted(r.status for r in pair), [201, 409],
                             " / ".join(r.describe() for r in pair))
            won += [(r.body["key"]["id"], r.body["secret"]) for r in pair if r.status == 201]
        for cid, kid, secret in created:  # verifiable as soon as acknowledged
            self.verify_code(secret, "VALID")

        # acknowledged means on disk: kill -9 at once, then look
        crashlib.kill9(s)
        s.start()
        for cid, kid, secret in created:
            c = self.get_cred(cid)
            self.assertEqual([k["id"] for k in c["keys"]], [kid])
            self.assertEqual(c["scopes"], ["gc"])
            self.verify_code(secret, "VALID")
        for kid, secret in won:
            self.assertEqual(self.get_key(kid)["state"], "active")
            self.verify_code(secret, "VALID")
        self.assertEqual(len(self.get_cred(full["credential"]["id"])["keys"]), 2)
        for h in halves:
            self.assertEqual(len(self.get_cred(h["credential"]["id"])["keys"]), 2)
        names = [c["name"] for c in self.list_all()]
        for i in range(40):
            self.assertEqual(names.count("gc-%d" % i), 1)
        # one audit record per committed change, chained in commit order
        v = self.expect(s.get("/v1/audit/verify"), 200, "audit verify")
        self.assertTrue(v["ok"], v)
        self.assertGreaterEqual(v["records"], before + 40 + len(halves))
        p = subprocess.run(["sqlite3", s.db, "PRAGMA integrity_check"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.stdout.strip(), "ok", p.stdout + p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
