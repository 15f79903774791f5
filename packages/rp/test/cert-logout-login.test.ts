/**
 * OpenID Connect RP certification: third-party-initiated login (OIDC Core 4, rp-3rd_party-init-login)
 * and Front-Channel Logout (OpenID Front-Channel Logout 1.0, rp-frontchannel-rpinitlogout and the
 * OP-initiated variant), against the real oidc-provider v9.
 *
 * oidc-provider v9 has no front-channel logout of its own (it was dropped with the draft), so its
 * logout pages play that part here: `logoutSource` (the confirmation page, the OP session still
 * alive) takes the `sid` of client "app" from the OP session, and `postLogoutSuccessSource` (the
 * page after an OP-initiated logout) renders the iframe an OP with front-channel logout renders:
 * `{frontchannel_logout_uri}?iss={issuer}&sid={sid}`. An RP-initiated logout goes back to the
 * RP's post_logout_redirect_uri instead of that page, so there the test requests that same URL
 * itself, as the OP's iframe would, with no cookies (an iframe on the OP's site may get none).
 * The `sid` in the ID token comes from the client's `backchannel_logout_session_required`
 * (oidc-provider's only trigger for it); the RP entry has `backchannelLogout: false`, so the
 * OP's back-channel call is refused (404) and only the front channel can end a session here.
 *
 * rp-init-logout (RP-Initiated Logout, state round trip) is played in logout.test.ts
 * ("rp-init-logout state (RP-Initiated Logout 1.0 §2–3)").
 */
import { randomBytes } from 'node:crypto';
import type { KoaContextWithOIDC } from 'oidc-provider';
import request from 'supertest';
import { oidc, readStoredLogin, type OidcSessionData } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

let t: TestRp;
/** sids of client "app" in the OP sessions being logged out (taken by the OP's logout page). */
let pendingSids: string[] = [];
/** login_hint of each authorization request the OP accepted. */
const opLoginHints: Array<string | undefined> = [];

/** The front-channel logout URL of the RP, as the OP frames it (frontchannel_logout_session_required). */
const frontchannelUri = (sid: string): string =>
  `${t.baseURL}/auth/frontchannel-logout/op?iss=${encodeURIComponent(t.op.issuer)}&sid=${encodeURIComponent(sid)}`;

beforeAll(async () => {
  t = await startRp({
    provider: { backchannelLogout: false },
    routes: (app) => app.get('/bye', (_req, res) => void res.send('bye')),
    op: {
      features: {
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
            const sid = (ctx.oidc.session as unknown as { authorizations?: Record<string, { sid?: string }> } | undefined)?.authorizations?.[CLIENT_ID]?.sid;
            if (sid) pendingSids.push(sid);
            ctx.body = `<!doctype html><title>Sign out?</title>${form}<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`;
          },
          postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
            const frames = pendingSids.map((sid) => `<iframe src="${frontchannelUri(sid).replace(/&/g, '&amp;')}"></iframe>`).join('');
            pendingSids = [];
            ctx.body = `<!doctype html><title>Signed out</title><h1>Signed out</h1>${frames}`;
          },
        },
      },
    },
  });
  t.op.provider.on('authorization.accepted', (ctx: KoaContextWithOIDC) => void opLoginHints.push(ctx.oidc.params?.login_hint as string | undefined));
});
beforeEach(async () => {
  await clearStore(t);
  pendingSids = [];
  opLoginHints.length = 0;
});
afterAll(() => t.close());

/** Every record in the session store (sessions and the RP's coordination records). */
async function storeSize(): Promise<number> {
  const all = await new Promise<Record<string, unknown>>((resolve) => t.store.all((_e, s) => resolve((s ?? {}) as Record<string, unknown>)));
  return Object.keys(all).length;
}

/** The `sid` of the ID token kept by each logged-in session. */
async function sidsInStore(): Promise<unknown[]> {
  const all = await new Promise<Record<string, { oidc?: OidcSessionData }>>((resolve) => t.store.all((_e, s) => resolve((s ?? {}) as never)));
  return Object.values(all).filter((s) => s.oidc?.auth).map((s) => readStoredLogin(s.oidc!.auth!).idTokenClaims?.sid);
}

