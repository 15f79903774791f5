/**
 * github() / oauth2() presets on their own, against the GitHub simulator: the token endpoint's
 * quirks (urlencoded answers, errors with HTTP 200, comma-separated scopes) and the user lookup.
 */
import { github, oauth2 } from '@openid-express/rp';
import { startGitHubSimulator, type GitHubSimulator } from './simulators/github.js';

const callbackUrl = 'http://localhost:3000/auth/callback/github';
let sim: GitHubSimulator;

beforeAll(async () => {
  sim = await startGitHubSimulator({
    clientId: 'Iv1.sim', clientSecret: 'gh-secret', callbackUrl,
    account: {
      id: 583231, login: 'octocat', name: null, email: null,
      emails: [
        { email: 'old@example.com', primary: false, verified: true, visibility: null },
        { email: 'unverified@example.com', primary: true, verified: false, visibility: null },
      ],
    },
  });
});
afterAll(() => sim.close());
beforeEach(() => {
  sim.options.account.emails = [
    { email: 'octo@example.com', primary: true, verified: true, visibility: 'private' },
    { email: 'old@example.com', primary: false, verified: true, visibility: null },
  ];
  sim.options.account.name = null;
  sim.tokenRequests.length = 0;
  sim.apiRequests.length = 0;
});

const preset = () => github({ clientId: 'Iv1.sim', clientSecret: 'gh-secret', baseURL: sim.baseURL, allowInsecureRequests: true });

/** Walk the simulator's authorization endpoint and return the code it redirects with. */
async function authorize(scope = 'read:user user:email'): Promise<string> {
  const url = new URL(preset().providerInfo!.authorization_endpoint);
  url.search = new URLSearchParams({ client_id: 'Iv1.sim', redirect_uri: callbackUrl, scope, state: 's' }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  return new URL(res.headers.get('location')!).searchParams.get('code')!;
}

/** A token request the way a client that does not ask for JSON sends it. */
function tokenRequest(body: Record<string, string>, accept?: string) {
  const config = preset();
  return config.customFetch!(config.providerInfo!.token_endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(accept ? { accept } : {}) },
    body: new URLSearchParams({ client_id: 'Iv1.sim', client_secret: 'gh-secret', ...body }).toString(),
    redirect: 'manual',
  });
}

