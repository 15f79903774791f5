import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, rp } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin, expectOnlyPendingLogins, expectTabSignsIn, sessionCookieOf } from './support/expect.js';

let t: TestRp;
/** The session cookie an agent would send, as a Cookie header. */
const sessionCookieHeader = (agent: request.Agent): string => (agent as unknown as { jar: { getCookie(n: string, a: unknown): { toValueString(): string } } })
  .jar.getCookie('sid', { domain: new URL(t.baseURL).hostname, path: '/', secure: false, script: false }).toValueString();
beforeAll(async () => {
  t = await startRp();
});
beforeEach(() => clearStore(t));
afterAll(() => t.close());

describe('GET /auth/logout', () => {
  test('ends the local session, then sends the browser to the OP end_session_endpoint with id_token_hint', async () => {
    const browser = t.op.browser();
    const agent = t.agent();
    await t.login(agent, { browser });
    const res = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    const url = new URL(res.headers.location);
    expect(`${url.origin}${url.pathname}`).toBe(`${t.op.issuer}/session/end`);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/bye`);
    expect(url.searchParams.get('id_token_hint')).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    const state = url.searchParams.get('state');
    expect(state).toMatch(/^[\w-]{20,}$/);
    expect(url.searchParams.get('client_id')).toBe('app');
    await expectNoLogin(t, agent);
    // the OP ends its own session and sends the browser back to the app, with the state
    const back = await browser.endSession(url);
    expect(back.href).toBe(`${t.baseURL}/bye?state=${state}`);
    // the landing takes the state off the URL (and forgets it)
    const landing = await agent.get(`/bye?state=${state}`);
    expect(landing.status).toBe(302);
    expect(landing.headers.location).toBe('/bye');
    expect(String(landing.headers['set-cookie'])).toMatch(/oidc_logout_state=;/);
  });

  test('a browser\'s sign-out form (Sec-Fetch-Mode: navigate) going on to the OP gets a page that goes there, under rp()\'s own CSP (no form-action to block it)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').type('form').set({ 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' }).send({ returnTo: '/bye' });
    expect(res.status).toBe(200);
    const to = /<meta http-equiv="refresh" content="0;url=([^"]+)">/.exec(res.text)?.[1]?.replace(/&amp;/g, '&');
    expect(new URL(to!).pathname).toMatch(/\/session\/end$/);
    expect(res.headers['content-security-policy']).not.toMatch(/form-action/);
    expect(res.headers['cache-control']).toBe('no-store');
    await expectNoLogin(t, agent);
  });

  test('the front-channel logout page (framed by the OP) says its language (WCAG 3.1.1)', async () => {
    const res = await t.agent().get(`/auth/frontchannel-logout/op?iss=${encodeURIComponent(t.op.issuer)}&sid=no-such-session`);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^<!doctype html><html lang="en">/);
  });

  test('a page\'s script signing out (fetch(), Sec-Fetch-Mode: cors) gets 200 JSON with where to send the page: the OP\'s end-session URL (a redirect there would fail in fetch, leaving the user signed in at the OP)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').set({ accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', 'sec-fetch-site': 'same-origin', origin: t.baseURL }).send({ returnTo: '/bye' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const to = new URL(res.body.redirectTo);
    expect(`${to.origin}${to.pathname}`).toBe(`${t.op.issuer}/session/end`);
    expect(to.searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/bye`);
    await expectNoLogin(t, agent);
    // without a login there is nothing to end at the OP: it is sent back to returnTo
    const again = await t.agent().post('/auth/logout').set({ 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', 'sec-fetch-site': 'same-origin', origin: t.baseURL }).send({ returnTo: '/bye' });
    expect(again.body).toEqual({ redirectTo: `${t.baseURL}/bye` });
  });

  test('a sign-in under way in another tab survives it: the session keeps that pending login and nothing else, and that tab still signs in (tabs probe F3)', async () => {
    const agent = t.agent();
    const startB = await agent.get('/auth/login/op?returnTo=/p2'); // tab B: at the OP's sign-in page
    await t.login(agent); // tab A: signed in (B's pending login carried into the new session)
    const [id] = await t.authenticatedSessions();
    const stored = () => new Promise<session.SessionData | null | undefined>((resolve) => t.store.get(id!, (_e, s) => resolve(s)));
    const withCart = { ...(await stored())!, cart: ['book'] } as session.SessionData; // the app's own data
    await new Promise((resolve) => t.store.set(id!, withCart, resolve));
    const res = await agent.post('/auth/logout').type('form').send({ returnTo: '/bye' });
    expect([res.status, new URL(res.headers.location).pathname]).toEqual([303, '/session/end']);
    await expectNoLogin(t, agent);
    await expectOnlyPendingLogins(t, id!, ['/p2']); // before: destroyed, and tab B got "This sign-in has expired"
    await expectTabSignsIn(t, agent, startB.headers.location, 'bob', '/p2');
  });

  test('POST works too', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').type('form').send({ returnTo: '/bye' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toContain('/session/end');
    await expectNoLogin(t, agent);
  });

  test('"Sign out" clicked twice (the browser dropped the first answer): the second goes to the OP as well, not just back to the app', async () => {
    const agent = t.agent();
    await t.login(agent);
    const cookie = sessionCookieHeader(agent);
    // both requests carry the cookie the browser had: it never saw the first answer
    const first = await request(t.app).post('/auth/logout').set('cookie', cookie).type('form').send({ returnTo: '/bye' });
    // (other apps' express-session cookies on the host, sent first, do not hide it)
    const others = ['admin.sid', 'shop.sid', 'wiki.sid', 'blog.sid'].map((n, i) => `${n}=s%3Aother-app-${i}.c2lnbmF0dXJl`).join('; ');
    const second = await request(t.app).post('/auth/logout').set('cookie', `${others}; ${cookie}`).type('form').send({ returnTo: '/bye' });
    expect(first.headers.location).toContain(`${t.op.issuer}/session/end`);
    expect(second.status).toBe(303);
    expect(second.headers.location).toBe(first.headers.location);
    expect(String(second.headers['set-cookie'])).toMatch(/oidc_logout_state=/);
    await expectNoLogin(t, agent);
    // the session itself is gone from the store (what the second click needed is kept apart, a minute)
    const id = decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!;
    expect(await new Promise((resolve) => t.store.get(id, (_e, s) => resolve(s)))).toBeFalsy();
  });

  test('without a login it just goes back to returnTo', async () => {
    const res = await t.agent().get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/bye');
  });

  test.each(['https://evil.example', '//evil.example', '/\\evil.example'])('an open-redirect returnTo %s falls back to /', async (returnTo) => {
    const agent = t.agent();
    const anonymous = await agent.get(`/auth/logout?returnTo=${encodeURIComponent(returnTo)}`).set('sec-fetch-site', 'same-origin');
    expect(anonymous.headers.location).toBe('/');
    await t.login(agent);
    const res = await agent.get(`/auth/logout?returnTo=${encodeURIComponent(returnTo)}`).set('sec-fetch-site', 'same-origin');
    expect(new URL(res.headers.location).searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/`);
  });
});

describe('logout on an instance that cannot reach the OP (it never fetched its discovery, and the OP is down)', () => {
  let opDown = true;
  /** A second instance of the app: same session store and cookie, its own (empty) discovery cache. */
  const instanceB = () => {
    const app = express();
    app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store: t.store, name: 'sid' }));
    app.use(rp({
      baseURL: t.baseURL,
      providers: {
        op: oidc({
          issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true,
          customFetch: async (url, init) => {
            if (opDown) throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
            return fetch(url, init as RequestInit);
          },
        }),
      },
    }));
    app.get('/me', (req, res) => void res.status(req.oidc.isAuthenticated() ? 200 : 401).end());
    return app;
  };
  afterEach(() => void (opDown = true));

  test('503 with Retry-After, the login kept (not a silent local-only logout that leaves the OP session)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const b = instanceB();
    const res = await request(b).post('/auth/logout').set('cookie', sessionCookieHeader(agent)).set('accept', 'application/json').type('form').send({ returnTo: '/bye' });
    expect([res.status, res.headers['retry-after'], res.body.error]).toEqual([503, '5', 'op_unreachable']);
    expect((await agent.get('/me')).status).toBe(200);
    // once the OP answers, the same request signs out at the OP
    opDown = false;
    const again = await request(b).post('/auth/logout').set('cookie', sessionCookieHeader(agent)).type('form').send({ returnTo: '/bye' });
    expect(again.status).toBe(303);
    expect(again.headers.location).toContain(`${t.op.issuer}/session/end`);
    await expectNoLogin(t, agent);
  });

  test('its page offers to try again or to sign out of this site only; the latter ends the local session', async () => {
    const agent = t.agent();
    await t.login(agent);
    const b = instanceB();
    const page = await request(b).post('/auth/logout').set('cookie', sessionCookieHeader(agent)).set('accept', 'text/html').type('form').send({ returnTo: '/bye' });
    expect(page.status).toBe(503);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('you are still signed in');
    expect(page.text).toContain('<input type="hidden" name="local" value="1"><button type="submit">Sign out of this site only</button>');
    const local = await request(b).post('/auth/logout').set('cookie', sessionCookieHeader(agent)).type('form').send({ returnTo: '/bye', local: '1' });
    expect([local.status, local.headers.location]).toEqual([303, '/bye']);
    await expectNoLogin(t, agent);
  });
});

describe('rp-init-logout state (RP-Initiated Logout 1.0 §2–3)', () => {
  async function loggedOut() {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    const state = new URL(res.headers.location).searchParams.get('state')!;
    // the state and the landing page's path; the cookie goes to that page only
    expect(String(res.headers['set-cookie'])).toMatch(/oidc_logout_state=[\w-]+%20%2Fbye; Max-Age=600; Path=\/bye; Expires=[^;]+; HttpOnly; SameSite=Lax/);
    return { agent, state };
  }

  test('rp-init-logout-other-state: the OP sends the browser back with another state: refused with a page that says so', async () => {
    const { agent } = await loggedOut();
    const res = await agent.get('/bye?state=forged-by-someone').set('accept', 'text/html');
    expect(res.status).toBe(400);
    expect(res.text).toContain('invalid_state');
    expect(res.text).toContain('signed out all the same');
    await expectNoLogin(t, agent);
    // the expectation is used up: the next visit is the plain page
    expect((await agent.get('/bye?state=forged-by-someone')).status).toBe(404);
  });

  test('rp-init-logout-no-state: the OP sends no state back: the landing page is shown (lenient: the user is signed out either way)', async () => {
    const { agent } = await loggedOut();
    const res = await agent.get('/bye');
    expect(res.status).toBe(404); // the test app has no /bye page: the request reached the app
    await expectNoLogin(t, agent);
  });

  test('a state on a page of another path is none of the logout\'s business', async () => {
    const { agent, state } = await loggedOut();
    expect((await agent.get(`/elsewhere?state=${state}x`)).status).toBe(404);
  });

  test('a logout to / left unfinished at the OP (back button) gets in the way of neither the next login nor the app\'s own ?state= pages', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/auth/logout?returnTo=/').set('sec-fetch-site', 'same-origin');
    const state = new URL(res.headers.location).searchParams.get('state')!;
    expect(String(res.headers['set-cookie'])).toMatch(/oidc_logout_state=[\w-]+%20%2F; Max-Age=600; Path=\/;/); // sent with every page of the app
    // the user never confirms at the OP, and signs in again: the callback carries a state too
    const again = await t.login(agent);
    expect(again.status).toBe(302);
    expect(again.headers.location).toBe('/me');
    expect((await agent.get('/me')).status).toBe(200);
    expect((await agent.get('/stores?state=CA')).status).toBe(404); // the test app has no /stores: the request reached it
    // the landing itself is still checked, and forgets the cookie on the path it was set with
    const landing = await agent.get(`/?state=${state}`);
    expect(landing.status).toBe(302);
    expect(landing.headers.location).toBe('/');
    expect(String(landing.headers['set-cookie'])).toMatch(/oidc_logout_state=; Path=\/; Expires=Thu, 01 Jan 1970/);
  });

  test('a returnTo with a ";" in its path logs out at the OP too, and its landing is checked', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get(`/auth/logout?returnTo=${encodeURIComponent('/products;color=red')}`).set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    const end = new URL(res.headers.location);
    expect(`${end.origin}${end.pathname}`).toBe(`${t.op.issuer}/session/end`);
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/products;color=red`);
    // a cookie's Path cannot hold a ";": the cookie goes to every page, and only the landing's exact path is checked
    expect(String(res.headers['set-cookie'])).toMatch(/oidc_logout_state=[\w-]+%20%2Fproducts%3Bcolor%3Dred; Max-Age=600; Path=\/;/);
    await expectNoLogin(t, agent);
    const state = end.searchParams.get('state')!;
    expect((await agent.get('/products?state=other')).status).toBe(404);
    const landing = await agent.get(`/products;color=red?state=${state}`);
    expect(landing.status).toBe(302);
    expect(landing.headers.location).toBe('/products;color=red');
  });

  test.each([
    ['not percent-decodable', '%'],
    ['of another version (the state alone)', 'some-state'],
    ['without a state', '%20%2Fbye'],
  ])('a logout-state cookie %s is ignored: the page is the app\'s', async (_what, value) => {
    const res = await t.agent().get('/bye?state=some-state').set('cookie', `oidc_logout_state=${value}`);
    expect(res.status).toBe(404);
    expect(res.headers['set-cookie']).toBeUndefined();
  });
});

