/**
 * Interop: our RP (`rp()` + `oidc()`) signs in through Glewlwyd, an OpenID-certified OP written by
 * someone else (Debian package `glewlwyd` 2.7), started here on loopback from a temp dir (SQLite,
 * configured through its admin API: RS256 key made here, user alice, a confidential client with
 * client_secret_basic). It proves that against Glewlwyd our RP
 *   1. reads its discovery document (issuer `http://127.0.0.1:<port>/api/oidc`);
 *   2. logs alice in: PKCE S256 + state + nonce to Glewlwyd, code exchange, RS256 ID token checked,
 *      userinfo; a requireAuth() route answers her `sub`, name and email;
 *   3. keeps the login in its session (later requests make no trip to Glewlwyd);
 *   4. refreshes with Glewlwyd's refresh token (`POST /auth/refresh`);
 *   5. logs out through Glewlwyd's end_session_endpoint (RP-initiated logout, state round trip), after
 *      which neither our session nor Glewlwyd's, nor the refresh token, is left;
 *   6. refuses a callback whose `state` was tampered with, writing no login;
 *  10. ends alice's session when Glewlwyd sends a back-channel logout token.
 * And it pins what Glewlwyd does differently:
 *   7. Glewlwyd does not decode the Basic header (RFC 6749 §2.3.1 says it should): a client id and
 *      secret with '-' still log in, because our RP leaves '-' unescaped; 8. so does client_secret_post;
 *   9. Glewlwyd's ID tokens say `auth_time: 0`, so requireAuth({ maxAge }) can never be met;
 *  11. Glewlwyd answers a revoked refresh token with a bare 400 (no error JSON): the RP ends the login.
 * The end user's part at Glewlwyd is done with the REST calls its login page makes (see
 * support/glewlwyd.ts), so Glewlwyd issues every redirect, code and token itself.
 * Needs the Debian package `glewlwyd` (it brings `sqlite3`); fails, never skips, without it.
 * ≈ 3 s. INTEROP_GLEWLWYD_LOG=DEBUG makes Glewlwyd's log (in its temp dir) verbose.
 */
import type { Server } from 'node:http';
import type request from 'supertest';
import supertest from 'supertest';
import { oidc, requireAuth, type RelyingParty } from '@openid-express/rp';
import { startGlewlwyd, type Glewlwyd, type GlewlwydUser } from './support/glewlwyd.js';
import { listenRp, type RpUnderTest } from './support/rp-under-test.js';

// letters and digits only, like the ids and secrets Glewlwyd makes itself (see test 7 for why)
const CLIENT_ID = 'openidexpress';
const CLIENT_SECRET = 'GlewlwydClientSecret0123456789abcdef';
const ALICE = { username: 'alice', password: 'alice-password-0123', name: 'Alice Liddell', email: 'alice@example.org' };
const PROVIDER = 'glewlwyd';
/** The same Glewlwyd through clients whose id and secret contain '-' (a common client id shape). */
const DASHED = { provider: 'dashed', clientId: 'openid-express', clientSecret: 'glewlwyd-client-secret-0123456789abcdef' };
const DASHED_POST = { provider: 'dashedpost', clientId: 'openid-express-post', clientSecret: 'glewlwyd-client-secret-0123456789abcdef' };

