import type { Express } from 'express';
import { RelyingParty, oidc, requireAuth, type Authentication } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

function routes(app: Express): void {
  app.get('/token', requireAuth(), async (req, res, next) => {
    try {
      const token = await req.oidc.getValidAccessToken();
      res.json({ value: token.value, expiresAt: token.expiresAt });
    } catch (err) {
      next(err);
    }
  });
  app.get('/userinfo', requireAuth(), async (req, res, next) => {
    try {
      res.json(await req.oidc.fetchUserInfo());
    } catch (err) {
      next(err);
    }
  });
  app.post('/narrow', requireAuth(), async (req, res) => {
    const token = await req.oidc.refresh({ scope: 'openid' });
    res.json({ scope: token.scope });
  });
}

async function storedAuth(t: TestRp): Promise<{ refreshToken?: string; accessToken?: { value: string } }> {
  const [id] = await t.authenticatedSessions();
  return new Promise((resolve) => t.store.get(id, (_e, s) => resolve(s!.oidc!.auth!)));
}

describe('POST /auth/refresh', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ routes });
  });
  beforeEach(() => clearStore(t));
  afterAll(() => t.close());

  test('refreshes the tokens with one refresh grant and answers JSON without the token', async () => {
    const agent = t.agent();
    await t.login(agent);
    const before = await storedAuth(t);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const res = await agent.post('/auth/refresh');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ tokenType: 'bearer', scope: 'openid profile email', expiresAt: expect.any(Number) });
    expect(t.op.counts.grants.refresh_token).toBe(grants + 1);
    const after = await storedAuth(t);
    expect(after.accessToken!.value).not.toBe(before.accessToken!.value);
    expect(after.refreshToken).not.toBe(before.refreshToken); // rotated by the OP
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('req.oidc.refresh({ scope }) asks for a narrower scope', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/narrow');
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('openid');
  });

  test('without a login it is a 401', async () => {
    const res = await t.agent().post('/auth/refresh');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('not_authenticated');
  });

  test('a refresh refused by the OP (invalid_grant) ends the login with a 401, not a 500', async () => {
    const agent = t.agent();
    await t.login(agent);
    const { refreshToken } = await storedAuth(t);
    const revoked = await fetch(`${t.op.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken!, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    const res = await agent.post('/auth/refresh');
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'refresh_failed', op_error: 'invalid_grant' });
    // which provider, which OP and which endpoint refused, and what to do
    expect(res.body.error_description).toBe(`provider "op" (issuer ${t.op.issuer}), token endpoint ${t.op.issuer}/token: the refresh was refused: `
      + 'the OpenID Provider answered "invalid_grant": grant request is invalid. '
      + 'The OP no longer accepts this login\'s refresh token (revoked, expired or used already): sign in again');
    await expectNoLogin(t, agent);
  });

  test('a browser whose sign-in the OP no longer accepts sees that it has ended, with a way to sign in again (lifetimes probe: before, "Sign-in did not complete" and no link)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const { refreshToken } = await storedAuth(t);
    await fetch(`${t.op.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken!, token_type_hint: 'refresh_token' }),
    });
    const page = await agent.post('/auth/refresh').set({ accept: 'text/html', origin: t.baseURL });
    expect(page.status).toBe(401);
    expect(page.text).toContain('<h1>Your sign-in has ended</h1>');
    expect(page.text).toContain('<a href="/auth/login/op">Sign in again</a>');
  });

  test('a malformed JSON body is a 400', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/refresh').set('content-type', 'application/json').send('{"scope":');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});

describe('getValidAccessToken()', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ routes, op: { ttl: { AccessToken: 2 } } });
  });
  afterAll(() => t.close());

  test('ten concurrent requests with an expired token cause exactly one refresh grant and all succeed', async () => {
    const agent = t.agent();
    await t.login(agent);
    const first = await agent.get('/token');
    expect(first.status).toBe(200);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const answers = await Promise.all(Array.from({ length: 10 }, () => agent.get('/token')));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(t.op.counts.grants.refresh_token).toBe(grants + 1);
    const values = new Set(answers.map((a) => a.body.value));
    expect(values.size).toBe(1);
    expect(values.has(first.body.value)).toBe(false);
    // the new token is valid at the OP
    const userinfo = await fetch(`${t.op.issuer}/me`, { headers: { authorization: `Bearer ${answers[0].body.value}` } });
    expect(userinfo.status).toBe(200);
  });

  test('fetchUserInfo() with an expired access token refreshes it first (as fetch() does), once', async () => {
    const agent = t.agent();
    await t.login(agent, { account: 'bob' });
    const grants = t.op.counts.grants.refresh_token ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 3100));
    // before: the expired token went to the OP as it was, which answered invalid_token (a 400 op_error here)
    const res = await agent.get('/userinfo');
    expect([res.status, res.body.sub]).toEqual([200, 'bob']);
    expect(t.op.counts.grants.refresh_token).toBe(grants + 1);
    expect((await agent.get('/userinfo')).status).toBe(200);
    expect(t.op.counts.grants.refresh_token).toBe(grants + 1);
  });

  test('an unexpired token is returned without a refresh', async () => {
    const agent = t.agent();
    await t.login(agent);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const a = await agent.get('/token');
    const b = await agent.get('/token');
    expect(a.body.value).toBe(b.body.value);
    expect(t.op.counts.grants.refresh_token ?? 0).toBe(grants);
  });
});

