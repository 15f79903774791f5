import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, readStoredLogin, rp } from '@openid-express/rp';
import { CLIENT_ID, startRp, type TestRp } from './support/rp-app.js';
import { sessionStoreCoordination, type Coordination } from '../src/coordination.js';
import { RpError } from '../src/errors.js';
import { clearStore, expectNoLogin, sessionCookie, sessionCookieOf } from './support/expect.js';

let t: TestRp;
beforeAll(async () => {
  t = await startRp();
});
beforeEach(() => clearStore(t));
afterAll(() => t.close());

const path = (url: URL): string => url.pathname + url.search;

describe('GET /auth/callback/:provider', () => {
  test('a user who logs in at the OP reaches /me with her normalized profile', async () => {
    const agent = t.agent();
    const done = await t.login(agent);
    expect(done.status).toBe(302);
    expect(done.headers.location).toBe('/me');
    expect(done.headers['cache-control']).toBe('no-store');
    const me = await agent.get('/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ sub: 'alice', provider: 'op', name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true });
    expect(me.body.claims.groups).toEqual(['staff', 'admin']);
  });

  test('the ID token\'s protocol claims are kept once, in idTokenClaims, and the user\'s claims keep the person', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    const [id] = await t.authenticatedSessions();
    const auth = readStoredLogin((await new Promise<session.SessionData>((resolve, reject) => t.store.get(id!, (err, s) => (err ? reject(err) : resolve(s!))))).oidc!.auth!);
    expect(auth.idTokenClaims).toMatchObject({ iss: t.op.issuer, aud: CLIENT_ID, sub: 'alice' });
    expect(auth.idTokenClaims).toHaveProperty('nonce');
    expect(auth.idTokenClaims).toHaveProperty('exp');
    expect(auth.user.claims).toMatchObject({ sub: 'alice', name: 'Alice Liddell', groups: ['staff', 'admin'] });
    for (const claim of ['iss', 'aud', 'exp', 'iat', 'nonce', 'at_hash', 'sid', 'azp', 'jti']) expect(auth.user.claims).not.toHaveProperty(claim);
  });

  test('the session id changes at login (no session fixation)', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    const before = sessionCookie(agent, t.baseURL);
    expect(before).toBeDefined();
    await agent.get(path(callback)).expect(302);
    const after = sessionCookie(agent, t.baseURL);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    const sessions = await t.authenticatedSessions();
    expect(sessions).toHaveLength(1);
    expect(decodeURIComponent(before!)).not.toContain(sessions[0]);
    expect(decodeURIComponent(after!)).toContain(sessions[0]);
  });

  test('a callback without state does not log in', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    callback.searchParams.delete('state');
    const res = await agent.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('missing_state');
    await expectNoLogin(t, agent);
  });

  test('a callback with a tampered state does not log in', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    callback.searchParams.set('state', `${callback.searchParams.get('state')}x`);
    const res = await agent.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_state');
    await expectNoLogin(t, agent);
  });

  test('a replayed callback does not log in', async () => {
    const victim = t.agent();
    const callback = await t.startLogin(victim);
    await victim.get(path(callback)).expect(302);
    // the same browser again: it is signed in, and the answer is not used again
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const again = await victim.get(path(callback));
    expect([again.status, again.headers.location]).toEqual([302, '/']);
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
    // an attacker who got hold of the URL
    const attacker = t.agent();
    const stolen = await attacker.get(path(callback));
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_state');
    expect((await attacker.get('/me')).status).toBe(401);
    expect(await t.authenticatedSessions()).toHaveLength(1); // only the victim's own login
  });

  test('session fixation: whoever planted their session in the victim\'s browser and started that sign-in cannot join the victim\'s login by replaying its state (probe25-attack F1)', async () => {
    // the attacker starts a sign-in (session S0, state X) and plants S0's cookie in the victim's browser, which signs in with it
    const start = await t.agent().get('/auth/login/op?returnTo=/me');
    const planted = sessionCookieOf(start);
    const callback = await t.op.browser().authorize(start.headers.location, { account: 'alice' });
    const signedIn = await request(t.server).get(path(callback)).set('cookie', planted);
    expect([signedIn.status, signedIn.headers.location]).toEqual([302, '/me']);
    const victim = sessionCookieOf(signedIn);
    expect(victim).not.toBe(planted); // a new session id at sign-in
    // the attacker sends the callback's state (not its code: that went to the victim's browser) with S0, as its
    // cookie or as any cookie's signed-looking value; before, the copy "joined" the victim's login
    const replay = new URL(callback);
    replay.searchParams.set('code', 'anything');
    const s0 = decodeURIComponent(planted.slice(planted.indexOf('=') + 1)).slice(2).split('.')[0]!;
    for (const cookie of [planted, `other=${encodeURIComponent(`s:${s0}.forged`)}`]) {
      const joined = await request(t.server).get(path(replay)).set({ cookie, accept: 'application/json' });
      expect([joined.status, joined.body.error]).toEqual([400, 'invalid_state']);
      const attacker = sessionCookieOf(joined);
      expect(attacker).not.toBe(victim);
      expect((await request(t.server).get('/me').set('cookie', attacker || cookie)).status).toBe(401);
    }
    expect((await request(t.server).get('/me').set('cookie', victim)).body.sub).toBe('alice'); // the victim's login stays
  });

  test('the same callback twice at once (a double click, a reload, a browser\'s retry): one code exchange, and both answers sign the browser in', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    const grants = t.op.counts.grants.authorization_code ?? 0;
    // both requests carry the session that holds the pending login; redeeming its code twice would make
    // the OP revoke what it issued (RFC 6749 §4.1.2). The copy waits for the first, and joins its login:
    // the browser shows whichever answer came last (it abandons the first on a reload), signed in either way
    const answers = await Promise.all([agent.get(path(callback)), agent.get(path(callback))]);
    expect(answers.map((a) => a.status)).toEqual([302, 302]);
    expect(answers.map((a) => a.headers.location)).toEqual(['/me', '/me']); // where the login was going
    const [first, second] = answers.map(sessionCookieOf);
    expect(first).toBe(second); // the same new session: the copy got the login's cookie
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(1);
    for (const answer of answers) {
      const browser = t.agent();
      expect((await browser.get('/me').set('cookie', sessionCookieOf(answer))).status).toBe(200);
    }
    // the grant is alive at the OP: a refresh works
    expect((await agent.post('/auth/refresh')).status).toBe(200);
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  test('a callback started in another browser does not log in (login CSRF)', async () => {
    const attacker = t.agent();
    const callback = await t.startLogin(attacker, { account: 'bob' });
    const victim = t.agent();
    await victim.get('/auth/login/op'); // the victim has a session with its own pending login
    const res = await victim.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_state');
    // the benign causes come first: a newcomer's cookie clash is far likelier than an attack
    expect(res.body.error_description).toMatch(/Usually the session cookie did not come back: another app on the same host uses the same cookie name/);
    await expectNoLogin(t, victim);
  });

  test('the callback URL opened again by a browser that is signed in (a second tab, history): back to the app, still signed in, nothing exchanged', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    expect((await agent.get(path(callback))).status).toBe(302);
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const again = await agent.get(path(callback)).set('accept', 'text/html');
    expect([again.status, again.headers.location]).toEqual([302, '/']); // before: 400 "This sign-in has expired"
    expect((await agent.get('/me')).body.sub).toBe('alice');
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
  });

  test('the callback sent again by a browser that never got the answer that signed it in (a proxy timed out on it): it joins that login, with nothing exchanged again; another browser with the same URL does not', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    const before = `sid=${sessionCookie(agent, t.baseURL)}`;
    // the answer that signs the browser in (a new session) is lost on its way: the browser keeps its old cookie
    const lost = await request(t.server).get(path(callback)).set('cookie', before);
    expect(lost.status).toBe(302);
    const grants = t.op.counts.grants.authorization_code ?? 0;
    // someone with the URL and the session id the cookie names (a log line, a reader of the store), not its
    // signature: joins nothing, in a cookie of any name (review-60: the id alone joined the victim's login)
    const signed = decodeURIComponent(before.slice('sid='.length));
    const forged = `s:${signed.slice(2, signed.lastIndexOf('.'))}.AAAA`;
    for (const cookie of [`sid=${encodeURIComponent(forged)}`, `x=${encodeURIComponent(forged)}`]) {
      const copy = await request(t.server).get(path(callback)).set({ cookie, accept: 'application/json' });
      expect([copy.status, copy.body.error]).toEqual([400, 'invalid_state']);
    }
    // (other apps' express-session cookies on the host, sent first, do not hide it)
    const others = ['admin.sid', 'shop.sid', 'wiki.sid', 'blog.sid'].map((n, i) => `${n}=s%3Aother-app-${i}.c2lnbmF0dXJl`).join('; ');
    const again = await request(t.server).get(path(callback)).set('cookie', `${others}; ${before}`).set('accept', 'text/html');
    // before: 400 "This sign-in has expired", the user signed out although the login was made
    expect([again.status, again.headers.location]).toEqual([302, '/']);
    const joined = sessionCookieOf(again);
    expect((await request(t.server).get('/me').set('cookie', joined)).body.sub).toBe('alice');
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
    // the same URL from another browser (its own session, or none) joins nothing
    const other = t.agent();
    await other.get('/auth/login/op');
    expect((await other.get(path(callback))).status).toBe(400);
    expect((await other.get('/me')).status).toBe(401);
    expect((await request(t.server).get(path(callback))).status).toBe(400);
    expect(await t.authenticatedSessions()).toHaveLength(1); // alice's, once
  });

  test('an answer planted by someone else, opened by a browser signed in as another user: ignored (nothing exchanged), the browser stays who it was', async () => {
    const victim = t.agent();
    await t.login(victim);
    const attacker = t.agent();
    const planted = await t.startLogin(attacker, { account: 'bob' });
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const res = await victim.get(path(planted)).set('accept', 'text/html');
    expect([res.status, res.headers.location]).toEqual([302, '/']);
    expect((await victim.get('/me')).body.sub).toBe('alice');
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
    // the attacker's own pending login is untouched: its answer still works for the attacker only
    expect((await attacker.get(path(planted))).status).toBe(302);
  });

  test('a code replayed at the OP (code reused under a new state) does not log in', async () => {
    const agent = t.agent();
    const first = await t.startLogin(agent);
    await agent.get(path(first)).expect(302);
    await agent.get('/auth/logout').set('sec-fetch-site', 'same-origin');
    await clearStore(t);
    const second = await t.startLogin(agent);
    second.searchParams.set('code', first.searchParams.get('code')!);
    const res = await agent.get(path(second));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_grant', op_error: 'invalid_grant' });
    await expectNoLogin(t, agent);
  });

  test('access_denied at the OP is a clear 400 page, not a login', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { deny: true });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const res = await agent.get(path(callback)).set('accept', 'text/html');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/html/);
    expect(res.text).toContain('access_denied');
    expect(res.text).toContain('op_error');
    expect(res.headers['referrer-policy']).toBe('no-referrer'); // the page is at the callback URL
    await expectNoLogin(t, agent);
  });

  test('its HTML error page loads nothing but its style, cannot be framed, and is not sniffed', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { deny: true });
    const res = await agent.get(path(callback)).set('accept', 'text/html');
    expect(res.status).toBe(400);
    expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[^']+'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'$/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  test('access_denied answers JSON to an API client', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { deny: true });
    const res = await agent.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'op_error', op_error: 'access_denied' });
    // the provider is named; the answer came through the browser, not from an endpoint, and the user's no needs no fixing
    expect(res.body.error_description.startsWith(`provider "op" (issuer ${t.op.issuer}): the OpenID Provider answered "access_denied"`)).toBe(true);
    expect(res.body.error_description).not.toMatch(/endpoint|Check providers/);
    await expectNoLogin(t, agent);
  });

  test('an OP error description is shown escaped (no HTML injection)', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { deny: true });
    callback.searchParams.set('error_description', '<script>alert(1)</script>');
    const res = await agent.get(path(callback)).set('accept', 'text/html');
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('<script>');
    expect(res.text).toContain('&lt;script&gt;');
    await expectNoLogin(t, agent);
  });

  test('a callback whose iss is not the OP is refused (RFC 9207)', async () => {
    const metadata = await (await fetch(`${t.op.issuer}/.well-known/openid-configuration`)).json();
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    expect(callback.searchParams.get('iss')).toBe(t.op.issuer);
    callback.searchParams.set('iss', 'https://evil.example');
    const res = await agent.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_response');
    expect(res.body.error_description).toMatch(/iss/);
    await expectNoLogin(t, agent);
  });

  test('a callback without iss from an OP that advertises RFC 9207 is refused', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    callback.searchParams.delete('iss');
    const res = await agent.get(path(callback));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_response');
    await expectNoLogin(t, agent);
  });

  test.each([
    ['https://evil.example', 'an absolute URL'],
    ['//evil.example', 'a protocol-relative URL'],
    ['/\\evil.example', 'a backslash path'],
    ['/%5Cevil.example', 'an encoded backslash'],
    ['javascript:alert(1)', 'a javascript: URL'],
    [' //evil.example', 'a URL with leading space'],
    ['/.//evil.example', 'a dot segment that normalizes to //'],
    ['/a/..//evil.example', 'a parent segment that normalizes to //'],
    ['/%252e//evil.example', 'an encoded dot segment'],
  ])('returnTo %s (%s) falls back to /', async (returnTo) => {
    const agent = t.agent();
    const done = await t.login(agent, { returnTo: decodeURIComponent(returnTo) });
    expect(done.status).toBe(302);
    expect(done.headers.location).toBe('/');
  });

  test('a same-origin returnTo with a query is kept', async () => {
    const done = await t.login(t.agent(), { returnTo: '/orders?page=2#top' });
    expect(done.headers.location).toBe('/orders?page=2#top');
  });

  test('no token or code appears in the URL after the callback', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    const done = await agent.get(path(callback));
    expect(done.headers.location).toBe('/me');
    expect(done.headers.location).not.toMatch(/code|token|state/);
  });

  test('an unknown provider callback is a 404', async () => {
    const res = await t.agent().get('/auth/callback/unknown-idp?code=x&state=y');
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('unknown_provider');
    expect(res.body.error_description).toBe('no provider is named "unknown-idp" (the providers are: "op"; each is a key of the providers option)');
  });

  test('a provider name a letter or a case off gets "did you mean"', async () => {
    for (const name of ['OP', 'opp']) {
      const res = await t.agent().get(`/auth/login/${name}`);
      expect([res.status, res.body.error]).toEqual([404, 'unknown_provider']);
      expect(res.body.error_description).toContain(`no provider is named "${name}": did you mean "op"?`);
    }
  });
});

