// client.mjs - obtain, use and revoke a keyward access token with oauth4webapi, a certified
// OAuth 2 client library: RFC 8414 discovery, client_credentials with client_secret_basic,
// then RFC 7009 revocation. Usage: node client.mjs ISSUER CLIENT_ID CLIENT_SECRET SCOPE
// Prints one JSON line: {"access_token", "expires_in", "scope", "token_endpoint", "revoked"}.
import * as oauth from 'oauth4webapi';

const [issuerText, clientId, clientSecret, scope] = process.argv.slice(2);
const issuer = new URL(issuerText);
const insecure = { [oauth.allowInsecureRequests]: true }; // 127.0.0.1 in tests: plain HTTP

const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
const client = { client_id: clientId };
const auth = oauth.ClientSecretBasic(clientSecret);
const resp = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope }, insecure);
const tok = await oauth.processClientCredentialsResponse(as, client, resp);
const check = await fetch(new URL('/v1/auth', issuer), {
  headers: { authorization: `Bearer ${tok.access_token}`, 'x-keyward-scope': scope },
});
const rev = await oauth.revocationRequest(as, client, auth, tok.access_token, insecure);
await oauth.processRevocationResponse(rev);
const after = await fetch(new URL('/v1/auth', issuer), {
  headers: { authorization: `Bearer ${tok.access_token}` },
});
console.log(JSON.stringify({
  access_token: tok.access_token, expires_in: tok.expires_in, scope: tok.scope,
  token_type: tok.token_type, token_endpoint: as.token_endpoint,
  auth_status: check.status, auth_code: check.headers.get('keyward-code'),
  after_revoke_status: after.status, after_revoke_code: after.headers.get('keyward-code'),
}));