/** Resolves when the OP's next back-channel logout call fails (at most 10 s); with the error. */
function nextBackchannelError(): Promise<Error> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no backchannel.error event within 10 s')), 10_000);
    t.op.provider.once('backchannel.error', (_ctx, err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('third-party-initiated login (OIDC Core 4)', () => {
  /** Walks the OP as alice from the RP's redirect, comes back to the callback; returns where the RP sends the browser. */
  async function finish(agent: request.Agent, start: request.Response): Promise<string> {
    expect(start.status).toBe((start as unknown as { req: { method: string } }).req.method === 'POST' ? 303 : 302); // a POST is answered 303 (RFC 9110 §15.4.4)
    const callback = await t.op.authorize(start.headers.location);
    const res = await agent.get(callback.pathname + callback.search);
    expect(res.status).toBe(302);
    return res.headers.location;
  }

  test('rp-3rd_party-init-login: GET /auth/login/op?iss&target_link_uri&login_hint goes to the OP with login_hint, and the user lands on target_link_uri', async () => {
    const agent = t.agent();
    const start = await agent.get('/auth/login/op').query({ iss: t.op.issuer, target_link_uri: `${t.baseURL}/me?tab=2#top`, login_hint: 'alice' });
    expect(start.status).toBe(302);
    const url = new URL(start.headers.location);
    expect(url.origin + url.pathname).toBe(`${t.op.issuer}/auth`);
    expect(url.searchParams.get('login_hint')).toBe('alice');
    expect(url.searchParams.get('iss')).toBeNull(); // the initiation's own parameters are not forwarded
    expect(url.searchParams.get('target_link_uri')).toBeNull();

    expect(await finish(agent, start)).toBe('/me?tab=2#top');
    expect(opLoginHints).toEqual(['alice']); // the OP received it
    const me = await agent.get('/me?tab=2');
    expect(me.status).toBe(200);
    expect(me.body.sub).toBe('alice');
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  test('GET /auth/login?iss=… without a provider name: the provider is found by its issuer', async () => {
    const agent = t.agent();
    const start = await agent.get('/auth/login').query({ iss: t.op.issuer, target_link_uri: `${t.baseURL}/me`, login_hint: 'alice' });
    expect(new URL(start.headers.location).searchParams.get('login_hint')).toBe('alice');
    expect(await finish(agent, start)).toBe('/me');
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('POST /auth/login/op (a form from the third party) works the same', async () => {
    const agent = t.agent();
    const start = await agent.post('/auth/login/op').type('form').set('origin', 'https://portal.example')
      .send({ iss: t.op.issuer, target_link_uri: `${t.baseURL}/me`, login_hint: 'alice' });
    expect(new URL(start.headers.location).searchParams.get('login_hint')).toBe('alice');
    expect(await finish(agent, start)).toBe('/me');
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('POST /auth/login (no provider name, found by iss) works too', async () => {
    const agent = t.agent();
    const start = await agent.post('/auth/login').type('form').send({ iss: t.op.issuer, target_link_uri: `${t.baseURL}/me` });
    expect(await finish(agent, start)).toBe('/me');
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('only iss (no target_link_uri, no login_hint): the user lands on /, and no login_hint is sent', async () => {
    const agent = t.agent();
    const start = await agent.get('/auth/login/op').query({ iss: t.op.issuer });
    expect(new URL(start.headers.location).searchParams.has('login_hint')).toBe(false);
    expect(await finish(agent, start)).toBe('/');
    expect(opLoginHints).toEqual([undefined]);
  });

  describe('refused: nothing is stored and no login starts', () => {
    const other = 'https://evil.example';
    const cases: Array<[string, 'get' | 'post', string, (base: string, iss: string) => Record<string, string | string[]>, number, string]> = [
      ['wrong iss', 'get', '/auth/login/op', (b) => ({ iss: other, target_link_uri: `${b}/me` }), 400, 'invalid_request'],
      ['iss of this OP with a trailing path', 'get', '/auth/login/op', (b, i) => ({ iss: `${i}/other`, target_link_uri: `${b}/me` }), 400, 'invalid_request'],
      ['no iss, but a target_link_uri', 'get', '/auth/login/op', (b) => ({ target_link_uri: `${b}/me` }), 400, 'invalid_request'],
      ['iss twice', 'get', '/auth/login/op', (b, i) => ({ iss: [i, i], target_link_uri: `${b}/me` }), 400, 'invalid_request'],
      ['target_link_uri on another origin', 'get', '/auth/login/op', (_b, i) => ({ iss: i, target_link_uri: `${other}/me` }), 400, 'invalid_request'],
      ['target_link_uri on another port of the same host', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b.replace(/:\d+$/, ':1')}/me` }), 400, 'invalid_request'],
      ['target_link_uri javascript:', 'get', '/auth/login/op', (_b, i) => ({ iss: i, target_link_uri: 'javascript:alert(document.cookie)' }), 400, 'invalid_request'],
      ['target_link_uri //evil (scheme-relative)', 'get', '/auth/login/op', (_b, i) => ({ iss: i, target_link_uri: '//evil.example/me' }), 400, 'invalid_request'],
      ['target_link_uri a bare path', 'get', '/auth/login/op', (_b, i) => ({ iss: i, target_link_uri: '/me' }), 400, 'invalid_request'],
      ['target_link_uri with the app as userinfo of another host', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}@evil.example/me` }), 400, 'invalid_request'],
      ['target_link_uri with a backslash', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}\\@evil.example/me` }), 400, 'invalid_request'],
      // this origin, but the path alone ("//evil.example/…") would be a protocol-relative redirect off the app
      ['target_link_uri of this app with a path starting //', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}//evil.example/phish` }), 400, 'invalid_request'],
      ['target_link_uri whose dot segments make its path //', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}/.//evil.example/` }), 400, 'invalid_request'],
      ['target_link_uri whose .. segment makes its path //', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}/x/..//evil.example/` }), 400, 'invalid_request'],
      ['POST: target_link_uri of this app with a path starting //', 'post', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}//evil.example/phish` }), 400, 'invalid_request'],
      ['target_link_uri very long (over 2048)', 'get', '/auth/login/op', (b, i) => ({ iss: i, target_link_uri: `${b}/me?x=${'a'.repeat(3000)}` }), 400, 'invalid_request'],
      ['POST with wrong iss', 'post', '/auth/login/op', (b) => ({ iss: other, target_link_uri: `${b}/me` }), 400, 'invalid_request'],
      ['POST with target_link_uri on another origin', 'post', '/auth/login/op', (_b, i) => ({ iss: i, target_link_uri: `${other}/me` }), 400, 'invalid_request'],
      ['iss of no provider, without a provider name', 'get', '/auth/login', (b) => ({ iss: other, target_link_uri: `${b}/me` }), 404, 'unknown_provider'],
      ['POST: iss of no provider, without a provider name', 'post', '/auth/login', (b) => ({ iss: other, target_link_uri: `${b}/me` }), 404, 'unknown_provider'],
      ['an unknown provider name', 'get', '/auth/login/nope', (b, i) => ({ iss: i, target_link_uri: `${b}/me` }), 404, 'unknown_provider'],
    ];
    test.each(cases)('%s', async (_what, method, path, params, status, code) => {
      const agent = t.agent();
      const input = params(t.baseURL, t.op.issuer);
      const res = method === 'get'
        ? await agent.get(path).query(input)
        : await agent.post(path).type('form').send(new URLSearchParams(Object.entries(input).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x]))).toString());
      expect(res.status).toBe(status);
      expect(res.body.error).toBe(code);
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(await storeSize()).toBe(0);
      expect(opLoginHints).toEqual([]);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('front-channel logout (OpenID Front-Channel Logout 1.0)', () => {
  /** The answer of the front-channel URL is a page the OP may frame, and only the OP. */
  function expectFramablePage(res: request.Response): void {
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBeUndefined();
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(new RegExp(`(^|;)\\s*frame-ancestors ${new URL(t.op.issuer).origin.replace(/[.]/g, '\\.')}\\s*(;|$)`));
  }

  test('rp-frontchannel-rpinitlogout: RP-initiated logout in one tab; the OP\'s front-channel request (iss + sid) ends the other tab\'s session of the same OP session', async () => {
    const browser = t.op.browser();
    const tab1 = t.agent();
    const tab2 = t.agent();
    await t.login(tab1, { browser });
    await t.login(tab2, { browser }); // single sign-on: same OP session, same sid
    const sids = await sidsInStore();
    expect(sids).toHaveLength(2);
    expect(typeof sids[0]).toBe('string');
    expect(sids[1]).toBe(sids[0]);

    const backchannelRefused = nextBackchannelError();
    const res = await tab1.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    expect(res.headers.location.startsWith(`${t.op.issuer}/session/end`)).toBe(true);
    const back = await browser.endSession(res.headers.location);
    expect(back.origin + back.pathname).toBe(`${t.baseURL}/bye`);
    expect((await backchannelRefused).message).toMatch(/404/); // the OP's back-channel call was refused (backchannelLogout: false)...
    expect((await tab2.get('/me')).status).toBe(200); // ...so tab 2 is still signed in
    expect(await t.authenticatedSessions()).toHaveLength(1);
    expect(pendingSids).toEqual([sids[0]]); // the OP session's sid for this client

    // the OP's front-channel iframe, without the user's cookies
    const front = await request(t.server).get(new URL(frontchannelUri(pendingSids[0])).pathname + new URL(frontchannelUri(pendingSids[0])).search);
    expectFramablePage(front);
    await expectNoLogin(t, tab2);
    await expectNoLogin(t, tab1);
  });

  test('OP-initiated: the OP\'s logout page frames the front-channel URL; every RP session of that OP session ends, another OP session\'s login stays', async () => {
    const browserA = t.op.browser();
    const browserB = t.op.browser();
    const a1 = t.agent();
    const a2 = t.agent();
    const b1 = t.agent();
    await t.login(a1, { browser: browserA });
    await t.login(a2, { browser: browserA });
    await t.login(b1, { browser: browserB, account: 'bob' });
    const [sidA, , sidB] = await sidsInStore();
    expect(sidB).not.toBe(sidA);

    // logout started at the OP (no id_token_hint, no post_logout_redirect_uri): the OP's own success page
    const success = await browserA.endSession(`${t.op.issuer}/session/end`);
    expect(success.href).toBe(`${t.op.issuer}/session/end/success`);
    const page = await (await fetch(success)).text();
    const frames = [...page.matchAll(/<iframe src="([^"]+)"/g)].map((m) => new URL(m[1].replace(/&amp;/g, '&')));
    expect(frames).toHaveLength(1);
    expect(frames[0].searchParams.get('iss')).toBe(t.op.issuer);

    for (const frame of frames) expectFramablePage(await request(t.server).get(frame.pathname + frame.search));
    expect((await a1.get('/me')).status).toBe(401);
    expect((await a2.get('/me')).status).toBe(401);
    const stays = await b1.get('/me');
    expect(stays.status).toBe(200);
    expect(stays.body.sub).toBe('bob');
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  test('a second front-channel request for the same sid is answered the same and ends nothing else', async () => {
    const browser = t.op.browser();
    await t.login(t.agent(), { browser });
    const [sid] = await sidsInStore();
    const other = t.agent();
    await t.login(other); // another OP session
    const url = new URL(frontchannelUri(String(sid)));
    expectFramablePage(await request(t.server).get(url.pathname + url.search));
    expectFramablePage(await request(t.server).get(url.pathname + url.search));
    expect((await other.get('/me')).status).toBe(200);
    expect(await t.authenticatedSessions()).toHaveLength(1);
  });

  describe('refused or without effect: the login stays', () => {
    let agent: request.Agent;
    let sid: string;
    beforeEach(async () => {
      agent = t.agent();
      await t.login(agent);
      [sid] = (await sidsInStore()) as string[];
      expect(typeof sid).toBe('string');
    });
    afterEach(async () => {
      expect((await agent.get('/me')).status).toBe(200);
      expect(await t.authenticatedSessions()).toHaveLength(1);
    });

    const q = (params: Record<string, string | undefined>): string =>
      Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join('&');

    test.each([
      ['missing iss', 400, 'invalid_request', (s: string) => `/auth/frontchannel-logout/op?${q({ sid: s })}`],
      ['wrong iss', 400, 'invalid_request', (s: string) => `/auth/frontchannel-logout/op?${q({ iss: 'https://evil.example', sid: s })}`],
      ['iss twice', 400, 'invalid_request', (s: string) => `/auth/frontchannel-logout/op?${q({ iss: t.op.issuer, sid: s })}&iss=${encodeURIComponent(t.op.issuer)}`],
      ['missing sid', 400, 'invalid_request', () => `/auth/frontchannel-logout/op?${q({ iss: t.op.issuer })}`],
      ['empty sid', 400, 'invalid_request', () => `/auth/frontchannel-logout/op?${q({ iss: t.op.issuer, sid: '' })}`],
      ['sid twice', 400, 'invalid_request', (s: string) => `/auth/frontchannel-logout/op?${q({ iss: t.op.issuer, sid: s })}&sid=${encodeURIComponent(s)}`],
      ['sid over 4096 characters (longer than any login takes)', 400, 'invalid_request', () => `/auth/frontchannel-logout/op?${q({ iss: t.op.issuer, sid: 'x'.repeat(4097) })}`],
      ['unknown provider', 404, 'unknown_provider', (s: string) => `/auth/frontchannel-logout/nope?${q({ iss: t.op.issuer, sid: s })}`],
    ])('%s → %i %s', async (_what, status, code, path) => {
      const res = await request(t.server).get(path(sid));
      expect(res.status).toBe(status);
      expect(res.body.error).toBe(code);
    });

    test('a provider that does not use front-channel logout (frontchannelLogout: false) → 404 unknown_provider', async () => {
      t.relyingParty.addProvider('nofc', oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true, frontchannelLogout: false }));
      const res = await request(t.server).get(`/auth/frontchannel-logout/nofc?${q({ iss: t.op.issuer, sid })}`);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('unknown_provider');
    });

    test('a sid of no session (guessed) → 200 (nothing to end), and nothing ends', async () => {
      expectFramablePage(await request(t.server).get(`/auth/frontchannel-logout/op?${q({ iss: t.op.issuer, sid: randomBytes(16).toString('base64url') })}`));
    });

    test('the sid of this session sent for another provider name ends nothing there', async () => {
      t.relyingParty.addProvider('twin', oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true }));
      expectFramablePage(await request(t.server).get(`/auth/frontchannel-logout/twin?${q({ iss: t.op.issuer, sid })}`));
    });
  });
});
