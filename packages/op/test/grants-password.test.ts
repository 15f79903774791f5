import { decodeJwt } from 'jose';
import { PASSWORD_GRANT_WARNING } from '../src/grants/password.js';
import { accountsWithOutage, ALICE, BOB } from './support/op-server.js';
import { API, client, oauthError, SECRET, startGrantOp, webClient, type GrantFixture } from './support/grant-fixture.js';

let ipCounter = 0;
const nextIp = () => `198.51.100.${(ipCounter += 1) % 250}`;

/** `config` sending every request from `ip` (X-Forwarded-For, trusted by the OP): the throttle counts per IP too. */
function from(config: client.Configuration, ip: string): client.Configuration {
  config[client.customFetch] = (url, options) => fetch(url, { ...(options as RequestInit), headers: { ...Object.fromEntries(new Headers(options.headers)), 'x-forwarded-for': ip } });
  return config;
}

// RFC 6749 §4.3 resource owner password credentials, opt-in, with the login form's lock-out
describe('features.passwordGrant', () => {
  let f: GrantFixture;
  let warn: jest.SpyInstance;
  const warnings = () => warn.mock.calls.flat().filter((m) => String(m).includes('features.passwordGrant'));
  const ropc = async (ip = nextIp()) => from(await f.config('ropc'), ip);
  const password = (config: client.Configuration, username: string, pass: string, extra: Record<string, string> = {}) => client.genericGrantRequest(config, 'password', { username, password: pass, ...extra });

  beforeAll(async () => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    f = await startGrantOp((origin) => ({
      trustProxy: true,
      throttle: { maxFailures: 3, maxAccountFailures: 3 },
      features: { passwordGrant: true, resourceIndicators: { resources: { [API]: { scope: 'read' } } } },
      clients: [
        webClient(origin),
        { client_id: 'ropc', client_secret: SECRET, grant_types: ['password', 'refresh_token'], response_types: [] },
        { client_id: 'ropc-no-refresh', client_secret: SECRET, grant_types: ['password'], response_types: [] },
      ],
    }));
  });
  afterAll(async () => {
    warn.mockRestore();
    await f?.op.close();
  });

  test('op() warns at start-up, once, that OAuth 2.1 removes the grant', async () => {
    await password(await ropc(), 'alice', ALICE.password);
    await password(await ropc(), 'alice', ALICE.password);
    expect(warnings()).toEqual([PASSWORD_GRANT_WARNING]);
    expect(PASSWORD_GRANT_WARNING).toContain('OAuth 2.1 removes this grant');
  });

  test('alice\'s password gives an access token for userinfo and a refresh token (offline_access), no ID token', async () => {
    const config = await ropc();
    expect(config.serverMetadata().grant_types_supported).toContain('password');
    const tokens = await password(config, 'alice', ALICE.password, { scope: 'openid email offline_access' });
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 3600, refresh_token: expect.any(String) });
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'offline_access', 'openid']);
    expect(tokens.id_token).toBeUndefined();
    expect(await client.fetchUserInfo(config, tokens.access_token, 'alice')).toEqual({ sub: 'alice', email: ALICE.claims.email, email_verified: true });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(await client.fetchUserInfo(config, refreshed.access_token, 'alice')).toMatchObject({ sub: 'alice' });
  });

  test('a login name in another case or with spaces is the same account; no refresh token without offline_access or the refresh grant', async () => {
    const tokens = await password(await ropc(), ' ALICE ', ALICE.password, { scope: 'openid' });
    expect(tokens.refresh_token).toBeUndefined();
    const noRefresh = from(await f.config('ropc-no-refresh'), nextIp());
    expect((await password(noRefresh, 'alice', ALICE.password, { scope: 'openid offline_access' })).refresh_token).toBeUndefined();
  });

  test('with a resource: a JWT access token for it', async () => {
    const tokens = await password(await ropc(), 'alice', ALICE.password, { scope: 'read', resource: API });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: API, sub: 'alice', client_id: 'ropc', scope: 'read' });
    expect(await oauthError(password(await ropc(), 'alice', ALICE.password, { resource: 'https://unknown.example.com' }))).toMatchObject({ error: 'invalid_target' });
  });

  test('a wrong password or unknown user is invalid_grant with one generic message', async () => {
    expect(await oauthError(password(await ropc(), 'alice', 'not-her-password'))).toEqual({ error: 'invalid_grant', error_description: 'the username or password is incorrect', status: 400 });
    expect(await oauthError(password(await ropc(), 'nobody', 'whatever'))).toMatchObject({ error: 'invalid_grant', error_description: 'the username or password is incorrect' });
    expect(await oauthError(client.genericGrantRequest(await ropc(), 'password', { username: 'alice' }))).toMatchObject({ error: 'invalid_request' });
  });

  test('wrong passwords count toward the login lock-out: then even the right one is refused, here and on the login page', async () => {
    for (let i = 0; i < 3; i += 1) {
      expect(await oauthError(password(await ropc(), 'bob', 'wrong'))).toMatchObject({ error: 'invalid_grant' }); // each from another IP: the account counts
    }
    expect(await oauthError(password(await ropc(), 'bob', BOB.password))).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('too many failed attempts') });
    const web = await f.config('web');
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: f.redirectUri, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(),
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const browser = f.browser(nextIp());
    const page = await browser.submit(await browser.open(url.href), { value: ['authenticator', 'password'] }, { login: 'bob', password: BOB.password });
    expect(page.status).toBe(429);
    expect(page.html).toContain('Too many failed attempts');
  });

  test('guesses sent all at once are held to the limit too (each check counted before its password is checked), then the name is locked', async () => {
    const configs = await Promise.all(Array.from({ length: 7 }, () => ropc()));
    const answers = await Promise.all(configs.map((config, i) => oauthError(password(config, 'carol-nobody', `guess-${i}`))));
    const descriptions = answers.map((a) => (a as { error_description?: string }).error_description ?? '').sort();
    expect(descriptions.filter((d) => d === 'the username or password is incorrect')).toHaveLength(3);
    expect(descriptions.filter((d) => d === 'too many sign-ins to this account at this moment: try again in a few seconds')).toHaveLength(4);
    // three failures: the name is locked for the window
    expect(await oauthError(password(await ropc(), 'carol-nobody', 'guess-8'))).toMatchObject({ error_description: expect.stringContaining('too many failed attempts') });
  });

  test('right passwords sent all at once from several addresses (one account used by several devices): none is locked out; those told "at this moment" get a token when they try again', async () => {
    const configs = await Promise.all(Array.from({ length: 7 }, () => ropc()));
    const answers = await Promise.all(configs.map((config) => password(config, 'alice', ALICE.password).then(() => 'token', (err: { error_description?: string }) => err.error_description ?? String(err))));
    expect(answers).toEqual(expect.arrayContaining(['token', 'token', 'token'])); // maxFailures
    expect(answers.filter((a) => a !== 'token' && a !== 'too many sign-ins to this account at this moment: try again in a few seconds')).toEqual([]);
    // before: "too many failed attempts" with none failed, for the whole window
    for (const [i, a] of answers.entries()) if (a !== 'token') await expect(password(configs[i]!, 'alice', ALICE.password)).resolves.toBeDefined();
  });

  test('a client without "password" in grant_types is refused', async () => {
    const web = from(await f.config('web'), nextIp());
    expect(await oauthError(password(web, 'alice', ALICE.password))).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('not allowed for this client') });
  });
});

