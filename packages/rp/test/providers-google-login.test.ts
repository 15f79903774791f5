/**
 * Logging in with Google through rp(), end to end against the Google simulator: discovery, code
 * flow with PKCE, the scheme-less `iss`, `hd` enforcement, and offline access.
 */
import { google, readStoredLogin } from '@openid-express/rp';
import { startGoogleSimulator, type GoogleSimulator } from './simulators/google.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';

let sim: GoogleSimulator;
let app: SimApp;
const user = { sub: '110169484474386276334', email: 'ann@example.com', name: 'Ann Example', picture: 'https://lh3.googleusercontent.com/a/ann', hd: 'example.com' };

beforeAll(async () => {
  sim = await startGoogleSimulator({ clientId: 'app.apps.googleusercontent.com', clientSecret: 'GOCSPX-secret', redirectUris: [], user });
  const base = { clientId: 'app.apps.googleusercontent.com', clientSecret: 'GOCSPX-secret', issuer: sim.issuer, allowInsecureRequests: true };
  app = await startSimApp(() => ({
    google: google(base),
    workspace: google({ ...base, hostedDomain: 'example.com', label: 'Google Workspace' }),
    offline: google({ ...base, offline: true }),
    anyWorkspace: google({ ...base, hostedDomain: '*', label: 'Any Workspace' }),
  }));
  sim.options.redirectUris = ['google', 'workspace', 'offline', 'anyWorkspace'].map((n) => `${app.baseURL}/auth/callback/${n}`);
});
afterAll(async () => {
  await app.close();
  await sim.close();
});
beforeEach(async () => {
  sim.options.user = { ...user };
  sim.options.schemelessIss = false;
  sim.options.issOverride = undefined;
  await new Promise<void>((resolve) => app.store.clear(() => resolve()));
});

async function login(provider = 'google') {
  const agent = app.agent();
  const callback = await app.authorize(await app.startLogin(agent, provider));
  const res = await agent.get(pathOf(callback)).set('accept', 'application/json');
  return { agent, callback, res };
}

test('the provider list labels the Google entries for login buttons', async () => {
  expect((await app.agent().get('/auth/providers')).body).toEqual([
    { name: 'google', label: 'Google', type: 'oidc' },
    { name: 'workspace', label: 'Google Workspace', type: 'oidc' },
    { name: 'offline', label: 'Google', type: 'oidc' },
    { name: 'anyWorkspace', label: 'Any Workspace', type: 'oidc' },
  ]);
});

test('a Google user logs in with the code flow, PKCE, and openid email profile', async () => {
  const { agent, res } = await login();
  expect(res.status).toBe(302);
  const asked = sim.authorizationRequests.at(-1)!;
  expect(asked).toMatchObject({ response_type: 'code', scope: 'openid email profile', code_challenge_method: 'S256' });
  expect(asked.nonce).toBeTruthy();
  expect(asked.access_type).toBeUndefined();
  const me = await agent.get('/me');
  expect(me.body).toMatchObject({ sub: user.sub, provider: 'google', email: user.email, emailVerified: true, name: user.name, picture: user.picture });
});

test('the scopes Google grants as API URLs (userinfo.email, userinfo.profile) count as the email and profile asked for', async () => {
  const { agent, res } = await login('offline');
  expect(res.status).toBe(302);
  expect((await agent.get('/needs-email')).status).toBe(200);
  // and after a refresh, whose answer names them so too
  expect((await agent.post('/auth/refresh').set('accept', 'application/json')).status).toBe(200);
  expect((await agent.get('/needs-email')).status).toBe(200);
});

test('an ID token whose iss is "accounts.google.com"-style (no scheme) is accepted as Google\'s', async () => {
  sim.options.schemelessIss = true;
  const { agent, res } = await login();
  expect(res.status).toBe(302);
  const claims = await agent.get('/id-token-claims');
  expect(claims.status).toBe(200);
  expect(claims.body.iss).toBe(new URL(sim.issuer).host);
});

test('after a scheme-less login, refreshed ID tokens with that iss are accepted too', async () => {
  sim.options.schemelessIss = true;
  const { agent } = await login('offline');
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(200);
  expect(sim.tokenRequests.at(-1)).toBe('refresh_token');
});

test.each([
  ['another issuer', 'https://evil.example'],
  ['another host without scheme', 'evil.example'],
  ['Google\'s host with another scheme', 'https://HOST'],
])('an ID token from %s is refused and leaves no session', async (_label, iss) => {
  sim.options.issOverride = iss.replace('HOST', new URL(sim.issuer).host);
  const { agent, res } = await login();
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_id_token');
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('hostedDomain sends hd and logs in a user of that domain', async () => {
  const { agent, res } = await login('workspace');
  expect(res.status).toBe(302);
  expect(sim.authorizationRequests.at(-1)!.hd).toBe('example.com');
  expect((await agent.get('/me')).body.claims.hd).toBe('example.com');
});

test('hostedDomain refuses a user of another domain (hd is only a UI hint at Google) and leaves no session', async () => {
  sim.options.user = { ...user, email: 'eve@evil.example', hd: 'evil.example' };
  const { agent, res } = await login('workspace');
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_id_token');
  expect(res.body.error_description).toMatch(/hosted domain/);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('hostedDomain refuses a consumer account (no hd claim)', async () => {
  sim.options.user = { ...user, hd: undefined };
  const { res } = await login('workspace');
  expect(res.status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('hostedDomain "*" (Google\'s "any Workspace account") logs in a user of any Workspace domain, and refuses a consumer account', async () => {
  sim.options.user = { ...user, email: 'bo@other.example', hd: 'other.example' };
  const ok = await login('anyWorkspace');
  expect(ok.res.status).toBe(302);
  expect(sim.authorizationRequests.at(-1)!.hd).toBe('*');
  expect((await ok.agent.get('/me')).body.claims.hd).toBe('other.example');
  await new Promise<void>((resolve) => app.store.clear(() => resolve()));
  sim.options.user = { ...user, hd: undefined };
  const refused = await login('anyWorkspace');
  expect(refused.res.status).toBe(401);
  expect(refused.res.body.error_description).toMatch(/Workspace account is required/);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('offline: true asks with access_type=offline and prompt=consent, gets a refresh token, and refreshes', async () => {
  const { agent, res } = await login('offline');
  expect(res.status).toBe(302);
  expect(sim.authorizationRequests.at(-1)).toMatchObject({ access_type: 'offline', prompt: 'consent' });
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(200);
  expect(sim.tokenRequests.at(-1)).toBe('refresh_token');
});

test('the refresh token is revoked at Google\'s revocation endpoint (tier-2 revoke()), and refreshing with it then ends the login', async () => {
  const { agent } = await login('offline');
  const [id] = await app.authenticatedSessions();
  const stored = await new Promise<Record<string, unknown>>((resolve) => app.store.get(id!, (_e, s) => resolve(s as unknown as Record<string, unknown>)));
  const refreshToken = readStoredLogin((stored as { oidc: { auth: Parameters<typeof readStoredLogin>[0] } }).oidc.auth).refreshToken!;
  await app.router.relyingParty.revoke('offline', refreshToken, { tokenTypeHint: 'refresh_token' });
  await expect(app.router.relyingParty.revoke('offline', refreshToken)).rejects.toMatchObject({ opError: 'invalid_token' });
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(401);
  expect(refreshed.body.error).toBe('refresh_failed');
});

test('without offline there is no refresh token, and refresh is refused clearly', async () => {
  const { agent } = await login('google');
  const refreshed = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(refreshed.status).toBe(400);
  expect(refreshed.body.error).toBe('no_refresh_token');
});