describe('two instances that do not share what they must (README "Running several instances")', () => {
  /** Instance B of `t`'s app: the same baseURL and client, its own express-session `secret` and store as given. */
  const instanceB = (o: { secret: string; store?: session.Store }): express.Express => {
    const app = express();
    app.use(session({ secret: o.secret, resave: false, saveUninitialized: false, name: 'sid', ...(o.store ? { store: o.store } : {}) }));
    app.use(rp({ baseURL: t.baseURL, providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: 'app-secret-that-is-long-enough-0123456789', allowInsecureRequests: true }) } }));
    return app;
  };

  test('another secret, the same store: the callback on B says the secrets differ, not "the cookie did not come back"', async () => {
    const start = await request(t.server).get('/auth/login/op');
    const cookie = sessionCookieOf(start);
    const callback = await t.op.browser().authorize(start.headers.location);
    const res = await request(instanceB({ secret: 'another-secret', store: t.store })).get(path(callback)).set({ cookie, accept: 'application/json' });
    expect([res.status, res.body.error]).toEqual([400, 'invalid_state']);
    expect(res.body.error_description).toContain('the session cookie is signed with an express-session `secret` this server does not have');
    // the same answer on A, with the same cookie, still signs in (nothing was spent by B)
    expect((await request(t.server).get(path(callback)).set({ cookie })).status).toBe(302);
  });

  test('a store of its own: the message names an instance that does not share the store; another app\'s cookie on the host is not taken for a secret that differs (review)', async () => {
    const start = await request(t.server).get('/auth/login/op');
    const cookie = sessionCookieOf(start);
    const callback = await t.op.browser().authorize(start.headers.location);
    const res = await request(instanceB({ secret: 'test-session-secret' })).get(path(callback)).set({ cookie, accept: 'application/json' });
    expect([res.status, res.body.error]).toEqual([400, 'invalid_state']);
    expect(res.body.error_description).toContain('this one may not share the session store of the one that started the sign-in');
    // this app's cookie did not come back, another app's did: the usual message, nothing about secrets
    const foreign = `connect.sid=${encodeURIComponent('s:another-apps-session.signature')}`;
    const other = await request(t.server).get(path(callback)).set({ cookie: foreign, accept: 'application/json' });
    expect(other.body.error_description).toContain('Usually the session cookie did not come back');
    expect(other.body.error_description).not.toContain('secret');
  });
});

