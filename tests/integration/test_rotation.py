"""Zero-downtime rotation: two slots, new key, roll with overlap, invalidate (SPEC §2, §5)."""

import threading
import time

from harness import DAY, MSG, ServerTestCase, parse_time


class Rotation(ServerTestCase):
    # Debug logging, so the teardown's secret scan covers the most verbose logs.
    extra_args = ("--log-level", "debug")

    def usable(self, cred_id):
        return [k for k in self.get_cred(cred_id)["keys"] if k["state"] == "active"]

    def test_walkthrough(self):
        b = self.create(scopes=["orders:read"])
        cid, k1, s1 = b["credential"]["id"], b["key"]["id"], b["secret"]
        self.assertEqual(b["key"]["slot"], 1)
        # 1. a secondary key, while the primary keeps working
        n = self.new_key(cid)
        k2, s2 = n["key"]["id"], n["secret"]
        self.assertEqual(n["key"]["slot"], 2)
        self.assertEqual(n["key"]["credential_id"], cid)
        v1 = self.verify_code(s1, "VALID", scope="orders:read")
        v2 = self.verify_code(s2, "VALID", scope="orders:read")
        self.assertEqual((v1["slot"], v1["key_id"], v1["credential_id"]), (1, k1, cid))
        self.assertEqual((v2["slot"], v2["key_id"], v2["credential_id"]), (2, k2, cid))
        # 2. never a third usable key
        r = self.srv.post("/v1/credentials/%s/keys" % cid, {})
        self.assertProblem(r, 409)
        self.assertEqual(len(self.get_cred(cid)["keys"]), 2, "a refused key was stored")
        # 3. invalidate the primary
        r = self.srv.post("/v1/keys/%s/invalidate" % k1, {"reason": "rotated to slot 2"})
        k = self.expect(r, 200, "invalidate")
        self.assertEqual(k["id"], k1)
        self.assertEqual(k["state"], "revoked", r.describe())
        self.assertEqual(k["revoke_reason"], "rotated to slot 2", r.describe())
        self.assertLess(abs(parse_time(k["revoked_at"]) - time.time()), 10, r.describe())
        v = self.verify_code(s1, "REVOKED")
        self.assertEqual(v["message"], MSG["REVOKED"])
        self.assertEqual(v.get("key_id"), k1)
        self.verify_code(s2, "VALID", scope="orders:read")
        g = self.get_key(k1)
        self.assertEqual(g["state"], "revoked")
        # 4. the freed slot 1 takes the next key
        n3 = self.new_key(cid)
        self.assertEqual(n3["key"]["slot"], 1, n3["key"])
        v3 = self.verify_code(n3["secret"], "VALID", scope="orders:read")
        self.assertEqual(v3["slot"], 1)
        self.verify_code(s2, "VALID")
        self.verify_code(s1, "REVOKED")
        self.assertProblem(self.srv.post("/v1/credentials/%s/keys" % cid, {}), 409)
        self.assertEqual(len(self.usable(cid)), 2)

    def test_roll_with_overlap(self):
        b = self.create()
        k1, s1 = b["key"]["id"], b["secret"]
        old_exp = parse_time(b["key"]["expires_at"])
        now = time.time()
        r = self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": "1h"})
        body = self.expect(r, 201, "roll")
        for f in ("key", "secret", "previous"):
            self.assertIn(f, body, r.describe())
        self.assertEqual(body["key"]["slot"], 2, r.describe())
        self.assertEqual(body["previous"]["id"], k1, r.describe())
        self.assertEqual(body["previous"]["state"], "active", r.describe())
        prev_exp = parse_time(body["previous"]["expires_at"])
        self.assertAlmostEqual(prev_exp, now + 3600, delta=10, msg=r.describe())
        self.assertLess(prev_exp, old_exp)
        self.assertEqual(self.get_key(k1)["expires_at"], body["previous"]["expires_at"])
        self.verify_code(s1, "VALID")
        v = self.verify_code(body["secret"], "VALID")
        self.assertEqual(v["slot"], 2)
        # the new key has a full lifetime
        self.assertAlmostEqual(parse_time(body["key"]["expires_at"]), now + 365 * DAY, delta=15)
        # the other slot is now taken: a second roll of the same key has nowhere to go
        r = self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": "1h"})
        self.assertProblem(r, 409)
        self.assertEqual(len(self.get_cred(b["credential"]["id"])["keys"]), 2)

    def test_roll_default_overlap_24h(self):
        b = self.create()
        now = time.time()
        r = self.srv.post("/v1/keys/%s/roll" % b["key"]["id"], {})
        body = self.expect(r, 201, "roll")
        self.assertAlmostEqual(parse_time(body["previous"]["expires_at"]), now + DAY, delta=10,
                               msg=r.describe())

    def test_roll_never_extends_old_key(self):
        now = time.time()
        b = self.create(lifetime="30m")
        r = self.srv.post("/v1/keys/%s/roll" % b["key"]["id"], {"overlap": "2h"})
        body = self.expect(r, 201, "roll")
        self.assertEqual(body["previous"]["expires_at"], b["key"]["expires_at"], r.describe())
        self.assertAlmostEqual(parse_time(body["previous"]["expires_at"]), now + 1800, delta=10)

    def test_roll_overlap_above_policy_max(self):
        b = self.create()
        cid, k1 = b["credential"]["id"], b["key"]["id"]
        for overlap in ("8d", "169h", "30d"):
            r = self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": overlap})
            self.assertProblem(r, (400, 422), "overlap")
        g = self.get_cred(cid)
        self.assertEqual([k["id"] for k in g["keys"]], [k1], "a refused roll changed the keys")
        self.assertEqual(g["keys"][0]["expires_at"], b["key"]["expires_at"])
        # exactly the maximum is allowed
        now = time.time()
        r = self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": "7d"})
        body = self.expect(r, 201, "roll at max overlap")
        self.assertAlmostEqual(parse_time(body["previous"]["expires_at"]), now + 7 * DAY, delta=10)

    def test_roll_revoked_key_conflicts(self):
        b = self.create()
        k1 = b["key"]["id"]
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % k1, {}), 200)
        self.assertProblem(self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": "1h"}), 409)
        self.assertEqual(len(self.get_cred(b["credential"]["id"])["keys"]), 1)

    def wait_used(self, key_id, count):
        return self.wait_for(lambda: self.get_key(key_id)["use_count"] >= count, timeout=5)

    def test_invalidate_unused_for_refuses_recently_used(self):
        b = self.create()
        k1, s1 = b["key"]["id"], b["secret"]
        self.new_key(b["credential"]["id"])
        self.verify_code(s1, "VALID")
        self.assertTrue(self.wait_used(k1, 1), "use not recorded within 5 s")
        r = self.srv.post("/v1/keys/%s/invalidate" % k1, {"unused_for": "1h"})
        self.assertProblem(r, 409)
        self.assertEqual(self.get_key(k1)["state"], "active", "a refused invalidate revoked")
        self.verify_code(s1, "VALID")

    def test_invalidate_unused_for_allows_unused(self):
        b = self.create()
        k1 = b["key"]["id"]
        r = self.srv.post("/v1/keys/%s/invalidate" % k1, {"unused_for": "1h"})
        k = self.expect(r, 200, "invalidate never-used key")
        self.assertEqual(k["state"], "revoked")
        self.verify_code(b["secret"], "REVOKED")
        # used, then quiet for longer than unused_for
        b = self.create()
        k1 = b["key"]["id"]
        self.verify_code(b["secret"], "VALID")
        self.assertTrue(self.wait_used(k1, 1), "use not recorded within 5 s")
        time.sleep(2.2)
        r = self.srv.post("/v1/keys/%s/invalidate" % k1, {"unused_for": "1s"})
        self.expect(r, 200, "invalidate key unused for 2 s with unused_for=1s")
        self.verify_code(b["secret"], "REVOKED")

    def test_invalidate_twice_conflicts(self):
        b = self.create()
        k1 = b["key"]["id"]
        first = self.expect(self.srv.post("/v1/keys/%s/invalidate" % k1, {"reason": "one"}), 200)
        r = self.srv.post("/v1/keys/%s/invalidate" % k1, {"reason": "two"})
        self.assertProblem(r, 409)
        k = self.get_key(k1)
        self.assertEqual(k["revoke_reason"], "one", "second invalidate changed the record")
        self.assertEqual(k["revoked_at"], first["revoked_at"])

    def _concurrent(self, n, fn):
        barrier = threading.Barrier(n)
        results = [None] * n

        def run(i):
            try:
                barrier.wait(timeout=10)
                results[i] = fn()
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    def test_concurrent_new_key_one_winner(self):
        b = self.create()
        cid = b["credential"]["id"]
        results = self._concurrent(
            20, lambda: self.srv.post("/v1/credentials/%s/keys" % cid, {}, timeout=30))
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses.count(201), 1, "statuses %s" % statuses)
        self.assertEqual(statuses.count(409), 19, "statuses %s; e.g. %s" % (
            statuses, [r.describe() for r in results if r.status not in (201, 409)][:1]))
        winner = [r for r in results if r.status == 201][0]
        keys = self.get_cred(cid)["keys"]
        self.assertEqual(len(keys), 2, "keys stored: %d" % len(keys))
        self.assertLessEqual(len([k for k in keys if k["state"] == "active"]), 2)
        self.assertEqual(sorted(k["slot"] for k in keys), [1, 2])
        self.verify_code(winner.body["secret"], "VALID")
        self.verify_code(b["secret"], "VALID")

    def test_concurrent_invalidate_one_winner(self):
        b = self.create()
        k1 = b["key"]["id"]
        results = self._concurrent(
            10, lambda: self.srv.post("/v1/keys/%s/invalidate" % k1, {}, timeout=30))
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [200] + [409] * 9)

    def test_concurrent_roll_and_new_key_one_winner(self):
        b = self.create()
        cid, k1 = b["credential"]["id"], b["key"]["id"]
        ops = [lambda: self.srv.post("/v1/credentials/%s/keys" % cid, {}, timeout=30),
               lambda: self.srv.post("/v1/keys/%s/roll" % k1, {"overlap": "1h"}, timeout=30)]
        counter = iter(range(1000))
        results = self._concurrent(16, lambda: ops[next(counter) % 2]())
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses.count(201), 1, "statuses %s" % statuses)
        self.assertEqual(statuses.count(409), 15, "statuses %s" % statuses)
        keys = self.get_cred(cid)["keys"]
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(sorted(k["slot"] for k in keys), [1, 2])
