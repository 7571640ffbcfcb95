// A real OpenID Connect provider (npm's oidc-provider) for the issuers end-to-end tests,
// driven by tests/support/idp.rs.
//
//   node server.mjs [--port P] [--host H] [--issuer URL] [--slow-seconds N]
//                   [--web-redirect URL [--web-post-logout URL] [--web-secret-env NAME]]
//
// Prints `listening H:P` on stdout once it serves (H is 127.0.0.1 unless --host says
// otherwise: 0.0.0.0 in a container whose port is published); exits when its standard input
// closes. With --port 0 (the default) the system chooses the port; without --issuer the
// issuer is http://127.0.0.1:P (an issuer with a path mounts the provider under that path).
//
// What it serves, on the one port:
//   - the provider: discovery (/.well-known/openid-configuration), the token endpoint
//     (/token, client credentials grant) and the rest of oidc-provider's routes. Access
//     tokens are JWTs (typ at+jwt) for the resource server `api://tollgate-tests`, signed with
//     RS256 for the client `tollgate-rs256` and ES256 for `tollgate-es256` (the resource
//     server's jwt.sign is chosen per client in getResourceServerInfo).
//   - with --web-redirect, a browser client `tollgate-web` (authorization code with PKCE,
//     client_secret_basic, redirect URI URL, post-logout URI --web-post-logout): the dev
//     login form (any login and password; the login becomes `sub`), consent given without a
//     prompt, a refresh token with every code, RFC 7009 revocation at /token/revocation and
//     RP-initiated logout at /session/end. Its secret is the tests' fixed one, or with
//     --web-secret-env the value of that environment variable (the demo's random one). Its access tokens are RS256 JWTs for the audience
//     below, like the other clients'.
//   - the JWKS at /jwks (the provider's own), counted, with a fault mode (see below).
//   - /control/... (never under the issuer's path):
//       POST /control/rotate[?drop_old=1]  a new signing key per algorithm signs from now on;
//                                          the JWKS keeps the old keys unless drop_old
//       POST /control/fault?mode=M[&seconds=N]  how /jwks answers: ok, down (the connection
//                                          is closed unanswered), 500, garbage (200, not
//                                          JSON), huge (200, the real key set padded to
//                                          10 MiB), slow (the real key set after N seconds,
//                                          default 10 or --slow-seconds), stale (after N
//                                          seconds, the key set as it was when this mode
//                                          was set: keys rotated since are not in it)
//       POST /control/discovery_fault?mode=M  how the discovery document answers: ok, 500,
//                                          other_issuer (another issuer's document)
//       POST /control/token_fault?mode=M[&seconds=N]  how /token answers: ok, down, 500,
//                                          slow (after N seconds, default --slow-seconds)
//       GET  /control/stats                {"jwks_fetches": n, "token_requests": n, ...}
//       POST /control/reset_stats
//       POST /control/token_ttl?seconds=N  the lifetime of tokens issued from now on
//       GET  /control/token?alg=RS256|ES256  {"access_token": ...} through the real token
//                                          endpoint (a client credentials POST)
//
// Keys are generated at start and on each rotation; none is ever printed.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// oidc-provider writes its notices with console.info: keep stdout for the ready line.
console.info = (...args) => console.error(...args);

const AUDIENCE = 'api://tollgate-tests';
const SCOPE = 'read write admin';
const ALGS = ['RS256', 'ES256'];

/** The clients: id, secret, the algorithm of their tokens, and extra claims. */
const CLIENTS = {
  'tollgate-rs256': {
    secret: 'idp-test-secret-rs256-4qV8mZ2xKp7LwN3c',
    alg: 'RS256',
    claims: {
      email: 'rs256-service@tollgate.test',
      realm_access: { roles: ['reader', 'writer'] },
    },
  },
  'tollgate-es256': {
    secret: 'idp-test-secret-es256-9tH5yR1bQj6DfS8e',
    alg: 'ES256',
    claims: {
      email: 'es256-service@tollgate.test',
      realm_access: { roles: ['reader', 'admin'] },
    },
  },
  // Roles as some providers spell them (Keycloak's Admin, Azure AD's app role Orders.Read).
  'tollgate-provider-roles': {
    secret: 'idp-test-secret-roles-7Xk2Pq9Lm4Wv8Rz3',
    alg: 'RS256',
    claims: {
      email: 'roles-service@tollgate.test',
      realm_access: { roles: ['Admin', 'Orders.Read'] },
    },
  },
  // One role value the role header cannot carry: a comma inside one value.
  'tollgate-uncarriable-role': {
    secret: 'idp-test-secret-badrole-3Nc8Vt5Qy1Hs6Jd2',
    alg: 'ES256',
    claims: {
      email: 'badrole-service@tollgate.test',
      realm_access: { roles: ['admin,user'] },
    },
  },
};

