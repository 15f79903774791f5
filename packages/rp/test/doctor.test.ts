/**
 * `doctor()` and `openid-express doctor` against a REAL oidc-provider: a correct set-up gives all ✔,
 * and each misconfiguration gives the matching ✘ with its fix.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import express, { type Express, type RequestHandler } from 'express';
import session from 'express-session';
import { doctor, formatReport, oidc, redisCoordination, rp, type DoctorCheck, type DoctorOptions, type DoctorReport, type RpOptions, type RpRouter } from '@openid-express/rp';
import { main } from '../src/doctor/cli.js';
import { startOp, type TestOp } from './support/oidc-provider.js';
import { close, listen } from './support/rp-app.js';
import { keyPair, type KeyPairJwks } from './support/crypto-keys.js';
import { createClient } from 'redis';
import { startRedisServer } from '../../../test/support/redis-server.js';

const SECRET = 'app-secret-that-is-long-enough-0123456789';

let op: TestOp;
let registeredKey: KeyPairJwks;
let otherKey: KeyPairJwks;
let server: Server;
let baseURL: string;
let handler: RequestHandler = (_req, res) => void res.status(404).end();

beforeAll(async () => {
  server = createServer((req, res) => {
    // the public key the OP knows for client "pkjwt" (its jwks_uri)
    if (req.url === '/registered-jwks') return void res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [registeredKey.publicJwk] }));
    handler(req as never, res as never, () => undefined);
  });
  baseURL = await listen(server);
  registeredKey = await keyPair('RS256', 'rp-1');
  otherKey = await keyPair('RS256', 'rp-2');
  const common = { grant_types: ['authorization_code', 'refresh_token'], backchannel_logout_uri: `${baseURL}/auth/backchannel-logout/op`, backchannel_logout_session_required: true };
  op = await startOp({
    clients: [
      { client_id: 'app', client_secret: SECRET, redirect_uris: [`${baseURL}/auth/callback/op`], post_logout_redirect_uris: [`${baseURL}/`], ...common },
      // the callback is not registered for this one
      { client_id: 'elsewhere', client_secret: SECRET, redirect_uris: [`${baseURL}/other/callback`], post_logout_redirect_uris: [`${baseURL}/`], ...common },
      // no post_logout_redirect_uri registered
      { client_id: 'no-logout', client_secret: SECRET, redirect_uris: [`${baseURL}/auth/callback/op`], ...common },
      // authenticates with private_key_jwt, the RP's registered public key
      { client_id: 'pkjwt', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${baseURL}/registered-jwks`, redirect_uris: [`${baseURL}/auth/callback/op`], post_logout_redirect_uris: [`${baseURL}/`], ...common },
    ],
  });
});

afterAll(async () => {
  await close(server);
  await op.close();
});

interface Setup {
  provider?: Partial<Parameters<typeof oidc>[0]>;
  rp?: Partial<RpOptions>;
  session?: Partial<session.SessionOptions>;
  baseURL?: string;
  trustProxy?: boolean;
  /** mount express-session after rp() (wrong) */
  sessionAfter?: boolean;
}

/** An app like a real one: express-session (cookie "sid", MemoryStore), then rp() with provider "op". */
function setup(s: Setup = {}): { app: Express; router: RpRouter } {
  const app = express();
  if (s.trustProxy) app.set('trust proxy', 1);
  const sessionMw = session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, name: 'sid', ...s.session });
  if (!s.sessionAfter) app.use(sessionMw);
  const router = rp({
    baseURL: s.baseURL ?? baseURL,
    providers: { op: oidc({ issuer: op.issuer, clientId: 'app', clientSecret: SECRET, scope: 'openid profile', allowInsecureRequests: true, ...s.provider }) },
    ...s.rp,
  });
  app.use(router);
  if (s.sessionAfter) app.use(sessionMw);
  handler = app as unknown as RequestHandler;
  return { app, router };
}

