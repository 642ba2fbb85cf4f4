"""Restarts nobody notices (issue 20, SPEC §9): SIGTERM exits 0 within --shutdown-timeout
while a webhook receiver that never answers and an SMTP server that stalls hold deliveries;
those deliveries stay queued and arrive exactly once (same webhook-id) after the restart; a
second SIGTERM exits at once; SIGHUP applies log level and sinks live without dropping a
keep-alive connection; and a restart through systemd-socket-activate (tests/integration/
sockhold.py playing systemd) under /v1/auth load refuses no connection."""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

from harness import BIN, HERE, Server, ServerTestCase, free_port

try:
    from aiosmtpd.controller import Controller
except ImportError:  # scripts/deps.sh installs python3-aiosmtpd
    Controller = None

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
ACTIVATE = shutil.which("systemd-socket-activate")


class HoldingReceiver:
    """A webhook receiver on 127.0.0.1 that, while silent, accepts connections, reads the
    request and never answers; once answering, it records each request and answers 200.
    Also a stalling SMTP server when smtp=True: it sends nothing at all (not even the
    greeting) while silent."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.silent = True
        self.held = []          # sockets of requests never answered
        self.hits = []          # (webhook-id, body) answered 200
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(128)
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _accept(self):
        while not self.done:
            try:
                c, _a = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, rest = buf.split(b"\r\n\r\n", 1)
                hdrs = {}
                for line in head.split(b"\r\n")[1:]:
                    k, _s, v = line.decode().partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                while len(rest) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    rest += d
                body, buf = rest[:n], rest[n:]
                if self.silent:
                    with self.lock:
                        self.held.append(c)
                    while not self.done and c.recv(65536):
                        pass            # hold it until keyward gives up
                    return
                with self.lock:
                    self.hits.append((hdrs.get("webhook-id"), body))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.done = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()


class StallingSMTP:
    """Accepts SMTP connections and never says a word (a mail server stuck behind a
    firewall rule that drops its replies)."""

    def __init__(self, port):
        self.port = port
        self.conns = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(128)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _a = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        try:
            self.ls.shutdown(socket.SHUT_RDWR)   # wakes the accept() so the port is free
        except OSError:
            pass
        self.ls.close()
        for c in self.conns:
            c.close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def deliveries(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute("SELECT event_id, channel, state FROM deliveries").fetchall()
    finally:
        con.close()


def wait_for(fn, timeout, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()


class TestStuckReceivers(unittest.TestCase):
    """SIGTERM while every delivery is held by a silent receiver and a stalling SMTP server."""

    def test_sigterm_exits_in_time_and_each_event_arrives_once_after(self):
        rcv = HoldingReceiver()
        smtp_port = free_port()
        stall = StallingSMTP(smtp_port)
        args = ["--webhook-allow-private", "--delivery-retry-min", "1s",
                "--scheduler-interval", "1s", "--shutdown-timeout", "4s",
                "--sink", "webhook %s %s" % (rcv.url(), SECRET)]
        if Controller is not None:   # else no mail server for after the restart
            args += ["--sink", "email ops@example.test", "--mail-daily-cap", "1000",
                     "--smtp", "smtp://127.0.0.1:%d" % smtp_port,
                     "--mail-from", "keyward@example.test"]
        srv = Server(args)
        chans = 2 if Controller is not None else 1
        box = smtp = None
        try:
            srv.start()
            t = ServerTestCase()
            t.srv = srv
            n = 12
            creds = [t.create(name="held-%d" % i)["credential"]["id"] for i in range(n)]
            # both delivery workers are inside a send (held, never answered)
            self.assertTrue(wait_for(lambda: len(rcv.held) + len(stall.conns) >= 2, 10),
                            "keyward never reached the receivers")
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(timeout=30)
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, srv.stderr_text()[-800:])
            # the budget is 4 s; abandoning a send takes about a second
            self.assertLess(took, 4.0, "SIGTERM to exit took %.2fs" % took)
            srv.proc.returncode = rc
            srv.stop()  # exit status, secrets
            # queued: delivery rows (pending), and events the held workers had not fanned
            # out yet (n events, and the admin key's key.created)
            rows = deliveries(srv.db)
            bad = [r for r in rows if r[2] not in ("pending", "sending")]
            self.assertEqual(bad, [], "abandoned deliveries must stay queued")
            con = sqlite3.connect("file:%s?mode=ro" % srv.db, uri=True, timeout=5)
            try:
                events = {r[0] for r in con.execute("SELECT id FROM events")}
            finally:
                con.close()
            self.assertGreaterEqual(len(events), n)

            # the receivers recover; the next process sends each event exactly once
            rcv.silent = False
            stall.close()
            if Controller is not None:
                box = Mailbox()
                smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
                smtp.start()
            srv.start()
            mine = {e["id"] for c in creds
                    for e in t.srv.get("/v1/events", query={"credential_id": c}).body["items"]}
            self.assertEqual(len(mine), n)
            self.assertLessEqual(mine, events)

            def all_webhooks():
                with rcv.lock:
                    return {h for h, _b in rcv.hits} >= events
            self.assertTrue(wait_for(all_webhooks, 20), "not every event re-sent")
            if smtp is not None:
                self.assertTrue(wait_for(lambda: len(box.messages) >= len(events), 20),
                                "e-mails not re-sent: %d" % len(box.messages))
            self.assertTrue(wait_for(lambda: len(deliveries(srv.db)) == chans * len(events) and
                                     all(s == "delivered" for _e, _c, s in deliveries(srv.db)),
                                     10))
            time.sleep(1.5)   # anything sent twice would arrive by now
            with rcv.lock:
                ids = [h for h, _b in rcv.hits]
            self.assertEqual(sorted(ids), sorted(events), "each event exactly once")
            if smtp is not None:
                got = sorted(m.split("X-Keyward-Event: ")[1].split()[0] for m in box.messages
                             if "X-Keyward-Event: " in m)
                self.assertEqual(got, sorted(events), "each e-mail exactly once")
            logs = srv.all_logs().decode("utf-8", "replace")
            self.assertIn("abandoned by the shutdown", logs)
            self.assertNotIn("shutdown timeout reached", logs, "ended by the watchdog")
        finally:
            srv.stop(check=False)
            srv.cleanup()
            rcv.close()
            stall.close()
            if smtp is not None:
                smtp.stop()


class TestStalledSMTP(unittest.TestCase):
    """An SMTP session held by a server that never greets is abandoned at once: the stop
    does not wait for libcurl's 20 s SMTP timeout, nor for --shutdown-timeout."""

    def test_sigterm_abandons_the_smtp_session(self):
        port = free_port()
        stall = StallingSMTP(port)
        srv = Server(["--sink", "email ops@example.test", "--shutdown-timeout", "10s",
                      "--smtp", "smtp://127.0.0.1:%d" % port, "--mail-from", "kw@example.test"])
        try:
            srv.start()
            t = ServerTestCase()
            t.srv = srv
            t.create(name="mail-held")
            self.assertTrue(wait_for(lambda: len(stall.conns) >= 1, 10), "no SMTP session")
            time.sleep(0.3)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(timeout=30)
            took = time.monotonic() - t0
            srv.proc.returncode = rc
            self.assertEqual(rc, 0)
            self.assertLess(took, 3.0, "the stop waited %.2fs for the mail server" % took)
            logs = srv.stderr_text()
            self.assertIn('"channel":"email","result":"abandoned"', logs)
            self.assertNotIn("shutdown timeout reached", logs)
            self.assertEqual([r for r in deliveries(srv.db) if r[2] != "pending"], [])
        finally:
            srv.stop(check=False)
            srv.cleanup()
            stall.close()


