#!/usr/bin/python3
"""oauth_server.py - a small OAuth2 token endpoint (RFC 6749) for keyward's tests and
benchmarks, on 127.0.0.1 only. It issues short-lived random access tokens, authenticates
clients by HTTP Basic (RFC 6749 §2.3.1, form-urlencoded then base64) or by client_id /
client_secret in the body, serves client_credentials (§4.4) and refresh_token (§6) grants,
rotates refresh tokens on demand, fails on demand, and gives malformed answers on demand.

    srv = TokenServer(lifetime=10).start()      # in a test
    python3 tests/integration/oauth_server.py --port 9999 --lifetime 10   # standalone

Control (tests set attributes directly; standalone: POST /control with a JSON object of the
same names): lifetime (s), fail_next (count), fail_status, fail_forever, fail_only (a client_id), slow ({client_id: seconds}), mode ("ok",
"no_expires_in", "not_json", "huge", "string_expires_in"), rotate (bool), refresh_grace (bool:
a rotated-out refresh token still works once), refresh_expires_in (s or None).
"""

import argparse
import base64
import http.server
import json
import os
import secrets
import threading
import time
import urllib.parse


class TokenServer:
    def __init__(self, lifetime=10, clients=None, port=0, tls=None):
        self.lifetime = lifetime
        self.clients = dict(clients or {})      # client_id -> client_secret (None: public)
        self.refresh = {}                       # refresh token -> client_id (valid ones)
        self.grace = {}                         # rotated-out token -> client_id (one use)
        self.tokens = {}                        # access token -> (client_id, issued, expires)
        self.fail_next = 0
        self.fail_status = 503
        self.fail_forever = False
        self.fail_only = None                   # client_id the failures apply to (None: all)
        self.slow = {}                          # client_id -> seconds to wait before answering
        self.mode = "ok"
        self.rotate = False
        self.refresh_grace = False
        self.refresh_expires_in = None
        self.requests = []                      # (time, client_id, grant, status)
        self.issued = []                        # (time, client_id, token, lifetime)
        self.lock = threading.Lock()
        self.port = port
        self.tls = tls                          # (certfile, keyfile): serve HTTPS
        self.httpd = None

    # -- setup
    def add_client(self, client_id, secret=None):
        self.clients[client_id] = secret

    def new_refresh_token(self, client_id):
        t = "rt_" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[t] = client_id
        return t

    def valid(self, token, at=None):
        at = time.time() if at is None else at
        with self.lock:
            v = self.tokens.get(token)
        return v is not None and v[1] <= at < v[2]

    @property
    def url(self):
        return "%s://127.0.0.1:%d/token" % ("https" if self.tls else "http", self.port)

    # -- the endpoint
    def _auth(self, headers, form):
        cid = csec = None
        h = headers.get("Authorization", "")
        if h.startswith("Basic "):
            try:
                pair = base64.b64decode(h[6:]).decode()
                a, _, b = pair.partition(":")
                cid, csec = urllib.parse.unquote_plus(a), urllib.parse.unquote_plus(b)
            except Exception:
                return None, "invalid_client"
        elif "client_id" in form:
            cid = form["client_id"]
            csec = form.get("client_secret")
        if cid not in self.clients:
            return None, "invalid_client"
        want = self.clients[cid]
        if want is not None and not secrets.compare_digest(want, csec or ""):
            return None, "invalid_client"
        return cid, None

    def handle(self, headers, body):
        """Returns (status, content_type, bytes)."""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
                .items()}
        grant = form.get("grant_type", "")
        cid, err = self._auth(headers, form)
        if self.slow.get(cid):
            time.sleep(self.slow[cid])
        with self.lock:
            if (self.fail_forever or self.fail_next > 0) and self.fail_only in (None, cid):
                if self.fail_next > 0:
                    self.fail_next -= 1
                st = self.fail_status
                self.requests.append((time.time(), cid, grant, st))
                return st, "application/json", json.dumps(
                    {"error": "temporarily_unavailable",
                     "error_description": "down on purpose"}).encode()
        if err:
            return self._record(cid, grant, 401, {"error": err})
        if grant == "client_credentials":
            pass
        elif grant == "refresh_token":
            rt = form.get("refresh_token", "")
            with self.lock:
                owner = self.refresh.get(rt)
                if owner is None and self.grace.get(rt) == cid:
                    owner = self.grace.pop(rt)
                if owner != cid:
                    return self._record(cid, grant, 400, {"error": "invalid_grant"}, locked=True)
        else:
            return self._record(cid, grant, 400, {"error": "unsupported_grant_type"})
        tok = "at_" + secrets.token_urlsafe(32)
        now = time.time()
        life = self.lifetime
        ans = {"access_token": tok, "token_type": "Bearer", "expires_in": life}
        with self.lock:
            self.tokens[tok] = (cid, now, now + life)
            self.issued.append((now, cid, tok, life))
            if grant == "refresh_token" and self.rotate:
                old = form["refresh_token"]
                self.refresh.pop(old, None)
                if self.refresh_grace:
                    self.grace[old] = cid
                new = "rt_" + secrets.token_urlsafe(24)
                self.refresh[new] = cid
                ans["refresh_token"] = new
            if self.refresh_expires_in:
                ans["refresh_expires_in"] = self.refresh_expires_in
            mode = self.mode
        if mode == "no_expires_in":
            del ans["expires_in"]
        elif mode == "string_expires_in":
            ans["expires_in"] = str(life)
        elif mode == "not_json":
            return self._record(cid, grant, 200, None, raw=b"<html>token service</html>")
        elif mode == "huge":
            ans["padding"] = "x" * (200 * 1024)
        return self._record(cid, grant, 200, ans)

    def _record(self, cid, grant, status, obj, raw=None, locked=False):
        if locked:
            self.requests.append((time.time(), cid, grant, status))
        else:
            with self.lock:
                self.requests.append((time.time(), cid, grant, status))
        if raw is not None:
            return status, "text/html", raw
        return status, "application/json", json.dumps(obj).encode()

    # -- serving
    def start(self):
        ts = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if self.path == "/control":
                    for k, v in json.loads(body or b"{}").items():
                        setattr(ts, k, v)
                    st, ct, out = 200, "application/json", b"{}"
                elif self.path == "/token":
                    st, ct, out = ts.handle(self.headers, body)
                else:
                    st, ct, out = 404, "application/json", b'{"error":"not_found"}'
                self.send_response(st)
                self.send_header("Content-Type", ct)
                self.send_header("Content-Length", str(len(out)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                ok = ts.valid(q.get("token", [""])[0])
                out = json.dumps({"active": ok}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up (the size cap) is not news

        self.httpd = S(("127.0.0.1", self.port), H)
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=int, default=10)
    ap.add_argument("--client", action="append", default=[], help="ID:SECRET")
    a = ap.parse_args()
    ts = TokenServer(lifetime=a.lifetime, port=a.port)
    for c in a.client:
        i, _, s = c.partition(":")
        ts.add_client(i, s)
    ts.start()
    print("listening %s" % ts.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        ts.stop()


if __name__ == "__main__":
    main()
