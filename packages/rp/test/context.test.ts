/**
 * req.oidc: the members an app uses in its routes.
 */
import type { Express } from 'express';
import { errors } from 'oidc-provider';
import { requireAuth, rpErrorHandler } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';
import { readStoredLogin, type StoredLogin } from '../src/stored-login.js';
import type { Authentication } from '../src/session.js';

let t: TestRp;
function routes(app: Express, rpOf: () => TestRp = () => t): void {
  app.get('/state', (req, res) => {
    const token = req.oidc.accessToken;
    res.json({
      isAuthenticated: req.oidc.isAuthenticated(),
      user: req.oidc.user ?? null,
      idTokenSub: req.oidc.idTokenClaims?.sub ?? null,
      token: token ? { scope: token.scope, expiresAt: token.expiresAt, isExpired: token.isExpired(), tokenType: token.tokenType } : null,
      active: req.oidc.hasActiveAuthentication(),
      activeWithin0: req.oidc.hasActiveAuthentication(0),
    });
  });
  // (Express 5 hands a rejection to the error handlers: rpErrorHandler() answers the RP's errors)
  app.get('/userinfo', requireAuth(), async (req, res) => void res.json(await req.oidc.fetchUserInfo()));
  app.get('/resource', requireAuth(), async (req, res) => {
    // the OP's userinfo endpoint stands in for a resource server that wants a Bearer token
    const response = await req.oidc.fetch(`${rpOf().op.issuer}/me`);
    res.status(response.status).json(await response.json());
  });
  app.get('/unguarded-token', async (req, res) => void res.json({ value: (await req.oidc.getValidAccessToken()).value }));
  app.use(rpErrorHandler());
}

beforeAll(async () => {
  t = await startRp({ routes: (app) => routes(app) });
});
afterAll(() => t.close());

describe('req.oidc', () => {
  test('without a login: not authenticated, no user, no token', async () => {
    const res = await t.agent().get('/state');
    expect(res.body).toEqual({ isAuthenticated: false, user: null, idTokenSub: null, token: null, active: false, activeWithin0: false });
  });

  test('after login: user, ID token claims, access token and active authentication', async () => {
    const agent = t.agent();
    await t.login(agent);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const res = await agent.get('/state');
    expect(res.body).toMatchObject({
      isAuthenticated: true,
      user: { sub: 'alice', provider: 'op', email: 'alice@example.org' },
      idTokenSub: 'alice',
      token: { scope: 'openid profile email', isExpired: false, tokenType: 'bearer', expiresAt: expect.any(Number) },
      active: true,
      activeWithin0: false, // authenticated more than 0 seconds ago
    });
  });

  test('fetchUserInfo() asks the OP', async () => {
    const agent = t.agent();
    await t.login(agent, { account: 'bob' });
    const res = await agent.get('/userinfo');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sub: 'bob', name: 'Bob Builder' });
  });

  test('fetch() calls a resource server with the access token', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/resource');
    expect(res.status).toBe(200);
    expect(res.body.sub).toBe('alice');
  });
});