class TestSecondSignal(unittest.TestCase):
    """A stop held by a request still being sent: the second SIGTERM ends it at once, and
    without one, --shutdown-timeout does."""

    def _held_stop(self, timeout):
        srv = Server(["--shutdown-timeout", timeout])
        srv.start()
        s = socket.create_connection(("127.0.0.1", srv.port))
        # an admin request whose body never completes: the stop waits for it
        s.sendall(b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  srv.admin_key.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"name\":")
        # the server must have read the request's start before the signal, or the stop
        # rightly closes an idle connection: 0.3 s was not always enough under ASan in CI
        time.sleep(1.0)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        return srv, s, t0

    def test_request_being_sent_is_answered(self):
        srv, s, t0 = self._held_stop("10s")
        try:
            time.sleep(0.5)
            self.assertIsNone(srv.proc.poll())
            body = b'"finished after SIGTERM"}'
            s.sendall(body + b" " * (100 - len(b'{"name":') - len(body)))
            s.settimeout(5)
            resp = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                resp += d
            head = resp.split(b"\r\n\r\n", 1)[0].decode().lower()
            self.assertTrue(head.startswith("http/1.1 201"), head)
            self.assertIn("connection: close", head)
            created = json.loads(resp.split(b"\r\n\r\n", 1)[1])
            self.assertEqual(created["credential"]["name"], "finished after SIGTERM")
            rc = srv.proc.wait(timeout=10)
            self.assertEqual(rc, 0)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()
            srv.stop(check=False)
            srv.cleanup()

    def test_second_sigterm_exits_at_once(self):
        srv, s, t0 = self._held_stop("60s")
        try:
            time.sleep(1.5)
            self.assertIsNone(srv.proc.poll(), "the stop was not held: nothing is tested")
            t1 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(timeout=10)
            self.assertLess(time.monotonic() - t1, 1.0, "second SIGTERM did not exit at once")
            self.assertEqual(rc, 1)
            self.assertIn("second signal", srv.stderr_text())
        finally:
            s.close()
            srv.stop(check=False)
            srv.cleanup()

    def test_shutdown_timeout_bounds_the_stop(self):
        srv, s, t0 = self._held_stop("2s")
        try:
            rc = srv.proc.wait(timeout=15)
            took = time.monotonic() - t0
            self.assertEqual(rc, 0)
            self.assertLess(took, 2.6, "took %.2fs with --shutdown-timeout 2s" % took)
            self.assertGreater(took, 0.5, "not held at all: nothing tested")
        finally:
            s.close()
            srv.stop(check=False)
            srv.cleanup()


