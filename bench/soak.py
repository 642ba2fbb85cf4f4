#!/usr/bin/python3
"""soak.py - mixed traffic for a set time against a fresh daemon
(tests/integration/soaklib.py): zero 5xx, every answer right, no crash. Prints a JSON
summary (with the RSS samples); exits 1 on a problem.

    bench/soak.py [--seconds 600] [--bin build/keyward] [--threads 3] [--no-new-keys]

With --no-new-keys the admin writes only patch, the state stays the same size, and
resident memory must stay flat after warm-up (within --rss-slack-kb). Without it, keys are
created and revoked all along and memory grows with them by design (the index remembers
revoked keys for --retention): the summary gives keys_created to judge the growth by.
A leak check: --bin build-asan/keyward (LeakSanitizer reports at exit, and the run fails
if the daemon does not exit 0 on SIGTERM)."""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--rss-slack-kb", type=int, default=4096)
    ap.add_argument("--no-new-keys", action="store_true",
                    help="admin writes only patch: constant state, so RSS must stay flat")
    a = ap.parse_args()
    if a.bin:
        os.environ["KEYWARD_BIN"] = os.path.abspath(a.bin)
    import harness
    import soaklib
    srv = harness.Server(soaklib.SERVER_ARGS)
    srv.start()
    problems = []
    try:
        s = soaklib.Soak(srv, a.seconds, verify_threads=a.threads, new_keys=not a.no_new_keys)
        res = s.run()
        res["rss_series_kb"] = s.samples
        try:
            srv.stop()  # exit 0 on SIGTERM (LeakSanitizer would fail it) + secret scan
        except AssertionError as e:
            problems.append(str(e))
    finally:
        srv.cleanup()
    if res["by_class"].get("5xx", 0):
        problems.append("5xx answers")
    if res["errors"]:
        problems.append("wrong answers")
    if "asan" not in (os.environ.get("KEYWARD_BIN") or "") and a.no_new_keys and \
            res["rss_growth_after_warmup_kb"] >= a.rss_slack_kb:
        problems.append("RSS grew %d kB after warm-up" % res["rss_growth_after_warmup_kb"])
    res["problems"] = problems
    print(json.dumps(res, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
