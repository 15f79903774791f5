import express, { type Express } from 'express';
import session from 'express-session';
import request from 'supertest';
import { createServer } from 'node:http';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, close, listen, startRp, type TestRp } from './support/rp-app.js';
import { startOp } from './support/oidc-provider.js';

function routes(app: Express): void {
  const ok = (_req: express.Request, res: express.Response): void => void res.json({ ok: true });
  app.get('/admin', requireAuth({ claims: { groups: 'admin' } }), ok);
  app.get('/verified', requireAuth({ claims: (c) => c.email_verified === true }), ok);
  app.get('/email-scope', requireAuth({ scope: 'email' }), ok);
  app.get('/payments', requireAuth({ scope: 'payments' }), ok);
  app.get('/other-provider', requireAuth({ provider: 'other' }), ok);
  app.get('/recent', requireAuth({ maxAge: 60 }), ok);
  app.post('/form', requireAuth(), ok);
  app.get('/avatar', requireAuth(), (_req, res) => void res.set('cache-control', 'private, max-age=60').json({ ok: true }));
}

let t: TestRp;
beforeAll(async () => {
  t = await startRp({ routes });
});
afterEach(() => jest.restoreAllMocks());
afterAll(() => t.close());

const html = { accept: 'text/html,application/xhtml+xml' };

