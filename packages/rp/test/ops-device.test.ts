/**
 * The device authorization grant (RFC 8628) with `relyingParty.deviceAuthorization()` against a
 * real oidc-provider (features.deviceFlow), with a scripted user at the OP over HTTP (the code
 * entry page, the confirmation, the login interaction): polled to a login, denied, expired, aborted
 * by the caller's signal, slowed down by `slow_down`, and DPoP-bound.
 *
 * oidc-provider answers no `interval` (so 5 s): the RP's `customFetch` (the provider entry's HTTP
 * hook) adds `interval: 1` to the OP's device authorization response to keep the tests short,
 * records the polls, and stands in for an OP answering `slow_down` when a test asks it to.
 */
import type { CustomFetch } from 'openid-client';
import { RelyingParty, RpError, dpopThumbprint, oidc, type DeviceAuthorization } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The user at the OP, in a browser of their own (cookies, no JavaScript): enters the code, confirms, logs in — or aborts. */
async function userAtOp(device: DeviceAuthorization, opts: { account?: string; deny?: boolean } = {}): Promise<string> {
  const cookies = new Map<string, string>();
  const request = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    return response;
  };
  const post = (url: string, fields: Record<string, string>): Promise<Response> =>
    request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  const xsrfOf = (html: string): string => /name="xsrf" value="([^"]+)"/.exec(html)![1];

  const entry = await request(device.verificationUri);
  const xsrf = xsrfOf(await entry.text());
  const confirmPage = await post(device.verificationUri, { xsrf, user_code: device.userCode });
  const confirmHtml = await confirmPage.text();
  expect(confirmHtml).toContain('Confirm Device');
  let response = await post(device.verificationUri, { xsrf: xsrfOf(confirmHtml), user_code: device.userCode, ...(opts.deny ? { abort: 'yes' } : { confirm: 'yes' }) });
  for (let hop = 0; hop < 10 && response.headers.get('location'); hop++) {
    const next = new URL(response.headers.get('location')!, device.verificationUri);
    response = /^\/interaction\/[^/]+$/.test(next.pathname)
      ? await post(`${next.href}/login`, { account: opts.account ?? 'alice' })
      : await request(next.href);
  }
  return response.text();
}

/** Device-code polls sent to the token endpoint, with their time. */
const polls: number[] = [];
let slowDownNext = 0;

/** The wire between RP and OP: `interval: 1` on device authorization answers, polls recorded, `slow_down` on demand. */
const wire: CustomFetch = async (url, init) => {
  const { pathname } = new URL(url);
  if (pathname === '/token' && String(init.body).includes('device_code')) {
    polls.push(Date.now());
    if (slowDownNext > 0) {
      slowDownNext -= 1;
      return new Response(JSON.stringify({ error: 'slow_down', error_description: 'you are polling too quickly' }), { status: 400, headers: { 'content-type': 'application/json' } });
    }
  }
  const response = await fetch(url, init as RequestInit);
  if (pathname !== '/device/auth' || response.status !== 200) return response;
  return new Response(JSON.stringify({ ...(await response.json()), interval: 1 }), { status: 200, headers: { 'content-type': 'application/json' } });
};

let t: TestRp;
beforeAll(async () => {
  t = await startRp({
    client: { grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT] },
    op: { features: { deviceFlow: { enabled: true }, introspection: { enabled: true } }, ttl: { DeviceCode: 60 } },
    provider: { customFetch: wire },
  });
});
afterAll(() => t.close());