describe('a malformed logout-state cookie with rp({ session }) (the session step runs in the store\'s callback)', () => {
  let app: express.Express;
  beforeAll(() => {
    app = express();
    app.use(rp({
      baseURL: t.baseURL,
      session: session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, name: 'sid' }),
      providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true }) },
    }));
    app.get('/', (_req, res) => void res.send('home'));
  });

  test('a signed-in session with oidc_logout_state=% reaches the page; nothing throws out of the store\'s callback', async () => {
    const agent = request.agent(app);
    const start = await agent.get('/auth/login/op');
    expect(start.status).toBe(302); // the session now exists in the store: it is read asynchronously
    const sid = sessionCookieOf(start);
    const res = await request(app).get('/').set('cookie', `${sid}; oidc_logout_state=%`);
    expect(res.status).toBe(200);
    expect(res.text).toBe('home');
  });
});

describe('logout CSRF: another site cannot sign the user out', () => {
  test.each([
    ['an <img> or link on another site (Sec-Fetch-Site: cross-site)', { 'sec-fetch-site': 'cross-site' }],
    ['a sibling subdomain (Sec-Fetch-Site: same-site)', { 'sec-fetch-site': 'same-site' }],
    ['a browser that says nothing about where the request came from', {}],
    ['a Referer from another site', { referer: 'https://evil.example/page' }],
  ])('a GET from %s gets a confirmation page and the login stays', async (_label, headers) => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/auth/logout?returnTo=/bye').set({ accept: 'text/html', ...headers });
    expect(res.status).toBe(200);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.text).toContain('<form method="post" action="/auth/logout">');
    expect(res.text).toContain('name="returnTo" value="/bye"');
    expect((await agent.get('/me')).status).toBe(200);
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  test('the confirmation page\'s button (a POST from the app\'s own origin) signs out', async () => {
    const agent = t.agent();
    await t.login(agent);
    await agent.get('/auth/logout').set('sec-fetch-site', 'cross-site').expect(200);
    const res = await agent.post('/auth/logout').type('form').set({ origin: t.baseURL, 'sec-fetch-site': 'same-origin' }).send({ returnTo: '/bye' });
    expect(res.status).toBe(303);
    await expectNoLogin(t, agent);
  });

  test('the app\'s own sign-out form under Referrer-Policy: no-referrer (helmet\'s default: the browser sends Origin: null, Sec-Fetch-Site: same-origin) signs out', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').type('form').set({ origin: 'null', 'sec-fetch-site': 'same-origin' }).send({ returnTo: '/bye' });
    expect(res.status).toBe(303); // before: 403 cross_origin_request, and the user stayed signed in
    await expectNoLogin(t, agent);
  });

  test('the confirmation page asks for Referrer-Policy: same-origin, so its button sends the app\'s Origin whatever the app-wide policy', async () => {
    const agent = t.agent();
    await t.login(agent);
    const page = await agent.get('/auth/logout').set('sec-fetch-site', 'cross-site');
    expect(page.headers['referrer-policy']).toBe('same-origin');
  });

  test('a GET from the app\'s own page (same-origin Referer, for browsers without Sec-Fetch-Site) signs out', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/auth/logout').set('referer', `${t.baseURL}/profile`);
    expect(res.status).toBe(302);
    await expectNoLogin(t, agent);
  });

  test.each([
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Origin: null from another site (a sandboxed frame)', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
    ['Origin: null without Sec-Fetch-Site', { origin: 'null' }],
  ])('a POST with %s is refused with 403 cross_origin_request and the login stays', async (_label, headers) => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/logout').type('form').set(headers).send({ returnTo: '/bye' });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('cross_origin_request');
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('an API client gets JSON saying how to sign out, not a page, and nothing changes', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/auth/logout').set('accept', 'application/json');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: 'POST', action: '/auth/logout' });
    expect((await agent.get('/me')).status).toBe(200);
  });
});
