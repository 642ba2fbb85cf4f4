"""The alert gap (issue 11, SPEC section 6): a threshold passed while the service was down
before the scheduler first looked at a new key is raised late, once - not skipped. A new
key is armed from its creation time (next_alert_at = -created_at), so the first look after
a restart knows which thresholds were crossed since the key existed."""

import time

from harness import ServerTestCase


class AlertGap(ServerTestCase):
    # one pass at start-up, the next only after a minute: the key is created between them
    extra_args = ("--scheduler-interval", "60s")

    def events_of(self, cred_id, type_):
        r = self.srv.get("/v1/events", query={"credential_id": cred_id, "type": type_,
                                               "limit": 100})
        return self.expect(r, 200, "list events")["items"]

    def test_threshold_crossed_while_down_before_first_look(self):
        r = self.srv.post("/v1/policies", {"name": "gap", "alert_thresholds": ["9s", "3s"],
                                           "default_lifetime": "10s", "max_lifetime": "1d"})
        self.expect(r, 201, "create policy")
        b = self.create(policy="gap")
        cred = b["credential"]["id"]
        t0 = time.time()
        self.srv.stop()  # before any scheduler pass saw the key
        # 9s threshold crossed at t0+1, 3s at t0+7: restart in between them
        time.sleep(max(0, t0 + 2.0 - time.time()))
        self.srv.start()
        got = self.wait_for(lambda: self.events_of(cred, "key.expiring"), timeout=5)
        self.assertTrue(got, "the 9s threshold crossed during the downtime was never raised")
        exp = self.events_of(cred, "key.expiring")
        self.assertEqual(len(exp), 1, exp)
        self.assertEqual(exp[0]["threshold"], "9s")
        # raised once: a later pass (the restart's next start-up pass) does not repeat it
        self.srv.restart()
        time.sleep(0.5)
        exp = self.events_of(cred, "key.expiring")
        self.assertEqual([e["threshold"] for e in exp], ["9s"], exp)
