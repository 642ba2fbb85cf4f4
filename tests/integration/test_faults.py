"""I/O faults (docs/reliability.md): when the disk is full (ENOSPC) or a write fails (EIO),
mutations fail with 503 problem+json, nothing half-done is visible, verification keeps
answering from memory, and the service recovers by itself when writes work again.

An LD_PRELOAD shim (tests/faults/faultfs.c, compiled here) makes write/pwrite/fsync/... on
the database files fail while a control file exists."""

import os
import subprocess
import time
import unittest

import harness
from harness import Server, ServerTestCase

SHIM_SRC = os.path.join(harness.REPO, "tests", "faults", "faultfs.c")


def build_shim(outdir):
    out = os.path.join(outdir, "faultfs.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", out, SHIM_SRC, "-ldl"], check=True,
                   capture_output=True)
    return out


class FaultServer(Server):
    """A server whose database writes fail while self.control exists."""

    def __init__(self, errno_name, **kw):
        super().__init__(**kw)
        self.errno_name = errno_name
        self.control = os.path.join(self.tmpdir, "fault-on")
        self.shim = build_shim(self.tmpdir)

    def _env(self):
        env = super()._env()
        env["LD_PRELOAD"] = self.shim
        env["KW_FAULT_CONTROL"] = self.control
        env["KW_FAULT_MATCH"] = self.db  # keyward.db, -wal, -shm, -journal
        env["KW_FAULT_ERRNO"] = self.errno_name
        # the ASan build wants its runtime first; the shim only wraps libc calls
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        return env

    def fault(self, on):
        if on:
            open(self.control, "w").close()
        elif os.path.exists(self.control):
            os.unlink(self.control)


class FaultBase(ServerTestCase):
    errno_name = "ENOSPC"

    @classmethod
    def setUpClass(cls):
        cls.srv = FaultServer(cls.errno_name)
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise

    def tearDown(self):
        self.srv.fault(False)

    def test_writes_fail_cleanly_and_recover(self):
        s = self.srv
        tag = "%s-%d" % (self.errno_name, int(time.time() * 1000))
        a = self.create(name="before-" + tag, scopes=["read"])
        cid, kid, key = a["credential"]["id"], a["key"]["id"], a["secret"]
        self.verify_code(key, "VALID")
        before = self.get_cred(cid)

        s.fault(True)
        attempts = [
            ("create", lambda: s.post("/v1/credentials", {"name": "during-" + tag})),
            ("new key", lambda: s.post("/v1/credentials/%s/keys" % cid, {})),
            ("roll", lambda: s.post("/v1/keys/%s/roll" % kid, {"overlap": "1h"})),
            ("invalidate", lambda: s.post("/v1/keys/%s/invalidate" % kid, {})),
            ("patch", lambda: s.patch("/v1/credentials/%s" % cid, {"owner": "changed"})),
            ("delete", lambda: s.delete("/v1/credentials/%s" % cid)),
        ]
        for what, call in attempts:
            for _ in range(3):  # again and again: no state sticks between failures
                r = call()
                self.assertProblem(r, 503)
                self.assertNotIn("secret", r.body, "%s during the fault: %s" % (what, r.describe()))
        # verification answers from memory throughout, and counts use
        for _ in range(20):
            self.verify_code(key, "VALID", scope="read")
        self.verify_code(harness.make_key(), "NOT_FOUND")
        r = s.get("/healthz", token=None)
        self.expect(r, 200, "healthz during the fault")
        self.assertIsNone(s.proc.poll(), "server died during the write fault")

        s.fault(False)
        # recovers by itself: the next write works without a restart
        ok = self.wait_for(lambda: s.post("/v1/credentials", {"name": "after-" + tag}).status == 201,
                           timeout=10, interval=0.5)
        self.assertTrue(ok, "writes still failing 10 s after the fault ended")
        # nothing from the failed attempts is visible
        names = [c["name"] for c in self.list_all()]
        self.assertNotIn("during-" + tag, names)
        after = self.get_cred(cid)
        self.assertEqual([k["id"] for k in after["keys"]], [k["id"] for k in before["keys"]],
                         "keys changed by failed writes")
        self.assertEqual(after["owner"], before["owner"])
        self.verify_code(key, "VALID")
        # usage counted during the fault reaches the store once it is writable again
        self.assertTrue(self.wait_for(lambda: self.get_key(kid)["use_count"] >= 21, timeout=8),
                        "use during the fault lost: %s" % self.get_key(kid))
        # and mutations behave normally again
        r = s.post("/v1/keys/%s/invalidate" % kid, {})
        self.expect(r, 200, "invalidate after recovery")
        self.verify_code(key, "REVOKED")

        # the file is sound and a restart sees exactly the acknowledged state
        s.restart()
        self.verify_code(key, "REVOKED")
        names = [c["name"] for c in self.list_all()]
        self.assertIn("after-" + tag, names)
        self.assertNotIn("during-" + tag, names)
        p = subprocess.run(["sqlite3", s.db, "PRAGMA integrity_check"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "ok", p.stdout + p.stderr)


class DiskFull(FaultBase):
    errno_name = "ENOSPC"


class WriteError(FaultBase):
    errno_name = "EIO"


del FaultBase  # only the concrete cases run

if __name__ == "__main__":
    unittest.main()