describe('github() preset', () => {
  test('is OAuth 2.0 with static GitHub Enterprise endpoints, client_secret_post and a "GitHub" label', () => {
    const config = preset();
    expect(config).toMatchObject({
      type: 'oauth2', label: 'GitHub', clientId: 'Iv1.sim', tokenEndpointAuthMethod: 'client_secret_post',
      scope: 'read:user user:email', responseType: 'code',
      providerInfo: {
        authorization_endpoint: `${sim.baseURL}/login/oauth/authorize`,
        token_endpoint: `${sim.baseURL}/login/oauth/access_token`,
        userinfo_endpoint: `${sim.baseURL}/api/v3/user`,
      },
    });
    expect(config.providerInfo!.end_session_endpoint).toBeUndefined();
    expect(config.providerInfo!.jwks_uri).toBeUndefined();
  });

  test('without baseURL it points at github.com and api.github.com', () => {
    const config = github({ clientId: 'a', clientSecret: 'b' });
    expect(config.providerInfo).toMatchObject({
      authorization_endpoint: 'https://github.com/login/oauth/authorize',
      token_endpoint: 'https://github.com/login/oauth/access_token',
      userinfo_endpoint: 'https://api.github.com/user',
    });
  });

  test('refuses missing credentials and insecure URLs at start-up, naming the option', () => {
    expect(() => github({ clientId: '', clientSecret: 'x' })).toThrow(/github\(\): option "clientId" is required/);
    expect(() => github({ clientId: 'x' } as never)).toThrow(/"clientSecret" is required/);
    expect(() => github({ clientId: 'x', clientSecret: 'y', baseURL: 'http://ghe.example' })).toThrow(/"baseURL" must be an https: URL/);
    expect(() => github({ clientId: 'x', clientSecret: 'y', baseURL: 'not a url' })).toThrow(/"baseURL" must be an absolute URL/);
  });

  test('an urlencoded token answer becomes the JSON an OAuth client expects, scopes space-separated', async () => {
    const code = await authorize();
    const res = await tokenRequest({ code, redirect_uri: callbackUrl }, '*/*');
    expect(sim.tokenRequests[0]).toMatchObject({ accept: '*/*' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = await res.json();
    expect(body).toMatchObject({ token_type: 'bearer', scope: 'read:user user:email' });
    expect(body.access_token).toMatch(/^gho_/);
  });

  test('a token request without Accept asks GitHub for JSON', async () => {
    const code = await authorize();
    const res = await tokenRequest({ code, redirect_uri: callbackUrl });
    expect(sim.tokenRequests[0].accept).toBe('application/json');
    expect((await res.json()).access_token).toMatch(/^gho_/);
  });

  test('an error GitHub reports with HTTP 200 becomes an HTTP 400 OAuth error', async () => {
    const res = await tokenRequest({ code: 'forged', redirect_uri: callbackUrl }, 'application/json');
    expect(sim.tokenRequests[0].error).toBe('bad_verification_code');
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ error: 'invalid_grant' });
    expect(body.error_description).toMatch(/^bad_verification_code: /);
  });

  test('the same error in an urlencoded 200 answer is an error too', async () => {
    const res = await tokenRequest({ code: 'forged', redirect_uri: callbackUrl }, 'application/x-www-form-urlencoded');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^bad_verification_code/) });
  });

  test('a replayed code is refused (the simulator is one-time, like GitHub)', async () => {
    const code = await authorize();
    expect((await tokenRequest({ code, redirect_uri: callbackUrl })).status).toBe(200);
    expect((await tokenRequest({ code, redirect_uri: callbackUrl })).status).toBe(400);
  });

  test('the user comes from /user with a User-Agent; a private email from /user/emails (primary + verified)', async () => {
    const code = await authorize();
    const { access_token } = await (await tokenRequest({ code, redirect_uri: callbackUrl })).json();
    const config = preset();
    const claims = await config.fetchUser!(access_token, fetch);
    expect(sim.apiRequests.map((r) => r.path)).toEqual(['/user', '/user/emails']);
    expect(sim.apiRequests.every((r) => r.userAgent === 'openid-express')).toBe(true);
    expect(claims).toMatchObject({ sub: '583231', login: 'octocat', email: 'octo@example.com', email_verified: true });
    expect(config.profile!(claims)).toEqual({
      sub: '583231', name: 'octocat', email: 'octo@example.com', emailVerified: true,
      picture: 'https://avatars.githubusercontent.com/u/583231?v=4',
    });
  });

  test('a primary address that is not verified is not used', async () => {
    sim.options.account.emails = [{ email: 'unverified@example.com', primary: true, verified: false, visibility: null }];
    const code = await authorize();
    const { access_token } = await (await tokenRequest({ code, redirect_uri: callbackUrl })).json();
    const claims = await preset().fetchUser!(access_token, fetch);
    expect(claims.email).toBeNull();
    expect(preset().profile!(claims).email).toBeUndefined();
  });

  test('without the user:email scope the user still loads, without an email', async () => {
    const code = await authorize('read:user');
    const { access_token } = await (await tokenRequest({ code, redirect_uri: callbackUrl })).json();
    const claims = await preset().fetchUser!(access_token, fetch);
    expect(claims).toMatchObject({ sub: '583231', email: null });
  });

  test('a rejected access token is a user endpoint error with a stable code', async () => {
    await expect(preset().fetchUser!('gho_forged', fetch)).rejects.toMatchObject({ code: 'userinfo_failed', status: 401 });
  });
});

describe('oauth2() preset', () => {
  const base = { clientId: 'c', authorizationEndpoint: 'https://as.example/authorize', tokenEndpoint: 'https://as.example/token' };

  test('builds static metadata from the three endpoints', () => {
    const config = oauth2({ ...base, userinfoEndpoint: 'https://as.example/me', scope: 'profile', label: 'Example' });
    expect(config).toMatchObject({
      type: 'oauth2', label: 'Example', issuer: 'https://as.example', scope: 'profile', pkce: true,
      providerInfo: { issuer: 'https://as.example', authorization_endpoint: base.authorizationEndpoint, token_endpoint: base.tokenEndpoint, userinfo_endpoint: 'https://as.example/me' },
    });
  });

  test('maps standard claim names, and a numeric id to a string sub, by default', () => {
    const config = oauth2({ ...base, userinfoEndpoint: 'https://as.example/me' });
    expect(config.profile!({ id: 42, name: 'Ann', email: 'ann@example.com', email_verified: true })).toEqual({
      sub: '42', name: 'Ann', email: 'ann@example.com', emailVerified: true, picture: undefined,
    });
  });

  test('refuses a configuration that cannot load the user, or with non-https endpoints', () => {
    expect(() => oauth2(base)).toThrow(/oauth2\(\): option "userinfoEndpoint" is missing: give it/);
    expect(() => oauth2({ ...base, tokenEndpoint: 'http://as.example/token', userinfoEndpoint: 'https://as.example/me' })).toThrow(/"tokenEndpoint" must be an https: URL/);
    expect(() => oauth2({ ...base, tokenEndpoint: 'http://127.0.0.1/token', userinfoEndpoint: 'http://127.0.0.1/me', allowInsecureRequests: true })).not.toThrow();
  });
});
