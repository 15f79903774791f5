/**
 * Logging in with GitHub through rp(), end to end against the GitHub simulator: OAuth 2.0 without
 * ID token, the user from /user + /user/emails, errors GitHub reports with HTTP 200, local logout,
 * and refresh with and without expiring user tokens.
 */
import { github } from '@openid-express/rp';
import { startGitHubSimulator, type GitHubSimulator } from './simulators/github.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';

let sim: GitHubSimulator;
let app: SimApp;
let expiringSim: GitHubSimulator;

const account = () => ({
  id: 583231, login: 'octocat', name: 'The Octocat', email: null,
  emails: [
    { email: 'octocat@users.noreply.github.com', primary: false, verified: true, visibility: null },
    { email: 'octo@example.com', primary: true, verified: true, visibility: 'private' },
  ],
});

beforeAll(async () => {
  // The app's callback URL is known once it listens: the simulators learn it just after.
  sim = await startGitHubSimulator({ clientId: 'Iv1.app', clientSecret: 'gh-app-secret', callbackUrl: '', account: account() });
  expiringSim = await startGitHubSimulator({ clientId: 'Iv1.app', clientSecret: 'gh-app-secret', callbackUrl: '', account: account(), expiringTokens: true });
  app = await startSimApp(() => ({
    github: github({ clientId: 'Iv1.app', clientSecret: 'gh-app-secret', baseURL: sim.baseURL, allowInsecureRequests: true }),
    ghexp: github({ clientId: 'Iv1.app', clientSecret: 'gh-app-secret', baseURL: expiringSim.baseURL, allowInsecureRequests: true, label: 'GitHub (expiring tokens)' }),
  }));
  sim.options.callbackUrl = `${app.baseURL}/auth/callback/github`;
  expiringSim.options.callbackUrl = `${app.baseURL}/auth/callback/ghexp`;
});
afterAll(async () => {
  await app.close();
  await sim.close();
  await expiringSim.close();
});
beforeEach(() => new Promise<void>((resolve) => app.store.clear(() => resolve())));

async function login(provider = 'github') {
  const agent = app.agent();
  const callback = await app.authorize(await app.startLogin(agent, provider));
  const res = await agent.get(pathOf(callback));
  return { agent, callback, res };
}

test('the provider list labels GitHub for login buttons', async () => {
  const res = await app.agent().get('/auth/providers');
  expect(res.body).toEqual([
    { name: 'github', label: 'GitHub', type: 'oauth2' },
    { name: 'ghexp', label: 'GitHub (expiring tokens)', type: 'oauth2' },
  ]);
});

test('a GitHub user with a private email logs in: sub is the numeric id as a string, email from /user/emails', async () => {
  const start = await app.startLogin(app.agent(), 'github');
  expect(start.origin).toBe(sim.baseURL);
  expect(start.pathname).toBe('/login/oauth/authorize');
  expect(start.searchParams.get('scope')).toBe('read:user user:email');
  expect(start.searchParams.get('code_challenge_method')).toBe('S256');
  expect(start.searchParams.has('nonce')).toBe(false);

  const { agent, res } = await login();
  expect(res.status).toBe(302);
  expect(res.headers.location).toBe('/me');
  const me = await agent.get('/me');
  expect(me.status).toBe(200);
  expect(me.body).toMatchObject({
    sub: '583231', provider: 'github', name: 'The Octocat', email: 'octo@example.com', emailVerified: true,
    picture: 'https://avatars.githubusercontent.com/u/583231?v=4',
  });
  expect(me.body.claims).toMatchObject({ login: 'octocat', id: 583231 });
  expect(sim.apiRequests.slice(-2).map((r) => [r.path, r.userAgent])).toEqual([['/user', 'openid-express'], ['/user/emails', 'openid-express']]);
  expect(sim.tokenRequests.at(-1)).toMatchObject({ accept: 'application/json' });
});

