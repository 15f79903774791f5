/**
 * The framework-free core (tier 2, the seed's RPHandler operations) without Express.
 */
import { RelyingParty, RpError, oidc, type OidcSessionData } from '@openid-express/rp';
import { clockAhead, loginTime } from '../src/relying-party.js';
import { startOp, type TestOp } from './support/oidc-provider.js';

const BASE = 'https://app.example.com';
let op: TestOp;
let relyingParty: RelyingParty;

beforeAll(async () => {
  op = await startOp({
    clients: [{
      client_id: 'tier2', client_secret: 'tier2-secret-0123456789012345678901234',
      redirect_uris: [`${BASE}/auth/callback/corp`], post_logout_redirect_uris: [`${BASE}/`],
      grant_types: ['authorization_code', 'refresh_token'],
    }],
  });
  relyingParty = new RelyingParty({
    baseURL: BASE,
    providers: { corp: oidc({ issuer: op.issuer, clientId: 'tier2', clientSecret: 'tier2-secret-0123456789012345678901234', scope: 'openid email profile offline_access', allowInsecureRequests: true }) },
  });
});
afterAll(() => op.close());

async function login(): Promise<Awaited<ReturnType<RelyingParty['finalize']>>> {
  const data: OidcSessionData = {};
  const { url, state, transaction } = await relyingParty.authorizationRequest('corp', { returnTo: '/' });
  relyingParty.saveTransaction(data, state, transaction);
  const callback = await op.authorize(url);
  const pending = relyingParty.takeTransaction(data, callback.searchParams.get('state'), 'corp');
  return relyingParty.finalize(pending, state, callback.searchParams);
}

describe('RelyingParty', () => {
  test('providerInfo() discovers the OP once', async () => {
    const config = await relyingParty.providerInfo('corp');
    expect(config.serverMetadata().issuer).toBe(op.issuer);
    expect(await relyingParty.providerInfo('corp')).toBe(config);
  });

  test('authorizationRequest() → finalize() logs in; userInfo, refresh, validAccessToken, endSessionUrl work on the result', async () => {
    const auth = await login();
    expect(auth.user).toMatchObject({ sub: 'alice', email: 'alice@example.org', provider: 'corp' });
    expect(auth.refreshToken).toEqual(expect.any(String));
    expect(relyingParty.hasActiveAuthentication(auth)).toBe(true);
    expect(relyingParty.hasActiveAuthentication(auth, 3600)).toBe(true);
    expect(relyingParty.hasActiveAuthentication({ ...auth, authTime: auth.authTime - 7200 }, 3600)).toBe(false);
    expect(relyingParty.hasActiveAuthentication(undefined)).toBe(false);
    // false says "not active", not "no login": the login is still there to sign in again with (this compiles only
    // if the method is no type predicate, which narrowed a stale login to never)
    const stale = { ...auth, authTime: auth.authTime - 7200 };
    if (!relyingParty.hasActiveAuthentication(stale, 3600)) expect(stale.user.sub).toBe('alice');

    expect(await relyingParty.userInfo(auth)).toMatchObject({ sub: 'alice', name: 'Alice Liddell' });
    expect(await relyingParty.validAccessToken(auth)).toBe(auth);

    const refreshed = await relyingParty.refresh(auth, { scope: 'openid email' });
    expect(refreshed.accessToken!.value).not.toBe(auth.accessToken!.value);
    expect(refreshed.accessToken!.scope).toBe('openid email');

    const expired = { ...refreshed, accessToken: { ...refreshed.accessToken!, expiresAt: 1 } };
    const valid = await relyingParty.validAccessToken(expired);
    expect(valid.accessToken!.expiresAt).toBeGreaterThan(Date.now() / 1000);

    const end = await relyingParty.endSessionUrl(valid, `${BASE}/`);
    expect(end!.searchParams.get('id_token_hint')).toBe(valid.idToken);
    expect(end!.searchParams.get('post_logout_redirect_uri')).toBe(`${BASE}/`);
  });

  test('takeTransaction() is single use', async () => {
    const data: OidcSessionData = {};
    const { state, transaction } = await relyingParty.authorizationRequest('corp', { returnTo: '/' });
    relyingParty.saveTransaction(data, state, transaction);
    expect(relyingParty.takeTransaction(data, state, 'corp')).toEqual(transaction);
    expect(() => relyingParty.takeTransaction(data, state, 'corp')).toThrow(expect.objectContaining({ code: 'invalid_state' }));
  });

  test('refresh() without a refresh token is a clear error', async () => {
    const auth = await login();
    await expect(relyingParty.refresh({ ...auth, refreshToken: undefined })).rejects.toThrow(RpError);
    await expect(relyingParty.refresh({ ...auth, refreshToken: undefined })).rejects.toMatchObject({ code: 'no_refresh_token' });
  });

  test('unknown providers are refused', async () => {
    await expect(relyingParty.authorizationRequest('nope', { returnTo: '/' })).rejects.toMatchObject({ code: 'unknown_provider', status: 404 });
  });
});

describe('the time of a login, for maxAge (clock probe)', () => {
  const at = Math.floor(Date.now() / 1000);
  beforeEach(() => jest.spyOn(Date, 'now').mockReturnValue(at * 1000));
  afterEach(() => jest.restoreAllMocks());
  const idToken = (iat: number): string => `e30.${Buffer.from(JSON.stringify({ iat })).toString('base64url')}.c2ln`;

  test('this server 25 s ahead of the OP (a token issued just now reads 25 s old): auth_time on this clock, so a fresh login is fresh (before: requireAuth({ maxAge: 20 }) sent the user back to the OP for ever)', () => {
    const ahead = clockAhead(idToken(at - 25));
    expect(ahead).toBe(25);
    expect(loginTime({ iat: at - 25, auth_time: at - 25 }, ahead)).toBe(at);
    expect(loginTime({ iat: at - 25, auth_time: at - 625 }, ahead)).toBe(at - 600); // signed in 10 minutes before, by the OP's clock
    expect(loginTime({ iat: at - 25 }, ahead)).toBe(at);
  });

  test('clocks within 2 s, or a difference past the 30 s tolerated: the token\'s own times; never later than now', () => {
    expect(clockAhead(idToken(at - 1))).toBe(0);
    expect(clockAhead(idToken(at - 40))).toBe(0);
    expect(clockAhead('not a jwt')).toBe(0);
    expect(loginTime({ iat: at - 1, auth_time: at - 100 })).toBe(at - 100);
    expect(loginTime({ iat: at + 20, auth_time: at + 20 })).toBe(at); // the OP ahead of us: not newer than now
    expect(loginTime(undefined)).toBe(at);
  });
});
