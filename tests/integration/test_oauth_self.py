"""keyward's two OAuth2 sides against each other (SPEC §12 with §13): a watched OAuth2 client
whose token endpoint is keyward's own /oauth2/token keeps an access token from one of
keyward's keys fresh; an application reads it from /v1/watched/{id}/token and gateways accept
it like the key; invalidating the key kills the token at once, and the refresher reports the
failure (watched.refresh_failed) instead of handing out a dead token."""

import time
import unittest

from harness import ServerTestCase


class TestSelfRefresh(ServerTestCase):
    # a 6 s token lifetime: refreshed around 4.8 s; --webhook-allow-private lets the
    # refresher call keyward itself on 127.0.0.1
    extra_args = ("--scheduler-interval", "1s", "--webhook-allow-private")

    def test_refresher_keeps_a_keyward_token_fresh(self):
        r = self.srv.post("/v1/policies", {"name": "short-tokens", "token_lifetime": "6s"})
        self.expect(r, 201, "policy")
        b = self.create(name="app-client", scopes=["orders:read", "orders:write"],
                        policy="short-tokens")
        cred, key_id, secret = b["credential"]["id"], b["key"]["id"], b["secret"]
        url = "http://127.0.0.1:%d/oauth2/token" % self.srv.port
        r = self.srv.post("/v1/watched", {
            "name": "keyward-self", "kind": "oauth2",
            "oauth2": {"token_url": url, "grant_type": "client_credentials",
                       "client_id": cred, "client_secret": secret, "scope": "orders:read",
                       "auth_method": "basic"}})
        w = self.expect(r, 201, "watched")
        wid = w["id"]
        self.assertNotIn(secret, str(w))

        def token():
            r = self.srv.get("/v1/watched/%s/token" % wid)
            return r.body if r.status == 200 else None
        first = self.wait_for(token, timeout=8)
        self.assertTrue(first, "no token from keyward's own endpoint: %s" %
                        self.srv.get("/v1/watched/" + wid).describe())
        t1 = first["access_token"]
        self.assertNotEqual(t1, secret)
        v = self.srv.verify(t1, scope="orders:read").body
        self.assertEqual(v["code"], "VALID", v)
        self.assertEqual(v["credential_id"], cred)
        # the token carries only the scope asked for
        self.assertEqual(self.srv.verify(t1, scope="orders:write").body["code"], "FORBIDDEN_SCOPE")
        # refreshed before it lapses: a new token while the first is still valid
        t0 = time.time()
        fresh = self.wait_for(lambda: (token() or {}).get("access_token") not in (None, t1),
                              timeout=9, interval=0.2)
        self.assertTrue(fresh, "the token was not refreshed")
        self.assertLess(time.time() - t0, 7)
        t2 = token()["access_token"]
        self.assertEqual(self.srv.verify(t2, scope="orders:read").body["code"], "VALID")
        # the key that obtains the tokens is invalidated: its token dies at once, and the
        # refresher fails (and says so) instead of serving a dead token
        r = self.srv.post("/v1/keys/%s/invalidate" % key_id, {"reason": "rotated"})
        self.expect(r, 200, "invalidate")
        self.assertEqual(self.srv.verify(t2, scope="orders:read").body["code"], "REVOKED")

        def failed():
            r = self.srv.get("/v1/events", query={"credential_id": wid,
                                                  "type": "watched.refresh_failed"})
            return r.status == 200 and r.body["items"]
        self.assertTrue(self.wait_for(failed, timeout=15, interval=0.5),
                        "no watched.refresh_failed after the key was invalidated: %s / %s" % (
                            self.srv.get("/v1/watched/" + wid).body,
                            [e["type"] for e in self.srv.get("/v1/events", query={
                                "limit": 50}).body["items"]]))


if __name__ == "__main__":
    unittest.main()
