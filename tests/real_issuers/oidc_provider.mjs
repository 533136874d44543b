// panva's oidc-provider as a real, independent token issuer for jwtguard's own tests (tests/test_real_issuers.py).
//
//   node tests/real_issuers/oidc_provider.mjs CONFIG.json
//
// CONFIG.json (written by the test):
//   port       the loopback port to listen on; 0 picks a free one
//   keys       private JWKs the provider publishes (public parts, at /jwks) and signs with; for an algorithm,
//              the first key that can make it signs (oidc-provider's own rule, so a rotation puts the new key first)
//   clients    [{client_id, client_secret, alg}]: client_credentials clients; each one's access tokens are
//              signed with its `alg`
//   resources  {indicator: {audience, scope, ttl}}: RFC 8707 resource servers; tokens for them are RFC 9068
//              JWTs (`typ: at+jwt`) for `audience`, holding the requested scopes the resource defines, valid `ttl` s
//
// stdout carries one JSON object per line: {"event": "ready", "issuer", "port"} once it listens, then
// {"event": "request", "method", "path", "status"} per request answered (the tests count fetches with them).
// It listens on 127.0.0.1 only, and exits when its stdin closes, so it never outlives the test that started it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const algorithmOf = new Map(config.clients.map((client) => [client.client_id, client.alg]));

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function configuration() {
  return {
    jwks: { keys: config.keys },
    clients: config.clients.map(({ client_id, client_secret }) => ({
      client_id,
      client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    // The resource's TTL, which oidc-provider's default would also pick, said here so it does not warn that
    // the default is in use.
    ttl: { ClientCredentials: (ctx, token) => token.resourceServer.accessTokenTTL },
    // Signed cookies are unused by client_credentials; fresh keys keep the provider from warning about defaults.
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(ctx, indicator, client) {
          const resource = config.resources[indicator];
          if (resource === undefined) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: resource.scope,
            audience: resource.audience,
            accessTokenTTL: resource.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: algorithmOf.get(client.clientId) } },
          };
        },
      },
    },
  };
}

const server = http.createServer();
server.listen(config.port, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration());
  provider.use(async (ctx, next) => {
    await next();
    emit({ event: 'request', method: ctx.method, path: ctx.path, status: ctx.status });
  });
  provider.on('server_error', (ctx, error) => {
    process.stderr.write(`server_error at ${ctx.path}: ${error.stack}\n`);
  });
  server.on('request', provider.callback());
  emit({ event: 'ready', issuer, port });
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