describe('requireAuth()', () => {
  test('a browser GET without login is sent to log in, with returnTo', async () => {
    const res = await t.agent().get('/me?tab=2').set(html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`/auth/login/op?returnTo=${encodeURIComponent('/me?tab=2')}`);
  });

  test('a deep link too long to send along (a redirect of several KB overflows proxies\' header buffers, nginx\'s 4 KB: a bare 502) is left out: the sign-in returns to /', async () => {
    const long = `/me?q=${'%C3%A9'.repeat(300)}`; // 1 806 bytes, 4 806 encoded again
    const res = await t.agent().get(long).set(html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/auth/login/op'); // before: 4.8 KB
    const fits = `/me?q=${'%C3%A9'.repeat(100)}`; // 606 bytes: sent along
    expect((await t.agent().get(fits).set(html)).headers.location).toBe(`/auth/login/op?returnTo=${encodeURIComponent(fits)}`);
  });

  test('the login it redirects to brings the user back', async () => {
    const agent = t.agent();
    const guard = await agent.get('/me').set(html);
    const start = await agent.get(guard.headers.location);
    const callback = await t.op.authorize(start.headers.location);
    const done = await agent.get(callback.pathname + callback.search);
    expect(done.headers.location).toBe('/me');
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('an API request without login gets 401 JSON', async () => {
    const res = await t.agent().get('/me').set('accept', 'application/json');
    expect(res.status).toBe(401);
    // a challenge without an error code: the request brought no credentials (RFC 6750 §3), and no unregistered code
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="${new URL(t.baseURL).host}"`);
    expect(res.body).toEqual({ error: 'not_authenticated', error_description: expect.any(String) });
  });

  test.each([
    ['text/html;q=0, application/json', {}],
    ['application/json, text/html;q=0.1', {}],
    // a script's XMLHttpRequest (jQuery's dataType: 'html'): it could not follow a redirect to the OP anyway
    ['text/html, */*; q=0.01', { 'x-requested-with': 'XMLHttpRequest' }],
  ])('a request whose Accept (%s) does not prefer HTML, or a script\'s XMLHttpRequest, gets 401 JSON, not a redirect to the OP', async (accept, headers) => {
    const res = await t.agent().get('/me').set({ accept, ...headers });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('not_authenticated');
    expect(res.headers.vary).toMatch(/accept/i);
  });

  test.each(['cors', 'no-cors'])('a page\'s script (fetch(), Sec-Fetch-Mode: %s) asking for HTML gets 401 JSON it can read, not a redirect into the OP that fails as a CORS error', async (mode) => {
    const res = await t.agent().get('/me').set({ ...html, 'sec-fetch-mode': mode, 'sec-fetch-dest': 'empty' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('not_authenticated');
    // a page load (Sec-Fetch-Mode: navigate) is still sent to log in
    expect((await t.agent().get('/me').set({ ...html, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status).toBe(302);
    // Node's fetch sends Sec-Fetch-Mode: cors and no other Fetch Metadata (not a browser): judged by its Accept, as before
    expect((await t.agent().get('/me').set({ ...html, 'sec-fetch-mode': 'cors' })).status).toBe(302);
    // a page load a service worker passes on with a header of its own (mode same-origin, dest empty): still a page (review)
    expect((await t.agent().get('/me').set({ ...html, 'sec-fetch-mode': 'same-origin', 'sec-fetch-dest': 'empty' })).status).toBe(302);
  });

  test('an app\'s WebView page load (Android sends X-Requested-With: <the app\'s package>) is still a browser: sent to log in', async () => {
    const res = await t.agent().get('/me').set({ ...html, 'x-requested-with': 'com.example.shop' });
    expect(res.status).toBe(302);
  });

  test('an htmx request (HX-Request: true, Accept text/html) gets 401 with HX-Redirect to the login, back to the page the user is on', async () => {
    const res = await t.agent().get('/me').set({ accept: 'text/html', 'hx-request': 'true', 'hx-current-url': `${t.baseURL}/dashboard?tab=2` });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('not_authenticated');
    expect(res.headers['hx-redirect']).toBe(`/auth/login/op?returnTo=${encodeURIComponent('/dashboard?tab=2')}`);
    // a page of another origin is not sent along
    const foreign = await t.agent().get('/me').set({ accept: 'text/html', 'hx-request': 'true', 'hx-current-url': 'https://evil.example/x' });
    expect(foreign.headers['hx-redirect']).toBe('/auth/login/op');
  });

  test('a browser POST without login gets 401, not a redirect', async () => {
    const res = await t.agent().post('/form').set(html);
    expect(res.status).toBe(401);
    expect(res.text).toContain('not_authenticated');
  });

  test('a user with the required claim passes; one without gets 403 and no login loop', async () => {
    const alice = t.agent();
    await t.login(alice);
    expect((await alice.get('/admin').set(html)).status).toBe(200);
    const bob = t.agent();
    await t.login(bob, { account: 'bob' });
    const denied = await bob.get('/admin').set(html);
    expect(denied.status).toBe(403);
    expect(denied.text).toContain('insufficient_claims');
    const api = await bob.get('/admin');
    expect(api.status).toBe(403);
    expect(api.body.error).toBe('insufficient_claims');
    expect((await bob.get('/verified')).status).toBe(403);
    expect((await alice.get('/verified')).status).toBe(200);
  });

  test('scope: granted passes, not granted is 403', async () => {
    const agent = t.agent();
    await t.login(agent);
    expect((await agent.get('/email-scope')).status).toBe(200);
    const res = await agent.get('/payments').set(html);
    expect(res.status).toBe(403);
    expect(res.text).toContain('insufficient_scope');
  });

  test('provider: a login at another provider does not count', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/other-provider').set(html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(/^\/auth\/login\/other\?/);
    expect((await agent.get('/other-provider')).status).toBe(401);
  });

  test('maxAge: an old authentication must log in again with max_age', async () => {
    const agent = t.agent();
    await t.login(agent);
    expect((await agent.get('/recent').set(html)).status).toBe(200);
    const later = Date.now() + 120_000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    const res = await agent.get('/recent').set(html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`/auth/login/op?returnTo=%2Frecent&maxAge=60`);
    expect((await agent.get('/recent')).status).toBe(401);
    const start = await agent.get(res.headers.location);
    expect(new URL(start.headers.location).searchParams.get('max_age')).toBe('60');
  });

  test('what a guarded route answers is never kept by a cache (Back after a sign-out must not show the user\'s data); the route may say otherwise', async () => {
    const agent = t.agent();
    await t.login(agent);
    const me = await agent.get('/me');
    expect([me.status, me.headers['cache-control']]).toEqual([200, 'no-store']);
    const avatar = await agent.get('/avatar');
    expect([avatar.status, avatar.headers['cache-control']]).toEqual([200, 'private, max-age=60']);
  });

  test('without rp() mounted it says what to add', async () => {
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    app.get('/x', requireAuth(), (_req, res) => void res.end());
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).send(err.message));
    const res = await request(app).get('/x');
    expect(res.status).toBe(500);
    expect(res.text).toContain('rp() mounted before it');
  });

  test('a bad maxAge is a start-up error', () => {
    expect(() => requireAuth({ maxAge: -1 })).toThrow(/maxAge/);
  });
});

describe('an app mounted under a path (baseURL https://…/admin, app.use(\'/admin\', …))', () => {
  test('requireAuth() sends the browser to the login under that path, the sign-in and its sign-out pages stay there', async () => {
    const server = createServer();
    const origin = await listen(server);
    const op = await startOp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${origin}/admin/auth/callback/op`], post_logout_redirect_uris: [`${origin}/admin/`] }] });
    try {
      const admin = express.Router();
      admin.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }));
      admin.use(rp({ baseURL: `${origin}/admin`, providers: { op: oidc({ issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true }) } }));
      admin.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
      const app = express();
      app.use('/admin', admin);
      server.on('request', app);
      const agent = request.agent(server);
      const guarded = await agent.get('/admin/me').set(html);
      // before: /auth/login/op, a 404 (or whatever the app has at /auth)
      expect(guarded.headers.location).toBe(`/admin/auth/login/op?returnTo=${encodeURIComponent('/admin/me')}`);
      const start = await agent.get(guarded.headers.location);
      expect(start.status).toBe(302);
      const callback = await op.authorize(start.headers.location);
      expect(callback.pathname).toBe('/admin/auth/callback/op');
      const back = await agent.get(callback.pathname + callback.search);
      expect(back.headers.location).toBe('/admin/me');
      expect((await agent.get('/admin/me')).body).toMatchObject({ sub: 'alice' });
      // a sign-out link from another site: the confirmation page posts to the logout under /admin
      const confirm = await agent.get('/admin/auth/logout').set(html).set('sec-fetch-site', 'cross-site');
      expect(confirm.text).toContain('action="/admin/auth/logout"');
    } finally {
      await close(server);
      await op.close();
    }
  });

  test('behind a proxy that strips the path (the app sees /me for the browser\'s /admin/me): the way back after the sign-in, and the default landing, keep it', async () => {
    const server = createServer();
    const origin = await listen(server);
    const op = await startOp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${origin}/admin/auth/callback/op`] }] });
    try {
      const app = express();
      app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: `${origin}/admin`, providers: { op: oidc({ issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true }) } }));
      app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
      // the proxy: /admin/… in the browser, /… at the app
      server.on('request', (req, res) => {
        if (req.url?.startsWith('/admin/')) req.url = req.url.slice('/admin'.length);
        app(req, res);
      });
      const agent = request.agent(server);
      const guarded = await agent.get('/admin/me').set(html);
      // before: returnTo=/me, and after the sign-in the browser landed at the site's /me (a 404, or another app's page)
      expect(guarded.headers.location).toBe(`/admin/auth/login/op?returnTo=${encodeURIComponent('/admin/me')}`);
      const callback = await op.authorize((await agent.get(guarded.headers.location)).headers.location);
      expect((await agent.get(callback.pathname + callback.search)).headers.location).toBe('/admin/me');
      // a login link without returnTo lands at the app's home, /admin/ (before: the site's /)
      const other = request.agent(server);
      const again = await op.authorize((await other.get('/admin/auth/login/op')).headers.location);
      expect((await other.get(again.pathname + again.search)).headers.location).toBe('/admin/');
    } finally {
      await close(server);
      await op.close();
    }
  });
});

describe('max_age given in authorizationParams (certification probe F3)', () => {
  let s: TestRp;
  beforeAll(async () => {
    s = await startRp({ provider: { authorizationParams: { max_age: '60' } } });
  });
  afterAll(() => s.close());

  test('is sent and checked as ?maxAge= is (the pending login carries it, so the ID token\'s auth_time is checked at the callback), and a fresh sign-in passes', async () => {
    const request = await s.relyingParty.authorizationRequest('op', { returnTo: '/' });
    expect(request.url.searchParams.get('max_age')).toBe('60');
    expect(request.transaction.maxAge).toBe(60); // before: undefined, so auth_time was never checked
    const agent = s.agent();
    expect((await s.login(agent)).status).toBe(302);
    expect((await agent.get('/me')).status).toBe(200);
  });
});
