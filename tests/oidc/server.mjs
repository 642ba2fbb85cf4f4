// server.mjs - oidc-provider (panva/node-oidc-provider, an independent and widely used
// OAuth 2.0 / OpenID Connect server) on 127.0.0.1 for keyward's interop test: one
// confidential client allowed the client_credentials grant (RFC 6749 §4.4), access tokens
// living OIDC_TTL seconds, and token introspection (RFC 7662) so the test can ask the
// provider itself whether the token keyward hands out is active.
//   OIDC_PORT=9999 OIDC_CLIENT_ID=app OIDC_CLIENT_SECRET=... OIDC_TTL=4 node server.mjs
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 0);
const ttl = Number(process.env.OIDC_TTL || 10);
const clientId = process.env.OIDC_CLIENT_ID || 'keyward-interop';
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientSecret) {
  console.error('OIDC_CLIENT_SECRET is required');
  process.exit(2);
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    client_id: clientId + '-post',
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  scopes: ['api:read'],
  ttl: { ClientCredentials: ttl },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/token`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
