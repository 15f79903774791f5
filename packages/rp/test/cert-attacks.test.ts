/**
 * What an attacker would try against the RP routes, against the real oidc-provider: mix-up,
 * authorization code injection, state fixation, duplicated / oversized / non-string parameters,
 * returnTo tricks, error+code callbacks, cross-site refresh, logout open redirect, client
 * authentication at the token endpoint (rp-token_endpoint-client_secret_post).
 * Each refusal is a clear 4xx with a stable code and leaves no authenticated session behind.
 */
import request from 'supertest';
import { startOp, type TestOp } from './support/oidc-provider.js';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

let t: TestRp;
let evil: TestOp;
const EVIL_REDIRECT = 'http://127.0.0.1:9/cb';

beforeAll(async () => {
  t = await startRp();
  // a second, honest-looking OP the attacker controls, with a client of its own
  evil = await startOp({ clients: [{ client_id: 'evil-app', client_secret: 'evil-secret-0123456789-0123456789-01', redirect_uris: [EVIL_REDIRECT], grant_types: ['authorization_code'] }] });
});
beforeEach(() => clearStore(t));
afterAll(async () => {
  await t.close();
  await evil.close();
});

/** Starts a login at the RP; returns the state it keeps in that browser's session. */
async function startLogin(agent: request.Agent, returnTo = '/me'): Promise<{ state: string; location: URL }> {
  const res = await agent.get(`/auth/login/op?returnTo=${encodeURIComponent(returnTo)}`);
  expect(res.status).toBe(302);
  const location = new URL(res.headers.location);
  return { state: location.searchParams.get('state')!, location };
}

/** A callback for the attacker's own login at the real OP (code, state, iss), not delivered. */
async function attackersCallback(): Promise<URL> {
  return t.startLogin(t.agent(), { account: 'bob' });
}

async function expectRefused(res: request.Response, agent: request.Agent, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.body.error).toBe(code);
  await expectNoLogin(t, agent);
}

describe('mix-up and code injection', () => {
  test('mix-up: a code and iss from another OP, on this OP\'s callback with the victim\'s own state, do not log in', async () => {
    const evilStart = new URL(`${evil.issuer}/auth`);
    Object.entries({ client_id: 'evil-app', response_type: 'code', scope: 'openid', redirect_uri: EVIL_REDIRECT, state: 's', nonce: 'n' })
      .forEach(([k, v]) => evilStart.searchParams.set(k, v));
    const evilCallback = await evil.authorize(evilStart);
    const code = evilCallback.searchParams.get('code')!;
    expect(code).toBeTruthy();
    const victim = t.agent();
    const { state } = await startLogin(victim);
    const res = await victim.get(`/auth/callback/op?code=${code}&state=${state}&iss=${encodeURIComponent(evil.issuer)}`);
    await expectRefused(res, victim, 400, 'invalid_response');
    expect(res.body.error_description).toMatch(/iss/);
  });

  test('mix-up: the other OP\'s code without iss does not log in either (this OP advertises RFC 9207)', async () => {
    const victim = t.agent();
    const { state } = await startLogin(victim);
    await expectRefused(await victim.get(`/auth/callback/op?code=foreign-code&state=${state}`), victim, 400, 'invalid_response');
  });

  test('code injection: the attacker\'s code in the victim\'s callback (victim\'s state) is refused by PKCE at the OP', async () => {
    const stolen = await attackersCallback();
    const victim = t.agent();
    const { state } = await startLogin(victim);
    const params = new URLSearchParams(stolen.search);
    params.set('state', state);
    const res = await victim.get(`/auth/callback/op?${params}`);
    await expectRefused(res, victim, 400, 'invalid_grant');
  });

  test('state fixation: the attacker\'s complete callback (his state, his code) opened in the victim\'s browser does not log the victim in as the attacker', async () => {
    const planted = await attackersCallback();
    const victim = t.agent();
    await startLogin(victim); // the victim even has a login of her own pending
    await expectRefused(await victim.get(planted.pathname + planted.search), victim, 400, 'invalid_state');
  });
});