describe('a wrong client secret (client_secret_basic: the OP answers 401 with a WWW-Authenticate challenge)', () => {
  test('the callback answers client_auth_failed naming the provider, the token endpoint and the options to check; nobody is logged in', async () => {
    const wrong = await startRp({ provider: { clientSecret: 'not-the-registered-secret' } });
    try {
      const agent = wrong.agent();
      const res = await agent.get(path(await wrong.startLogin(agent)));
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ error: 'client_auth_failed', op_error: 'invalid_client' });
      expect(res.body.error_description).toContain(`provider "op": the token endpoint ${wrong.op.issuer}/token refused the client's credentials (invalid_client)`);
      expect(res.body.error_description).toContain('Check providers.op.clientId ("app"), clientSecret and tokenEndpointAuthMethod ("client_secret_basic")');
      expect(res.body.error_description).not.toContain('not-the-registered-secret');
      await expectNoLogin(wrong, agent);
    } finally {
      await wrong.close();
    }
  });

  test('the operator is told without DEBUG, once an hour, not once per sign-in (before: only the visitor\'s page said it, the log nothing)', async () => {
    const wrong = await startRp({ provider: { clientSecret: 'not-the-registered-secret' } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 3; i++) {
        const agent = wrong.agent();
        expect((await agent.get(path(await wrong.startLogin(agent)))).status).toBe(500);
      }
      const said = warn.mock.calls.map((args) => String(args[0])).filter((line) => line.includes('client_auth_failed'));
      expect(said).toHaveLength(1);
      expect(said[0]).toContain('GET /auth/callback/op failed (500 client_auth_failed): provider "op": the token endpoint');
      expect(said[0]).toContain('Check providers.op.clientId');
      expect(said[0]).not.toContain('not-the-registered-secret');
    } finally {
      warn.mockRestore();
      await wrong.close();
    }
  });
});

