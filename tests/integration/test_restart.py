"""State survives SIGTERM and restart: usage flushed, credentials, revocations, expiries."""

import signal
import threading
import time

from harness import MSG, ServerTestCase, parse_time


class Restart(ServerTestCase):

    def test_state_survives_restart(self):
        srv = self.srv
        # usage: 100 verifies, then SIGTERM at once (usage must be flushed on the way out)
        a = self.create(name="used", scopes=["r"])
        for i in range(100):
            self.verify_code(a["secret"], "VALID", scope="r")
        t_used = time.time()
        # a credential with one revoked and one live key
        b = self.create(name="rotated")
        b2 = self.new_key(b["credential"]["id"])
        self.expect(srv.post("/v1/keys/%s/invalidate" % b["key"]["id"],
                             {"reason": "left the company"}), 200)
        # a key that expires in 2 s
        c = self.create(name="short", lifetime="2s")
        c_exp = parse_time(c["key"]["expires_at"])
        # a deleted credential
        d = self.create(name="deleted")
        self.expect(srv.delete("/v1/credentials/" + d["credential"]["id"]), 200)
        # a patched, disabled credential
        e = self.create(name="patched")
        self.expect(srv.patch("/v1/credentials/" + e["credential"]["id"],
                              {"disabled": True, "metadata": {"x": 1}, "owner": "o@example.com"}),
                    200)
        before = {cid: self.get_cred(cid) for cid in
                  (a["credential"]["id"], b["credential"]["id"], c["credential"]["id"],
                   e["credential"]["id"])}

        srv.restart()   # asserts exit 0 and no leaked secret

        k = self.get_key(a["key"]["id"])
        self.assertEqual(k["use_count"], 100, "use_count after restart: %s" % k)
        self.assertIsNotNone(k["last_used_at"])
        self.assertAlmostEqual(parse_time(k["last_used_at"]), t_used, delta=5)
        self.verify_code(a["secret"], "VALID", scope="r")
        self.verify_code(a["secret"], "FORBIDDEN_SCOPE", scope="w")

        v = self.verify_code(b["secret"], "REVOKED")
        self.assertEqual(v["message"], MSG["REVOKED"])
        self.verify_code(b2["secret"], "VALID")
        rk = self.get_key(b["key"]["id"])
        self.assertEqual((rk["state"], rk["revoke_reason"]), ("revoked", "left the company"))
        # the slot rule still holds after restart: slot 1 is free, slot 2 is taken
        n = self.new_key(b["credential"]["id"])
        self.assertEqual(n["key"]["slot"], 1)
        self.assertProblem(srv.post("/v1/credentials/%s/keys" % b["credential"]["id"], {}), 409)

        delay = c_exp + 1 - time.time()
        if delay > 0:
            time.sleep(delay)
        v = self.verify_code(c["secret"], "EXPIRED")
        self.assertEqual(v["message"], MSG["EXPIRED"])
        self.assertEqual(self.get_key(c["key"]["id"])["state"], "expired")

        self.assertProblem(srv.get("/v1/credentials/" + d["credential"]["id"]), 404)
        self.verify_code(d["secret"], "REVOKED")
        self.verify_code(e["secret"], "DISABLED")

        for cid, was in before.items():
            now = self.get_cred(cid)
            for f in ("name", "owner", "scopes", "allowed_cidrs", "metadata", "contacts",
                      "disabled", "policy", "prefix", "created_at", "updated_at"):
                self.assertEqual(now.get(f), was.get(f), "%s.%s changed across restart" % (cid, f))
            self.assertEqual([x["id"] for x in now["keys"]][-len(was["keys"]):],
                             [x["id"] for x in was["keys"]])

    def test_expiry_during_downtime(self):
        srv = self.srv
        c = self.create(name="expires-while-down", lifetime="3s")
        self.verify_code(c["secret"], "VALID")
        srv.stop()
        time.sleep(max(0, parse_time(c["key"]["expires_at"]) + 0.5 - time.time()))
        srv.start()
        self.verify_code(c["secret"], "EXPIRED")
        # and the key's slot is usable again
        n = self.new_key(c["credential"]["id"])
        self.verify_code(n["secret"], "VALID")

    def test_sigterm_flushes_usage_twice(self):
        a = self.create(name="twice")
        for _ in range(7):
            self.verify_code(a["secret"], "VALID")
        self.srv.restart()
        for _ in range(5):
            self.verify_code(a["secret"], "VALID")
        self.srv.restart()
        self.assertEqual(self.get_key(a["key"]["id"])["use_count"], 12)

    def test_sigterm_under_load_keeps_every_answered_use(self):
        a = self.create(name="load")
        kid, secret = a["key"]["id"], a["secret"]
        answered, attempted, other = [0], [0], []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                attempted[0] += 1
                try:
                    r = self.srv.verify(secret, timeout=5)
                except OSError:
                    continue   # the server has stopped listening
                if r.status == 200 and r.body.get("code") == "VALID":
                    answered[0] += 1
                else:
                    other.append(r.describe())
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        self.srv.proc.send_signal(signal.SIGTERM)
        try:
            self.srv.stop(signal_sent=True)   # exit 0, no leaked secret
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertGreater(answered[0], 10, "too little load to test anything")
        self.assertEqual(other, [], "answers other than VALID during shutdown")
        self.srv.start()
        n = self.get_key(kid)["use_count"]
        self.assertGreaterEqual(n, answered[0], "answered verifies lost across SIGTERM")
        self.assertLessEqual(n, attempted[0])
