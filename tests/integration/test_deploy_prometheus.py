"""deploy/prometheus against the real promtool (Debian package prometheus): the rules load,
their unit tests pass (keyward_up 0 alerts; a key rolled with an overlap does not fire the
expiry rules), and a live scrape of keyward passes `promtool check metrics`."""

import json
import os
import re
import shutil
import subprocess
import unittest

from harness import ServerTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.join(HERE, "..", "..", "deploy", "prometheus")
PROMTOOL = shutil.which("promtool")


@unittest.skipIf(PROMTOOL is None, "promtool missing: scripts/deps.sh installs prometheus")
class TestPrometheusDeploy(ServerTestCase):
    extra_args = ["--metrics-refresh", "1s"]

    def promtool(self, *args, stdin=None):
        p = subprocess.run([PROMTOOL, *args], cwd=DEPLOY, input=stdin, capture_output=True,
                           timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        return out

    def test_rules_check_and_unit_tests(self):
        self.assertIn("SUCCESS", self.promtool("check", "rules", "alerts.yml"))
        self.assertIn("SUCCESS", self.promtool("test", "rules", "alerts.test.yml"))

    def test_live_scrape_passes_check_metrics(self):
        self.create(name="prom-soon", lifetime="2h")
        r = self.srv.get("/metrics", token=None)
        self.assertEqual(r.status, 200, r.describe())
        self.promtool("check", "metrics", stdin=r.raw)

    def test_dashboard_and_rules_use_exported_series(self):
        """Every keyward_* name in the Grafana dashboard and the rules is one /metrics has
        (so a renamed series cannot leave an empty panel or a silent rule)."""
        self.create(name="prom-names", lifetime="2h")
        # the per-credential series appear once a snapshot has seen the key
        self.wait_for(lambda: b"keyward_credential_access_ends_timestamp_seconds{" in
                      self.srv.get("/metrics", token=None).raw, timeout=5, interval=0.2)
        text = self.srv.get("/metrics", token=None).raw.decode()
        have = set(re.findall(r"^# TYPE (keyward_[a-z0-9_]+) ", text, re.M))
        have |= {n + suf for n in have for suf in ("_bucket", "_sum", "_count")}
        with open(os.path.join(DEPLOY, "..", "grafana", "keyward.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        with open(os.path.join(DEPLOY, "alerts.yml")) as f:
            exprs += re.findall(r"^\s*expr: (.*)$", f.read(), re.M)
        used = {n for e in exprs for n in re.findall(r"keyward_[a-z0-9_]+", e)}
        self.assertTrue(used)
        self.assertEqual(sorted(used - have), [], "series used but not exported")


if __name__ == "__main__":
    unittest.main()