describe('discovery that fails', () => {
  test('is said with console.warn once an hour for each provider (two misconfigured providers: two lines, not one; review)', async () => {
    const typo = await startRp({ provider: {} });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      const entry = (path: string) => oidc({ issuer: `${typo.op.issuer}/${path}`, clientId: 'a', allowInsecureRequests: true });
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { a: entry('typo-a'), b: entry('typo-b') } }));
      for (const name of ['a', 'b', 'a', 'b']) expect((await request(app).get(`/auth/login/${name}`)).status).toBe(502);
      const said = warn.mock.calls.map((args) => String(args[0])).filter((line) => line.includes('discovery_failed'));
      expect(said).toHaveLength(2);
      expect(said[0]).toContain('GET /auth/login/a failed (502 discovery_failed): discovery of provider "a"');
      expect(said[1]).toContain('GET /auth/login/b failed (502 discovery_failed): discovery of provider "b"');
    } finally {
      warn.mockRestore();
      await typo.close();
    }
  });

  test('a typo in the issuer path names the URL fetched and the HTTP status', async () => {
    const typo = await startRp({ provider: {} });
    try {
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { corp: oidc({ issuer: `${typo.op.issuer}/typo`, clientId: 'a', allowInsecureRequests: true }) } }));
      const res = await request(app).get('/auth/login/corp');
      expect(res.status).toBe(502);
      expect(res.body.error).toBe('discovery_failed');
      expect(res.body.error_description).toBe(
        `discovery of provider "corp" at ${typo.op.issuer}/typo/.well-known/openid-configuration failed: it answered HTTP 404. Check providers.corp.issuer (it must be the OP's exact issuer identifier)`);
    } finally {
      await typo.close();
    }
  });

  test('an issuer with a trailing slash the OP\'s lacks names the issuer the OP announces, to copy', async () => {
    let base = '';
    const op = express().get('/op/.well-known/openid-configuration', (_req, res) => void res.json({
      issuer: `${base}/op`, authorization_endpoint: `${base}/op/auth`, token_endpoint: `${base}/op/token`, jwks_uri: `${base}/op/jwks`,
    }));
    const server = op.listen(0);
    try {
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { corp: oidc({ issuer: `${base}/op/`, clientId: 'a', allowInsecureRequests: true }) } }));
      const res = await request(app).get('/auth/login/corp');
      expect([res.status, res.body.error]).toEqual([502, 'discovery_failed']);
      // before: "discovered metadata issuer does not match the expected issuer", naming neither
      expect(res.body.error_description).toContain(`the OP's metadata names its issuer "${base}/op", not "${base}/op/"`);
      expect(res.body.error_description).toContain(`give providers.corp.issuer: "${base}/op"`);
    } finally {
      server.close();
    }
  });

  test('a discovery URL that answers an HTML page with 200 says so (not "it answered HTTP 200", which reads like success)', async () => {
    const page = express().get('/sso/.well-known/openid-configuration', (_req, res) => void res.type('html').send('<!doctype html><p>Sign in</p>'));
    const server = page.listen(0);
    try {
      const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}/sso`;
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { corp: oidc({ issuer, clientId: 'a', allowInsecureRequests: true }) } }));
      const res = await request(app).get('/auth/login/corp');
      expect([res.status, res.body.error]).toEqual([502, 'discovery_failed']);
      expect(res.body.error_description).toContain('it answered HTTP 200 with "text/html", not the OP\'s JSON metadata');
    } finally {
      server.close();
    }
  });
});

describe('an unreachable OP', () => {
  test('login answers 503 with op_unreachable and Retry-After, HTML for a browser', async () => {
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    app.use(rp({ baseURL: 'http://127.0.0.1', providers: { down: oidc({ issuer: 'http://127.0.0.1:9', clientId: 'a', allowInsecureRequests: true }) } }));
    const res = await request(app).get('/auth/login/down');
    expect([res.status, res.headers['retry-after']]).toEqual([503, '5']);
    expect(res.body.error).toBe('op_unreachable');
    expect(res.body.error_description).toBe('provider "down": http://127.0.0.1:9/.well-known/openid-configuration could not be reached');
    const page = await request(app).get('/auth/login/down').set('accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.text).toContain('op_unreachable');
  });
});

describe('an OP that accepts connections and never answers (hung while it restarts)', () => {
  test('login answers 503 op_unreachable after the 10 s every call to the OP is given (discovery too: not 30 s)', async () => {
    const hung = createServer(() => undefined);
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    try {
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { hung: oidc({ issuer: `http://127.0.0.1:${(hung.address() as AddressInfo).port}`, clientId: 'a', allowInsecureRequests: true }) } }));
      const started = Date.now();
      const res = await request(app).get('/auth/login/hung');
      expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'op_unreachable', '5']);
      expect(Date.now() - started).toBeLessThan(13_000);
    } finally {
      hung.closeAllConnections();
      await new Promise((resolve) => hung.close(resolve));
    }
  }, 60_000);

  test('a login that comes after a discovery request has hung for half a second asks again: the OP is back, it goes on at once; the answer is then shared', async () => {
    let discoveries = 0;
    const op = createServer((req, res) => {
      discoveries += 1;
      if (discoveries === 1) return; // the first one meets the OP while it restarts: no answer
      const issuer = `http://127.0.0.1:${(op.address() as AddressInfo).port}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
      }));
    });
    await new Promise<void>((resolve) => op.listen(0, '127.0.0.1', resolve));
    try {
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
      app.use(rp({ baseURL: 'http://127.0.0.1', providers: { op: oidc({ issuer: `http://127.0.0.1:${(op.address() as AddressInfo).port}`, clientId: 'a', allowInsecureRequests: true }) } }));
      const first = request(app).get('/auth/login/op').then((r) => r);
      await new Promise((resolve) => setTimeout(resolve, 800));
      const started = Date.now();
      const second = await request(app).get('/auth/login/op');
      expect([second.status, new URL(second.headers.location).pathname]).toEqual([302, '/auth']);
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await request(app).get('/auth/login/op')).status).toBe(302);
      expect(discoveries).toBe(2);
      op.closeAllConnections(); // the hung request ends (as its timeout would): that login is a 503, the known metadata stays
      expect((await first).status).toBe(503);
      expect((await request(app).get('/auth/login/op')).status).toBe(302);
      expect(discoveries).toBe(2);
    } finally {
      op.closeAllConnections();
      await new Promise((resolve) => op.close(resolve));
    }
  }, 60_000);
});

