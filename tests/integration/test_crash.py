"""Crash safety, short version (bench/crash_loop.py is the long one): SIGKILL the daemon at
random moments while four clients create, roll, renew and invalidate keys; restart; every
acknowledged write is there, no revoked key verifies again, the SQLite file passes
integrity_check and the audit chain verifies (when GET /v1/audit/verify exists)."""

import os
import sys

import crashlib
from harness import ServerTestCase


class CrashSafety(ServerTestCase):
    def test_sigkill_cycles(self):
        asan = "asan" in os.path.basename(os.path.dirname(os.environ.get("KEYWARD_BIN", "")))
        cycles = int(os.environ.get("KW_CRASH_CYCLES", "5" if asan else "10"))
        res = crashlib.run(self.srv, cycles=cycles, clients=4, seed=None)
        sys.stderr.write("crash: %s\n" % {k: v for k, v in res.items() if k != "problems"})
        self.assertFalse(res["problems"], "\n".join(res["problems"][:20]))
        self.assertEqual(res["cycles"], cycles)
        self.assertGreater(res["acknowledged_writes"], cycles * 5,
                           "too few writes to prove anything: %s" % res)
