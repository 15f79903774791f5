/**
 * Interop: Apache with mod_oauth2 (ZmartZone's OAuth 2.0 resource server module, by the authors of
 * mod_auth_openidc; nobody here wrote it) protects an API with access tokens from our op().
 * Real parts only: op() in Express on loopback, Apache + mod_oauth2 in front of a small Node API,
 * tokens got from the OP over HTTP with openid-client (client credentials, and a user's code flow).
 *   1. RFC 9068 JWT access tokens: mod_oauth2 checks them against the OP's /jwks (signature, `exp`
 *      and `iat` required) and, through `Require oauth2_claim`, their `aud` and `iss`; the API gets
 *      the claims (`sub`, `scope`, `client_id` …) as request headers. A client-credentials token and
 *      alice's token from the code flow pass.
 *   2. Opaque tokens: mod_oauth2 asks the OP's /token/introspection, authenticating as a
 *      confidential client (client_secret_basic); a valid token passes.
 *   3. Refusals, each a 401 with `WWW-Authenticate: Bearer …error=…` and the API not reached: no token,
 *      a JWT with one signature byte changed, a JWT for another resource (`aud`), an expired JWT,
 *      an opaque token revoked at the OP (introspection then says `active: false`).
 * mod_oauth2 caches each accepted token's claims for `expiry` seconds (default 300), keyed by the token
 * alone, in one cache that every path reads before verifying, and does not check `exp` on a hit: a
 * token accepted once passes, even expired or revoked, until its entry ends, and at any path with
 * any verifier. So the paths where expiry and revocation are tested store nothing (`expiry=0`), and
 * no token here is sent to two paths.
 * Needs `apt-get install -y apache2 libapache2-mod-oauth2`; fails (never skips) without it.
 * ≈ 5 s (3 s of it waiting for a token to expire). INTEROP_APACHE_LOG=debug makes the module's log verbose.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import * as client from 'openid-client';
import { close, listen } from '../../packages/rp/test/support/rp-app.js';
import { FormBrowser, signIn } from '../support/op-forms.js';
import { CLAIM_HEADER_PREFIX, requireModOauth2, startModOauth2, USER_HEADER, type ModOauth2 } from './support/mod-oauth2.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';

const API = 'https://api.example.com';
const OTHER = 'https://other.example.com';
const SHORT_LIVED = 'https://short-lived.example.com';
const REPORTS = 'https://reports.example.com';
const REPORTS_AUDIENCE = 'reports';
const SHORT_TTL = 2;
const SECRET = 'client-secret-0123456789abcdef';
/** The resource server's own client at the OP: it only introspects. */
const RS = { id: 'apache-rs', secret: 'apache-rs-secret-0123456789abcdef' };
const insecure = { execute: [client.allowInsecureRequests] };

/** What the API behind Apache received. */
interface Seen { path: string; headers: IncomingHttpHeaders }

/** The claims mod_oauth2 passed on (`X-Claim-<name>` headers), by claim name. */
function claimsOf(seen: Seen): Record<string, string> {
  const prefix = CLAIM_HEADER_PREFIX.toLowerCase();
  return Object.fromEntries(Object.entries(seen.headers)
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => [k.slice(prefix.length), String(v)]));
}