function parseArgs(argv) {
  const args = {
    port: 0,
    host: '127.0.0.1',
    issuer: undefined,
    slowSeconds: 10,
    webRedirect: undefined,
    webPostLogout: undefined,
    webSecretEnv: undefined,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--port': args.port = Number(value); i += 1; break;
      case '--host': args.host = value; i += 1; break;
      case '--issuer': args.issuer = value; i += 1; break;
      case '--slow-seconds': args.slowSeconds = Number(value); i += 1; break;
      case '--web-redirect': args.webRedirect = value; i += 1; break;
      case '--web-post-logout': args.webPostLogout = value; i += 1; break;
      case '--web-secret-env': args.webSecretEnv = value; i += 1; break;
      default:
        console.error(`unknown argument ${argv[i]}`);
        process.exit(2);
    }
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    console.error('--port must be a port number');
    process.exit(2);
  }
  if (args.webSecretEnv !== undefined && !process.env[args.webSecretEnv]) {
    console.error(`--web-secret-env: the environment variable ${args.webSecretEnv} is not set`);
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------------------
// Keys: per algorithm, the current signing key and the keys published beside it.

let generation = 0;

function newKey(alg) {
  generation += 1;
  const kid = `${alg.toLowerCase()}-${generation}-${randomUUID().slice(0, 8)}`;
  const { privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

/** alg -> the key that signs now. */
const current = {};
/** Every private JWK the provider holds (and so publishes): current ones and kept old ones. */
let keys = [];
for (const alg of ALGS) {
  current[alg] = newKey(alg);
  keys.push(current[alg]);
}

// ---------------------------------------------------------------------------------------
// The provider. A rotation builds a new Provider holding the new key set (oidc-provider
// reads its keystore once, at construction); tokens are JWTs, so nothing issued by the
// old instance needs it to be kept.

const issuerPath = () => new URL(issuer).pathname.replace(/\/$/, '');
let issuer;
let provider;
/** The provider's request handler (built once per provider). */
let handle;

/** The browser client of --web-redirect (as in tests/e2e_oidc.rs). */
const WEB_CLIENT = 'tollgate-web';
const WEB_SECRET = args.webSecretEnv
  ? process.env[args.webSecretEnv]
  : 'idp-test-secret-web-5Rq8Zt2Lm7Xc4Vb9';

function webClients() {
  if (!args.webRedirect) return [];
  return [{
    client_id: WEB_CLIENT,
    client_secret: WEB_SECRET,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [args.webRedirect],
    post_logout_redirect_uris: args.webPostLogout ? [args.webPostLogout] : [],
    token_endpoint_auth_method: 'client_secret_basic',
  }];
}

function buildProvider() {
  const web = Boolean(args.webRedirect);
  const p = new Provider(issuer, {
    jwks: { keys: keys.map((k) => ({ ...k })) },
    clients: Object.entries(CLIENTS).map(([id, c]) => ({
      client_id: id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })).concat(webClients()),
    // The browser client's consent is given without a prompt (a first-party application).
    loadExistingGrant: async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      if (!web || !accountId || ctx.oidc.client?.clientId !== WEB_CLIENT) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: WEB_CLIENT, accountId });
      grant.addOIDCScope('openid offline_access');
      grant.addResourceScope(AUDIENCE, SCOPE);
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: {
      devInteractions: { enabled: web },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: web },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== AUDIENCE) {
            throw new Provider.errors.InvalidTarget();
          }
          const alg = CLIENTS[client.clientId]?.alg ?? 'RS256';
          return {
            scope: SCOPE,
            audience: AUDIENCE,
            accessTokenTTL: tokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg, kid: current[alg].kid } },
          };
        },
      },
    },
    ttl: { ClientCredentials: () => tokenTtl },
    extraTokenClaims: async (ctx, token) => CLIENTS[token.clientId]?.claims,
    // The dev-only cookie keys warning is of no concern here. Lax long-term cookies: the
    // tests speak plain HTTP, where browsers drop SameSite=None cookies.
    cookies: { keys: [randomUUID()], long: { httpOnly: true, sameSite: 'lax' } },
  });
  p.proxy = false;
  // Errors of the provider: the message only (never a request's credentials).
  p.on('server_error', (ctx, err) => console.error(`server_error: ${err.message}`));
  return p;
}

