/**
 * examples/rp-social: an RP-only app configured from environment variables. GitHub is played by
 * the loopback simulator (as a GitHub Enterprise Server, GITHUB_BASE_URL).
 */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { startGitHubSimulator, type GitHubSimulator } from '../simulators/github.js';
import { loadExample } from './load.js';
import { listenFirst, type Started } from './listen.js';
import { runScript, type RunningScript } from './run-script.js';

const { createApp } = loadExample<{
  createApp(o: { baseURL: string; env: Record<string, string | undefined> }): RequestListener;
}>('examples/rp-social/app.js');

const started: Started[] = [];
async function startApp(env: Record<string, string>): Promise<Started> {
  const s = await listenFirst();
  s.handle(createApp({ baseURL: s.url, env: { SESSION_SECRET: 'test-session-secret', ...env } }));
  started.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

test('with no provider configured, the home page says which variables to set and the callback URLs', async () => {
  const app = await startApp({});
  const res = await request(app.url).get('/').expect(200);
  expect(res.text).toContain('GOOGLE_CLIENT_ID');
  expect(res.text).toContain('MICROSOFT_CLIENT_SECRET');
  expect(res.text).toContain(`${app.url}/auth/callback/github`);
  expect(res.text).not.toContain('/auth/login/');
  await request(app.url).get('/profile').expect(404);
});

test('each provider with a client id and secret gets a sign-in button, and no other', async () => {
  const app = await startApp({
    GOOGLE_CLIENT_ID: 'g-id', GOOGLE_CLIENT_SECRET: 'g-secret',
    GITHUB_CLIENT_ID: 'gh-id', GITHUB_CLIENT_SECRET: 'gh-secret',
    MICROSOFT_CLIENT_ID: 'ms-id', // no secret: not offered
  });
  const res = await request(app.url).get('/').expect(200);
  expect(res.text).toContain('href="/auth/login/google?returnTo=/profile"');
  expect(res.text).toContain('href="/auth/login/github?returnTo=/profile"');
  expect(res.text).not.toContain('/auth/login/microsoft');
});

describe('signing in with GitHub (simulated GitHub Enterprise Server)', () => {
  let gh: GitHubSimulator;
  let app: Started;
  beforeEach(async () => {
    app = await listenFirst();
    started.push(app);
    gh = await startGitHubSimulator({
      clientId: 'gh-id',
      clientSecret: 'gh-secret',
      callbackUrl: `${app.url}/auth/callback/github`,
      account: { id: 4242, login: 'octocat', name: 'Mona Octocat', email: null, emails: [{ email: 'mona@example.org', primary: true, verified: true, visibility: null }] },
    });
    app.handle(createApp({
      baseURL: app.url,
      env: { SESSION_SECRET: 'test-session-secret', GITHUB_CLIENT_ID: 'gh-id', GITHUB_CLIENT_SECRET: 'gh-secret', GITHUB_BASE_URL: gh.baseURL },
    }));
  });
  afterEach(() => gh.close());

  test('a user signs in, sees their profile, and logs out', async () => {
    const agent = request.agent(app.url);
    const login = await agent.get('/auth/login/github?returnTo=/profile').expect(302);
    expect(login.headers.location).toMatch(new RegExp(`^${gh.baseURL}/login/oauth/authorize\\?`));

    const authorize = await fetch(login.headers.location, { redirect: 'manual' });
    const callback = new URL(authorize.headers.get('location')!);
    expect(callback.origin + callback.pathname).toBe(`${app.url}/auth/callback/github`);

    const done = await agent.get(callback.pathname + callback.search).expect(302);
    expect(done.headers.location).toBe('/profile');
    const profile = await agent.get('/profile').expect(200);
    expect(profile.text).toContain('Mona Octocat');
    expect(profile.text).toContain('mona@example.org');

    await agent.post('/auth/logout').expect(303);
    await agent.get('/profile').set('Accept', 'application/json').expect(401);
  });

  test('a callback that GitHub did not send (wrong state) is refused with a clear page, and signs nobody in', async () => {
    const agent = request.agent(app.url);
    await agent.get('/auth/login/github?returnTo=/profile').expect(302);
    const res = await agent.get('/auth/callback/github?code=forged&state=forged').set('Accept', 'text/html');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.text).toMatch(/<h1>/);
    await agent.get('/profile').set('Accept', 'application/json').expect(401);
  });
});

describe('run as a script (node server.js)', () => {
  jest.setTimeout(90_000);
  let script: RunningScript | undefined;
  afterEach(() => script?.stop());

  test('it listens, says where, and serves its home page', async () => {
    const started = await runScript('examples/rp-social/server.js', { PORT: '0', GITHUB_CLIENT_ID: 'id', GITHUB_CLIENT_SECRET: 'secret' }, /open (http:\/\/localhost:\d+)\nProviders: (.+)\n/);
    script = started.script;
    expect(started.match[2]).toBe('github');
    const res = await fetch(started.match[1]!);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('/auth/login/github');
  });
});
