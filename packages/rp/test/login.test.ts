import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { close, listen, startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';
import { pendingLogins } from '../src/transactions.js';

let t: TestRp;
beforeAll(async () => {
  t = await startRp();
});
beforeEach(() => clearStore(t));
afterEach(() => jest.restoreAllMocks());
afterAll(() => t.close());

async function storedSessions(): Promise<session.SessionData[]> {
  return new Promise((resolve) => t.store.all((_err, all) => resolve(Object.values(all ?? {}) as session.SessionData[])));
}

describe('GET /auth/login/:provider', () => {
  test('sends the browser to the OP with PKCE S256, state and nonce, and keeps them in the session', async () => {
    const agent = t.agent();
    const res = await agent.get('/auth/login/op?returnTo=/orders');
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const url = new URL(res.headers.location);
    expect(url.origin).toBe(t.op.issuer);
    const q = url.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('app');
    expect(q.get('redirect_uri')).toBe(`${t.baseURL}/auth/callback/op`);
    expect(q.get('scope')).toBe('openid profile email offline_access');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('state')).toMatch(/^[\w-]{40,}$/);
    expect(q.get('nonce')).toMatch(/^[\w-]{40,}$/);

    const [stored] = await storedSessions();
    expect(Array.isArray(stored.oidc!.transactions)).toBe(true);
    const transaction = pendingLogins(stored.oidc).find((p) => p.state === q.get('state'))!;
    expect(transaction).toMatchObject({ provider: 'op', returnTo: '/orders', nonce: q.get('nonce') });
    const challenge = createHash('sha256').update(transaction.codeVerifier!).digest('base64url');
    expect(q.get('code_challenge')).toBe(challenge);
    expect(stored.oidc!.auth).toBeUndefined();
  });

  test('a returnTo longer than requireAuth() sends (1 024 characters) returns to / (a stranger\'s ten pending logins stay small)', async () => {
    const path = (n: number) => `/${'a'.repeat(n - 1)}`;
    for (const [length, kept] of [[1024, path(1024)], [1025, '/']] as const) {
      await clearStore(t);
      const res = await t.agent().get(`/auth/login/op?returnTo=${path(length)}`);
      expect(res.status).toBe(302);
      const [stored] = await storedSessions();
      expect([length, pendingLogins(stored.oidc)[0]?.returnTo]).toEqual([length, kept]); // before: kept up to 2 048
    }
  });

  test('each login gets fresh state, nonce and verifier', async () => {
    const agent = t.agent();
    const a = new URL((await agent.get('/auth/login/op')).headers.location).searchParams;
    const b = new URL((await agent.get('/auth/login/op')).headers.location).searchParams;
    expect(a.get('state')).not.toBe(b.get('state'));
    expect(a.get('nonce')).not.toBe(b.get('nonce'));
    expect(a.get('code_challenge')).not.toBe(b.get('code_challenge'));
  });

  test('two logins started in two tabs both complete', async () => {
    const agent = t.agent();
    const first = await t.startLogin(agent, { returnTo: '/tab-one' });
    const second = await t.startLogin(agent, { returnTo: '/tab-two' });
    const one = await agent.get(first.pathname + first.search);
    expect(one.status).toBe(302);
    expect(one.headers.location).toBe('/tab-one');
    const two = await agent.get(second.pathname + second.search);
    expect(two.status).toBe(302);
    expect(two.headers.location).toBe('/tab-two');
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('a login finished more than 10 minutes after it started is refused', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    const realNow = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(realNow + 10 * 60 * 1000 + 1000);
    const res = await agent.get(callback.pathname + callback.search);
    jest.restoreAllMocks();
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('transaction_expired');
    await expectNoLogin(t, agent);
  });

  test('its page\'s "Sign in again" goes back to where that login was going (lifetimes probe: before, to /)', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { returnTo: '/reports?year=2026' });
    const realNow = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(realNow + 11 * 60 * 1000);
    const res = await agent.get(callback.pathname + callback.search).set('accept', 'text/html');
    jest.restoreAllMocks();
    expect(res.status).toBe(400);
    expect(res.text).toContain(`<a href="/auth/login/op?returnTo=${encodeURIComponent('/reports?year=2026').replace(/&/g, '&amp;')}">Sign in again</a>`);
  });

  test('the pending logins of one session are capped at 10', async () => {
    const agent = t.agent();
    for (let i = 0; i < 15; i++) await agent.get('/auth/login/op');
    const [stored] = await storedSessions();
    expect(pendingLogins(stored.oidc)).toHaveLength(10);
  });

  test('a login started before the pending logins became a list (0.1.0: keyed by state) still completes, once', async () => {
    const agent = t.agent();
    const other = await t.startLogin(agent, { returnTo: '/other-tab' });
    const callback = await t.startLogin(agent, { returnTo: '/orders' });
    // the session as 0.1.0 wrote it: { [state]: transaction }
    const [[sid, stored]] = Object.entries(await new Promise<Record<string, session.SessionData>>((resolve) => t.store.all((_e, all) => resolve((all ?? {}) as Record<string, session.SessionData>)))) as [[string, session.SessionData]];
    stored.oidc!.transactions = Object.fromEntries(pendingLogins(stored.oidc).map(({ state, ...rest }) => [state, rest]));
    await new Promise<void>((resolve, reject) => t.store.set(sid, stored, (err) => (err ? reject(err) : resolve())));
    const res = await agent.get(callback.pathname + callback.search);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/orders');
    expect((await agent.get('/me')).body.sub).toBe('alice');
    // the other tab's login was carried over, now as a list
    const [after] = (await storedSessions()).filter((s) => s.oidc); // (the store also holds the RP's coordination records)
    expect(pendingLogins(after!.oidc).map((p) => p.state)).toEqual([other.searchParams.get('state')]);
    // once: again, it is a signed-in browser sent back to the app
    expect((await agent.get(callback.pathname + callback.search)).headers.location).toBe('/');
    expect(pendingLogins((await storedSessions()).filter((s) => s.oidc)[0]!.oidc).map((p) => p.state)).toEqual([other.searchParams.get('state')]);
  });

  test('an unknown provider is a 404 with a stable code', async () => {
    const res = await t.agent().get('/auth/login/nope');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'unknown_provider' });
    const page = await t.agent().get('/auth/login/nope').set('accept', 'text/html');
    expect(page.status).toBe(404);
    expect(page.headers['content-type']).toMatch(/html/);
    expect(page.text).toContain('unknown_provider');
  });

  test('a malformed maxAge is a 400, not a crash', async () => {
    const res = await t.agent().get('/auth/login/op?maxAge=abc');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});