test('a token error GitHub answers with HTTP 200 (bad_verification_code) refuses the login and leaves no session', async () => {
  const agent = app.agent();
  const callback = await app.authorize(await app.startLogin(agent, 'github'));
  callback.searchParams.set('code', 'forged-code');
  const res = await agent.get(pathOf(callback)).set('accept', 'application/json');
  expect(res.status).toBe(400);
  // GitHub's name for RFC 6749's invalid_grant: the error code an app matches on is the standard one
  expect(res.body).toMatchObject({ error: 'invalid_grant', op_error: 'invalid_grant' });
  expect(res.body.error_description).toContain('bad_verification_code');
  expect(sim.tokenRequests.at(-1)).toMatchObject({ error: 'bad_verification_code' });
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

describe('GitHub\'s rate limits on the user API (a 403 or 429, with x-ratelimit-remaining: 0 or Retry-After)', () => {
  afterEach(() => {
    sim.options.rateLimited = undefined;
  });

  test.each([
    ['the primary limit (403, x-ratelimit-remaining: 0) on /user', { path: '/user', kind: 'primary', resetIn: 42 }, /^4[0-2]$/],
    ['a secondary limit (403, Retry-After) on /user', { path: '/user', kind: 'secondary', retryAfter: 30 }, /^30$/],
    ['a 429 with Retry-After on /user', { path: '/user', kind: 'secondary', status: 429, retryAfter: 60 }, /^60$/],
    ['the primary limit on /user/emails (not a login without the address)', { path: '/user/emails', kind: 'primary', resetIn: 20 }, /^(19|20)$/],
  ] as const)('%s: 503 with GitHub\'s wait, no login; once the limit is over, the same callback signs in', async (_label, limit, retryAfter) => {
    sim.options.rateLimited = { ...limit };
    const agent = app.agent();
    const callback = await app.authorize(await app.startLogin(agent, 'github'));
    const res = await agent.get(pathOf(callback)).set('accept', 'application/json');
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('op_unavailable');
    expect(res.headers['retry-after']).toMatch(retryAfter);
    expect(await app.authenticatedSessions()).toEqual([]);
    sim.options.rateLimited = undefined;
    const again = await agent.get(pathOf(callback)).set('accept', 'application/json');
    expect(again.status).toBe(302);
    expect((await agent.get('/me')).body).toMatchObject({ sub: '583231', email: 'octo@example.com' });
  });
});

test('a replayed GitHub callback does not log in', async () => {
  const { callback } = await login();
  const thief = app.agent();
  const res = await thief.get(pathOf(callback)).set('accept', 'application/json');
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('invalid_state');
  expect((await thief.get('/me')).status).toBe(401);
});

test('logout is local: the session ends and the browser stays on the app (GitHub has no end-session endpoint)', async () => {
  const { agent } = await login();
  const out = await agent.get('/auth/logout?returnTo=/bye').set('sec-fetch-site', 'same-origin');
  expect(out.status).toBe(302);
  expect(out.headers.location).toBe('/bye');
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});

test('refresh without a refresh token (classic OAuth app tokens) is refused clearly and keeps the login', async () => {
  const { agent } = await login();
  const res = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(res.status).toBe(400);
  expect(res.body).toMatchObject({ error: 'no_refresh_token' });
  expect((await agent.get('/me')).status).toBe(200);
  expect(sim.tokenRequests.filter((r) => r.grantType === 'refresh_token')).toEqual([]);
});

test('a token the user revoked at GitHub (401 Bad credentials from the API): fetchUserInfo() ends the login with 401 login_ended (before: 400 invalid_response, and the login lived on)', async () => {
  const { agent } = await login();
  expect((await agent.get('/userinfo').set('accept', 'application/json')).body).toMatchObject({ login: 'octocat' });
  sim.revokeTokens();
  const res = await agent.get('/userinfo').set('accept', 'application/json');
  expect([res.status, res.body.error]).toEqual([401, 'login_ended']);
  expect(res.body.error_description).toMatch(/provider "github" refused this login's access token/);
  expect((await agent.get('/me')).status).toBe(401);
});

test('with expiring user tokens the refresh token (urlencoded-style numbers included) refreshes the access token', async () => {
  const { agent } = await login('ghexp');
  const before = (await agent.get('/token')).body.accessToken;
  expect(before).toMatch(/^ghu_/);
  const res = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(res.status).toBe(200);
  expect(res.body.expiresAt).toBeGreaterThan(Date.now() / 1000 + 28000);
  const after = (await agent.get('/token')).body.accessToken;
  expect(after).toMatch(/^ghu_/);
  expect(after).not.toBe(before);
  expect(expiringSim.tokenRequests.filter((r) => r.grantType === 'refresh_token')).toHaveLength(1);
});

test('a refresh token GitHub refuses with HTTP 200 (bad_refresh_token) ends in a clear 401', async () => {
  const { agent } = await login('ghexp');
  // Another device used (and so rotated away) this refresh token: simulate by a second refresh racing ahead.
  const sessions = await app.authenticatedSessions();
  const stored = await new Promise<any>((resolve) => app.store.get(sessions[0], (_e, s) => resolve(s)));
  stored.oidc.auth.refreshToken = 'ghr_revoked';
  await new Promise<void>((resolve) => app.store.set(sessions[0], stored, () => resolve()));
  const res = await agent.post('/auth/refresh').set('accept', 'application/json');
  expect(res.status).toBe(401);
  expect(res.body).toMatchObject({ error: 'refresh_failed', op_error: 'invalid_grant' });
  expect(res.body.error_description).toContain('bad_refresh_token');
  expect(expiringSim.tokenRequests.at(-1)).toMatchObject({ grantType: 'refresh_token', error: 'bad_refresh_token' });
  expect((await agent.get('/me')).status).toBe(401);
  expect(await app.authenticatedSessions()).toEqual([]);
});
