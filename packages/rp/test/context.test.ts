/**
 * req.oidc: the members an app uses in its routes.
 */
import type { Express } from 'express';
import { requireAuth } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';

let t: TestRp;
function routes(app: Express): void {
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
  app.get('/userinfo', requireAuth(), async (req, res) => void res.json(await req.oidc.fetchUserInfo()));
  app.get('/resource', requireAuth(), async (req, res) => {
    // the OP's userinfo endpoint stands in for a resource server that wants a Bearer token
    const response = await req.oidc.fetch(`${t.op.issuer}/me`);
    res.status(response.status).json(await response.json());
  });
}

beforeAll(async () => {
  t = await startRp({ routes });
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