class TestReload(unittest.TestCase):
    """SIGHUP: log level and sinks change live; listen needs a restart; bad config changes
    nothing; a keep-alive connection survives every reload."""

    def test_sighup_applies_live_settings_and_keeps_connections(self):
        srv = Server()
        conf = os.path.join(srv.tmpdir, "keyward.conf")
        with open(conf, "w") as f:
            f.write("log-level = warn\nscheduler-interval = 1s\n")
        srv.extra_args = ["--config", conf]
        srv.start()
        t = ServerTestCase()
        t.srv = srv
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            sock = c.sock
            self.assertIsNotNone(sock)
            a = t.create(name="before-reload")
            time.sleep(1.5)
            self.assertNotIn('"msg":"event"', srv.stderr_text(), "no log sink yet")

            with open(conf, "w") as f:
                f.write("log-level = info\nscheduler-interval = 1s\nsink = log\nthreads = 3\n")
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "configuration reloaded" in srv.stderr_text(), 5),
                            "no reload line at info level: " + srv.stderr_text()[-500:])
            line = [json.loads(x) for x in srv.stderr_text().splitlines()
                    if "configuration reloaded" in x][-1]
            self.assertIn("log-level", line["applied"])
            self.assertIn("sink", line["applied"])
            self.assertEqual(line["needs_restart"], ["threads"])
            self.assertIn('"setting":"threads"', srv.stderr_text())

            # the keep-alive connection is the same one and still answers
            for _ in range(3):
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertIs(c.sock, sock, "the connection was dropped")
            # the new log sink gets new events
            b = t.create(name="after-reload")
            self.assertTrue(wait_for(lambda: b["credential"]["id"] in srv.stderr_text(), 5),
                            "the sink added by SIGHUP is not used")
            self.assertNotIn(a["credential"]["id"], srv.stderr_text())

            # a bad file changes nothing and the service goes on
            with open(conf, "w") as f:
                f.write("log-level = loud\n")
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "not reloaded" in srv.stderr_text(), 5))
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertIs(c.sock, sock)
        finally:
            c.close()
            try:
                srv.stop()
            finally:
                srv.cleanup()


