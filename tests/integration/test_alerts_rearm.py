"""test_alerts_rearm.py - expiry alerts after the key's expiry changes (SPEC §6: "A renewal
re-arms the thresholds that now lie ahead"; docs/internals/alerts.md: key_alerts is keyed by
(key, expires_at, threshold)), against the real daemon and a real webhook receiver (the
Receiver of test_alerts.py, which checks nothing but records every POST).

Each test uses a policy with thresholds ["8s", "4s"] and a key of a 10 s lifetime, so the
"8s" threshold is 2 s away when the key is created (the scheduler, every 1 s, arms the key
first). All waits are computed from the expires_at the daemon returns, with a margin for
two busy cores. The module takes about 35 s.
"""

import time
import unittest

from harness import parse_time
import test_alerts as ta   # module import: its TestCase classes are not re-run here

THRESHOLDS = ["8s", "4s"]
LIFETIME = "10s"
MARGIN = 4.0      # seconds allowed, past a due time, for a tick + a delivery on a busy box


class TestAlertsRearm(ta.AlertTestBase):

    def make_policy(self, name):
        r = self.srv.post("/v1/policies", {
            "name": name, "alert_thresholds": THRESHOLDS, "default_lifetime": LIFETIME,
            "max_lifetime": "1d", "max_roll_overlap": "1h"})
        b = self.expect(r, 201, "create policy")
        self.assertEqual(b["alert_thresholds"], THRESHOLDS, b)

    def start_key(self, tag):
        """A credential under a fresh policy whose webhook contact is /<tag>; returns
        (create body, key id, expiry epoch)."""
        self.make_policy("rearm-" + tag)
        b = self.create(policy="rearm-" + tag, lifetime=LIFETIME, contacts=[
            {"type": "webhook", "url": self.rcv.url("/" + tag), "secret": ta.SINK_SECRET}])
        return b, b["key"]["id"], parse_time(b["key"]["expires_at"])

    def alerts(self, tag, key, types=("key.expiring", "key.expired")):
        """Events delivered (2xx) to /<tag> about key, in arrival order, signature checked."""
        out = []
        for h, e, raw in self.rcv.got("/" + tag):
            if e.get("key_id") != key or e.get("type") not in types:
                continue
            self.assertTrue(ta.check_signature(ta.SINK_SECRET, h, raw), "bad signature %r" % e)
            out.append(e)
        return out

    def expiring(self, tag, key, threshold):
        return [e for e in self.alerts(tag, key, ("key.expiring",))
                if e.get("threshold") == threshold]

    def wait_until(self, epoch):
        time.sleep(max(0.0, epoch - time.time()))

    def first_alert(self, tag, key, exp):
        """Wait for the "8s" alert of the key's first expiry; fails if it never comes."""
        got = self.wait_for(lambda: self.expiring(tag, key, "8s"),
                            timeout=max(1.0, exp - 8 - time.time()) + MARGIN, interval=0.1)
        self.assertEqual(len(got), 1, "first 8s alert: %r" % self.alerts(tag, key))
        self.assertEqual(parse_time(got[0]["expires_at"]), exp, got[0])
        return got[0]

    # (1) ------------------------------------------------------------------ renew
    def test_renew_rearms_threshold_already_raised(self):
        tag = "renew"
        b, key, exp = self.start_key(tag)
        first = self.first_alert(tag, key, exp)
        # renew while the old "4s" threshold (exp - 4) is still ahead: the new expiry puts
        # the "8s" threshold 5 s later than it was, i.e. ahead again
        self.assertLess(time.time(), exp - 5.5, "too slow to renew before the old 4s threshold")
        r = self.srv.post("/v1/keys/%s/renew" % key, {"extend_by": "5s"})
        rb = self.expect(r, 200, "renew")
        new_exp = parse_time(rb["key"]["expires_at"])
        self.assertEqual(new_exp, exp + 5, rb)
        self.assertFalse(rb.get("capped"), rb)
        # wait past the new "4s" threshold, so both re-armed thresholds are due
        self.wait_for(lambda: self.expiring(tag, key, "4s"),
                      timeout=max(0.0, new_exp - 4 - time.time()) + MARGIN, interval=0.2)
        time.sleep(1.5)        # a duplicate would come within a tick or two
        again = [e for e in self.expiring(tag, key, "8s") if e["id"] != first["id"]]
        self.assertEqual(len(again), 1,
                         "8s threshold after renewal: want it once more, with expires_at %s; "
                         "delivered: %r" % (rb["key"]["expires_at"], self.alerts(tag, key)))
        self.assertEqual(parse_time(again[0]["expires_at"]), new_exp, again[0])
        self.assertNotEqual(again[0]["id"], first["id"])
        four = self.expiring(tag, key, "4s")
        self.assertEqual(len(four), 1, self.alerts(tag, key))
        self.assertEqual(parse_time(four[0]["expires_at"]), new_exp, four[0])
        # nothing about the old expiry after the renewal: its 4s threshold was never reached
        self.assertEqual([e for e in self.alerts(tag, key) if parse_time(e["expires_at"]) == exp],
                         [first])
        self.assertEqual(self.alerts(tag, key, ("key.expired",)), [])

    # (2) ------------------------------------------------------------------- roll
    def test_roll_old_key_gets_only_expired_new_key_its_own(self):
        tag = "roll"
        b, old, exp = self.start_key(tag)
        first = self.first_alert(tag, old, exp)
        # a 3 s overlap puts the old key's new expiry 3 s ahead: its "4s" threshold for that
        # expiry is already 1 s behind, while the expiry itself is still to come (with a
        # shorter overlap a tick after the expiry would hide a wrongly raised 4s behind the
        # more urgent key.expired)
        t_roll = time.time()
        self.assertLess(t_roll, exp - 5.0, "too slow to roll before the old 4s threshold")
        r = self.srv.post("/v1/keys/%s/roll" % old, {"overlap": "3s", "lifetime": LIFETIME})
        rb = self.expect(r, 201, "roll")
        new = rb["key"]["id"]
        self.assertNotEqual(new, old)
        self.assertEqual(rb["previous"]["id"], old, rb)
        old_exp = parse_time(rb["previous"]["expires_at"])
        new_exp = parse_time(rb["key"]["expires_at"])
        self.assertLess(old_exp, exp, "roll did not shorten the old key: %r" % rb)
        self.assertLessEqual(abs(old_exp - (t_roll + 3)), 1.5, rb)
        self.assertLess(old_exp - 4, time.time(), "the 4s threshold must be past at the roll")
        # the old key: key.expired once, with the shortened expiry
        got = self.wait_for(lambda: self.alerts(tag, old, ("key.expired",)),
                            timeout=max(0.0, old_exp - time.time()) + MARGIN, interval=0.1)
        self.assertEqual(len(got), 1, "old key after roll: %r" % self.alerts(tag, old))
        self.assertEqual(parse_time(got[0]["expires_at"]), old_exp, got[0])
        # the new key: its own 8s and 4s alerts, with its expiry
        self.wait_for(lambda: self.expiring(tag, new, "4s"),
                      timeout=max(0.0, new_exp - 4 - time.time()) + MARGIN, interval=0.2)
        time.sleep(1.0)
        for th in THRESHOLDS:
            mine = self.expiring(tag, new, th)
            self.assertEqual(len(mine), 1, "new key %s: %r" % (th, self.alerts(tag, new)))
            self.assertEqual(parse_time(mine[0]["expires_at"]), new_exp, mine[0])
        # the old key raised no threshold past at the roll: only the 8s from before it and
        # the key.expired; its 4s (behind the shortened expiry) never came
        self.assertEqual([e["id"] for e in self.alerts(tag, old)], [first["id"], got[0]["id"]],
                         self.alerts(tag, old))
        self.assertEqual(self.expiring(tag, old, "4s"), [])

    # (3) ------------------------------------------------------------- invalidate
    def test_invalidated_key_raises_nothing_more(self):
        tag = "inval"
        b, key, exp = self.start_key(tag)
        first = self.first_alert(tag, key, exp)
        self.assertLess(time.time(), exp - 5.0, "too slow to invalidate before the 4s threshold")
        self.expect(self.srv.post("/v1/keys/%s/invalidate" % key, {"reason": "rearm test"}),
                    200, "invalidate")
        # the invalidation itself is delivered (so the channel works) ...
        inv = self.wait_for(lambda: [e for _h, e, _r in self.rcv.got("/" + tag)
                                     if e.get("type") == "key.invalidated"
                                     and e.get("key_id") == key], timeout=MARGIN)
        self.assertEqual(len(inv), 1, self.rcv.got("/" + tag))
        # ... but neither the 4s threshold nor the expiry raises anything
        self.wait_until(exp + 2.0)
        self.assertEqual(self.alerts(tag, key), [first])
        evs = self.events_of(b["credential"]["id"])
        self.assertEqual(sorted(e["type"] for e in evs if e.get("key_id") == key),
                         ["key.created", "key.expiring", "key.invalidated"], evs)


if __name__ == "__main__":
    unittest.main()
