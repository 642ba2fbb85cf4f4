"""Retention (issue 11, SPEC section 4): events with their deliveries, alert records and mail
quotas older than --retention are pruned by the scheduler in small batches; recent history
and the audit trail stay."""

import sqlite3
import time

from harness import ServerTestCase


class Retention(ServerTestCase):
    extra_args = ("--retention", "4s", "--scheduler-interval", "1s", "--sink", "log")

    def events_of(self, cred_id):
        r = self.srv.get("/v1/events", query={"credential_id": cred_id, "limit": 100})
        return self.expect(r, 200, "list events")["items"]

    def count(self, sql, *args):
        con = sqlite3.connect("file:%s?mode=ro" % self.srv.db, uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchone()[0]
        finally:
            con.close()

    def test_old_history_pruned_recent_kept(self):
        r = self.srv.post("/v1/policies", {"name": "short", "alert_thresholds": ["1s"],
                                           "default_lifetime": "2s", "max_lifetime": "1d"})
        self.expect(r, 201)
        old = self.create(policy="short")
        cred, key = old["credential"]["id"], old["key"]["id"]
        got = self.wait_for(lambda: any(e["type"] == "key.expired" for e in self.events_of(cred)),
                            timeout=8)
        self.assertTrue(got, "no key.expired raised")
        self.assertGreater(self.count("SELECT count(*) FROM key_alerts WHERE key_id = ?", key), 0)
        # expired at t0+2: its events and alert records are older than 4 s by t0+7
        gone = self.wait_for(lambda: not self.events_of(cred), timeout=12, interval=0.5)
        self.assertTrue(gone, "events older than --retention still listed: %r"
                        % self.events_of(cred))
        fresh = self.create()
        self.assertTrue(self.events_of(fresh["credential"]["id"]), "a fresh event was pruned")
        self.assertTrue(self.wait_for(
            lambda: self.count("SELECT count(*) FROM key_alerts WHERE key_id = ?", key) == 0,
            timeout=6), "alert records of an expiry older than --retention kept")
        self.assertEqual(self.count("SELECT count(*) FROM deliveries d WHERE NOT EXISTS"
                                    " (SELECT 1 FROM events e WHERE e.id = d.event_id)"), 0)
        # the audit trail is never pruned: it still verifies, from record 1
        v = self.expect(self.srv.get("/v1/audit/verify"), 200)
        self.assertTrue(v["ok"], v)
        self.assertIn("history older than --retention pruned", self.srv.stderr_text())
