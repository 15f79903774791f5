/**
 * A store that stalls or is down (Redis SIGSTOPped, unreachable) makes requests a 503
 * `store_unavailable` with Retry-After within `storeTimeout`: never a hang, a crash or a 500.
 */
import { createHmac } from 'node:crypto';
import session from 'express-session';
import { createClient } from 'redis';
import { memoryAdapter, redisAdapter, StoreUnavailableError, type Authenticator, type OpStore } from '@openid-express/op';
import { FormBrowser, type BrowserPage } from '../../../test/support/op-forms.js';
import { useRedis } from '../../../test/support/redis-server.js';
import { accounts, ALICE, startOp, type RunningOp } from './support/op-server.js';

type Mode = 'ok' | 'hang' | 'reject';
// storeTimeout also bounds the password check (scrypt, ≈ 50 ms of CPU, on libuv's pool): under a CI's load a 300 ms bound
// timed it out now and then ("the authenticator \"password\" did not answer within 300 ms"), and the sign-in tests failed
const TIMEOUT = 1500;
const SECRET = 'web-secret-web-secret';
const SESSION_SECRET = 'test-secret-test-secret';

/** A memory store whose calls can be made to hang or to reject as a down Redis does; `countersOnly` spares the records. */
function flakyStore() {
  const real = memoryAdapter();
  // failNext: `<Model>.<method>` whose next call alone rejects (a Redis that stalls at that moment)
  const state = { mode: 'ok' as Mode, countersOnly: false, failNext: undefined as string | undefined };
  const gate = <T>(call: () => Promise<T>, counter: boolean): Promise<T> => {
    if (state.mode === 'ok' || (state.countersOnly && !counter)) return call();
    if (state.mode === 'hang') return new Promise<T>(() => undefined);
    return Promise.reject(new StoreUnavailableError('redis: connection refused'));
  };
  const store: OpStore = {
    kind: 'flaky',
    adapterFor(model) {
      const adapter = real.adapterFor(model) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      return new Proxy(adapter, {
        get: (target, name: string) => (typeof target[name] === 'function'
          ? (...args: unknown[]) => {
            if (state.failNext === `${model}.${name}`) {
              state.failNext = undefined;
              return Promise.reject(new StoreUnavailableError('redis: connection lost'));
            }
            return gate(() => target[name]!(...args), false);
          } : target[name]),
      }) as unknown as ReturnType<OpStore['adapterFor']>;
    },
    increment: (key, ttl) => gate(() => real.increment(key, ttl), true),
    count: (key) => gate(() => real.count(key), true),
    reset: (key) => gate(() => real.reset(key), true),
  };
  return { store, state };
}

/** express-session's memory store, whose get or set can be made to stall or fail. */
class StallingSessionStore extends session.MemoryStore {
  stall: 'none' | 'get' | 'set' | 'get-error' = 'none';
  override get(sid: string, cb: (err: unknown, s?: session.SessionData | null) => void): void {
    if (this.stall === 'get') return;
    if (this.stall === 'get-error') return cb(new Error('ECONNREFUSED'));
    super.get(sid, cb);
  }
  override set(sid: string, s: session.SessionData, cb?: (err?: unknown) => void): void {
    if (this.stall === 'set') return;
    super.set(sid, s, cb);
  }
}

/** A sign-in method that writes to the browser session (as redirect-based ones do), then refuses. */
const sessionWriter: Authenticator = {
  id: 'writer', label: 'Writes the session', fields: () => '', throttleKey: () => undefined,
  async verify({ req }) {
    (req.session as unknown as Record<string, number>).touched = Date.now();
    return { ok: false };
  },
};

const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;
const signedCookie = (sid: string) => `connect.sid=${encodeURIComponent(`s:${sid}.${createHmac('sha256', SESSION_SECRET).update(sid).digest('base64').replace(/=+$/, '')}`)}`;

async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  const value = await call();
  return { value, ms: Date.now() - start };
}

function expect503(res: Response, ms: number) {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(ms).toBeLessThan(TIMEOUT + 1500);
}

