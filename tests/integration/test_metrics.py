"""/metrics stays bounded: per-credential expiry series only for credentials that need
attention (a usable key inside their policy's first alert threshold), soonest first, capped
by --metrics-expiry-series with the rest counted; keys aggregated by state, policy and
time-to-expiry bucket; a rolled key moves the next expiry but not when access ends."""

import time
import unittest

from harness import ServerTestCase

CAP = 5


def parse(text):
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            vals[name] = float(v)
    return vals


class TestBoundedMetrics(ServerTestCase):
    extra_args = ["--metrics-refresh", "1s", "--metrics-expiry-series", str(CAP)]

    def scrape(self):
        r = self.srv.get("/metrics", token=None)
        self.assertEqual(r.status, 200, r.describe())
        return r.raw.decode()

    def fresh(self, after):
        """A scrape whose expiry snapshot was taken after `after` (unix seconds)."""
        out = {}

        def ok():
            v = parse(self.scrape())
            out["v"] = v
            return v.get("keyward_metrics_expiry_snapshot_timestamp_seconds", 0) > after
        self.assertTrue(self.wait_for(ok, timeout=5, interval=0.2), "snapshot not refreshed")
        return out["v"]

    def test_bounded_series_and_aggregates(self):
        r = self.srv.post("/v1/policies", {"name": "quiet", "alert_thresholds": ["1h"],
                                           "default_lifetime": "30d", "max_lifetime": "30d"})
        self.expect(r, 201, "policy")
        near = []
        for i in range(8):   # inside the default policy's 30d threshold, soonest = i == 0
            b = self.create(name="near-%d" % i, lifetime="%dh" % (2 + i))
            near.append(b["credential"]["id"])
        for i in range(3):   # far from their policy's only threshold (1h)
            self.create(name="far-%d" % i, policy="quiet", lifetime="10d")
        t0 = time.time()
        v = self.fresh(t0)
        nxt = {k: x for k, x in v.items()
               if k.startswith("keyward_credential_next_expiry_timestamp_seconds{")}
        self.assertEqual(len(nxt), CAP, nxt)
        shown = [c for c in near if any('credential_id="%s"' % c in k for k in nxt)]
        self.assertEqual(shown, near[:CAP], "the soonest credentials get the series")
        # admin key (365d, inside 30d? no) + 8 near ones need attention
        self.assertEqual(v["keyward_credentials_needing_attention"], 8)
        self.assertEqual(v["keyward_credential_expiry_series_omitted"], 8 - CAP)
        self.assertGreaterEqual(v['keyward_keys_by_policy{policy="quiet",state="active"}'], 3)
        self.assertGreaterEqual(v['keyward_keys_by_expiry{bucket="1d"}'], 8)
        self.assertGreaterEqual(v['keyward_keys_by_expiry{bucket="14d"}'], 3)
        # one key each: access ends at the next expiry, so no end-of-access series
        self.assertFalse([k for k in v if k.startswith(
            "keyward_credential_access_ends_timestamp_seconds{")])
        self.assertIn('keyward_keys{state="active"}', v)
        series = [k for k in v if "credential" in k and "{" in k]
        self.assertLessEqual(len(series), 2 * CAP)

    def test_roll_moves_next_expiry_not_access_end(self):
        b = self.create(name="rolled", lifetime="20d")
        cred, key = b["credential"]["id"], b["key"]["id"]
        r = self.srv.post("/v1/keys/%s/roll" % key, {"overlap": "1h"})
        new = self.expect(r, 201, "roll")
        t0 = time.time()
        v = self.fresh(t0)
        lab = '{credential_id="%s",name="rolled"}' % cred
        nxt = v.get("keyward_credential_next_expiry_timestamp_seconds" + lab)
        end = v.get("keyward_credential_access_ends_timestamp_seconds" + lab)
        # its old key (1h) is the soonest expiry in this class, so it is inside the cap
        self.assertIsNotNone(nxt, "no series for the rolled credential")
        self.assertLess(nxt - t0, 3700)               # the old key, cut to 1h
        self.assertGreater(end - t0, 300 * 86400)     # the new key: default 365d
        self.assertIsNotNone(new["key"]["expires_at"])


class TestMetricsOff(ServerTestCase):
    extra_args = ["--metrics-refresh", "1s", "--metrics-per-credential=false"]

    def test_no_per_credential_series(self):
        self.create(name="soon", lifetime="1h")
        time.sleep(1.5)
        text = self.srv.get("/metrics", token=None).raw.decode()
        self.assertNotIn("keyward_credential_next_expiry_timestamp_seconds{", text)
        v = parse(text)
        self.assertGreaterEqual(v["keyward_credentials_needing_attention"], 1)
        self.assertEqual(v["keyward_credential_expiry_series_omitted"],
                         v["keyward_credentials_needing_attention"])


if __name__ == "__main__":
    unittest.main()
