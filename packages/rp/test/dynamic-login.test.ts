/**
 * Logging in at an OP nobody configured: GET /auth/login?identifier=alice@host → WebFinger →
 * discovery → dynamic registration at a REAL oidc-provider → login → callback, through rp().
 * Registrations are reused (also after a restart, with the app's store); private networks are
 * refused unless the development opt-in is given.
 */
import session from 'express-session';
import request from 'supertest';
import { createClient } from 'redis';
import { RpError, memoryRegistrationStore, oidc, readStoredLogin, redisCoordination, type DynamicOptions } from '@openid-express/rp';
import type { Adapter } from 'oidc-provider';
import { dynamicProviderName } from '../src/discovery/registration.js';
import { useRedis } from '../../../test/support/redis-server.js';
import { startDynamicOp, type DynamicOp } from './simulators/dynamic-op.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';
import { sessionCookieOf } from './support/expect.js';

const dev = { webfinger: true, registration: true, allowPrivateNetwork: true, allowInsecureRequests: true } satisfies DynamicOptions;
let op: DynamicOp;
const apps: SimApp[] = [];

beforeAll(async () => {
  op = await startDynamicOp({ users: ['alice'] });
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await op.close();
});

async function app(dynamic: DynamicOptions): Promise<SimApp> {
  const started = await startSimApp(() => ({}), { rp: { dynamic } });
  apps.push(started);
  return started;
}

/** A browser at the OP: follows its redirects (with its cookies) until it sends the user back to `back`. */
async function walkOp(start: string, back: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  for (let hops = 0; hops < 10; hops++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`the OP answered ${res.status} at ${url.pathname}: ${(await res.text()).slice(0, 200)}`);
    url = new URL(location, url);
    if (url.href.startsWith(back)) return url;
  }
  throw new Error('too many redirects at the OP');
}

async function loginWithIdentifier(a: SimApp, identifier: string) {
  const agent = a.agent();
  const start = await agent.get(`/auth/login?identifier=${encodeURIComponent(identifier)}&returnTo=/me`).set('accept', 'application/json');
  return { agent, start };
}

test('alice@host logs in at the OP her host names, with a client registered on the fly', async () => {
  const a = await app(dev);
  const before = op.registrations;
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect(start.status).toBe(302);
  const authorize = new URL(start.headers.location);
  expect(authorize.origin).toBe(op.issuer);
  expect(op.webfingerRequests.at(-1)).toBe(`acct:alice@${op.host}`);
  expect(op.registrations - before).toBe(1);
  const redirectUri = authorize.searchParams.get('redirect_uri')!;
  expect(redirectUri).toMatch(new RegExp(`^${a.baseURL}/auth/callback/dyn-[A-Za-z0-9_-]{22}$`));
  expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ response_type: 'code', scope: 'openid email profile', code_challenge_method: 'S256' });

  const callback = await walkOp(authorize.href, a.baseURL);
  const res = await agent.get(pathOf(callback));
  expect(res.status).toBe(302);
  expect(res.headers.location).toBe('/me');
  const me = await agent.get('/me');
  expect(me.body).toMatchObject({ sub: 'alice', email: 'alice@example.org', name: 'Alice', provider: redirectUri.split('/').pop() });
});

