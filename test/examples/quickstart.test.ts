/**
 * examples/quickstart, in process: the pages and guards of the application. The full sign-in in a
 * real browser is test/e2e/quickstart.test.ts.
 */
import request from 'supertest';
import { loadExample } from './load.js';

interface Quickstart {
  appURL: string;
  issuer: string;
  close(): Promise<void>;
}
const { startQuickstart } = loadExample<{
  startQuickstart(o: { port: number; opPort: number; env: Record<string, string> }): Promise<Quickstart>;
}>('examples/quickstart/index.js');
const views = loadExample<{
  profilePage(p: Record<string, unknown>): (nonce: string) => { toString(): string };
  homePage(p: Record<string, unknown>): (nonce: string) => { toString(): string };
}>('examples/quickstart/views.js');

let qs: Quickstart | undefined;
afterEach(async () => {
  await qs?.close();
  qs = undefined;
});

const start = async (env: Record<string, string> = {}): Promise<Quickstart> => {
  const started = await startQuickstart({ port: 0, opPort: 0, env: { SESSION_SECRET: 'test-session-secret', ...env } });
  qs = started;
  return started;
};

test('the app and the OP start on two sites, and the OP publishes its discovery document', async () => {
  const { appURL, issuer } = await start();
  expect(new URL(appURL).hostname).toBe('localhost');
  expect(new URL(issuer).hostname).toBe('127.0.0.1');
  const res = await request(new URL(issuer).origin).get('/op/.well-known/openid-configuration').expect(200);
  expect(res.body.issuer).toBe(issuer);
});

test('the home page offers the Demo OP, lists the demo accounts and explains how to add Google, Microsoft and GitHub', async () => {
  const { appURL } = await start();
  const res = await request(appURL).get('/').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.headers['content-security-policy']).toContain("script-src 'nonce-");
  expect(res.text).toContain('href="/auth/login/demo?returnTo=/profile"');
  expect(res.text).toContain('wonderland');
  expect(res.text).toContain('GOOGLE_CLIENT_ID');
  expect(res.text).toContain(`${appURL}/auth/callback/github`);
  expect(res.text).not.toContain('/auth/login/google');
});

test('Google, Microsoft and GitHub buttons appear when their client id and secret are set', async () => {
  const { appURL } = await start({
    GOOGLE_CLIENT_ID: 'g', GOOGLE_CLIENT_SECRET: 'gs',
    MICROSOFT_CLIENT_ID: 'm', MICROSOFT_CLIENT_SECRET: 'ms',
    GITHUB_CLIENT_ID: 'gh', GITHUB_CLIENT_SECRET: 'ghs',
  });
  const res = await request(appURL).get('/').expect(200);
  for (const name of ['demo', 'google', 'microsoft', 'github']) {
    expect(res.text).toContain(`href="/auth/login/${name}?returnTo=/profile"`);
  }
  expect(res.text).not.toContain('GOOGLE_CLIENT_ID');
});

test('the Demo OP button starts a sign-in at the OP with PKCE', async () => {
  const { appURL, issuer } = await start();
  const res = await request(appURL).get('/auth/login/demo?returnTo=/profile').expect(302);
  const to = new URL(res.headers.location);
  expect(to.origin).toBe(new URL(issuer).origin);
  expect(to.searchParams.get('client_id')).toBe('quickstart-app');
  expect(to.searchParams.get('redirect_uri')).toBe(`${appURL}/auth/callback/demo`);
  expect(to.searchParams.get('code_challenge_method')).toBe('S256');
});

test('the profile and its actions need a signed-in user', async () => {
  const { appURL } = await start();
  const page = await request(appURL).get('/profile').set('Accept', 'text/html');
  expect(page.status).toBe(302);
  await request(appURL).post('/profile/refresh').type('form').send({ csrf: 'x' }).expect(401);
  await request(appURL).post('/profile/userinfo').type('form').send({ csrf: 'x' }).expect(401);
});

test('an unknown page is a 404 page, not a stack trace', async () => {
  const { appURL } = await start();
  const res = await request(appURL).get('/nope').expect(404);
  expect(res.text).toContain('Page not found');
});

test('claims from the provider are escaped on the profile page', () => {
  const evil = '<img src=x onerror=alert(1)>';
  const page = String(
    views.profilePage({
      user: { sub: 'u1', name: evil, email: `${evil}@example.org`, providerLabel: 'Demo OP' },
      token: { expiresAt: Math.floor(Date.now() / 1000) + 60, scope: evil },
      claims: { name: evil, [evil]: { nested: evil } },
      userinfo: { name: evil },
      csrf: '"><script>',
    })('nonce'),
  );
  expect(page).not.toContain('<img src=x');
  expect(page).not.toContain('"><script>');
  expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
});

test('without a session the home page shows sign-in buttons and no user', () => {
  const page = String(
    views.homePage({ providers: [{ name: 'demo', label: 'Demo <OP>', mark: 'D', style: 'demo', loginUrl: '/auth/login/demo' }], accounts: [], setupHints: [] })('n'),
  );
  expect(page).toContain('Demo &lt;OP&gt;');
  expect(page).toContain('Not signed in');
});

test('a token without expiry and a provider without refresh tokens (GitHub) still get a sensible profile', () => {
  const page = String(
    views.profilePage({
      user: { sub: '42', name: 'Mona', providerLabel: 'GitHub' },
      token: { scope: 'read:user' },
      canRefresh: false,
      claims: { sub: '42' },
      csrf: 't',
    })('n'),
  );
  expect(page).toContain('The provider gave no expiry for it.');
  expect(page).toMatch(/<button class="btn" type="button" disabled[^>]*>Refresh tokens<\/button>/);
  expect(page).not.toContain('action="/profile/refresh"');
});

test('a callback that matches no sign-in is the example\'s own 400 page, with a link to sign in again at that provider', async () => {
  const { appURL } = await start();
  const res = await request(appURL).get('/auth/callback/demo?code=x&state=unknown').set('accept', 'text/html').expect(400);
  expect(res.text).toContain('This sign-in has expired');
  expect(res.text).toContain('href="/auth/login/demo"');
  expect(res.text).toContain('Sign in again');
  const json = await request(appURL).get('/auth/callback/demo?code=x&state=unknown').set('accept', 'application/json').expect(400);
  expect(json.body.error).toBe('invalid_state');
});