describe('the OP while its store is unavailable', () => {
  let o: RunningOp;
  let flaky: ReturnType<typeof flakyStore>;
  const sessions = new StallingSessionStore();
  beforeAll(async () => {
    flaky = flakyStore();
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: flaky.store, storeTimeout: TIMEOUT, authenticators: undefined,
      session: session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store: sessions }),
      clients: [
        { client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] },
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:5173/cb'] },
      ],
    }), { session: false });
  });
  afterEach(() => {
    flaky.state.mode = 'ok';
    flaky.state.countersOnly = false;
    sessions.stall = 'none';
  });
  afterAll(() => o.close());

  const authUrl = () => `${o.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${o.origin}/cb`)}`
    + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s1';

  async function loginPage(): Promise<{ browser: FormBrowser; page: BrowserPage }> {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb' });
    const page = await browser.open(authUrl());
    expect(page.status).toBe(200);
    return { browser, page };
  }

  test('discovery and keys still answer 200: they never touch the store', async () => {
    flaky.state.mode = 'hang';
    expect((await fetch(`${o.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    expect((await fetch(`${o.issuer}/jwks`)).status).toBe(200);
  });

  test.each(['hang', 'reject'] as const)('store %s: the token endpoint answers 503 JSON with Retry-After', async (mode) => {
    flaky.state.mode = mode;
    const { value: res, ms } = await timed(() => fetch(`${o.issuer}/token`, {
      method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'a-code', redirect_uri: `${o.origin}/cb`, code_verifier: 'v'.repeat(43) }),
    }));
    expect503(res, ms);
    expect(await res.json()).toEqual({ error: 'store_unavailable', error_description: expect.any(String) });
  });

  test('a single-page app at the token endpoint may read the 503\'s Retry-After (exposed to its origin; SPA probe F4)', async () => {
    flaky.state.mode = 'reject';
    const res = await fetch(`${o.issuer}/token`, {
      method: 'POST', headers: { origin: 'http://localhost:5173', 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'spa', code: 'a-code', redirect_uri: 'http://localhost:5173/cb', code_verifier: 'v'.repeat(43) }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(res.headers.get('retry-after')).toBe('5');
    // before: only WWW-Authenticate, so the page's headers.get('retry-after') was null
    expect(res.headers.get('access-control-expose-headers')?.split(/,\s*/).map((h) => h.toLowerCase())).toContain('retry-after');
  });

  test.each(['hang', 'reject'] as const)('store %s: userinfo answers 503 JSON', async (mode) => {
    flaky.state.mode = mode;
    const { value: res, ms } = await timed(() => fetch(`${o.issuer}/me`, { headers: { authorization: 'Bearer some-token' } }));
    expect503(res, ms);
    expect((await res.json()).error).toBe('store_unavailable');
  });

  test.each(['hang', 'reject'] as const)('store %s: the authorization endpoint answers the 503 page to browsers', async (mode) => {
    flaky.state.mode = mode;
    const { value: res, ms } = await timed(() => fetch(authUrl(), { headers: { accept: 'text/html' }, redirect: 'manual' }));
    expect503(res, ms);
    const html = await res.text();
    expect(html).toContain('store_unavailable');
    expect(html).toContain('The service is briefly unavailable. Nothing was lost; try again in a few seconds.');
    expect(html).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  test.each(['hang', 'reject'] as const)('store %s: the login page and its POST answer the 503 page', async (mode) => {
    const { browser, page } = await loginPage();
    flaky.state.mode = mode;
    const { value: again, ms } = await timed(() => browser.open(page.url));
    expect(again.status).toBe(503);
    expect(ms).toBeLessThan(TIMEOUT + 1500);
    expect(again.headers.get('retry-after')).toBe('5');
    expect(again.html).toContain('store_unavailable');
    const posted = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: 'x' });
    expect(posted.status).toBe(503);
  });

  // oidc-provider's resume deletes the sign-in under way (and the OP session it replaces) before it
  // issues the code and saves the session: a failure after that left nothing to retry (a Redis stall
  // or an instance killed at that moment), and the user's retry met "this sign-in has expired"
  test.each(['AuthorizationCode.upsert', 'Session.upsert'])('the store failing at the resume after the consent (%s): 503, and the retry of the same URL finishes the sign-in', async (failing) => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb' });
    const login = await browser.open(authUrl());
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(consent.url).toContain('/interaction/');
    flaky.state.failNext = failing;
    const failed = await browser.submit(consent, { action: '/confirm' });
    expect([failed.status, failed.headers.get('retry-after')]).toEqual([503, '5']);
    expect(failed.headers.get('set-cookie')).toBeNull(); // the resume cookie it cleared stays with the browser
    expect(flaky.state.failNext).toBeUndefined(); // (the failure happened)
    const retried = await browser.open(failed.url);
    expect(retried.stoppedAt).toMatch(/\/cb\?code=[^&]+&state=s1&iss=/); // before: 400 "this sign-in has expired"
    // and the sign-in under way is gone once it succeeded: the same URL again is refused
    const again = await browser.open(failed.url);
    expect(again.status).toBe(400);
  });

  test('login counters unavailable (throttling): the login POST answers 503, not 500', async () => {
    const { browser, page } = await loginPage();
    flaky.state.mode = 'reject';
    flaky.state.countersOnly = true;
    const posted = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: 'x' });
    expect(posted.status).toBe(503);
    expect(posted.headers.get('retry-after')).toBe('5');
  });

  test.each(['get', 'get-error'] as const)('session store %s failing: the logout page is a 503, discovery is untouched', async (stall) => {
    sessions.stall = stall;
    const cookie = signedCookie('a-session-id');
    const { value: res, ms } = await timed(() => fetch(`${o.issuer}/session/end`, { headers: { cookie, accept: 'text/html' } }));
    expect503(res, ms);
    expect(await res.text()).toContain('store_unavailable');
    const api = await fetch(`${o.issuer}/token`, { method: 'POST', headers: { cookie, accept: 'application/json' }, body: new URLSearchParams({ grant_type: 'client_credentials' }) });
    expect(api.status).toBe(400); // the token endpoint never waits on the session store
  });
});