describe('the password grant while the accounts database is unavailable', () => {
  let f: GrantFixture;
  let down = false;
  beforeAll(async () => {
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    f = await startGrantOp((origin) => ({
      trustProxy: true,
      throttle: { maxFailures: 3, maxAccountFailures: 3 },
      features: { passwordGrant: true },
      accounts: accountsWithOutage([ALICE, BOB], () => down),
      clients: [webClient(origin), { client_id: 'ropc', client_secret: SECRET, grant_types: ['password'], response_types: [] }],
    }));
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await f?.op.close();
  });

  test('retries during the outage are 503s that lock nobody out; once it is back the right password works', async () => {
    const config = from(await f.config('ropc'), '198.51.100.251');
    down = true;
    try {
      for (let i = 0; i < 5; i += 1) {
        const err = await client.genericGrantRequest(config, 'password', { username: 'alice', password: ALICE.password }).catch((e: unknown) => e);
        const response = (err as { cause?: Response }).cause;
        expect([i, (err as { status?: number }).status ?? response?.status, response?.headers?.get?.('retry-after')]).toEqual([i, 503, '5']);
      }
    } finally {
      down = false;
    }
    const tokens = await client.genericGrantRequest(config, 'password', { username: 'alice', password: ALICE.password });
    expect(tokens.access_token).toEqual(expect.any(String));
  });
});

describe('the password grant when features.passwordGrant is off', () => {
  let f: GrantFixture;
  let warn: jest.SpyInstance;
  beforeAll(async () => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    f = await startGrantOp((origin) => ({ clients: [webClient(origin)] }));
  });
  afterAll(async () => {
    warn.mockRestore();
    await f?.op.close();
  });

  test('is unsupported_grant_type, not advertised, and nothing is printed about it', async () => {
    const web = await f.config('web');
    expect(web.serverMetadata().grant_types_supported).not.toContain('password');
    expect(await oauthError(client.genericGrantRequest(web, 'password', { username: 'alice', password: ALICE.password })))
      .toMatchObject({ error: 'unsupported_grant_type' });
    expect(warn.mock.calls.flat().join('\n')).not.toContain('passwordGrant');
  });
});