describe('req.oidc token operations when the OP no longer takes the access token', () => {
  let withRefresh: TestRp;
  let withoutRefresh: TestRp;
  beforeAll(async () => {
    // 4 s access tokens: refused "before their expiry" within the first 3 s (expiresAt is a quarter of the life early)
    [withRefresh, withoutRefresh] = await Promise.all([
      startRp({ routes: (app) => routes(app, () => withRefresh), op: { ttl: { AccessToken: 4 } } }),
      startRp({ routes: (app) => routes(app, () => withoutRefresh), op: { ttl: { AccessToken: 4 } }, client: { grant_types: ['authorization_code'] }, provider: { scope: 'openid profile email' } }),
    ]);
  });
  afterAll(async () => {
    await withRefresh.close();
    await withoutRefresh.close();
  });

  /** Destroys the access tokens of the logins in `t`'s store at the OP (as RFC 7009 revocation does), and their refresh tokens with `grant`. */
  async function revoke(t: TestRp, grant = false): Promise<void> {
    for (const id of await t.authenticatedSessions()) {
      const auth = readStoredLogin(await new Promise<StoredLogin | Authentication>((resolve) => t.store.get(id, (_e, s) => resolve(s!.oidc!.auth!))));
      await (await t.op.provider.AccessToken.find(auth.accessToken!.value))?.destroy();
      if (grant) await (await t.op.provider.RefreshToken.find(auth.refreshToken!))?.destroy();
    }
  }

  test('fetchUserInfo(): an access token revoked before its expiry is refreshed and the request made again (before: 400 op_error invalid_token)', async () => {
    const agent = withRefresh.agent();
    await withRefresh.login(agent, { account: 'bob' });
    const grants = withRefresh.op.counts.grants.refresh_token ?? 0;
    await revoke(withRefresh);
    const res = await agent.get('/userinfo');
    expect([res.status, res.body.sub]).toEqual([200, 'bob']);
    expect(withRefresh.op.counts.grants.refresh_token).toBe(grants + 1);
  });

  test('fetchUserInfo(): the grant ended at the OP (its refresh token too): 401 refresh_failed, the login ended', async () => {
    const agent = withRefresh.agent();
    await withRefresh.login(agent);
    await revoke(withRefresh, true);
    const res = await agent.get('/userinfo');
    expect([res.status, res.body.error]).toEqual([401, 'refresh_failed']);
    expect((await agent.get('/state')).body.isAuthenticated).toBe(false);
  });

  test('fetchUserInfo(): an access token refused and no refresh token: the OP\'s refusal as it came (400 op_error invalid_token), the login kept until its expiresAt (invalid_token may be an audience\'s)', async () => {
    const agent = withoutRefresh.agent();
    await withoutRefresh.login(agent);
    await revoke(withoutRefresh);
    const res = await agent.get('/userinfo');
    expect([res.status, res.body.error, res.body.op_error]).toEqual([400, 'op_error', 'invalid_token']);
    expect((await agent.get('/state')).body.isAuthenticated).toBe(true);
  });

  test('getValidAccessToken() of a login whose access token expired and that has no refresh token: 401 login_ended, as requireAuth() has it (before: 400 no_refresh_token, the login kept)', async () => {
    const agent = withoutRefresh.agent();
    await withoutRefresh.login(agent);
    await new Promise((resolve) => setTimeout(resolve, 3200));
    // requireAuth() sends such a login to sign in again (401 not_authenticated for an API)
    expect((await agent.get('/userinfo')).body.error).toBe('not_authenticated');
    // a route that does not guard itself asks for the token
    const res = await agent.get('/unguarded-token');
    expect([res.status, res.body.error]).toEqual([401, 'login_ended']);
    expect(res.body.error_description).toMatch(/provider "op" has ended: its access token expired and it has no refresh token/);
    expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect((await agent.get('/state')).body.isAuthenticated).toBe(false);
  });
});

describe('fetchUserInfo() of a login whose access token is for an API (RFC 8707 resource)', () => {
  const API = 'https://api.example.com/';
  let r: TestRp;
  beforeAll(async () => {
    r = await startRp({
      client: { scope: 'openid offline_access profile email api:read' },
      provider: { authorizationParams: { resource: API }, scope: 'openid profile email offline_access api:read' },
      op: {
        features: {
          resourceIndicators: {
            enabled: true,
            defaultResource: () => API,
            useGrantedResource: () => true,
            getResourceServerInfo: (_ctx, resource) => {
              if (resource !== API) throw new errors.InvalidTarget();
              return { scope: 'api:read', audience: API, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
            },
          },
        },
        config: { scopes: ['openid', 'offline_access', 'profile', 'email', 'api:read'] },
      },
      routes: (app) => routes(app, () => r),
    });
  });
  afterAll(() => r.close());

  test('the OP\'s invalid_token (the token\'s audience is the API) after one refresh is answered as it came, and the user stays signed in (review: it ended the login)', async () => {
    const agent = r.agent();
    await r.login(agent);
    const res = await agent.get('/userinfo');
    expect([res.status, res.body.error, res.body.op_error]).toEqual([400, 'op_error', 'invalid_token']);
    expect((await agent.get('/me')).status).toBe(200);
  });
});