// a refusal that lasts until the operators change a setting (an ACL user, a password) was told "try again in a
// few seconds" on every page for as long as it lasted; the RP says "Sign-in is unavailable" for the same
describe('a Redis that refuses the OP until its operators change a setting (an ACL user that may not run scripts)', () => {
  const redis = useRedis((url) => createClient({ url }));
  let o: RunningOp;
  let client: ReturnType<typeof createClient>;
  let warn: jest.SpyInstance;
  beforeAll(async () => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    await redis.client.sendCommand(['ACL', 'SETUSER', 'no-scripts', 'on', '>no-scripts-password', '~*', '+@all', '-@dangerous', '-@scripting']);
    client = createClient({ url: redis.server.url.replace('//', '//no-scripts:no-scripts-password@') }).on('error', () => undefined);
    await client.connect();
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: redisAdapter(client, { prefix: 'refused:' }), authenticators: undefined,
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }));
  });
  afterAll(async () => {
    await o?.close();
    client?.destroy();
    warn.mockRestore();
  });

  test('its pages and JSON answers say 503 with Retry-After, but not "briefly" or "in a few seconds"', async () => {
    const authUrl = `${o.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${o.origin}/cb`)}`
      + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s1';
    const page = await fetch(authUrl, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect([page.status, page.headers.get('retry-after'), page.headers.get('cache-control')]).toEqual([503, '5', 'no-store']);
    const html = await page.text();
    expect(html).toContain('<title>This service is unavailable');
    expect(html).toContain('because of a problem on its side, which its operators have been told about. Nothing was lost; please try again later.');
    expect(html).toContain('store_unavailable');
    expect(html).not.toMatch(/briefly|few seconds|in a moment/i);
    // (a client that asks for JSON: the sign-in under way is written with a script, which this user may not run)
    const api = await fetch(authUrl, { headers: { accept: 'application/json' }, redirect: 'manual' });
    expect([api.status, api.headers.get('retry-after')]).toEqual([503, '5']);
    const body = await api.json() as { error: string; error_description: string };
    expect(body.error).toBe('store_unavailable');
    expect(body.error_description).toMatch(/operators have been told about.*try again later/);
    // the operators are: what to change, in the log
    expect(warn.mock.calls.flat().join('\n')).toMatch(/NOPERM.*\+@scripting/);
  });
});

describe('a session store whose save stalls at the end of the request', () => {
  test('the answer still goes out within storeTimeout (express-session waits on store.set)', async () => {
    const sessions = new StallingSessionStore();
    const o = await startOp((_issuer, origin) => ({
      accounts, adapter: memoryAdapter(), storeTimeout: TIMEOUT, authenticators: [sessionWriter],
      session: session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store: sessions }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }), { session: false });
    try {
      const browser = new FormBrowser();
      const url = `${o.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${o.origin}/cb`)}`
        + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256';
      const page = await browser.open(url);
      sessions.stall = 'set';
      const { value: posted, ms } = await timed(() => browser.submit(page, { value: ['authenticator', 'writer'] }));
      expect(posted.status).toBe(401);
      expect(ms).toBeLessThan(TIMEOUT + 1500);
    } finally {
      await o.close();
    }
  });
});