async function run(s: Setup = {}, options: DoctorOptions = {}): Promise<DoctorReport> {
  const { app, router } = setup(s);
  return doctor(router, { app, ...options });
}

const check = (report: DoctorReport, name: string, provider?: string): DoctorCheck => {
  const found = report.checks.find((c) => c.name === name && (provider === undefined || c.provider === provider));
  if (!found) throw new Error(`no "${name}" check in:\n${formatReport(report)}`);
  return found;
};

/** Expects a ✘ of `name` whose detail and fix match. */
function expectFailure(report: DoctorReport, name: string, detail: RegExp, fix: RegExp): DoctorCheck {
  const c = check(report, name);
  expect({ name, ok: c.ok, detail: c.detail }).toEqual({ name, ok: false, detail: expect.stringMatching(detail) });
  expect(c.fix).toMatch(fix);
  expect(report.ok).toBe(false);
  // the printed checklist has the ✘ line and its fix
  const text = formatReport(report);
  expect(text).toContain(`✘ ${name}: ${c.detail}`);
  expect(text).toContain(`fix: ${c.fix}`);
  return c;
}

/** Output of the CLI's main(), collected. */
function cliIo(): { out: string[]; err: string[]; io: { out: (t: string) => void; err: (t: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t) => void out.push(t), err: (t) => void err.push(t) } };
}

/** An address nothing listens on. */
async function closedPort(): Promise<string> {
  const s = createServer();
  const url = await listen(s);
  await close(s);
  return url;
}

describe('doctor: a correct set-up', () => {
  test('every check is ✔ and the checklist says so', async () => {
    const report = await run();
    const text = formatReport(report);
    expect(report.checks.filter((c) => c.ok !== true)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => `${c.provider ?? '-'}:${c.name}`)).toEqual([
      'op:discovery', 'op:issuer', 'op:https', 'op:clock', 'op:jwks', 'op:credentials', 'op:callback', 'op:post-logout', 'op:backchannel-logout',
      '-:session', '-:cookie-secure', '-:cookie-samesite', '-:trust-proxy', '-:cookie-name', '-:session-store',
    ]);
    expect(text).not.toContain('✘');
    expect(text).toContain(`✔ callback: ${op.issuer} sent a prompt=none request back to ${baseURL}/auth/callback/op (login_required)`);
    expect(text).toContain('✔ credentials:');
    expect(text).toMatch(/✔ no problems found: 15 passed$/);
  });

  test('doctor(app) finds the router itself; rp({ session }) and doctor({ session }) are read too', async () => {
    const { app } = setup();
    expect((await doctor(app)).ok).toBe(true);
    const mw = session({ secret: 's', resave: false, saveUninitialized: false, name: 'rp.sid' });
    const router = rp({ baseURL, session: mw, providers: { op: oidc({ issuer: op.issuer, clientId: 'app', clientSecret: SECRET, scope: 'openid', allowInsecureRequests: true }) } });
    const viaRp = await doctor(router.relyingParty, { providers: [] });
    expect(check(viaRp, 'session').detail).toBe('express-session given as rp({ session }): cookie "rp.sid", secure: false, store MemoryStore');
    const viaOptions = await doctor(router, { providers: [], session: { secret: 's', name: 'x.sid', cookie: { secure: 'auto' } } });
    expect(check(viaOptions, 'session').detail).toBe('the session options given to doctor(): cookie "x.sid", secure: "auto", store MemoryStore');
  });

  test('static providerInfo: no discovery, the probes run, the clock is read from the OP\'s answers', async () => {
    const providerInfo = {
      issuer: op.issuer, authorization_endpoint: `${op.issuer}/auth`, token_endpoint: `${op.issuer}/token`, jwks_uri: `${op.issuer}/jwks`,
      end_session_endpoint: `${op.issuer}/session/end`, backchannel_logout_supported: true,
    };
    const report = await run({ provider: { issuer: undefined, providerInfo } });
    expect(report.checks.filter((c) => c.provider).map((c) => [c.name, c.ok])).toEqual([
      ['discovery', 'skipped'], ['issuer', 'skipped'], ['https', true], ['clock', true], ['jwks', true], ['credentials', true], ['callback', true], ['post-logout', true], ['backchannel-logout', true],
    ]);
    expect(check(report, 'discovery').detail).toBe('static providers.op.providerInfo is used: no discovery');
    expect(report.ok).toBe(true);
  });

  test('without app or session, the session checks are skipped (–), not failed', async () => {
    const { router } = setup();
    const report = await doctor(router, { providers: [] });
    expect(report.checks).toEqual([expect.objectContaining({ name: 'session', ok: 'skipped', detail: expect.stringContaining('pass doctor(router, { app })') })
      , ...['cookie-secure', 'cookie-samesite'].map((name) => expect.objectContaining({ name, ok: 'skipped' })),
      expect.objectContaining({ name: 'trust-proxy', ok: true }), // http baseURL: not needed
      expect.objectContaining({ name: 'cookie-name', ok: 'skipped' }), expect.objectContaining({ name: 'session-store', ok: 'skipped' })]);
    expect(report.ok).toBe(true);
    expect(formatReport(report)).toContain('– session: ');
  });
});