describe('an OP that goes down between login and callback', () => {
  test('the callback answers 503 op_unreachable and logs nobody in', async () => {
    const down = await startRp();
    try {
      const agent = down.agent();
      const callback = await down.startLogin(agent);
      await down.op.close();
      const res = await agent.get(path(callback));
      expect([res.status, res.headers['retry-after']]).toEqual([503, '5']);
      expect(res.body.error).toBe('op_unreachable');
      await expectNoLogin(down, agent);
    } finally {
      await down.close().catch(() => undefined);
    }
  });
});

/** A test RP whose coordination (over its own MemoryStore) has the methods `override` returns laid over it. */
async function rpWithCoordination(override: (inner: Coordination) => Partial<Coordination>): Promise<TestRp> {
  const inner = sessionStoreCoordination(new session.MemoryStore());
  return startRp({ rp: { coordination: { ...inner, ...override(inner) } } });
}
const CONNECTION_LOST = new RpError('store_unavailable', 'Redis failed: Socket closed unexpectedly; check that it is running and reachable');

describe('a callback whose claim the store took, with its reply lost (a connection dropped)', () => {
  let t: TestRp;
  let loseNextClaim = false;
  beforeAll(async () => {
    t = await rpWithCoordination((inner) => ({
      setIfAbsent: async (key, value, ttlMs) => {
        const taken = await inner.setIfAbsent(key, value, ttlMs);
        if (loseNextClaim && key.startsWith('oidc-cb:')) {
          loseNextClaim = false;
          throw CONNECTION_LOST;
        }
        return taken;
      },
    }));
  }, 60_000);
  afterAll(() => t.close());

  test('503 store_unavailable, and the retry it asks for signs the user in (the claim was taken back)', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { returnTo: '/me' });
    loseNextClaim = true;
    const refused = await agent.get(path(callback)).set('accept', 'application/json');
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'store_unavailable', '5']);
    await expectNoLogin(t, agent);
    const retried = await agent.get(path(callback));
    expect([retried.status, retried.headers.location]).toEqual([302, '/me']);
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });
});