describe('the life of a session that only holds pending logins', () => {
  let withCart: TestRp;
  beforeAll(async () => {
    withCart = await startRp({
      routes: (app) => app.post('/cart', (req, res) => {
        (req.session as unknown as { cart: string[] }).cart = ['book'];
        res.end();
      }),
    });
  });
  afterAll(() => withCart.close());

  const expiresIn = (s: session.SessionData | undefined) => (s?.cookie.expires ? new Date(s.cookie.expires).getTime() - Date.now() : undefined);
  const sessionsOf = (rp: TestRp) => new Promise<session.SessionData[]>((resolve) => rp.store.all((_e, all) => resolve(Object.values(all ?? {}) as session.SessionData[])));

  test('a browser that only came to sign in: its session lives twice transactionTtl (20 min), not the store\'s default, and the signed-in session gets the app\'s cookie settings again', async () => {
    const agent = withCart.agent();
    const start = await agent.get('/auth/login/op');
    expect(start.status).toBe(302);
    const [pending] = await sessionsOf(withCart);
    // before: no expiry of its own, so connect-redis kept every anonymous visit of the login route a day
    expect(expiresIn(pending)).toBeGreaterThan(1190_000);
    expect(expiresIn(pending)).toBeLessThanOrEqual(1200_000);
    const sid = ([] as string[]).concat(start.headers['set-cookie'] ?? []).find((c) => c.startsWith('sid='));
    expect(sid).not.toMatch(/Expires=/); // the browser's cookie is the app's, as before
    const callback = await withCart.op.browser().authorize(start.headers.location);
    expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
    const signedIn = (await sessionsOf(withCart)).find((s) => s.oidc?.auth);
    expect(signedIn).toBeDefined();
    expect(signedIn!.cookie.expires ?? null).toBeNull(); // the app's session cookie (no maxAge set)
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('an app whose session cookies live shorter (5 minutes) keeps that life for them', async () => {
    const short = await startRp({ cookie: { maxAge: 300_000 } });
    try {
      expect((await short.agent().get('/auth/login/op')).status).toBe(302);
      const [pending] = await sessionsOf(short);
      expect(expiresIn(pending)).toBeGreaterThan(290_000);
      expect(expiresIn(pending)).toBeLessThanOrEqual(300_000);
    } finally {
      await short.close();
    }
  });

  test('a sign-in started, then left, and the app stores its own data in that session: it gets the app\'s life again', async () => {
    const agent = withCart.agent();
    expect((await agent.get('/auth/login/op')).status).toBe(302);
    const cart = await agent.post('/cart');
    expect(String(cart.headers['set-cookie'] ?? '')).not.toMatch(/Expires=/);
    const [kept] = (await sessionsOf(withCart)).filter((s) => (s as unknown as { cart?: string[] }).cart);
    expect(kept).toBeDefined();
    expect(kept!.cookie.expires ?? null).toBeNull(); // before the review: still 20 minutes, and the cart went with it
  });

  test('a session with the app\'s own data keeps its life when a login starts', async () => {
    const agent = withCart.agent();
    await agent.post('/cart');
    expect((await agent.get('/auth/login/op')).status).toBe(302);
    const [kept] = (await sessionsOf(withCart)).filter((s) => (s as unknown as { cart?: string[] }).cart);
    expect(kept).toBeDefined();
    expect(kept!.cookie.expires ?? null).toBeNull();
  });
});

describe('the session cookie must come back with the callback, and go over https only on an https app', () => {
  const started: TestRp[] = [];
  afterAll(() => Promise.all(started.map((s) => s.close())));
  async function app(opts: Parameters<typeof startRp>[0]): Promise<TestRp> {
    const s = await startRp(opts);
    started.push(s);
    return s;
  }

  test('a `secure` cookie on a request Express sees as http (no proxy header): 500 cookie_not_sent naming the fix, before the user goes to the OP', async () => {
    const s = await app({ cookie: { secure: true } });
    const res = await s.agent().get('/auth/login/op').set('accept', 'application/json');
    expect(res.status).toBe(500); // before: 302 to the OP, then "This sign-in has expired" at the callback
    expect(res.body.error).toBe('cookie_not_sent');
    expect(res.body.error_description).toMatch(/app\.set\('trust proxy', 1\).*secure: 'auto'/);
    expect(await s.authenticatedSessions()).toEqual([]);
  });

  test('a `secure` cookie behind a TLS proxy without trust proxy (X-Forwarded-Proto: https): express-session sends no cookie, and a warning says to set trust proxy', async () => {
    const s = await app({ cookie: { secure: true } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const res = await s.agent().get('/auth/login/op').set('x-forwarded-proto', 'https');
    expect(res.status).toBe(302);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/sent no session cookie with a sign-in.*app\.set\('trust proxy', 1\)/));
  });

  test('with trust proxy, the same sign-in gets its Secure cookie and no warning', async () => {
    const s = await app({ cookie: { secure: true } });
    s.app.set('trust proxy', 1);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const res = await s.agent().get('/auth/login/op').set('x-forwarded-proto', 'https');
    expect(res.status).toBe(302);
    expect(String(res.headers['set-cookie'])).toMatch(/; Secure/);
    expect(warn).not.toHaveBeenCalled();
  });

  test('an https app whose cookie has no Secure attribute is warned about (at most hourly), naming the option', async () => {
    const s = await app({ rp: { baseURL: 'https://app.example.com' } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    // behind a proxy that terminates TLS
    expect((await s.agent().get('/auth/login/op').set('x-forwarded-proto', 'https')).status).toBe(302);
    expect((await s.agent().get('/auth/login/op').set('x-forwarded-proto', 'https')).status).toBe(302);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/no Secure attribute although baseURL is https \(https:\/\/app\.example\.com\).*cookie: \{ secure: true \}/));
  });

  test('an https baseURL on an app reached over plain http (no proxy saying https): the warning says so, not only "add Secure"', async () => {
    const s = await app({ rp: { baseURL: 'https://app.example.com' } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect((await s.agent().get('/auth/login/op')).status).toBe(302);
    expect(warn).toHaveBeenCalledTimes(1); // before: only the Secure attribute, whose fix did not help (the OP then sent the user to https://)
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/reached the app over http \(http:\/\/127\.0\.0\.1:\d+\), but baseURL is https \(https:\/\/app\.example\.com\).*baseURL: "http:\/\/…".*X-Forwarded-Proto: https/));
  });

  test('the browser at 127.0.0.1 while baseURL says localhost (or [::1]): warned at the login, naming both (the cookie for one is not sent to the other)', async () => {
    const s = await app({ rp: { baseURL: 'http://localhost:3000' } });
    const ipv6 = await app({ rp: { baseURL: 'http://[::1]:3000' } });
    const port = new URL(s.baseURL).port;
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect((await s.agent().get('/auth/login/op')).status).toBe(302); // supertest's Host: 127.0.0.1:port
    expect(warn).toHaveBeenCalledTimes(1); // before: nothing, then "This sign-in has expired" after the OP
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(new RegExp(`reached the app at http://127\\.0\\.0\\.1:${port}, but baseURL is http://localhost:3000: `
      + `the browser keeps the session cookie for 127\\.0\\.0\\.1 and does not send it to localhost.*Open the app at http://localhost:3000, or give rp\\(\\) baseURL: "http://127\\.0\\.0\\.1:${port}"`)));
    expect((await ipv6.agent().get('/auth/login/op').set('host', 'localhost:3000')).status).toBe(302);
    expect(warn).toHaveBeenLastCalledWith(expect.stringMatching(/keeps the session cookie for localhost and does not send it to \[::1\]/));
  });

  test('the same loopback name, or a host that is not a loopback name (a proxy rewriting Host): no such warning', async () => {
    const s = await app({});
    const named = await app({ rp: { baseURL: 'http://app.example.com' } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect((await s.agent().get('/auth/login/op')).status).toBe(302);
    expect((await s.agent().get('/auth/login/op').set('host', 'app.internal:8080')).status).toBe(302);
    expect((await named.agent().get('/auth/login/op')).status).toBe(302);
    expect(warn).not.toHaveBeenCalled();
  });

  test('a SameSite=None cookie without Secure (browsers refuse it): 500 cookie_not_sent naming the fix, before the user goes to the OP', async () => {
    const s = await app({ cookie: { sameSite: 'none' } });
    const res = await s.agent().get('/auth/login/op').set('accept', 'application/json');
    expect([res.status, res.body.error]).toEqual([500, 'cookie_not_sent']); // before: 302, then "This sign-in has expired" in Chromium
    expect(res.body.error_description).toMatch(/SameSite=None without Secure.*sameSite: 'lax'/);
    expect(await s.authenticatedSessions()).toEqual([]);
    // with Secure it is the secure check's turn (this test's app is http)
    const secure = await app({ cookie: { sameSite: 'none', secure: true } });
    expect((await secure.agent().get('/auth/login/op').set('accept', 'application/json')).body.error_description).toMatch(/set to `secure`/);
  });
});

describe('rp() mounted under a path that baseURL lacks', () => {
  const started: TestRp[] = [];
  const servers: Server[] = [];
  afterAll(() => Promise.all([...started.map((s) => s.close()), ...servers.map(close)]));
  /** An app of its own (one rp() per request) with `mount` in front of each rp(), signing in at `s`'s OP. */
  async function appAt(s: TestRp, mounts: Array<[string, string]>): Promise<Server> {
    const { rp, oidc } = await import('../src/index.js');
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    for (const [mount, baseURL] of mounts) {
      app.use(mount, rp({ baseURL, providers: { op: oidc({ issuer: s.op.issuer, clientId: 'app', clientSecret: 'x', allowInsecureRequests: true }) } }));
    }
    const server = createServer(app);
    servers.push(server);
    await listen(server);
    return server;
  }

  test('app.use(\'/x\', rp({ baseURL: origin })): the sign-in is warned about, naming the path to put in baseURL (the callback would be a bare 404)', async () => {
    const s = await startRp({ rp: { mountPath: '/auth' } });
    started.push(s);
    const server = await appAt(s, [['/x', s.baseURL]]);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect((await request(server).get('/x/auth/login/op')).status).toBe(302);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(new RegExp(`under "/x/auth", but baseURL \\(${s.baseURL.replace(/[.]/g, '\\.')}\\).*put its routes at "/auth".*`
      + `mounted under "/x": put that path in baseURL \\(e\\.g\\. baseURL: "${s.baseURL.replace(/[.]/g, '\\.')}/x"\\)`)));
  });

  test('rp() at the root with baseURL naming a path a proxy strips (https://example.com/app), or mounted where baseURL says: no warning', async () => {
    const s = await startRp({ rp: { baseURL: 'http://app.example.com/app' } });
    started.push(s);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect((await s.agent().get('/auth/login/op')).status).toBe(302);
    const server = await appAt(s, [['/y', `${s.baseURL}/y`]]);
    expect((await request(server).get('/y/auth/login/op')).status).toBe(302);
    expect(warn).not.toHaveBeenCalled();
  });
});
