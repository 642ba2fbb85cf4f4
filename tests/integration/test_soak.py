"""Soak, short version (bench/soak.py runs it for 10 minutes): mixed traffic - valid,
expired, revoked, unknown and malformed keys, admin writes - for KW_SOAK_SECONDS (default
20 s): zero 5xx, every answer right, no crash, resident memory flat after warm-up. Under the
ASan build the teardown's exit-status check is the leak check (LeakSanitizer makes a
leaking daemon exit non-zero on SIGTERM)."""

import os
import sys

import soaklib
from harness import ServerTestCase

RSS_SLACK_KB = 4096  # allocator noise, SQLite page cache, new keys of the admin writes


class Soak(ServerTestCase):
    extra_args = soaklib.SERVER_ARGS

    def test_mixed_traffic(self):
        secs = float(os.environ.get("KW_SOAK_SECONDS", "20"))
        res = soaklib.Soak(self.srv, secs).run()
        sys.stderr.write("soak: %s\n" % res)
        self.assertIsNone(self.srv.proc.poll(), "server died during the soak")
        self.assertFalse(res["errors"], "\n".join(res["errors"][:10]))
        self.assertEqual(res["by_class"].get("5xx", 0), 0, res)
        self.assertGreater(res["requests"], secs * 50, "too little traffic: %s" % res)
        asan = "asan" in os.path.basename(os.path.dirname(os.environ.get("KEYWARD_BIN", "")))
        if not asan:  # ASan's quarantine makes RSS meaningless
            self.assertLess(res["rss_growth_after_warmup_kb"], RSS_SLACK_KB,
                            "resident memory grew after warm-up: %s" % res)
