"""sockhold.py - a minimal service manager for the restart tests and bench/restart_bench.py.

Run by systemd-socket-activate, which opens the listening socket and hands it over as fd 3:

    systemd-socket-activate -l 127.0.0.1:PORT python3 sockhold.py STATUS -- keyward serve ...

It starts the command with that socket passed on (LISTEN_FDS=1, LISTEN_PID=the child), and
on SIGUSR1 restarts it as `systemctl restart` does: SIGTERM, wait for the exit, start again.
It keeps its own copy of the socket all along, so connections that arrive while no keyward
runs wait in the kernel's backlog. SIGTERM stops the child and then sockhold itself.
STATUS gets one line per event: "started PID", "exited PID RC SECONDS_SINCE_SIGTERM".
Standard library only; no threads (preexec_fn is safe)."""

import os
import signal
import subprocess
import sys
import time

FD = 3


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: sockhold.py STATUS -- COMMAND...")
    status, cmd = sys.argv[1], sys.argv[3:]
    if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("sockhold: no socket handed in (run it under systemd-socket-activate)")
    os.set_inheritable(FD, True)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)
    want = []   # signals taken, handled in the main loop
    for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda n, _f: want.append(n))

    def note(line):
        with open(status, "a") as f:
            f.write(line + "\n")

    def child_env():
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    def start():
        p = subprocess.Popen(cmd, pass_fds=(FD,), preexec_fn=child_env)
        note("started %d" % p.pid)
        return p

    def stop(p):
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        while True:
            try:
                rc = p.wait()
                break
            except InterruptedError:
                continue
        note("exited %d %d %.3f" % (p.pid, rc, time.monotonic() - t0))

    p = start()
    while True:
        if not want:
            try:
                rc = p.wait(timeout=0.05)
                note("exited %d %d -1" % (p.pid, rc))   # died by itself
                return rc
            except subprocess.TimeoutExpired:
                continue
        n = want.pop(0)
        stop(p)
        if n != signal.SIGUSR1:
            return 0
        p = start()


if __name__ == "__main__":
    sys.exit(main())