describe('a login whose back-channel logout index cannot be written (the coordination store failed)', () => {
  let t: TestRp;
  let failIndex = false;
  beforeAll(async () => {
    t = await rpWithCoordination((inner) => ({
      addToSet: (key, member, ttlMs, max) => (failIndex ? Promise.reject(CONNECTION_LOST) : inner.addToSet(key, member, ttlMs, max)),
    }));
  }, 60_000);
  afterAll(() => t.close());

  test('is not saved: 503 store_unavailable (a login the OP\'s logout could not end would outlive "sign out everywhere"), and a new login works once the store is back', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent, { returnTo: '/me' });
    failIndex = true;
    try {
      const refused = await agent.get(path(callback)).set('accept', 'application/json');
      expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'store_unavailable', '5']);
      await expectNoLogin(t, agent);
    } finally {
      failIndex = false;
    }
    expect((await t.login(agent)).status).toBe(302);
    expect((await agent.get('/me')).status).toBe(200);
  });
});

describe('a callback whose code exchange fails in passing', () => {
  // stands in for the network and the load balancer between the RP and the OP's token endpoint
  let mode: 'ok' | 'down' | '503' | 'lost' | 'userinfo-503' | 'userinfo-slow-503-once' = 'ok';
  let codeRequests = 0;
  let exchange: TestRp;
  beforeAll(async () => {
    exchange = await startRp({
      provider: {
        customFetch: async (url, init) => {
          const isCode = url.endsWith('/token') && String(init.body).includes('grant_type=authorization_code');
          if (isCode) codeRequests += 1;
          if (mode === 'userinfo-slow-503-once' && url.endsWith('/me')) {
            mode = 'ok';
            await new Promise((resolve) => setTimeout(resolve, 300));
            return new Response('<html>503 Service Unavailable</html>', { status: 503, headers: { 'content-type': 'text/html' } });
          }
          if (mode === 'userinfo-503' && url.endsWith('/me')) return new Response('<html>503 Service Unavailable</html>', { status: 503, headers: { 'content-type': 'text/html' } });
          if (isCode && mode === 'down') throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
          if (isCode && mode === '503') return new Response('<html><body>503 Service Unavailable</body></html>', { status: 503, headers: { 'content-type': 'text/html' } });
          const answer = await fetch(url, init as RequestInit);
          // the OP redeemed the code, and its answer was lost on the way back
          if (isCode && mode === 'lost') throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
          return answer;
        },
      },
    });
  }, 60_000);
  afterAll(() => exchange.close());
  beforeEach(() => clearStore(exchange));
  afterEach(() => void (mode = 'ok'));
  const codeGrants = (): number => exchange.op.counts.grants.authorization_code ?? 0;

  test.each([
    ['refused connection', 'op_unreachable', 'down'],
    ['503 page from the load balancer', 'op_unavailable', '503'],
  ] as const)('a %s: 503 %s with Retry-After and no login; the same answer, tried again, signs the user in', async (_what, code, failure) => {
    const agent = exchange.agent();
    const callback = await exchange.startLogin(agent, { returnTo: '/me' });
    mode = failure;
    const refused = await agent.get(path(callback)).set('accept', 'application/json');
    expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, code, '5']);
    await expectNoLogin(exchange, agent);
    mode = 'ok';
    const grants = codeGrants();
    const retried = await agent.get(path(callback));
    expect([retried.status, retried.headers.location]).toEqual([302, '/me']);
    expect((await agent.get('/me')).body.sub).toBe('alice');
    expect(codeGrants() - grants).toBe(1);
    // and used once: a third arrival (signed in now) exchanges nothing
    const third = await agent.get(path(callback)).set('accept', 'application/json');
    expect([third.status, third.headers.location]).toEqual([302, '/']);
    expect(codeGrants() - grants).toBe(1);
  });

  test('the page of that 503 says to sign in again, with a link that starts a login back to the same page', async () => {
    const agent = exchange.agent();
    const callback = await exchange.startLogin(agent, { returnTo: '/me?tab=2' });
    mode = 'down';
    const page = await agent.get(path(callback)).set('accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.text).toContain('sign in again in a few seconds');
    expect(page.text).toContain('<a href="/auth/login/op?returnTo=%2Fme%3Ftab%3D2">Sign in again</a>');
    mode = 'ok';
    const again = await agent.get('/auth/login/op?returnTo=%2Fme%3Ftab%3D2');
    expect(again.status).toBe(302);
    const done = await agent.get(path(await exchange.op.authorize(again.headers.location)));
    expect([done.status, done.headers.location]).toEqual([302, '/me?tab=2']);
  });

  test('an answer lost after the OP redeemed the code: 503, and the retry is refused by the OP (the code is spent), with no login and a link to sign in again', async () => {
    const agent = exchange.agent();
    const callback = await exchange.startLogin(agent);
    mode = 'lost';
    const lost = await agent.get(path(callback)).set('accept', 'application/json');
    expect([lost.status, lost.body.error]).toEqual([503, 'op_unreachable']);
    mode = 'ok';
    const retried = await agent.get(path(callback)).set('accept', 'text/html');
    expect(retried.status).toBe(400);
    expect(retried.text).toContain('invalid_grant');
    expect(retried.text).toContain('<a href="/auth/login/op?returnTo=%2Fme">Sign in again</a>');
    await expectNoLogin(exchange, agent);
  });

  test('the OP\'s userinfo failing after the code was redeemed: 503 with Retry-After and no login; the same answer, tried again, finishes the login from the OP\'s kept answer, without redeeming the spent code again', async () => {
    const agent = exchange.agent();
    const callback = await exchange.startLogin(agent, { returnTo: '/me' });
    mode = 'userinfo-503';
    const before = codeRequests;
    const failed = await agent.get(path(callback)).set('accept', 'application/json');
    expect([failed.status, failed.body.error, failed.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect(codeRequests - before).toBe(1);
    await expectNoLogin(exchange, agent);
    // the kept answer belongs to this browser's pending login: the same URL from another browser gets nothing
    const stranger = await exchange.agent().get(path(callback)).set('accept', 'application/json');
    expect([stranger.status, stranger.body.error]).toEqual([400, 'invalid_state']);
    // still down: the same again, and nothing is redeemed
    expect((await agent.get(path(callback)).set('accept', 'application/json')).status).toBe(503);
    mode = 'ok';
    // tried again 8 s later: the sign-in is as old as it is (review: the time since was read as clock skew, so maxAge took an older sign-in for a fresh one)
    const real = Date.now.bind(Date);
    const later = jest.spyOn(Date, 'now').mockImplementation(() => real() + 8_000);
    const retried = await agent.get(path(callback));
    later.mockRestore();
    expect([retried.status, retried.headers.location]).toEqual([302, '/me']);
    const [signedIn] = await exchange.authenticatedSessions();
    const login = readStoredLogin((await new Promise<session.SessionData>((resolve) => exchange.store.get(signedIn!, (_e, s) => resolve(s!)))).oidc!.auth!);
    expect(login.authTime).toBe(login.idTokenClaims!.auth_time ?? login.idTokenClaims!.iat);
    expect(codeRequests - before).toBe(1); // a second redemption would make the OP revoke what it issued
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice', email: expect.any(String) });
    // and used once: a third arrival (signed in now) exchanges nothing
    expect((await agent.get(path(callback)).set('accept', 'application/json')).headers.location).toBe('/');
    expect(codeRequests - before).toBe(1);
  });

  test('a sign-out does not keep a pending login whose code is spent (the OP\'s tokens kept for a retry): a retry of that callback after the sign-out signs nobody in (review)', async () => {
    const agent = exchange.agent();
    await exchange.login(agent);
    // another tab's sign-in whose userinfo failed after the code was redeemed: the OP's answer waits in the session
    const callback = await exchange.startLogin(agent, { returnTo: '/me' });
    mode = 'userinfo-503';
    expect((await agent.get(path(callback)).set('accept', 'application/json')).status).toBe(503);
    mode = 'ok';
    expect((await agent.get('/auth/logout').set('sec-fetch-site', 'same-origin')).status).toBe(302);
    expect((await agent.get('/me').set('accept', 'application/json')).status).toBe(401);
    const retried = await agent.get(path(callback)).set('accept', 'application/json');
    expect([retried.status, retried.body.error]).toEqual([400, 'invalid_state']);
    await expectNoLogin(exchange, agent);
  });

  test('two copies of the answer at once, and the first meets userinfo down after redeeming the code: the copy finishes the login from the answer the first kept, with no second redemption', async () => {
    const agent = exchange.agent();
    const callback = await exchange.startLogin(agent, { returnTo: '/me' });
    mode = 'userinfo-slow-503-once';
    const before = codeRequests;
    // the copy read the session before the first saved the OP's answer in it: it must read it again
    const answers = await Promise.all([agent.get(path(callback)).set('accept', 'application/json'), agent.get(path(callback)).set('accept', 'application/json')]);
    expect(answers.map((a) => a.status).sort()).toEqual([302, 503]);
    expect(codeRequests - before).toBe(1);
    const signedIn = answers.find((a) => a.status === 302)!;
    expect(signedIn.headers.location).toBe('/me');
    expect((await exchange.agent().get('/me').set('cookie', sessionCookieOf(signedIn))).body.sub).toBe('alice');
  });

  test('an answer that matches no pending login: 400 invalid_state, its page links to a new login at that provider', async () => {
    const page = await exchange.agent().get('/auth/callback/op?code=x&state=unknown').set('accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).toContain('<a href="/auth/login/op">Sign in again</a>');
    const json = await exchange.agent().get('/auth/callback/op?code=x&state=unknown').set('accept', 'application/json');
    expect(json.body).toEqual({ error: 'invalid_state', error_description: expect.any(String) });
  });
});

describe('a failing session store', () => {
  test('a store that fails while the login is saved gives a 503 store_unavailable (Retry-After) and no half-written login', async () => {
    const broken = await startRp();
    try {
      const agent = broken.agent();
      const callback = await broken.startLogin(agent);
      const set = broken.store.set.bind(broken.store);
      let failures = 0;
      broken.store.set = (sid, data, cb) => (data.oidc?.auth && failures++ === 0 ? cb?.(new Error('disk full')) : set(sid, data, cb));
      const res = await agent.get(path(callback));
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.body.error).toBe('store_unavailable');
      await expectNoLogin(broken, agent);
      // the code was redeemed and the login not kept: the answer is spent, said at once (a claim left
      // held would keep its copies waiting, then 503)
      const started = Date.now();
      const again = await agent.get(path(callback)).set('accept', 'application/json');
      expect([again.status, again.body.error]).toEqual([400, 'invalid_state']);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await broken.close();
    }
  });

  test('a store that stalls at the callback: 503 after one deadline, not two (nothing is held back to be saved or touched at the end)', async () => {
    const store = new session.MemoryStore();
    let stalled = false;
    for (const name of ['set', 'touch'] as const) {
      const original = store[name].bind(store) as (...args: unknown[]) => void;
      (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => (stalled ? undefined : original(...args));
    }
    const slow = await startRp({ store: store as never, rp: { storeTimeout: 1000 } });
    try {
      const agent = slow.agent();
      const callback = await slow.startLogin(agent);
      stalled = true;
      const started = Date.now();
      const res = await agent.get(path(callback));
      const took = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('store_unavailable');
      expect(took).toBeGreaterThanOrEqual(1000);
      expect(took).toBeLessThan(1700); // one deadline (at most 1⅛ of it), where the end-of-request save waited out a second
    } finally {
      stalled = false;
      await slow.close();
    }
  });

  test('a store that fails while a second login (a re-login, a step-up) is saved: 503, and the login the browser had stays', async () => {
    const broken = await startRp();
    try {
      const agent = broken.agent();
      await broken.login(agent);
      const before = sessionCookie(agent, broken.baseURL);
      const callback = await broken.startLogin(agent, { account: 'bob' });
      const set = broken.store.set.bind(broken.store);
      let failing = true;
      let failures = 0;
      // only the writes of a login fail (not the callback's claim, which comes before the code exchange)
      broken.store.set = (sid, data, cb) => (failing && data.oidc?.auth ? (failures++, cb?.(new Error('disk full'))) : set(sid, data, cb));
      const res = await agent.get(path(callback));
      failing = false;
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('store_unavailable');
      expect(failures).toBeGreaterThan(0);
      expect(res.headers['set-cookie']).toBeUndefined(); // the browser keeps its session
      expect(sessionCookie(agent, broken.baseURL)).toBe(before);
      const me = await agent.get('/me');
      expect(me.status).toBe(200);
      expect(me.body.sub).toBe('alice'); // the login it had, not destroyed before the new one was saved
      expect(await broken.authenticatedSessions()).toHaveLength(1);
    } finally {
      await broken.close();
    }
  });
});

describe('onError', () => {
  test('lets the app draw its own error page', async () => {
    const mine = await startRp({ rp: { onError: (err, _req, res) => void res.status(418).send(`mine: ${err.code}`) } });
    try {
      const agent = mine.agent();
      const callback = await mine.startLogin(agent, { deny: true });
      const res = await agent.get(path(callback));
      expect(res.status).toBe(418);
      expect(res.text).toBe('mine: op_error');
      // the page is at the callback URL (code, state): it hands them on as no Referer (RFC 9700 §4.2.4)
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    } finally {
      await mine.close();
    }
  });
});

describe('a bug in a provider entry\'s hook (or in the RP)', () => {
  test('is a 500 internal_error, not the OP\'s fault: the page does not show the exception, the log has its stack, and nobody is logged in', async () => {
    const buggy = await startRp({ provider: { profile: (claims) => ({ name: (claims.nickname as unknown as { first: string }).first }) } });
    const logged: unknown[][] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
    try {
      const agent = buggy.agent();
      const callback = await buggy.startLogin(agent);
      const res = await agent.get(path(callback)).set('accept', 'application/json');
      expect(res.status).toBe(500);
      expect(res.body.error).toBe('internal_error');
      expect(res.body.error_description).toMatch(/not an answer of the OpenID Provider.*server's log/);
      expect(res.body.error_description).not.toMatch(/Cannot read|first/);
      const line = logged.find((args) => String(args[0]).includes('internal_error'));
      expect(line).toBeDefined();
      expect((line![1] as Error).stack).toMatch(/Cannot read properties of undefined \(reading 'first'\)/);
      await expectNoLogin(buggy, agent);
    } finally {
      spy.mockRestore();
      await buggy.close();
    }
  });

  test('an Error a hook throws on purpose to refuse the login (validateIdToken) stays a refusal of the ID token, not a 500', async () => {
    const strict = await startRp({ provider: { validateIdToken: () => { throw new Error('only staff may sign in here'); } } });
    try {
      const agent = strict.agent();
      const callback = await strict.startLogin(agent);
      const res = await agent.get(path(callback)).set('accept', 'application/json');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_id_token');
      expect(res.body.error_description).toContain('only staff may sign in here');
      await expectNoLogin(strict, agent);
    } finally {
      await strict.close();
    }
  });
});