describe('malformed callbacks', () => {
  test('state given twice (state=a&state=a) does not log in', async () => {
    const agent = t.agent();
    const { location } = await startLogin(agent);
    const callback = await t.op.authorize(location);
    const state = callback.searchParams.get('state')!;
    const res = await agent.get(`${callback.pathname}${callback.search}&state=${state}`);
    await expectRefused(res, agent, 400, 'invalid_response');
    expect(res.body.error_description).toMatch(/state/);
  });

  test('code given twice does not log in', async () => {
    const agent = t.agent();
    const { location } = await startLogin(agent);
    const callback = await t.op.authorize(location);
    await expectRefused(await agent.get(`${callback.pathname}${callback.search}&code=other`), agent, 400, 'invalid_response');
  });

  test('a POSTed state[]=x (array-shaped field) is no state at all', async () => {
    const agent = t.agent();
    await startLogin(agent);
    // a POST whose state matches nothing is first bounced same-origin (form_post without the cookie), once
    const bounced = await agent.post('/auth/callback/op').type('form').send('state[]=x&code[]=y');
    expect(bounced.status).toBe(200);
    expect(bounced.text).toContain('name="oidc_resubmitted"');
    const res = await agent.post('/auth/callback/op').type('form').send('state[]=x&code[]=y&oidc_resubmitted=1');
    await expectRefused(res, agent, 400, 'missing_state');
  });

  test('a POSTed state twice (state=a&state=b, parsed as an array) is no state at all', async () => {
    const agent = t.agent();
    const { state } = await startLogin(agent);
    const res = await agent.post('/auth/callback/op').type('form').send(`state=${state}&state=${state}&code=x&oidc_resubmitted=1`);
    await expectRefused(res, agent, 400, 'missing_state');
  });

  test('a callback with error AND code is an OP error, not a login', async () => {
    const agent = t.agent();
    const { location } = await startLogin(agent);
    const callback = await t.op.authorize(location);
    const res = await agent.get(`${callback.pathname}${callback.search}&error=access_denied`);
    await expectRefused(res, agent, 400, 'op_error');
    expect(res.body.op_error).toBe('access_denied');
  });

  test('an oversized callback URL is refused by the HTTP server and the app keeps working', async () => {
    const agent = t.agent();
    const res = await agent.get(`/auth/callback/op?state=${'a'.repeat(20_000)}&code=x`);
    expect(res.status).toBe(431);
    await expectNoLogin(t, agent);
    expect((await t.login(t.agent())).status).toBe(302);
  });

  test('a large POSTed callback body (over 64 KiB) is a 400, not a crash', async () => {
    const agent = t.agent();
    const res = await agent.post('/auth/callback/op').type('form').send(`state=x&junk=${'a'.repeat(70_000)}`);
    await expectRefused(res, agent, 400, 'invalid_request');
  });

  test.each([
    ['a provider name that does not percent-decode', (a: request.Agent) => a.get('/auth/login/%E0%A4%A'), /Failed to decode param/],
    ['a callback path that does not percent-decode', (a: request.Agent) => a.get('/auth/callback/%'), /Failed to decode param/],
    ['a body whose Content-Encoding (gzip) does not decode', (a: request.Agent) => a.post('/auth/callback/op').set('content-type', 'application/x-www-form-urlencoded').set('content-encoding', 'gzip').send('state=x&code=y'), /Z_DATA_ERROR/],
  ])('%s is the request\'s fault: 400 invalid_request, not an OP\'s invalid_response', async (_what, send, detail) => {
    const agent = t.agent();
    const res = await send(agent);
    await expectRefused(res, agent, 400, 'invalid_request');
    expect(res.body.error_description).toMatch(detail);
  });
});

