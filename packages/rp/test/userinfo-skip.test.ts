/**
 * When the userinfo endpoint is asked after a login (the default of the `fetchUserInfo` provider
 * option): only when it can add to the ID token.
 */
import { oidc, type ProviderConfig } from '@openid-express/rp';
import { userInfoCanAdd } from '../src/userinfo.js';
import { startRp, type TestRp } from './support/rp-app.js';

const provider = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({ ...oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's' }), ...over });
// Google's discovery document lists these
const GOOGLE_CLAIMS = ['aud', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'picture', 'sub'];
const googleIdToken = {
  iss: 'https://accounts.google.com', aud: 'app', sub: '1234', iat: 1, exp: 2, email: 'a@example.org', email_verified: true,
  name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell', picture: 'https://example.org/a.png',
};

describe('userInfoCanAdd (OIDC Core 5.4 scope claims, narrowed to claims_supported)', () => {
  test('no: the ID token carries every claim of claims_supported that the granted scopes release', () => {
    expect(userInfoCanAdd(provider(), 'openid email profile', GOOGLE_CLAIMS, googleIdToken)).toBe(false);
  });

  test('yes: one of them is missing from the ID token', () => {
    const { picture: _, ...withoutPicture } = googleIdToken;
    expect(userInfoCanAdd(provider(), 'openid email profile', GOOGLE_CLAIMS, withoutPicture)).toBe(true);
  });

  test('a claim of a scope that was not granted does not count; the granted scope is the one that counts', () => {
    expect(userInfoCanAdd(provider(), 'openid email', GOOGLE_CLAIMS, { sub: '1234', email: 'a@example.org', email_verified: true })).toBe(false);
    expect(userInfoCanAdd(provider(), 'openid', [...GOOGLE_CLAIMS, 'phone_number'], { sub: '1234' })).toBe(false);
  });

  test('yes: claims_supported lists a claim OIDC Core 5.4 maps to no scope (an OP may add it to any scope), and the ID token lacks it', () => {
    expect(userInfoCanAdd(provider(), 'openid profile', ['sub', 'name', 'groups'], { sub: 'a', name: 'A' })).toBe(true);
    expect(userInfoCanAdd(provider(), 'openid profile', ['sub', 'name', 'groups'], { sub: 'a', name: 'A', groups: ['x'] })).toBe(false);
  });

  test('yes: a granted scope none of whose claims the ID token carries, whatever claims_supported leaves out (LemonLDAP::NG lists only sub, iss, auth_time, acr)', () => {
    const llng = ['sub', 'iss', 'auth_time', 'acr'];
    expect(userInfoCanAdd(provider(), 'openid profile email', llng, { sub: 'dwho', acr: 'loa-1', auth_time: 1 })).toBe(true);
    expect(userInfoCanAdd(provider(), 'openid email', llng, { sub: 'dwho' })).toBe(true);
    // (control) the same list, with the scope's claims in the ID token: nothing more to ask
    expect(userInfoCanAdd(provider(), 'openid email', llng, { sub: 'dwho', email: 'dwho@badwolf.org' })).toBe(false);
    expect(userInfoCanAdd(provider(), 'openid', llng, { sub: 'dwho' })).toBe(false);
  });

  test('token claims of claims_supported (acr, auth_time, sid …) never count', () => {
    expect(userInfoCanAdd(provider(), 'openid', ['sub', 'acr', 'auth_time', 'sid', 'iss', 'amr'], { sub: 'a' })).toBe(false);
  });

  test('a claim named in the ID token\'s _claim_names (aggregated / distributed) counts as carried', () => {
    expect(userInfoCanAdd(provider(), 'openid email', ['sub', 'email', 'email_verified'], { sub: 'a', email_verified: true, _claim_names: { email: 'src1' } })).toBe(false);
  });

  test('yes: a scope that is not a standard one (it may release any claim)', () => {
    expect(userInfoCanAdd(provider(), 'openid email api:read', GOOGLE_CLAIMS, googleIdToken)).toBe(true);
  });

  test('offline_access releases no claim', () => {
    expect(userInfoCanAdd(provider(), 'openid email profile offline_access', GOOGLE_CLAIMS, googleIdToken)).toBe(false);
  });

  test('yes: the OP publishes no claims_supported (what it can release is unknown)', () => {
    expect(userInfoCanAdd(provider(), 'openid', undefined, { sub: 'a' })).toBe(true);
  });

  test('yes: the claims parameter asks for userinfo claims', () => {
    expect(userInfoCanAdd(provider({ claims: { userinfo: { picture: null } } }), 'openid', ['sub'], { sub: 'a' })).toBe(true);
  });

  test('yes: no ID token, an OAuth 2.0 provider, or a provider with its own fetchUser', () => {
    expect(userInfoCanAdd(provider(), 'openid', ['sub'], undefined)).toBe(true);
    expect(userInfoCanAdd(provider({ type: 'oauth2' }), 'openid', ['sub'], { sub: 'a' })).toBe(true);
    expect(userInfoCanAdd(provider({ fetchUser: async () => ({ sub: 'a' }) }), 'openid', ['sub'], { sub: 'a' })).toBe(true);
  });
});

describe('userinfo after a login at a real OP', () => {
  let t: TestRp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  test('default: an OP that puts every claim of the scopes in the ID token is not asked again; /me has them all', async () => {
    t = await startRp({ op: { config: { conformIdTokenClaims: false } } });
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect(t.op.counts.userinfo).toBe(0);
    const me = await agent.get('/me');
    expect(me.body).toMatchObject({ sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true, claims: { groups: ['staff', 'admin'] } });
  });

  test('default: an ID token with only sub (oidc-provider\'s default for the code flow) → userinfo is fetched', async () => {
    t = await startRp();
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect(t.op.counts.userinfo).toBe(1);
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice', name: 'Alice Liddell', claims: { groups: ['staff', 'admin'] } });
  });

  test('fetchUserInfo: true asks the OP after every login, even when the ID token carries everything', async () => {
    t = await startRp({ op: { config: { conformIdTokenClaims: false } }, provider: { fetchUserInfo: true } });
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.userinfo).toBe(1);
  });

  test('fetchUserInfo: false never asks: the user is what the ID token says', async () => {
    t = await startRp({ provider: { fetchUserInfo: false } });
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect(t.op.counts.userinfo).toBe(0);
    expect((await agent.get('/me')).body).toEqual({ sub: 'alice', provider: 'op', claims: { sub: 'alice' } });
  });

  test('an OP without a userinfo endpoint is never asked', async () => {
    t = await startRp({ op: { features: { userinfo: { enabled: false } } } });
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    expect(t.op.counts.userinfo).toBe(0);
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice' });
  });
});