// The OP's expiry less a margin (`expiryOf`): the token's trip to the API, and instances whose clocks
// differ by a few seconds (the instance that got the token writes its expiry, another compares it
// with its own clock). Before, `expiresAt` was the OP's expiry itself: an instance 5 s behind the one
// that got a token handed it out for 5 s after the OP had expired it.
describe('getValidAccessToken() refreshes before the OP\'s expiry', () => {
  test('a token of an hour: expiresAt is 30 s before the expiry the OP gives it (introspection)', async () => {
    const t = await startRp({ routes, op: { features: { introspection: { enabled: true } } } });
    try {
      const agent = t.agent();
      await t.login(agent);
      const { body } = await agent.get('/token');
      const introspected = await fetch(`${t.op.issuer}/token/introspection`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: body.value }),
      }).then((r) => r.json() as Promise<{ active: boolean; exp: number }>);
      expect(introspected.active).toBe(true);
      expect(body.expiresAt).toBeGreaterThanOrEqual(introspected.exp - 31);
      expect(body.expiresAt).toBeLessThanOrEqual(introspected.exp - 29);
    } finally {
      await t.close();
    }
  });

  test('a token of 8 s is refreshed 2 s before the OP\'s expiry, and what comes back is accepted by the OP', async () => {
    const t = await startRp({ routes, op: { ttl: { AccessToken: 8 } } });
    try {
      const agent = t.agent();
      await t.login(agent);
      const first = (await agent.get('/token')).body as { value: string; expiresAt: number };
      const grants = t.op.counts.grants.refresh_token ?? 0;
      expect(first.expiresAt - Date.now() / 1000).toBeLessThanOrEqual(6); // before: 8 s, the OP's expiry itself
      await new Promise((r) => setTimeout(r, Math.max(0, first.expiresAt * 1000 - Date.now()) + 200));
      const second = (await agent.get('/token')).body as { value: string; expiresAt: number };
      expect(t.op.counts.grants.refresh_token).toBe(grants + 1);
      expect(second.value).not.toBe(first.value);
      const userinfo = await fetch(`${t.op.issuer}/me`, { headers: { authorization: `Bearer ${second.value}` } });
      expect(userinfo.status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

/**
 * `customFetch` for the RP that holds each request to the OP's token endpoint `ms` (a slow OP), and
 * `started()`: a promise of the next such request having been sent.
 */
function slowTokenEndpoint(ms: number): { customFetch: (url: string, init: unknown) => Promise<Response>; started: () => Promise<void> } {
  let signal: () => void = () => undefined;
  return {
    customFetch: async (url, init) => {
      if (new URL(url).pathname === '/token') {
        signal();
        await new Promise((resolve) => setTimeout(resolve, ms));
      }
      return fetch(url, init as RequestInit);
    },
    started: () => new Promise<void>((resolve) => void (signal = resolve)),
  };
}

// A plain refresh (POST /auth/refresh, getValidAccessToken()) and req.oidc.refresh({ scope }) of one login
// at once both spent its refresh token: single-flight was keyed by scope. The OP, which rotates refresh
// tokens, took the second use for a replay and revoked the grant (RFC 9700 §4.14.2): the narrowed call
// was a 401 refresh_failed and the login ended at its next refresh (probe24 F1).
describe('a narrowed refresh beside a plain one of the same login (an OP that rotates refresh tokens)', () => {
  const slow = slowTokenEndpoint(300);
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ routes, provider: { customFetch: slow.customFetch } });
  });
  afterAll(() => t.close());

  test.each([
    ['the plain one first', ['/auth/refresh', '/narrow']],
    ['the narrowed one first', ['/narrow', '/auth/refresh']],
  ])('%s: the second waits and goes on from the first one\'s rotated token; both succeed and the login stays', async (_label, [first, second]) => {
    const agent = t.agent();
    await t.login(agent);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const sent = slow.started();
    const one = agent.post(first!).then((res) => res); // (sent now: supertest sends once awaited)
    await sent; // the first refresh grant is at the OP: the second request comes while it runs
    const [a, b] = await Promise.all([one, agent.post(second!)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const narrowed = first === '/narrow' ? a : b;
    expect(narrowed.body.scope).toBe('openid');
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(2); // one after the other, the second with the rotated token
    // the session holds a refresh token the OP still takes: the login goes on
    const later = await agent.post('/auth/refresh');
    expect(later.status).toBe(200);
    expect((await agent.get('/me')).status).toBe(200);
  });
});

// An OP that hands back an earlier refresh token (A → B, then B → A): a refresh of A that goes on from
// the rotations it finds must not go back to A, whose refresh may be its own run (it waited on itself,
// and every later refresh of A in the process queued behind it: review)
describe('refresh after an OP handed back an earlier refresh token', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ op: { config: { rotateRefreshToken: true } } });
  });
  afterAll(() => t.close());

  test('a narrowed refresh of A after A → B → A settles, and so does one of A with another scope after it', async () => {
    let first: string | undefined;
    let refreshes = 0;
    const customFetch = async (url: string, init: RequestInit): Promise<Response> => {
      const res = await fetch(url, init);
      if (!String(url).endsWith('/token') || !String(init.body).includes('grant_type=refresh_token')) return res;
      refreshes += 1;
      const body = await res.json() as Record<string, unknown>;
      if (refreshes === 2 && first) body.refresh_token = first; // the second refresh hands back the first token
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email offline_access', allowInsecureRequests: true, customFetch: customFetch as never }) },
    });
    const request = await rp.authorizationRequest('op', { returnTo: '/', params: { prompt: 'consent' } });
    const a: Authentication = await rp.finalize(request.transaction, request.state, (await t.op.authorize(request.url)).searchParams);
    first = a.refreshToken;
    const b = await rp.refresh(a);
    const back = await rp.refresh(b);
    expect(back.refreshToken).toBe(a.refreshToken);
    const settled = (p: Promise<unknown>): Promise<string> => Promise.race([
      p.then(() => 'settled', () => 'settled'), new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 5000).unref()),
    ]);
    expect(await settled(rp.refresh(a, { scope: 'openid' }))).toBe('settled');
    expect(await settled(rp.refresh(back, { scope: 'openid profile' }))).toBe('settled');
  }, 60_000);
});