/** `token` with one byte of its signature changed. */
function tamper(token: string): string {
  const [header, payload, signature] = token.split('.');
  const bytes = Buffer.from(signature!, 'base64url');
  bytes[10]! ^= 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

const claimsOfJwt = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('mod_oauth2 (Apache as an OAuth 2.0 resource server) accepts and refuses op() access tokens', () => {
  let opServer: InteropOp;
  let apache: ModOauth2;
  let backend: Server;
  const seen: Seen[] = [];
  let service: client.Configuration;
  let web: client.Configuration;
  let rs: client.Configuration;

  beforeAll(async () => {
    requireModOauth2();
    backend = createServer((req, res) => {
      seen.push({ path: req.url!, headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('api answer\n');
    });
    const backendOrigin = await listen(backend);

    opServer = await startInteropOp((origin) => [
      { client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [] },
      { client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`], grant_types: ['authorization_code'] },
      { client_id: RS.id, client_secret: RS.secret, grant_types: [], response_types: [] },
    ], {
      features: {
        clientCredentials: true,
        resourceIndicators: {
          resources: {
            [API]: { scope: 'read write', claimsByScope: { read: ['email'] } },
            [OTHER]: { scope: 'read' },
            [SHORT_LIVED]: { scope: 'read', accessTokenTTL: SHORT_TTL },
            [REPORTS]: { scope: 'read', accessTokenFormat: 'opaque', audience: REPORTS_AUDIENCE },
          },
        },
      },
    });
    const issuer = new URL(opServer.issuer);
    [service, web, rs] = await Promise.all([
      client.discovery(issuer, 'service', SECRET, client.ClientSecretBasic(), insecure),
      client.discovery(issuer, 'web', SECRET, client.ClientSecretBasic(), insecure),
      client.discovery(issuer, RS.id, RS.secret, client.ClientSecretBasic(), insecure),
    ]);
    const meta = service.serverMetadata();

    const jwtOptions = (more: Record<string, string> = {}) => new URLSearchParams({ 'verify.exp': 'required', 'verify.iat': 'required', ...more }).toString();
    // a jwks_uri verifier has no setting for the expected issuer (so verify.iss=required would refuse
    // every token) nor for the audience: `iss` and `aud` are checked with `Require oauth2_claim`
    const issued = (aud: string) => [`aud:${aud}`, `iss:${opServer.issuer}`];
    apache = await startModOauth2({
      backend: backendOrigin,
      paths: [
        { path: '/api/', verify: ['jwks_uri', meta.jwks_uri!, jwtOptions()], claims: issued(API) },
        { path: '/short-lived/', verify: ['jwks_uri', meta.jwks_uri!, jwtOptions({ expiry: '0' })], claims: issued(SHORT_LIVED) },
        {
          path: '/reports/',
          verify: ['introspect', meta.introspection_endpoint!, new URLSearchParams({
            'introspect.auth': 'client_secret_basic', client_id: RS.id, client_secret: RS.secret, expiry: '0',
          }).toString()],
          // the remote user is the answer's `sub` (the module's default): for a client-credentials token,
          // the client (before op() said so, mod_oauth2 refused it: "Could not determine remote user")
          claims: issued(REPORTS_AUDIENCE),
        },
      ],
    });
  });

  afterAll(async () => {
    await apache?.stop();
    await opServer?.close();
    if (backend) await close(backend);
  });

  /** GET `path` at Apache, with `token` as a bearer token unless undefined. */
  const call = (path: string, token?: string, headers: Record<string, string> = {}) => fetch(`${apache.origin}${path}`, {
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });

  /** Runs `check`, adding Apache's config and the end of its error log to a failure. */
  async function withLog(check: () => Promise<void>) {
    try {
      await check();
    } catch (err) {
      (err as Error).message += `\n--- apache error.log ---\n${apache.errorLog().split('\n').slice(-25).join('\n')}\n--- config ---\n${apache.conf}`;
      throw err;
    }
  }

  /** The API answered, and got the request: returns what it saw. */
  async function expectPassed(res: Response, path: string): Promise<Seen> {
    expect([res.status, await res.text()]).toEqual([200, 'api answer\n']);
    const last = seen.at(-1)!;
    expect(last.path).toBe(path);
    return last;
  }

  /** A 401 with a Bearer challenge carrying `error`, and the API was not reached. */
  async function expectRefused(res: Response, error: string, before: number) {
    const challenge = res.headers.get('www-authenticate');
    expect([res.status, challenge]).toEqual([401, expect.stringMatching(new RegExp(`^Bearer realm="[^"]+", error="${error}", error_description="[^"]+"$`))]);
    expect(await res.text()).not.toContain('api answer');
    expect(seen).toHaveLength(before);
  }

  const clientToken = async (resource: string) => (await client.clientCredentialsGrant(service, { resource, scope: 'read' })).access_token;

  test('a client-credentials JWT for the API: 200, and the API gets its claims (sub, scope, client_id, aud, iss)', () => withLog(async () => {
    const token = await clientToken(API);
    // a client may not smuggle claims in: mod_oauth2 drops request headers with its claim prefix
    const res = await call('/api/things', token, { [`${CLAIM_HEADER_PREFIX}sub`]: 'mallory', [`${CLAIM_HEADER_PREFIX}scope`]: 'write' });
    const got = await expectPassed(res, '/api/things');
    expect(claimsOf(got)).toMatchObject({ sub: 'service', client_id: 'service', scope: 'read', aud: API, iss: opServer.issuer, access_token: token });
    expect(got.headers[USER_HEADER.toLowerCase()]).toBe('service');
  }));

  test("alice's access token from the code flow (resource=API): 200, the API gets her sub and the email the read scope adds", () => withLog(async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const redirectUri = `${opServer.origin}/cb`;
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: redirectUri, scope: 'openid read', resource: API, state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const browser = new FormBrowser({ stopAt: (u: URL) => u.href.startsWith(redirectUri) });
    const page = await signIn(browser, url.href, { login: ALICE.username, password: ALICE.password });
    expect(page.stoppedAt).toEqual(expect.stringContaining('code='));
    const tokens = await client.authorizationCodeGrant(web, new URL(page.stoppedAt!), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });

    const got = await expectPassed(await call('/api/me', tokens.access_token), '/api/me');
    expect(claimsOf(got)).toMatchObject({ sub: ALICE.id, client_id: 'web', scope: 'read', aud: API, email: ALICE.claims.email });
    expect(got.headers[USER_HEADER.toLowerCase()]).toBe(ALICE.id);
  }));

  test('an opaque token: mod_oauth2 introspects it at the OP as its own confidential client: 200 with the answer\'s claims', () => withLog(async () => {
    const token = await clientToken(REPORTS);
    expect(token.split('.')).toHaveLength(1);
    const got = await expectPassed(await call('/reports/q1', token), '/reports/q1');
    expect(claimsOf(got)).toMatchObject({ active: 'true', sub: 'service', client_id: 'service', scope: 'read', aud: REPORTS_AUDIENCE, iss: opServer.issuer });
    expect(got.headers[USER_HEADER.toLowerCase()]).toBe('service');
  }));

  test('no token: 401 Bearer invalid_request, and the API is not reached', () => withLog(async () => {
    const before = seen.length;
    await expectRefused(await call('/api/things'), 'invalid_request', before);
    await expectRefused(await call('/reports/q1'), 'invalid_request', before);
  }));

  test('a JWT with one signature byte changed: 401 invalid_token', () => withLog(async () => {
    const token = await clientToken(API);
    const before = seen.length;
    await expectRefused(await call('/api/things', tamper(token)), 'invalid_token', before);
    await expectPassed(await call('/api/things', token), '/api/things'); // the untouched one passes
  }));

  test('a valid JWT for another resource (aud): 401 insufficient_scope from Require oauth2_claim aud:…', () => withLog(async () => {
    const token = await clientToken(OTHER);
    expect(claimsOfJwt(token).aud).toBe(OTHER);
    const before = seen.length;
    await expectRefused(await call('/api/things', token), 'insufficient_scope', before);
  }));

  test(`an expired JWT (accessTokenTTL ${SHORT_TTL} s): 200 while valid, 401 invalid_token once exp has passed`, () => withLog(async () => {
    const token = await clientToken(SHORT_LIVED);
    const { exp } = claimsOfJwt(token) as { exp: number };
    await expectPassed(await call('/short-lived/x', token), '/short-lived/x');
    // mod_oauth2 refuses once now > exp, in whole seconds
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, (exp + 1) * 1000 - Date.now() + 50)));
    const before = seen.length;
    await expectRefused(await call('/short-lived/x', token), 'invalid_token', before);
  }));

  test('an opaque token revoked at the OP: 200 before, 401 invalid_token after (introspection says active: false)', () => withLog(async () => {
    const token = await clientToken(REPORTS);
    await expectPassed(await call('/reports/q2', token), '/reports/q2');
    await client.tokenRevocation(service, token, { token_type_hint: 'access_token' });
    expect(await client.tokenIntrospection(rs, token)).toEqual({ active: false });
    const before = seen.length;
    await expectRefused(await call('/reports/q2', token), 'invalid_token', before);
  }));
});
