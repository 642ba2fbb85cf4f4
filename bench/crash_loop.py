#!/usr/bin/python3
"""crash_loop.py - the long crash-safety run (tests/integration/crashlib.py): SIGKILL the
daemon at random moments under write load, many cycles, checking after each restart.

    bench/crash_loop.py [--cycles 100] [--clients 4] [--sample 1000] [--seed N]
                        [--bin build/keyward]

Prints one line per cycle and a JSON summary; exits 1 on any problem."""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--sample", type=int, default=1000,
                    help="per cycle: every revoked key, at most this many others (all at the end)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=None)
    a = ap.parse_args()
    if a.bin:
        os.environ["KEYWARD_BIN"] = os.path.abspath(a.bin)
    import crashlib
    import harness
    srv = harness.Server()
    srv.start()
    try:
        res = crashlib.run(srv, cycles=a.cycles, clients=a.clients, seed=a.seed,
                           log=lambda s: print(s, flush=True), sample=a.sample)
        srv.stop()
    finally:
        srv.cleanup()
    print(json.dumps(res, indent=2))
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