describe('doctor: each misconfiguration gives its ✘ and fix', () => {
  test('wrong client secret', async () => {
    const report = await run({ provider: { clientSecret: 'not-the-secret-0123456789-0123456789' } });
    expectFailure(report, 'credentials',
      new RegExp(`${op.issuer}/token refused the credentials of client "app" \\(client_secret_basic\\): .*invalid_client`),
      /check providers\.op\.clientId and providers\.op\.clientSecret .* providers\.op\.tokenEndpointAuthMethod \("client_secret_basic"\)/);
    expect(report.checks.filter((c) => c.ok === false).map((c) => c.name)).toEqual(['credentials']);
  });

  test('private_key_jwt: ✔ with the registered key, ✘ with another (the fix names the RP\'s jwks_uri)', async () => {
    const good = await run({ provider: { clientId: 'pkjwt', clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt' }, rp: { keys: [registeredKey.privateJwk] } });
    expect(check(good, 'credentials')).toMatchObject({ ok: true, detail: expect.stringContaining('accepted client "pkjwt" (private_key_jwt) and refused a made-up code with invalid_grant') });
    const report = await run({ provider: { clientId: 'pkjwt', clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt' }, rp: { keys: [otherKey.privateJwk] } });
    expectFailure(report, 'credentials', /refused the credentials of client "pkjwt" \(private_key_jwt\): .*invalid_client/,
      new RegExp(`tokenEndpointAuthMethod \\("private_key_jwt"\\).*register jwks_uri ${baseURL}/auth/jwks`));
  });

  test('callback URL not registered', async () => {
    const report = await run({ provider: { clientId: 'elsewhere' } });
    expectFailure(report, 'callback',
      new RegExp(`${op.issuer} refused redirect_uri ${baseURL}/auth/callback/op: the authorization endpoint answered HTTP 400 \\(invalid_redirect_uri`),
      new RegExp(`register ${baseURL}/auth/callback/op as a redirect URI of client "elsewhere" at ${op.issuer}`));
    expect(check(report, 'credentials').ok).toBe(true);
  });

  test('unknown client id', async () => {
    const report = await run({ provider: { clientId: 'nobody' } });
    expectFailure(report, 'callback', /does not know client "nobody"/, /check providers\.op\.clientId/);
    expectFailure(report, 'credentials', /refused the credentials of client "nobody"/, /providers\.op\.clientId/);
  });

  test('post_logout_redirect_uri not registered', async () => {
    const report = await run({ provider: { clientId: 'no-logout' } });
    expectFailure(report, 'post-logout',
      new RegExp(`${op.issuer}/session/end answered HTTP 400 \\(invalid_request: post_logout_redirect_uri not registered\\) for post_logout_redirect_uri ${baseURL}/`),
      new RegExp(`register ${baseURL}/ as a post_logout_redirect_uri of client "no-logout" at ${op.issuer}`));
    expect(report.checks.filter((c) => c.ok === false).map((c) => c.name)).toEqual(['post-logout']);
    // the pages logout returns to can be named
    const other = await run({}, { postLogoutRedirectUris: [`${baseURL}/`, `${baseURL}/signed-out`] });
    expectFailure(other, 'post-logout', new RegExp(`for post_logout_redirect_uri ${baseURL}/signed-out`), new RegExp(`register ${baseURL}/signed-out as`));
  });

  test('http issuer without allowInsecureRequests: rp() refuses it at start-up, and the CLI prints that', async () => {
    const start = (): RpRouter => setup({ provider: { allowInsecureRequests: false } }).router;
    expect(start).toThrow(/providers\.op\.issuer.*allowInsecureRequests: true/);
    const a = cliIo();
    expect(await main(['doctor', '--app', 'app.js'], { ...a.io, load: async () => ({ default: start() }) })).toBe(2);
    expect(a.err.join('')).toMatch(/could not import .*app\.js: rp\(\): option "providers\.op\.issuer" is an http:\/\/ URL .*add allowInsecureRequests: true/);
  });

  test('issuer typo: discovery ✘ naming the URL and the status', async () => {
    const report = await run({ provider: { issuer: `${op.issuer}/typo` } });
    expectFailure(report, 'discovery',
      new RegExp(`^${op.issuer}/typo/\\.well-known/openid-configuration answered HTTP 404`),
      new RegExp(`check providers\\.op\\.issuer \\("${op.issuer}/typo"\\)`));
    expect(report.checks.filter((c) => c.ok === false).map((c) => c.name)).toEqual(['discovery']);
  });

  test.each([
    ['a jwks_uri the OP no longer serves (a discovery document cached by a CDN after the OP moved its keys)', '/old-jwks', /answered HTTP 404/],
    ['a jwks_uri that answers something other than a JWK Set', '/.well-known/openid-configuration', /answered JSON without a "keys" list: not a JWK Set/],
  ])('%s: jwks ✘ (before: every check passed while every sign-in failed)', async (_label, path, detail) => {
    const providerInfo = {
      issuer: op.issuer, authorization_endpoint: `${op.issuer}/auth`, token_endpoint: `${op.issuer}/token`, jwks_uri: `${op.issuer}${path}`,
      end_session_endpoint: `${op.issuer}/session/end`, backchannel_logout_supported: true,
    };
    const report = await run({ provider: { issuer: undefined, providerInfo } });
    expectFailure(report, 'jwks', new RegExp(`^the OP's jwks_uri ${op.issuer}${path.replace(/\./g, '\\.')} .*${detail.source}`), /must answer HTTP 200 with its public keys/);
    expect(report.checks.filter((c) => c.ok === false).map((c) => c.name)).toEqual(['jwks']);
  });

  test('OP unreachable: discovery ✘ naming the URL', async () => {
    const down = await closedPort();
    const report = await run({ provider: { issuer: down } });
    expectFailure(report, 'discovery',
      new RegExp(`^could not reach ${down}/\\.well-known/openid-configuration: connection refused \\(ECONNREFUSED\\)`),
      /and that the OP is reachable from this machine/);
    expect(check(report, 'callback')).toMatchObject({ ok: 'skipped' });
  });

  describe('against a stub OP', () => {
    let stub: Server;
    let stubURL: string;
    let dateOffset = 0;
    let issuerOverride: string | undefined;
    let endpointBase: string | undefined;
    beforeAll(async () => {
      const app = express();
      app.get('/.well-known/openid-configuration', (_req, res) => {
        res.setHeader('Date', new Date(Date.now() + dateOffset).toUTCString());
        const at = endpointBase ?? stubURL;
        res.json({ issuer: issuerOverride ?? stubURL, authorization_endpoint: `${at}/auth`, token_endpoint: `${at}/token`, jwks_uri: `${at}/jwks`, response_types_supported: ['code'] });
      });
      stub = createServer(app);
      stubURL = await listen(stub);
    });
    afterAll(() => close(stub));
    beforeEach(() => {
      dateOffset = 0;
      issuerOverride = undefined;
      endpointBase = undefined;
    });

    test('an https issuer whose metadata names http endpoints, without allowInsecureRequests', async () => {
      // https://op.test is the stub (both the RP's fetch and the doctor's are pointed at it)
      issuerOverride = 'https://op.test';
      endpointBase = 'http://op.test';
      const toStub = (url: string): string => url.replace(/^https?:\/\/op\.test/, stubURL);
      const report = await run(
        { provider: { issuer: 'https://op.test', allowInsecureRequests: false, customFetch: (url, init) => fetch(toStub(url), init as RequestInit) } },
        { fetch: ((url: string, init?: RequestInit) => fetch(toStub(String(url)), init)) as typeof fetch },
      );
      expectFailure(report, 'https',
        /^http:\/\/op\.test \(authorization_endpoint, token_endpoint, jwks_uri\) is http, and providers\.op\.allowInsecureRequests is not set: openid-client refuses http/,
        /use the OP's https URL; for local development only, oidc\(\{ \.\.\., allowInsecureRequests: true \}\)/);
      expect(check(report, 'discovery').ok).toBe(true);
      expect(check(report, 'issuer').ok).toBe(true);
    });

    test('clock skew: the OP\'s Date header 5 minutes off', async () => {
      // the Date header has whole seconds, so the estimate is 300 s within half a second and half the round trip: 299-301 s
      dateOffset = 5 * 60 * 1000;
      const report = await run({ provider: { issuer: stubURL } });
      expectFailure(report, 'clock', new RegExp(`the OP's clock \\(Date header of ${stubURL}/\\.well-known/openid-configuration: .*\\) is (299|30\\d) s ahead of this machine's`), /synchronize this machine's clock with NTP/);
      dateOffset = -5 * 60 * 1000;
      expect(check(await run({ provider: { issuer: stubURL } }), 'clock').detail).toMatch(/is (299|30\d) s behind this machine's/);
      dateOffset = 10_000;
      expect(check(await run({ provider: { issuer: stubURL } }), 'clock')).toMatchObject({ ok: true, detail: expect.stringMatching(/within (9|1\d) s/) });
    });

    test('clock skew of 20 s with a client that signs what it sends (private_key_jwt, request objects): ✘, as the OP takes those within 15 s (clock probe: before, ✔ while every sign-in failed)', async () => {
      dateOffset = -20_000;
      expect(check(await run({ provider: { issuer: stubURL } }), 'clock').ok).toBe(true); // ID tokens alone: 30 s
      const report = await run({ provider: { issuer: stubURL, tokenEndpointAuthMethod: 'client_secret_jwt', clientSecret: SECRET } });
      expectFailure(report, 'clock', /is (19|2\d) s behind this machine's; the client signs what it sends the OP \(client_secret_jwt\), which an OP takes only within its own tolerance \(oidc-provider: 15 s\)/, /synchronize this machine's clock with NTP/);
    });

    test('the OP names another issuer than the configured one', async () => {
      issuerOverride = 'https://id.example.com';
      const report = await run({ provider: { issuer: stubURL } });
      expectFailure(report, 'issuer',
        new RegExp(`names issuer "https://id.example.com", but providers\\.op\\.issuer is "${stubURL}"`),
        /set providers\.op\.issuer to "https:\/\/id\.example\.com"/);
      expect(check(report, 'discovery').ok).toBe(true);
    });
  });

  test('cookie secure: false with an https baseURL', async () => {
    const report = await run({ baseURL: 'https://app.example.com', trustProxy: true, session: { cookie: { secure: false } } }, { providers: [] });
    expectFailure(report, 'cookie-secure', /baseURL https:\/\/app\.example\.com is https but the session cookie is not secure/, /cookie: \{ secure: true \}/);
    const fixed = await run({ baseURL: 'https://app.example.com', trustProxy: true, session: { cookie: { secure: true } } }, { providers: [] });
    expect(fixed.ok).toBe(true);
    expect(check(fixed, 'cookie-secure').ok).toBe(true);
  });

  test('cookie secure: true with an http baseURL', async () => {
    const report = await run({ session: { cookie: { secure: true } } }, { providers: [] });
    expectFailure(report, 'cookie-secure', /the session cookie is secure but baseURL .* is http: express-session never sends/, /secure: 'auto'/);
  });

  test('https baseURL behind a proxy without trust proxy', async () => {
    const report = await run({ baseURL: 'https://app.example.com', session: { cookie: { secure: true } } }, { providers: [] });
    expectFailure(report, 'trust-proxy', /does not trust a proxy \('trust proxy' is off\)/, /app\.set\('trust proxy', 1\)/);
    expect(check(await run({ baseURL: 'https://app.example.com', session: { cookie: { secure: true } } }, { providers: [], behindProxy: false }), 'trust-proxy').ok).toBe(true);
    // express-session's own proxy: true is read from the middleware
    expect(check(await run({ baseURL: 'https://app.example.com', session: { cookie: { secure: true }, proxy: true } }, { providers: [] }), 'trust-proxy'))
      .toMatchObject({ ok: true, detail: expect.stringContaining('proxy: true') });
    expect(check(await run({ baseURL: 'https://app.example.com', session: { cookie: { secure: 'auto' }, proxy: true } }, { providers: [] }), 'trust-proxy').ok).toBe(true);
  });

  test('SameSite=Strict session cookie: passes, saying the callback takes one more step', async () => {
    expect(check(await run({ session: { cookie: { sameSite: 'strict' } } }, { providers: [] }), 'cookie-samesite'))
      .toMatchObject({ ok: true, detail: expect.stringMatching(/SameSite strict: the cookie stays behind .* posts the answer to itself, with the cookie/) });
  });

  test('SameSite not set: passes, and says that only Chromium treats it as Lax (Firefox and Safari send it with other sites\' requests)', async () => {
    expect(check(await run({}, { providers: [] }), 'cookie-samesite'))
      .toMatchObject({ ok: true, detail: expect.stringMatching(/SameSite not set: .*Chromium treats it as Lax, but Firefox and Safari also send it .*sameSite: 'lax'/) });
    expect(check(await run({ session: { cookie: { sameSite: 'lax' } } }, { providers: [] }), 'cookie-samesite'))
      .toMatchObject({ ok: true, detail: 'SameSite lax: the cookie comes back with the OP\'s redirect' });
  });

  test('express-session mounted after rp()', async () => {
    const report = await run({ sessionAfter: true }, { providers: [] });
    expectFailure(report, 'session', /express-session is mounted after rp\(\)/, /app\.use\(session\(\{ \.\.\. \}\)\) before app\.use\(rp\(\{ \.\.\. \}\)\)/);
  });

  test('an OP on the same host that uses the session cookie\'s name', async () => {
    const report = await run({ session: { name: '_session' } });
    expectFailure(report, 'cookie-name',
      new RegExp(`the OP "op" \\(${op.issuer}\\) on the app's host 127\\.0\\.0\\.1 sets a cookie named "_session"`),
      /session\(\{ \.\.\., name: 'app\.sid' \}\)/);
    expect(report.checks.filter((c) => c.ok === false).map((c) => c.name)).toEqual(['cookie-name']);
  });

  describe('with NODE_ENV=production', () => {
    const env = process.env.NODE_ENV;
    beforeEach(() => void (process.env.NODE_ENV = 'production'));
    afterEach(() => void (process.env.NODE_ENV = env));

    test('MemoryStore is flagged', async () => {
      const report = await run({}, { providers: [] });
      expectFailure(report, 'session-store', /the session store is MemoryStore \(.*\): MemoryStore with NODE_ENV=production/, /a shared store, e\.g\. Redis: session\(\{ \.\.\., store: new RedisStore/);
    });

    test('allowInsecureRequests is flagged', async () => {
      const report = await run({ session: { store: new FakeRedisStore() } });
      expectFailure(report, 'https', /allowed by providers\.op\.allowInsecureRequests with NODE_ENV=production/, /remove allowInsecureRequests/);
    });
  });

  test('more than one instance with MemoryStore, and without coordination', async () => {
    const report = await run({}, { providers: [], instances: 3 });
    expectFailure(report, 'session-store', /3 instances each keep their own MemoryStore: a login started on one instance fails on another/, /rp\(\{ coordination: redisCoordination\(redisClient\) \}\)/);
    expectFailure(report, 'coordination', /3 instances without rp\(\{ coordination \}\)/, /redisCoordination\(redisClient\)/);
    const coordination = { setIfAbsent: async () => true, takeSet: async () => [], addToSet: async () => undefined, get: async () => undefined, set: async () => undefined } as never;
    const fixed = await run({ session: { store: new FakeRedisStore() }, rp: { coordination } }, { providers: [], instances: 3 });
    expect(fixed.ok).toBe(true);
    expect(check(fixed, 'session-store').detail).toBe('FakeRedisStore, shared by the 3 instances');
  });

  test('a coordination Redis that evicts keys before they expire (maxmemory-policy allkeys-lru): ✘ (before: only a start-up warning, and the report said all clear)', async () => {
    const redis = await startRedisServer();
    const client = createClient({ url: redis.url });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await client.connect();
      await client.configSet({ 'maxmemory-policy': 'allkeys-lru', maxmemory: '512mb' });
      const report = await run({ rp: { coordination: redisCoordination(client) } }, { providers: [] });
      expectFailure(report, 'coordination', /^the Redis of rp\(\{ coordination \}\) runs with maxmemory-policy allkeys-lru: once it is full it deletes keys before they expire/, /Set maxmemory-policy noeviction/);
      await client.configSet('maxmemory', '0'); // no memory limit: nothing is evicted, whatever the policy (review)
      const unlimited = await run({ rp: { coordination: redisCoordination(client) } }, { providers: [] });
      expect(unlimited.checks.find((c) => c.name === 'coordination')).toBeUndefined();
      await client.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '512mb' });
      const fixed = await run({ rp: { coordination: redisCoordination(client) } }, { providers: [] });
      expect(fixed.checks.find((c) => c.name === 'coordination')).toBeUndefined(); // one instance: nothing else to say
    } finally {
      warn.mockRestore();
      await client.quit().catch(() => undefined);
      await redis.stop();
    }
  });
});

/** A store that is not MemoryStore (stands for connect-redis in these tests). */
class FakeRedisStore extends session.Store {
  get(_sid: string, cb: (err: unknown, s?: session.SessionData | null) => void): void { cb(null, null); }
  set(_sid: string, _s: session.SessionData, cb?: (err?: unknown) => void): void { cb?.(); }
  destroy(_sid: string, cb?: (err?: unknown) => void): void { cb?.(); }
}

describe('openid-express doctor (CLI)', () => {
  const io = cliIo;

  test('imports the app module, prints the checklist, exit code 0 when all ✔, 1 otherwise', async () => {
    const good = setup();
    const a = io();
    const code = await main(['doctor', '--app', './app.js'], { ...a.io, cwd: '/srv/app', load: async (file) => (expect(file).toBe('/srv/app/app.js'), { default: good.app }) });
    expect({ code, err: a.err }).toEqual({ code: 0, err: [] });
    expect(a.out.join('\n')).toContain(`openid-express doctor: ${baseURL}`);
    expect(a.out.join('\n')).toMatch(/✔ no problems found: 15 passed/);

    const bad = setup({ provider: { clientSecret: 'not-the-secret-0123456789-0123456789' } });
    const b = io();
    expect(await main(['doctor', '--app=app.js', '--instances', '2'], { ...b.io, load: async () => ({ app: bad.app }) })).toBe(1);
    expect(b.out.join('\n')).toMatch(/✘ credentials: .*\n {6}fix: check providers\.op\.clientId/);
    expect(b.out.join('\n')).toContain('✘ session-store: the session store is MemoryStore');

    const j = io();
    expect(await main(['doctor', '--app', 'x.js', '--json'], { ...j.io, load: async () => ({ default: good.router }) })).toBe(0);
    expect(JSON.parse(j.out.join(''))).toMatchObject({ ok: true, baseURL, checks: expect.arrayContaining([expect.objectContaining({ name: 'callback', ok: true })]) });
  });

  test('usage errors: exit code 2 with what to do', async () => {
    const a = io();
    expect(await main(['doctor'], a.io)).toBe(2);
    expect(a.err.join('')).toContain('--app is required');
    const b = io();
    expect(await main(['doctor', '--app', 'x.js'], { ...b.io, load: async () => ({ something: 1 }) })).toBe(2);
    expect(b.err.join('')).toContain('exports no Express app and no rp() router: add `export default app`');
    const c = io();
    expect(await main(['doctor', '--app', 'x.js'], { ...c.io, load: async () => ({ default: express() }) })).toBe(2);
    expect(c.err.join('')).toContain('no rp() router is mounted in the app');
    const d = io();
    expect(await main(['doctor', '--app', 'x.js'], { ...d.io, load: async () => { throw new Error('boom'); } })).toBe(2);
    expect(d.err.join('')).toContain('could not import');
    const e = io();
    expect(await main(['doctor', '--help'], e.io)).toBe(0);
    expect(e.out.join('')).toContain('Usage: openid-express doctor --app <module>');
  });

  const cli = resolve(__dirname, '../dist/cli.js');
  /** Runs the built bin (asynchronously: the OP of this test answers from this process). */
  const runCli = (args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> =>
    new Promise((done) => {
      execFile(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) =>
        done({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    });
  (existsSync(cli) ? test : test.skip)('the built bin (dist/cli.js) runs against an app module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-cli-'));
    try {
      const url = (p: string): string => pathToFileURL(p).href;
      const file = join(dir, 'app.mjs');
      writeFileSync(file, [
        `import express from '${url(require.resolve('express'))}';`,
        `import session from '${url(require.resolve('express-session'))}';`,
        `import { rp, oidc } from '${url(resolve(__dirname, '../dist/index.js'))}';`,
        'export const app = express();',
        "app.use(session({ secret: 's', resave: false, saveUninitialized: false, name: 'sid' }));",
        `app.use(rp({ baseURL: ${JSON.stringify(baseURL)}, providers: { op: oidc({ issuer: ${JSON.stringify(op.issuer)}, clientId: 'app', clientSecret: process.env.SECRET, scope: 'openid', allowInsecureRequests: true }) } }));`,
        `app.listen(${JSON.stringify(Number(new URL(baseURL).port))}); // the running app's port: the doctor's import must not fail with EADDRINUSE, and it exits all the same`,
      ].join('\n'));
      const ok = await runCli(['doctor', '--app', file], { SECRET, NODE_ENV: 'development' });
      expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
      expect(ok.stdout).toContain('✔ credentials:');
      const bad = await runCli(['doctor', '--app', file], { SECRET: 'wrong-secret-0123456789-0123456789', NODE_ENV: 'development' });
      expect(bad.status).toBe(1);
      expect(bad.stdout).toContain('✘ credentials:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