// ---------------------------------------------------------------------------------------
// The JWKS wrapper: counting and faults.

const FAULTS = new Set(['ok', 'down', '500', 'garbage', 'huge', 'slow', 'stale']);
let fault = 'ok';
let slowSeconds = args.slowSeconds;
let staleBody = '';
let jwksFetches = 0;
/** The lifetime of the access tokens issued from now on, in seconds. */
let tokenTtl = 3600;
let tokenRequests = 0;
/** How /token answers: ok, down, 500 or slow. */
let tokenFault = 'ok';
/** How the discovery document answers: ok, 500, or other_issuer (the document of another
 * issuer: its `issuer` and endpoints elsewhere). */
let discoveryFault = 'ok';
let discoveryFetches = 0;

function jwksBody() {
  return JSON.stringify({
    keys: keys.map((k) => {
      const pub = {
        kty: k.kty, use: k.use, kid: k.kid, alg: k.alg,
      };
      for (const f of ['e', 'n', 'crv', 'x', 'y']) {
        if (k[f]) pub[f] = k[f];
      }
      return pub;
    }),
  });
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function serveJwks(req, res, passOn) {
  jwksFetches += 1;
  switch (fault) {
    case 'down':
      // No answer at all: the connection closes under the client.
      req.socket.destroy();
      return;
    case '500':
      send(res, 500, '{"error":"server_error"}');
      return;
    case 'garbage':
      send(res, 200, '<html>this is not a JSON Web Key Set {{{', 'application/json');
      return;
    case 'huge': {
      // The real key set, padded to 10 MiB with a member of its own: a client that read it
      // whole would find valid keys in it.
      const size = 10 * 1024 * 1024;
      const head = `${jwksBody().slice(0, -1)},"padding":"`;
      const tail = '"}';
      const pad = size - Buffer.byteLength(head) - tail.length;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': size });
      res.write(head);
      const chunk = 'x'.repeat(64 * 1024);
      let left = pad;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.slice(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end(tail);
      };
      res.on('error', () => {});
      pump();
      return;
    }
    case 'slow': {
      const timer = setTimeout(() => passOn(), slowSeconds * 1000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    case 'stale': {
      // A slow provider's stale copy: keys rotated since the mode was set are not in it.
      const body = staleBody;
      const timer = setTimeout(() => send(res, 200, body, 'application/jwk-set+json'), slowSeconds * 1000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    default:
      passOn();
  }
}

// ---------------------------------------------------------------------------------------
// The control API.

async function fetchToken(alg) {
  const [id, client] = Object.entries(CLIENTS).find(([, c]) => c.alg === alg) ?? [];
  if (!id) return { status: 400, body: { error: `no client signs with ${alg}` } };
  const basic = Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(client.secret)}`).toString('base64');
  const response = await fetch(provider.urlFor('token'), {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read write', resource: AUDIENCE }),
  });
  return { status: response.status, body: await response.json() };
}

async function control(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'POST /control/rotate': {
      const dropOld = ['1', 'true'].includes(url.searchParams.get('drop_old'));
      const fresh = ALGS.map(newKey);
      keys = dropOld ? fresh : [...fresh, ...keys];
      for (const k of fresh) current[k.alg] = k;
      provider = buildProvider();
      handle = provider.callback();
      send(res, 200, JSON.stringify({ kids: keys.map((k) => k.kid), signing: Object.fromEntries(ALGS.map((a) => [a, current[a].kid])) }));
      return;
    }
    case 'POST /control/fault': {
      const mode = url.searchParams.get('mode');
      if (!FAULTS.has(mode)) {
        send(res, 400, JSON.stringify({ error: `mode must be one of ${[...FAULTS].join(', ')}` }));
        return;
      }
      const seconds = url.searchParams.get('seconds');
      if (seconds !== null) {
        const n = Number(seconds);
        if (!(n >= 0)) { send(res, 400, '{"error":"seconds must be a number"}'); return; }
        slowSeconds = n;
      }
      fault = mode;
      staleBody = jwksBody();
      send(res, 200, JSON.stringify({ fault, slow_seconds: slowSeconds }));
      return;
    }
    case 'POST /control/token_ttl': {
      const n = Number(url.searchParams.get('seconds'));
      if (!Number.isInteger(n) || n < 1) { send(res, 400, '{"error":"seconds must be a positive integer"}'); return; }
      tokenTtl = n;
      send(res, 200, JSON.stringify({ token_ttl: tokenTtl }));
      return;
    }
    case 'POST /control/token_fault': {
      const mode = url.searchParams.get('mode');
      if (!['ok', 'down', '500', 'slow'].includes(mode)) {
        send(res, 400, '{"error":"mode must be one of ok, down, 500, slow"}');
        return;
      }
      const seconds = url.searchParams.get('seconds');
      if (seconds !== null) slowSeconds = Number(seconds);
      tokenFault = mode;
      send(res, 200, JSON.stringify({ token_fault: tokenFault }));
      return;
    }
    case 'POST /control/discovery_fault': {
      const mode = url.searchParams.get('mode');
      if (!['ok', '500', 'other_issuer'].includes(mode)) {
        send(res, 400, '{"error":"mode must be one of ok, 500, other_issuer"}');
        return;
      }
      discoveryFault = mode;
      send(res, 200, JSON.stringify({ discovery_fault: discoveryFault }));
      return;
    }
    case 'GET /control/stats':
      send(res, 200, JSON.stringify({
        jwks_fetches: jwksFetches,
        token_requests: tokenRequests,
        discovery_fetches: discoveryFetches,
        fault,
        slow_seconds: slowSeconds,
      }));
      return;
    case 'POST /control/reset_stats':
      jwksFetches = 0;
      tokenRequests = 0;
      discoveryFetches = 0;
      send(res, 200, '{}');
      return;
    case 'GET /control/token': {
      const { status, body } = await fetchToken(url.searchParams.get('alg') ?? 'RS256');
      send(res, status, JSON.stringify(body));
      return;
    }
    default:
      send(res, 404, '{"error":"no such control"}');
  }
}

// ---------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://idp.invalid');
  if (url.pathname.startsWith('/control/')) {
    control(req, res, url).catch((err) => {
      console.error(`control error: ${err.message}`);
      if (!res.headersSent) send(res, 500, '{"error":"control failed"}');
    });
    return;
  }
  const prefix = issuerPath();
  const passOn = () => {
    // Mounted under the issuer's path, as express does: originalUrl keeps the whole path.
    if (prefix) {
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length) || '/';
    }
    handle(req, res);
  };
  if (url.pathname === `${prefix}/jwks`) {
    serveJwks(req, res, passOn);
    return;
  }
  if (prefix && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) {
    send(res, 404, '{"error":"not under the issuer"}');
    return;
  }
  if (url.pathname === `${prefix}/.well-known/openid-configuration`) {
    discoveryFetches += 1;
    if (discoveryFault === '500') { send(res, 500, '{"error":"server_error"}'); return; }
    if (discoveryFault === 'other_issuer') {
      const other = 'https://other-issuer.invalid';
      send(res, 200, JSON.stringify({
        issuer: other,
        authorization_endpoint: `${other}/auth`,
        token_endpoint: `${other}/token`,
        jwks_uri: `${other}/jwks`,
      }));
      return;
    }
  }
  if (url.pathname === `${prefix}/token`) {
    tokenRequests += 1;
    if (tokenFault === 'down') { req.socket.destroy(); return; }
    if (tokenFault === '500') { send(res, 500, '{"error":"server_error"}'); return; }
    if (tokenFault === 'slow') {
      const timer = setTimeout(passOn, slowSeconds * 1000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
  }
  passOn();
});

server.listen(args.port, args.host, () => {
  const { port } = server.address();
  issuer = args.issuer ?? `http://127.0.0.1:${port}`;
  provider = buildProvider();
  handle = provider.callback();
  process.stdout.write(`listening ${args.host}:${port}\n`);
});

server.on('error', (err) => {
  console.error(`cannot listen: ${err.message}`);
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