describe('our RP against Glewlwyd (an OpenID-certified OP nobody here wrote)', () => {
  let gw: Glewlwyd | undefined;
  let t: RpUnderTest;
  let server: Server;
  let baseURL = '';
  let relyingParty: RelyingParty;
  /** Every request our RP made to Glewlwyd (`METHOD URL [grant_type]`). */
  let toGlewlwyd: string[] = [];
  /** The RP's answers to Glewlwyd's back-channel logout tokens. */
  const logoutTokens: number[] = [];

  beforeAll(async () => {
    t = await listenRp();
    ({ server, baseURL, toOp: toGlewlwyd } = t);
    const client = (clientId: string, clientSecret: string, provider: string, tokenEndpointAuthMethods?: string[], backchannel = false) => ({
      clientId, clientSecret, tokenEndpointAuthMethods,
      backchannelLogoutUri: backchannel ? `${baseURL}/auth/backchannel-logout/${provider}` : undefined,
      redirectUris: [`${baseURL}/auth/callback/${provider}`],
      postLogoutRedirectUris: [`${baseURL}/`, `${baseURL}/bye`],
    });
    gw = await startGlewlwyd({
      user: ALICE,
      clients: [
        client(CLIENT_ID, CLIENT_SECRET, PROVIDER, undefined, true),
        client(DASHED.clientId, DASHED.clientSecret, DASHED.provider),
        client(DASHED_POST.clientId, DASHED_POST.clientSecret, DASHED_POST.provider, ['client_secret_post']),
      ],
    });
    const entry = (clientId: string, clientSecret: string, more: Partial<Parameters<typeof oidc>[0]> = {}) => oidc({
      issuer: gw!.issuer, clientId, clientSecret, scope: 'openid email', allowInsecureRequests: true, customFetch: t.recording, ...more,
    });
    t.mount({
      [PROVIDER]: entry(CLIENT_ID, CLIENT_SECRET),
      [DASHED.provider]: entry(DASHED.clientId, DASHED.clientSecret),
      [DASHED_POST.provider]: entry(DASHED_POST.clientId, DASHED_POST.clientSecret, { tokenEndpointAuthMethod: 'client_secret_post' }),
    }, {
      before: (app) => app.use('/auth/backchannel-logout', (_req, res, next) => {
        res.on('finish', () => logoutTokens.push(res.statusCode));
        next();
      }),
      after: (app) => app.get('/recent', requireAuth({ maxAge: 300 }), (req, res) => void res.json({ sub: req.oidc.user?.sub })),
    });
    relyingParty = t.relyingParty;
  }, 30_000);

  afterAll(async () => {
    await t?.close();
    await gw?.stop();
  });

  const logins = () => t.logins();

  /** Starts a login at the RP and walks Glewlwyd as alice; returns the RP's authorization URL and Glewlwyd's redirect back. */
  async function authorize(agent: request.Agent, user: GlewlwydUser, provider = PROVIDER): Promise<{ authorization: URL; callback: URL }> {
    const start = await agent.get(`/auth/login/${provider}?returnTo=/me`);
    if (start.status !== 302) throw new Error(`login start answered ${start.status}: ${start.text}`);
    const authorization = new URL(start.headers.location);
    const callback = await user.authorize(authorization.href, ALICE);
    return { authorization, callback };
  }

  /** A whole login; returns the RP's answer to the callback. */
  async function login(agent: request.Agent, user: GlewlwydUser, provider = PROVIDER): Promise<request.Response> {
    const { callback } = await authorize(agent, user, provider);
    return agent.get(callback.pathname + callback.search);
  }

  beforeEach(() => t.clearStore());

  test('1. discovery: our RP reads Glewlwyd\'s /.well-known/openid-configuration', async () => {
    const raw = await fetch(`${gw!.issuer}/.well-known/openid-configuration`);
    expect(raw.status).toBe(200);
    const doc = await raw.json() as Record<string, unknown>;
    expect(doc.issuer).toBe(`${gw!.origin}/api/oidc`);

    const config = await relyingParty.providerInfo(PROVIDER);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(gw!.issuer);
    expect(meta.authorization_endpoint).toBe(`${gw!.issuer}/auth`);
    expect(meta.token_endpoint).toBe(`${gw!.issuer}/token`);
    expect(meta.userinfo_endpoint).toBe(`${gw!.issuer}/userinfo`);
    expect(meta.jwks_uri).toBe(`${gw!.issuer}/jwks`);
    expect(meta.end_session_endpoint).toBe(`${gw!.issuer}/end_session`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.id_token_signing_alg_values_supported).toContain('RS256');
    expect(meta.token_endpoint_auth_methods_supported).toContain('client_secret_basic');
    expect(toGlewlwyd).toContain(`GET ${gw!.issuer}/.well-known/openid-configuration`);
  });

  test('2. login: PKCE S256 + state + nonce to Glewlwyd, code exchange, ID token and userinfo, then requireAuth() lets alice in', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    const { authorization, callback } = await authorize(agent, user);

    // what our RP asked of Glewlwyd
    expect(`${authorization.origin}${authorization.pathname}`).toBe(`${gw!.issuer}/auth`);
    const asked = authorization.searchParams;
    expect(asked.get('response_type')).toBe('code');
    expect(asked.get('client_id')).toBe(CLIENT_ID);
    expect(asked.get('redirect_uri')).toBe(`${baseURL}/auth/callback/${PROVIDER}`);
    expect(asked.get('scope')).toBe('openid email');
    expect(asked.get('code_challenge_method')).toBe('S256');
    expect(asked.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(asked.get('state')).toMatch(/^[\w-]{20,}$/);
    expect(asked.get('nonce')).toMatch(/^[\w-]{20,}$/);

    // what Glewlwyd sent back: our state, a code (and its session_state)
    expect(`${callback.origin}${callback.pathname}`).toBe(`${baseURL}/auth/callback/${PROVIDER}`);
    expect(callback.searchParams.get('state')).toBe(asked.get('state'));
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('error')).toBeNull();

    const before = toGlewlwyd.length;
    const res = await agent.get(callback.pathname + callback.search);
    expect({ status: res.status, location: res.headers.location, body: res.body }).toEqual({ status: 302, location: '/me', body: {} });
    // the code exchange (client_secret_basic, with the PKCE verifier) happened at Glewlwyd's token endpoint
    expect(toGlewlwyd.slice(before)).toContain(`POST ${gw!.issuer}/token authorization_code`);

    const me = await agent.get('/me');
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ provider: PROVIDER, sub: expect.stringMatching(/^\w+$/), name: ALICE.name, email: ALICE.email });
    expect(me.body.idToken).toEqual({ iss: gw!.issuer, aud: CLIENT_ID, sub: me.body.user.sub, nonce: 'string' });
    expect(me.body.accessToken.scope).toBe('openid email');

    // userinfo from Glewlwyd, for the same subject
    const info = await agent.get('/userinfo');
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ sub: me.body.user.sub, email: ALICE.email, name: ALICE.name });

    const stored = await logins();
    expect(stored).toHaveLength(1);
    expect(stored[0].auth.refreshToken).toEqual(expect.any(String));
  });

  test('3. the session holds: later requests to the guarded route make no trip to Glewlwyd', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    expect((await login(agent, user)).status).toBe(302);
    const rpCalls = toGlewlwyd.length;
    const userCalls = user.requests.length;
    const first = await agent.get('/me');
    const second = await agent.get('/me');
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.user).toEqual(first.body.user);
    expect(second.body.user.email).toBe(ALICE.email);
    expect(toGlewlwyd.length).toBe(rpCalls);
    expect(user.requests.length).toBe(userCalls);
    // and another browser (no cookie) is not let in
    const stranger = await supertest(server!).get('/me').set('accept', 'application/json');
    expect(stranger.status).toBe(401);
  });

  test('4. refresh: POST /auth/refresh runs a refresh grant at Glewlwyd and the login goes on with the new access token', async () => {
    const agent = supertest.agent(server!);
    expect((await login(agent, gw!.user())).status).toBe(302);
    const [before] = await logins();
    const calls = toGlewlwyd.length;
    const res = await agent.post('/auth/refresh');
    expect({ status: res.status, body: res.body }).toEqual({
      status: 200,
      body: { tokenType: 'bearer', scope: 'openid email', expiresAt: expect.any(Number) },
    });
    expect(toGlewlwyd.slice(calls)).toEqual([`POST ${gw!.issuer}/token refresh_token`]);
    const [after] = await logins();
    expect(after.id).toBe(before.id);
    expect(after.auth.accessToken!.value).not.toBe(before.auth.accessToken!.value);
    // Glewlwyd does not rotate refresh tokens (one-time use is off by default): the RP keeps the one it has
    expect(after.auth.refreshToken).toBe(before.auth.refreshToken);
    // the new access token works at Glewlwyd
    const info = await agent.get('/userinfo');
    expect(info.status).toBe(200);
    expect(info.body.email).toBe(ALICE.email);
    expect((await agent.get('/me')).body.user.sub).toBe(info.body.sub);
  });

  test('5. logout: RP-initiated logout through Glewlwyd\'s end_session_endpoint ends both sessions and the tokens', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    expect((await login(agent, user)).status).toBe(302);
    const [{ auth }] = await logins();
    expect(await user.signedIn()).toEqual([ALICE.username]);

    const res = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    const endSession = new URL(res.headers.location);
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${gw!.issuer}/end_session`);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${baseURL}/bye`);
    expect(endSession.searchParams.get('id_token_hint')).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    const state = endSession.searchParams.get('state');
    expect(state).toMatch(/^[\w-]{20,}$/);
    // the RP session is gone already
    expect(await logins()).toEqual([]);
    const gone = await agent.get('/me').set('accept', 'application/json');
    expect(gone.status).toBe(401);
    expect(gone.body.error).toBe('not_authenticated');

    // Glewlwyd accepts the registered post_logout_redirect_uri and sends the browser back with our state
    const { back } = await user.endSession(endSession.href);
    expect(back?.href).toBe(`${baseURL}/bye?state=${state}`);
    const landing = await agent.get(back!.pathname + back!.search);
    expect(landing.status).toBe(302);
    expect(landing.headers.location).toBe('/bye');
    expect((await agent.get('/bye')).text).toBe('signed out of the app');

    // Glewlwyd's side: alice is signed out, and the session's refresh token no longer works
    expect(await user.signedIn()).toEqual([]);
    const refresh = await fetch(`${gw!.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.refreshToken! }),
    });
    expect(refresh.status).toBe(400);
    expect((await agent.get('/me').set('accept', 'application/json')).status).toBe(401);
  });

  test('6. a callback with a tampered state is refused (invalid_state) and leaves no login', async () => {
    const agent = supertest.agent(server!);
    const { callback } = await authorize(agent, gw!.user());
    await t.expectTamperedStateRefused(agent, callback);
  });

  // RFC 6749 §2.3.1: the client_id and secret are form-encoded before they go into the Basic header,
  // and the server decodes them. Glewlwyd 2.7.5 does not decode. openid-client's own encoder escapes
  // '-' as %2D, so Glewlwyd looked up the client 'openid%2Dexpress' and answered unauthorized_client;
  // our RP sends the characters that decode to themselves as they are (provider-metadata.ts).
  test("7. a client id and secret with '-' under client_secret_basic log in (sent unescaped)", async () => {
    const agent = supertest.agent(server!);
    const res = await login(agent, gw!.user(), DASHED.provider);
    expect({ status: res.status, location: res.headers.location, body: res.body }).toEqual({ status: 302, location: '/me', body: {} });
    const me = await agent.get('/me');
    expect(me.body.user).toMatchObject({ provider: DASHED.provider, email: ALICE.email });
  });

  test('8. the same kind of client with client_secret_post logs in', async () => {
    const agent = supertest.agent(server!);
    const calls = toGlewlwyd.length;
    const res = await login(agent, gw!.user(), DASHED_POST.provider);
    expect({ status: res.status, location: res.headers.location, body: res.body }).toEqual({ status: 302, location: '/me', body: {} });
    expect(toGlewlwyd.slice(calls)).toContain(`POST ${gw!.issuer}/token authorization_code`);
    const me = await agent.get('/me');
    expect(me.body.user).toMatchObject({ provider: DASHED_POST.provider, email: ALICE.email, name: ALICE.name });
  });

  // Glewlwyd 2.7.5 puts `auth_time: 0` in every ID token (1970), max_age or not. The RP takes it at
  // its word: the login counts as authenticated in 1970, so requireAuth({ maxAge }) sends the user to
  // log in again with max_age, and the new ID token (auth_time 0 again) is refused: a clear 401, no loop.
  test('9. Glewlwyd quirk: auth_time is always 0, so requireAuth({ maxAge }) cannot be met and says so', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    expect((await login(agent, user)).status).toBe(302);
    const [{ auth }] = await logins();
    expect(auth.idTokenClaims!.auth_time).toBe(0);
    expect(auth.authTime).toBe(0);
    const recent = await agent.get('/recent').set('accept', 'text/html');
    expect(recent.status).toBe(302);
    expect(recent.headers.location).toBe('/auth/login/glewlwyd?returnTo=%2Frecent&maxAge=300');
    const start = await agent.get(recent.headers.location);
    expect(start.status).toBe(302);
    expect(new URL(start.headers.location).searchParams.get('max_age')).toBe('300');
    const callback = await user.authorize(start.headers.location, ALICE);
    const res = await agent.get(callback.pathname + callback.search).set('accept', 'application/json');
    expect({ status: res.status, body: res.body }).toEqual({
      status: 401,
      body: { error: 'invalid_id_token', error_description: expect.stringMatching(/^provider "glewlwyd" \(issuer [^)]+\), token endpoint \S+: the token was refused: too much time has elapsed since the last End-User authentication\. The OP did not authenticate/) },
    });
    // a route without maxAge is not affected by the quirk: a plain login works (test 2)
  });

  test('10. back-channel logout: alice signs out at Glewlwyd, Glewlwyd posts a logout token, the RP ends her session', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    expect((await login(agent, user)).status).toBe(302);
    const [{ auth }] = await logins();
    const sid = auth.idTokenClaims!.sid;
    expect(sid).toEqual(expect.any(String));
    const tokens = logoutTokens.length;
    // what Glewlwyd's own page does when she ends that session there (not through the RP)
    const ended = await user.fetch(`${gw!.issuer}/session/${encodeURIComponent(String(sid))}`, { method: 'DELETE' });
    expect(ended.status).toBe(200);
    for (let i = 0; i < 40 && logoutTokens.length === tokens; i++) await new Promise((r) => setTimeout(r, 50));
    expect(logoutTokens.slice(tokens)).toEqual([200]);
    expect(await logins()).toEqual([]);
    const me = await agent.get('/me').set('accept', 'application/json');
    expect(me.status).toBe(401);
    expect(me.body.error).toBe('not_authenticated');
  });

  // Without back-channel logout (this client has none), the RP learns that Glewlwyd revoked the
  // grant only at the next refresh. Glewlwyd answers a revoked refresh token with a bare HTTP 400
  // (no body, no content-type) instead of RFC 6749 §5.2's {"error":"invalid_grant"}. The RP reads a
  // 400 as a refusal all the same: the refresh fails with refresh_failed and the login ends.
  test('11. Glewlwyd quirk: a revoked refresh token gets a bare 400; the RP ends the login (refresh_failed)', async () => {
    const agent = supertest.agent(server!);
    const user = gw!.user();
    expect((await login(agent, user, DASHED_POST.provider)).status).toBe(302);
    const [{ auth }] = await logins();
    const ended = await user.fetch(`${gw!.issuer}/session/${encodeURIComponent(String(auth.idTokenClaims!.sid))}`, { method: 'DELETE' });
    expect(ended.status).toBe(200);
    const raw = await fetch(`${gw!.issuer}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.refreshToken!, client_id: DASHED_POST.clientId, client_secret: DASHED_POST.clientSecret }),
    });
    expect({ status: raw.status, type: raw.headers.get('content-type'), body: await raw.text() }).toEqual({ status: 400, type: null, body: '' });
    const calls = toGlewlwyd.length;
    const res = await agent.post('/auth/refresh').set('accept', 'application/json');
    expect(toGlewlwyd.slice(calls)).toEqual([`POST ${gw!.issuer}/token refresh_token`]);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'refresh_failed', error_description: expect.stringMatching(/^provider "dashedpost" \(issuer [^)]+\), token endpoint \S+\/token: the refresh was refused: .*unexpected response content-type.*: sign in again$/) });
    expect(await logins()).toEqual([]);
    expect((await agent.get('/me').set('accept', 'application/json')).status).toBe(401);
  });
});