describe('returnTo', () => {
  test.each([
    ['an absolute URL', 'https://evil.example/'],
    ['a scheme-relative URL', '//evil.example/'],
    ['a backslash URL', '/\\evil.example/'],
    ['javascript:', 'javascript:alert(document.cookie)'],
    ['a header injection', '/\r\nSet-Cookie: pwned=1'],
    ['dot segments that become //host', '/.//evil.example/'],
    ['a huge path', `/${'a'.repeat(5000)}`],
  ])('%s is replaced by "/" after login', async (_name, returnTo) => {
    const agent = t.agent();
    const res = await t.login(agent, { returnTo });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/');
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('pwned');
  });

  test('logout: an absolute returnTo is not an open redirect, with or without a login', async () => {
    const anonymous = await t.agent().get(`/auth/logout?returnTo=${encodeURIComponent('https://evil.example/')}`).set('sec-fetch-site', 'same-origin');
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe('/');

    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get(`/auth/logout?returnTo=${encodeURIComponent('//evil.example/')}`).set('sec-fetch-site', 'same-origin');
    expect(res.status).toBe(302);
    const url = new URL(res.headers.location);
    expect(url.origin).toBe(t.op.issuer.replace(/\/$/, ''));
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${t.baseURL}/`);
    await expectNoLogin(t, agent);
  });
});

describe('POST /auth/refresh from another site (CSRF)', () => {
  test('a foreign Origin is refused with 403 before any refresh grant, and no token is in any answer', async () => {
    const agent = t.agent();
    await t.login(agent);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const res = await agent.post('/auth/refresh').set('origin', 'https://evil.example').type('form').send({});
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('cross_origin_request');
    const crossSite = await agent.post('/auth/refresh').set('sec-fetch-site', 'cross-site').send({});
    expect(crossSite.status).toBe(403);
    expect(t.op.counts.grants.refresh_token ?? 0).toBe(grants);
    expect((await agent.get('/me')).status).toBe(200); // the login itself is untouched
  });

  test('the app\'s own page may refresh, and the answer carries no token', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.post('/auth/refresh').set('origin', t.baseURL).set('sec-fetch-site', 'same-origin').send({});
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['expiresAt', 'scope', 'tokenType']);
    expect(res.text).not.toMatch(/ey[\w-]+\.[\w-]+/);
  });
});

describe('rp-token_endpoint-client_secret_post', () => {
  let post: TestRp;
  beforeAll(async () => {
    post = await startRp({ client: { token_endpoint_auth_method: 'client_secret_post' }, provider: { tokenEndpointAuthMethod: 'client_secret_post' } });
  });
  afterAll(() => post.close());

  test('a client registered for client_secret_post logs in with the secret in the body', async () => {
    const agent = post.agent();
    expect((await post.login(agent)).status).toBe(302);
    expect((await agent.get('/me')).body.sub).toBe('alice');
  });

  test('the secret travels in the token request body, not in an Authorization header', async () => {
    const seen: Array<{ url: string; body: string; authorization: string | null }> = [];
    const recording = await startRp({
      client: { token_endpoint_auth_method: 'client_secret_post' },
      provider: {
        tokenEndpointAuthMethod: 'client_secret_post',
        customFetch: async (url, init) => {
          seen.push({ url: String(url), body: String(init.body ?? ''), authorization: new Headers(init.headers).get('authorization') });
          return fetch(url, init as RequestInit);
        },
      },
    });
    try {
      expect((await recording.login(recording.agent())).status).toBe(302);
      const token = seen.find((r) => r.url.endsWith('/token'))!;
      expect(new URLSearchParams(token.body).get('client_secret')).toBe(CLIENT_SECRET);
      expect(new URLSearchParams(token.body).get('client_id')).toBe(CLIENT_ID);
      expect(token.authorization).toBeNull();
    } finally {
      await recording.close();
    }
  });
});