class ActivatedServer(Server):
    """keyward serve under systemd-socket-activate, through sockhold.py (which keeps the
    socket and restarts keyward on SIGUSR1, as systemd would)."""

    def start(self, timeout=20):
        self.port = free_port()
        self.starts += 1
        self.status = os.path.join(self.tmpdir, "sockhold.status")
        out = os.path.join(self.tmpdir, "server-%d.stdout" % self.starts)
        err = os.path.join(self.tmpdir, "server-%d.stderr" % self.starts)
        self.log_paths += [out, err]
        self._out, self._err = open(out, "wb"), open(err, "wb")
        cmd = [ACTIVATE, "-l", "127.0.0.1:%d" % self.port, sys.executable,
               os.path.join(HERE, "sockhold.py"), self.status, "--",
               BIN, "serve", "--store", "sqlite:" + self.db, "--auth-fail-limit", "100000",
               "--usage-flush-interval", "1s"] + self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.tmpdir, env=self._env())
        end = time.time() + timeout
        while True:   # the first connection makes systemd-socket-activate start it
            try:
                if self.request("GET", "/healthz", token=None, timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.time() > end or self.proc.poll() is not None:
                raise RuntimeError("not serving: " + self.stderr_text()[-1000:])
            time.sleep(0.1)
        self.read_admin_key()
        return self

    def restarts(self):
        with open(self.status) as f:
            return [ln.split() for ln in f if ln.startswith("exited")]


@unittest.skipIf(ACTIVATE is None, "systemd-socket-activate missing (scripts/deps.sh: systemd)")
class TestSocketActivation(unittest.TestCase):

    def test_restart_under_auth_load_refuses_nothing(self):
        srv = ActivatedServer(["--threads", "2"])
        try:
            srv.start()
            self.assertTrue(wait_for(lambda: '"socket_activation":true' in srv.stderr_text(), 5),
                            srv.stderr_text()[-800:])
            t = ServerTestCase()
            t.srv = srv
            key = t.create(name="gw")["secret"]
            ok, errors, stop = [0], [], threading.Event()
            lock = threading.Lock()

            def load():
                c = None
                while not stop.is_set():
                    try:
                        if c is None:
                            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                        c.request("GET", "/v1/auth", headers={"Authorization": "Bearer " + key})
                        r = c.getresponse()
                        r.read()
                        if r.status != 204:   # /v1/auth: 204 for a valid key
                            with lock:
                                errors.append("status %d" % r.status)
                        else:
                            with lock:
                                ok[0] += 1
                        if r.getheader("Connection", "").lower() == "close":
                            c.close()
                            c = None
                    except (OSError, http.client.HTTPException) as e:
                        with lock:
                            errors.append(repr(e))
                        c = None
                if c:
                    c.close()
            threads = [threading.Thread(target=load) for _ in range(8)]
            for th in threads:
                th.start()
            time.sleep(1.0)
            before = ok[0]
            os.kill(srv.proc.pid, signal.SIGUSR1)   # restart, as systemctl restart does
            self.assertTrue(wait_for(lambda: len(srv.restarts()) >= 1, 15))
            time.sleep(1.5)
            stop.set()
            for th in threads:
                th.join(20)
            ex = srv.restarts()[0]
            self.assertEqual(ex[2], "0", "exit status of the restarted keyward")
            self.assertGreater(before, 50, "too little load to test anything: %r" % errors[:5])
            self.assertGreater(ok[0], before + 50, "no answers after the restart")
            self.assertEqual(errors, [], "%d errors, %d answered" % (len(errors), ok[0]))
            self.assertIn("socket_activation", srv.all_logs().decode())
        finally:
            try:
                srv.stop()
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