test('at an OP that offers back-channel logout, the registration asks for it: signing out at the OP ends the app\'s session', async () => {
  const bclOp = await startDynamicOp({ users: ['alice'], backchannelLogout: true });
  try {
    const a = await app(dev);
    const { agent, start } = await loginWithIdentifier(a, `alice@${bclOp.host}`);
    const authorize = new URL(start.headers.location);
    const name = authorize.searchParams.get('redirect_uri')!.split('/').pop()!;
    const registered = await bclOp.provider.Client.find(authorize.searchParams.get('client_id')!);
    // before: no backchannel_logout_uri, and a sign-out at the OP left the app's session signed in
    expect(registered?.metadata()).toMatchObject({ backchannel_logout_uri: `${a.baseURL}/auth/backchannel-logout/${name}`, backchannel_logout_session_required: true });
    expect((await agent.get(pathOf(await walkOp(authorize.href, a.baseURL)))).status).toBe(302);
    expect((await agent.get('/me')).status).toBe(200);
    const [id] = await a.authenticatedSessions();
    const claims = await new Promise<Record<string, unknown>>((resolve) => a.store.get(id!, (_e, s) => resolve(readStoredLogin((s as import('express-session').SessionData).oidc!.auth!).idTokenClaims!)));
    await (registered as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout('alice', String(claims.sid)); // what the OP sends at its sign-out
    expect((await agent.get('/me')).status).toBe(401);
  } finally {
    await bclOp.close();
  }
});

test('the registration is reused: a second login (acct: and URL forms) registers nothing new', async () => {
  const a = await app(dev);
  await loginWithIdentifier(a, `alice@${op.host}`);
  const before = op.registrations;
  for (const identifier of [`acct:alice@${op.host}`, `${op.issuer}/alice`]) {
    const { agent, start } = await loginWithIdentifier(a, identifier);
    expect(start.status).toBe(302);
    const res = await agent.get(pathOf(await walkOp(start.headers.location, a.baseURL)));
    expect(res.status).toBe(302);
    expect((await agent.get('/me')).body.sub).toBe('alice');
  }
  expect(op.registrations).toBe(before);
});

test('with a store the app keeps, a restarted app reuses the registration, even for a login started before the restart', async () => {
  const registrations = memoryRegistrationStore();
  const sessions = new session.MemoryStore();
  const first = await startSimApp(() => ({}), { store: sessions, rp: { dynamic: { ...dev, store: registrations } } });
  const port = Number(new URL(first.baseURL).port);
  const { start: firstStart } = await loginWithIdentifier(first, `alice@${op.host}`);
  const clientId = new URL(firstStart.headers.location).searchParams.get('client_id');
  const before = op.registrations;
  await first.close();

  // Restart 1: a new login at the same OP uses the stored client.
  const second = await startSimApp(() => ({}), { port, store: sessions, rp: { dynamic: { ...dev, store: registrations } } });
  const { agent, start } = await loginWithIdentifier(second, `alice@${op.host}`);
  expect(new URL(start.headers.location).searchParams.get('client_id')).toBe(clientId);
  const callback = await walkOp(start.headers.location, second.baseURL);
  await second.close();

  // Restart 2, between the OP and the callback: the new instance finds the OP in the registration store.
  const third = await startSimApp(() => ({}), { port, store: sessions, rp: { dynamic: { ...dev, store: registrations } } });
  apps.push(third);
  const res = await agent.get(pathOf(callback));
  expect(res.status).toBe(302);
  expect((await agent.get('/me')).body.sub).toBe('alice');
  expect(op.registrations).toBe(before);
});

/** The session cookie `agent` holds for `baseURL`. */
const cookieOf = (agent: request.Agent, baseURL: string): string => (agent as unknown as { jar: { getCookie(n: string, a: unknown): { toValueString(): string } } })
  .jar.getCookie('connect.sid', { domain: new URL(baseURL).hostname, path: '/', secure: false, script: false }).toValueString();

/** oidc-provider's adapter of a model (its records, to make the OP forget or change a client). */
const adapterOf = (model: unknown): Adapter => (model as { adapter: Adapter }).adapter;

/** A full login with `identifier` at app `a`: the answer of its callback. */
async function fullLogin(a: SimApp, back = a.baseURL) {
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect(start.status).toBe(302);
  const clientId = new URL(start.headers.location).searchParams.get('client_id')!;
  return { agent, clientId, done: await agent.get(pathOf(await walkOp(start.headers.location, back))).set('accept', 'application/json') };
}

test('the OP forgot the client (its store was reset): the next login checks the registration (RFC 7592), registers anew and signs in', async () => {
  const registrations = memoryRegistrationStore();
  const first = await app({ ...dev, store: registrations });
  const { clientId, done } = await fullLogin(first);
  expect(done.status).toBe(302);
  const stored = (await registrations.get(dynamicProviderName(op.issuer)))!;
  await adapterOf(op.provider.Client).destroy(clientId);
  await adapterOf(op.provider.RegistrationAccessToken).destroy(stored.registrationAccessToken!);
  // another instance (or this one a minute later) asks the OP before sending users there
  const before = op.registrations;
  const second = await startSimApp(() => ({}), { store: first.store, rp: { baseURL: first.baseURL, dynamic: { ...dev, store: registrations } } });
  apps.push(second);
  const again = await fullLogin(second, first.baseURL);
  expect(again.clientId).not.toBe(clientId); // before: the forgotten client, and the OP's "unknown application" page
  expect([again.done.status, again.done.headers.location]).toEqual([302, '/me']);
  expect(op.registrations - before).toBe(1);
  // a login started on the second instance comes back to the first, which had met the old client:
  // it finishes with the new one (before: the first kept the old client, and the code exchange failed)
  const { agent, start } = await loginWithIdentifier(second, `alice@${op.host}`);
  const callback = await walkOp(start.headers.location, first.baseURL);
  const finished = await request(first.app).get(pathOf(callback)).set('cookie', cookieOf(agent, second.baseURL)).set('accept', 'application/json');
  expect([finished.status, finished.headers.location]).toEqual([302, '/me']);
});

test('the OP refuses the client at its token endpoint (its secret changed): that login says to sign in again, and the next one registers anew', async () => {
  const registrations = memoryRegistrationStore();
  const a = await app({ ...dev, store: registrations });
  const { clientId } = await fullLogin(a);
  const metadata = (await adapterOf(op.provider.Client).find(clientId))!;
  await adapterOf(op.provider.Client).upsert(clientId, { ...metadata, client_secret: 'a-secret-the-app-was-never-told-about' }, 3600);
  const refused = await fullLogin(a);
  expect(refused.clientId).toBe(clientId);
  expect([refused.done.status, refused.done.body.error]).toEqual([400, 'invalid_grant']); // before: 500 client_auth_failed, on every login
  expect(refused.done.body.error_description).toMatch(/no longer accepts this app's registration .* signing in again registers the app anew/);
  expect(await registrations.get(dynamicProviderName(op.issuer))).toBeUndefined();
  const before = op.registrations;
  const next = await fullLogin(a);
  expect(next.clientId).not.toBe(clientId);
  expect([next.done.status, next.done.headers.location]).toEqual([302, '/me']);
  expect(op.registrations - before).toBe(1);
});

test('the store fails as a new registration is kept: the login answers 503, and the client nobody will find again is deleted at the OP (RFC 7592)', async () => {
  const kept = memoryRegistrationStore();
  let lost: string | undefined;
  const failingOnce = {
    get: (key: string) => kept.get(key),
    forget: (key: string, clientId: string) => kept.forget!(key, clientId),
    set: async (key: string, value: Parameters<typeof kept.set>[1]) => {
      if (lost) return kept.set(key, value);
      lost = value.clientId;
      throw new RpError('store_unavailable', 'Redis did not answer within 2000 ms');
    },
  };
  const a = await app({ ...dev, store: failingOnce });
  const before = op.registrations;
  const { start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect([start.status, start.body.error, start.headers['retry-after']]).toEqual([503, 'store_unavailable', expect.any(String)]);
  expect(op.registrations - before).toBe(1);
  expect(lost).toEqual(expect.any(String));
  // before: the client stayed registered at the OP for good, one per failed write
  for (let i = 0; i < 40 && (await adapterOf(op.provider.Client).find(lost!)); i++) await new Promise((r) => setTimeout(r, 25));
  expect(await adapterOf(op.provider.Client).find(lost!)).toBeUndefined();
  const next = await fullLogin(a);
  expect(next.clientId).not.toBe(lost);
  expect([next.done.status, next.done.headers.location]).toEqual([302, '/me']);
});

test('the OP refuses the client at a refresh (its secret changed): the login ends and the registration is forgotten, so the next login registers anew (a configured provider keeps its login, with a 500)', async () => {
  const registrations = memoryRegistrationStore();
  const a = await app({ ...dev, store: registrations, scope: 'openid email profile offline_access' });
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  const clientId = new URL(start.headers.location).searchParams.get('client_id')!;
  expect((await agent.get(pathOf(await walkOp(start.headers.location, a.baseURL)))).status).toBe(302);
  const metadata = (await adapterOf(op.provider.Client).find(clientId))!;
  await adapterOf(op.provider.Client).upsert(clientId, { ...metadata, client_secret: 'a-secret-the-app-was-never-told-about' }, 3600);
  const refused = await agent.post('/auth/refresh').set('sec-fetch-site', 'same-origin').set('accept', 'application/json');
  // (in review: 500 client_auth_failed on every refresh, the dead registration kept, nothing recovered)
  expect([refused.status, refused.body.error]).toEqual([401, 'refresh_failed']);
  expect(refused.body.error_description).toMatch(/no longer accepts this app's registration/);
  expect(await registrations.get(dynamicProviderName(op.issuer))).toBeUndefined();
  expect((await agent.get('/me').set('accept', 'application/json')).status).toBe(401);
  const next = await fullLogin(a);
  expect(next.clientId).not.toBe(clientId);
  expect([next.done.status, next.done.headers.location]).toEqual([302, '/me']);
});

test('sign-out at an OP found on the fly returns to the app (its root is registered), and offline_access brings a refresh token (prompt=consent)', async () => {
  const a = await app({ ...dev, scope: 'openid email profile offline_access' });
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect(new URL(start.headers.location).searchParams.get('prompt')).toBe('consent'); // before: none, and no refresh token
  expect((await agent.get(pathOf(await walkOp(start.headers.location, a.baseURL)))).status).toBe(302);
  expect((await agent.post('/auth/refresh').set('sec-fetch-site', 'same-origin')).status).toBe(200);
  const out = await agent.get('/auth/logout').set('sec-fetch-site', 'same-origin');
  const endSession = new URL(out.headers.location);
  expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${a.baseURL}/`);
  // the OP's confirmation, answered "yes": back to the app (before: 400, the URI was never registered)
  const confirm = await fetch(endSession, { redirect: 'manual' });
  const html = await confirm.text();
  expect(confirm.status).toBe(200);
  const form = /<form[^>]*action="([^"]+)"[^>]*>[\s\S]*?name="xsrf" value="([^"]+)"/.exec(html)!;
  const cookies = confirm.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const back = await fetch(new URL(form[1]!, endSession), {
    method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
    body: new URLSearchParams({ xsrf: form[2]!, logout: 'yes' }),
  });
  expect(back.status).toBe(303);
  expect(back.headers.get('location')).toMatch(new RegExp(`^${a.baseURL}/\\?state=`));
});

test('dynamic OPs are not listed with the configured providers', async () => {
  const a = await app(dev);
  await loginWithIdentifier(a, `alice@${op.host}`);
  expect((await a.agent().get('/auth/providers')).body).toEqual([]);
});

test('by default (no development opt-in) an identifier on a loopback host is refused: no WebFinger request, no registration, no session', async () => {
  const a = await app({ webfinger: true, registration: true, allowInsecureRequests: true });
  const webfingerBefore = op.webfingerRequests.length;
  const registrationsBefore = op.registrations;
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect(start.status).toBe(403);
  expect(start.body).toMatchObject({ error: 'issuer_not_allowed' });
  expect(start.body.error_description).toMatch(/private or loopback/);
  expect(op.webfingerRequests.length).toBe(webfingerBefore);
  expect(op.registrations).toBe(registrationsBefore);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await a.authenticatedSessions()).toEqual([]);
});

test('allowIssuer refuses an OP it does not list (403), before any registration', async () => {
  const a = await app({ ...dev, allowIssuer: (issuer) => issuer === 'https://id.example.org' });
  const before = op.registrations;
  const { agent, start } = await loginWithIdentifier(a, `alice@${op.host}`);
  expect(start.status).toBe(403);
  expect(start.body.error).toBe('issuer_not_allowed');
  expect(op.registrations).toBe(before);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await a.authenticatedSessions()).toEqual([]);
});

test('bad identifiers get a clear 400, unknown users a clear 502, and a browser gets an HTML page', async () => {
  const a = await app(dev);
  const bad = await loginWithIdentifier(a, 'not an identifier');
  expect(bad.start.status).toBe(400);
  expect(bad.start.body.error).toBe('invalid_identifier');
  const missing = await a.agent().get('/auth/login').set('accept', 'application/json');
  expect(missing.status).toBe(400);
  expect(missing.body.error).toBe('invalid_identifier');
  const unknown = await loginWithIdentifier(a, `mallory@${op.host}`);
  expect(unknown.start.status).toBe(502);
  expect(unknown.start.body.error).toBe('webfinger_failed');
  const html = await a.agent().get(`/auth/login?identifier=${encodeURIComponent('mallory@' + op.host)}`).set('accept', 'text/html');
  expect(html.status).toBe(502);
  expect(html.text).toContain('<code>webfinger_failed</code>');
  // a domain that does not exist is a typo, not an outage: before, 503 "briefly unavailable, try again"
  for (const app of [a, await startSimApp(() => ({}), { rp: { dynamic: { webfinger: true, registration: true } } }).then((b) => (apps.push(b), b))]) {
    const typo = await loginWithIdentifier(app, 'alice@no-such-host.invalid');
    expect([typo.start.status, typo.start.body.error]).toEqual([400, 'invalid_identifier']);
    expect(typo.start.body.error_description).toMatch(/the domain no-such-host.invalid does not exist/);
  }
});

test('without the dynamic option, /login?identifier= is not a way in', async () => {
  const plain = await startSimApp(() => ({ corp: oidc({ issuer: op.issuer, clientId: 'x', clientSecret: 'y', allowInsecureRequests: true }) }));
  apps.push(plain);
  const res = await plain.agent().get(`/auth/login?identifier=alice@${op.host}`).set('accept', 'application/json');
  expect(res.status).toBe(404);
  expect(res.body.error).toBe('unknown_provider');
  const empty = await startSimApp(() => ({})).catch((err: Error) => err);
  expect((empty as Error).message).toMatch(/providers/);
});

test('start-up refuses dynamic options that cannot work, naming the option', async () => {
  await expect(startSimApp(() => ({}), { rp: { dynamic: { ...dev, scope: 'email' } } })).rejects.toThrow(/"dynamic.scope" must be .* including "openid"/);
  await expect(startSimApp(() => ({}), { rp: { dynamic: { ...dev, allowIssuer: 'yes' as never } } })).rejects.toThrow(/dynamic.allowIssuer/);
  await expect(startSimApp(() => ({}), { rp: { dynamic: { ...dev, store: {} as never } } })).rejects.toThrow(/dynamic.store/);
});

test('a forged callback to an unknown dyn- provider is a clean 404', async () => {
  const a = await app(dev);
  const res = await a.agent().get('/auth/callback/dyn-AAAAAAAAAAAAAAAAAAAAAA?code=x&state=y').set('accept', 'application/json');
  expect(res.status).toBe(404);
  expect(res.body.error).toBe('unknown_provider');
});

describe('an outage of the WebFinger host or of the OP on the way (it passes by itself)', () => {
  let outage: import('node:http').Server;
  let host: string;
  let registration: 'ok' | '503' = '503';
  let webfinger: 'ok' | '503' = 'ok';
  let registrationPosts = 0;
  beforeAll(async () => {
    const { createServer } = await import('node:http');
    outage = createServer((req, res) => {
      const issuer = `http://${host}`;
      if (req.url!.startsWith('/.well-known/webfinger')) {
        if (webfinger === '503') return void res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>');
        return void res.writeHead(200, { 'content-type': 'application/jrd+json' })
          .end(JSON.stringify({ subject: 'acct:alice', links: [{ rel: 'http://openid.net/specs/connect/1.0/issuer', href: issuer }] }));
      }
      if (req.url === '/.well-known/openid-configuration') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
          registration_endpoint: `${issuer}/reg`, response_types_supported: ['code'], subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'], token_endpoint_auth_methods_supported: ['client_secret_basic'],
        }));
      }
      if (req.method === 'POST') registrationPosts += 1;
      res.writeHead(registration === '503' ? 503 : 404, { 'content-type': 'text/html' }).end('<h1>unavailable</h1>');
    });
    await new Promise<void>((resolve) => outage.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(outage.address() as import('node:net').AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => outage.close(resolve)));

  test.each([
    ['the WebFinger host answering 503', 'webfinger'],
    ['the registration endpoint answering 503', 'registration'],
  ] as const)('%s: 503 op_unavailable with Retry-After (not a 502 that reads as final), and no session', async (_what, down) => {
    webfinger = down === 'webfinger' ? '503' : 'ok';
    registration = down === 'registration' ? '503' : 'ok';
    const a = await app(dev);
    const { agent, start } = await loginWithIdentifier(a, `alice@${host}`);
    expect([start.status, start.body.error, start.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect(start.body.error_description).toMatch(down === 'webfinger' ? /WebFinger at 127\.0\.0\.1:\d+ answered HTTP 503/ : /registration at http:\/\/127\.0\.0\.1:\d+ failed/);
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('a registration that failed is not tried again for 30 s: the login page reloaded costs the OP nothing more, and says when it is tried again', async () => {
    webfinger = 'ok';
    registration = '503';
    registrationPosts = 0;
    const a = await app(dev);
    const first = await loginWithIdentifier(a, `alice@${host}`);
    const again = await loginWithIdentifier(a, `alice@${host}`);
    expect([first.start.status, again.start.status, again.start.body.error, again.start.headers['retry-after']]).toEqual([503, 503, 'op_unavailable', '5']);
    expect(registrationPosts).toBe(1); // before: one registration (and two discoveries) per reload
    expect(again.start.body.error_description).toMatch(/registration at http:\/\/127\.0\.0\.1:\d+ failed.*\(\d+ s ago; tried again in \d+ s\)/);
  });

  test('a WebFinger host that refuses connections: 503 op_unavailable with Retry-After', async () => {
    const a = await app(dev);
    const { start } = await loginWithIdentifier(a, 'alice@127.0.0.1:9');
    expect([start.status, start.body.error, start.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect(start.body.error_description).toContain('could not be reached');
  });
});

describe('two instances of the app behind one origin (shared sessions, redisCoordination)', () => {
  const redis = useRedis((url) => createClient({ url }));

  test('the lock of an instance killed while it registered (a lease, no longer renewed) frees itself, and the next login registers and signs in', async () => {
    const prefix = `dynlock-${Date.now()}:`;
    const a = await startSimApp(() => ({}), { rp: { dynamic: dev, coordination: redisCoordination(redis.client, { prefix }) } });
    apps.push(a);
    // what the dead instance left: the lock, no longer renewed (1.5 s of its lease left)
    await redis.client.set(`${prefix}oidc-dynreg-lock:${dynamicProviderName(op.issuer)}`, 'dead-instance', { PX: 1500 });
    const before = op.registrations;
    const started = Date.now();
    const { start } = await loginWithIdentifier(a, `alice@${op.host}`);
    expect(start.status).toBe(302);
    expect(Date.now() - started).toBeGreaterThan(1200);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(op.registrations - before).toBe(1);
  });

  test('both meeting a new OP at once register one client, and a login started on one finishes on the other', async () => {
    const coordination = redisCoordination(redis.client, { prefix: `dyn-${Date.now()}:` });
    const a = await startSimApp(() => ({}), { rp: { dynamic: dev, coordination } });
    apps.push(a);
    const b = await startSimApp(() => ({}), { store: a.store, rp: { baseURL: a.baseURL, dynamic: dev, coordination } });
    apps.push(b);
    const before = op.registrations;
    const [fromA, fromB] = await Promise.all([loginWithIdentifier(a, `alice@${op.host}`), loginWithIdentifier(b, `alice@${op.host}`)]);
    expect([fromA.start.status, fromB.start.status]).toEqual([302, 302]);
    expect(op.registrations - before).toBe(1);
    const clientOf = (location: string) => new URL(location).searchParams.get('client_id');
    expect(clientOf(fromB.start.headers.location)).toBe(clientOf(fromA.start.headers.location));
    // the login started on A comes back to B (the load balancer's choice)
    const callback = await walkOp(fromA.start.headers.location, a.baseURL);
    const done = await request(b.app).get(pathOf(callback)).set('cookie', cookieOf(fromA.agent, a.baseURL));
    expect([done.status, done.headers.location]).toEqual([302, '/me']);
    const me = await request(a.app).get('/me').set('cookie', sessionCookieOf(done));
    expect(me.body.sub).toBe('alice');
  }, 30_000);
});