describe('deviceAuthorization() then poll()', () => {
  test('shows a code and a URL; polled to completion after the user approves, it is a login (ID token, user, refresh token)', async () => {
    const device = await t.relyingParty.deviceAuthorization('op');
    expect(device).toMatchObject({
      userCode: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/),
      verificationUri: `${t.op.issuer}/device`,
      verificationUriComplete: expect.stringContaining(`${t.op.issuer}/device?user_code=`),
      expiresIn: expect.any(Number),
      interval: 1,
    });
    const from = polls.length;
    const polling = device.poll();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // at least one authorization_pending first
    expect(await userAtOp(device)).toContain('Sign-in Success');
    const auth = await polling;
    expect(polls.length - from).toBeGreaterThanOrEqual(2);
    expect(auth).toMatchObject({
      provider: 'op',
      user: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org' },
      idTokenClaims: { sub: 'alice', aud: CLIENT_ID, iss: t.op.issuer },
      accessToken: { tokenType: 'bearer', scope: 'openid profile email offline_access' },
      refreshToken: expect.any(String),
    });
    // a login like a browser one: it refreshes, and asking again gives the same result without polling
    expect((await t.relyingParty.refresh(auth)).accessToken!.value).not.toBe(auth.accessToken!.value);
    const count = polls.length;
    expect((await device.poll()).idToken).toBe(auth.idToken);
    expect(polls.length).toBe(count);
  });

  test('pollTokens() with a scope without openid: the tokens only; poll() would need an ID token', async () => {
    const device = await t.relyingParty.deviceAuthorization('op', { scope: 'profile' });
    const polling = device.pollTokens();
    await userAtOp(device, { account: 'bob' });
    const tokens = await polling;
    expect(tokens).toEqual({
      accessToken: { value: expect.any(String), tokenType: 'bearer', scope: 'profile', expiresAt: expect.any(Number) },
      refreshToken: expect.any(String), // this test OP issues refresh tokens to every client allowed the grant
    });
    expect(tokens.idToken).toBeUndefined();
    expect(await t.relyingParty.introspect('op', tokens.accessToken.value)).toMatchObject({ active: true, sub: 'bob' });
    await expect(device.poll()).rejects.toMatchObject({ code: 'invalid_response', message: expect.stringContaining('"openid" scope') });
  });

  test('the user denies at the OP: op_error access_denied', async () => {
    const device = await t.relyingParty.deviceAuthorization('op');
    const polling = device.poll().catch((e: unknown) => e);
    await userAtOp(device, { deny: true });
    const err = await polling;
    expect(err).toBeInstanceOf(RpError);
    expect(err).toMatchObject({ code: 'op_error', opError: 'access_denied', status: 400 });
  });

  test('the caller\'s AbortSignal stops polling at once, with the signal\'s reason; polling may start again afterwards', async () => {
    const device = await t.relyingParty.deviceAuthorization('op');
    const controller = new AbortController();
    const started = Date.now();
    const polling = device.poll({ signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 200);
    const err = (await polling) as Error;
    expect(err.name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(900); // before the first poll (interval 1 s)
    await expect(device.poll({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const again = device.poll();
    await userAtOp(device);
    expect((await again).user.sub).toBe('alice');
  });

  test('one poll at a time', async () => {
    const device = await t.relyingParty.deviceAuthorization('op');
    const controller = new AbortController();
    const first = device.poll({ signal: controller.signal }).catch(() => undefined);
    await expect(device.pollTokens()).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('already being polled') });
    controller.abort();
    await first;
  });

  test('slow_down: the next poll waits 5 s more (openid-client\'s interval handling)', async () => {
    const device = await t.relyingParty.deviceAuthorization('op');
    await userAtOp(device);
    slowDownNext = 1;
    const from = polls.length;
    const auth = await device.poll();
    expect(auth.user.sub).toBe('alice');
    const [slowed, accepted] = polls.slice(from);
    expect(accepted - slowed).toBeGreaterThanOrEqual(5500); // interval 1 + 5
  }, 60_000);

  test('a wrong client secret at the device authorization endpoint is client_auth_failed; an unsupported OP says what is missing', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: {
        bad: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: 'wrong-secret', allowInsecureRequests: true }),
        none: oidc({ clientId: 'x', clientSecret: 's', allowInsecureRequests: true, providerInfo: { issuer: 'http://127.0.0.1:9', authorization_endpoint: 'http://127.0.0.1:9/a', token_endpoint: 'http://127.0.0.1:9/t' } }),
      },
    });
    const err = (await rp.deviceAuthorization('bad').catch((e: unknown) => e)) as RpError;
    expect(err).toMatchObject({ code: 'client_auth_failed', opError: 'invalid_client' });
    expect(err.message).toContain(`${t.op.issuer}/device/auth`);
    await expect(rp.deviceAuthorization('none')).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('device_authorization_endpoint') });
  });

  test('with dpop on the provider entry, the device login\'s access token is bound to its own key', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true, scope: 'openid profile', dpop: true, customFetch: wire }) },
    });
    const device = await rp.deviceAuthorization('op');
    const polling = device.poll();
    await userAtOp(device);
    const auth = await polling;
    expect(auth.accessToken!.tokenType).toBe('dpop');
    expect(auth.user.name).toBe('Alice Liddell'); // the userinfo endpoint accepted the token with a proof
    expect(await rp.introspect('op', auth.accessToken!.value)).toMatchObject({ active: true, cnf: { jkt: await dpopThumbprint(auth.dpop!) } });
  });
});

describe('an expiring device code', () => {
  let short: TestRp;
  beforeAll(async () => {
    short = await startRp({
      client: { grant_types: ['authorization_code', DEVICE_GRANT] },
      op: { features: { deviceFlow: { enabled: true } }, ttl: { DeviceCode: 2 } },
      provider: { customFetch: wire },
    });
  });
  afterAll(() => short.close());

  test('nobody approves: polling ends when the code expires, op_error expired_token', async () => {
    const device = await short.relyingParty.deviceAuthorization('op');
    expect(device.expiresIn).toBe(2);
    const started = Date.now();
    const err = await device.poll().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'op_error', opError: 'expired_token' });
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
