/**
 * The compact form of a login in the session (`toStoredLogin` / `readStoredLogin`): nothing kept
 * twice, and every login reads back exactly as the `Authentication` it was made from.
 */
import { readStoredLogin, type Authentication, type StoredLogin } from '@openid-express/rp';
import { toStoredLogin } from '../src/stored-login.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (payload: Record<string, unknown>): string => `${b64({ alg: 'RS256', kid: 'k1' })}.${b64(payload)}.${Buffer.alloc(256, 1).toString('base64url')}`;

const iat = 1_800_000_000;
const idTokenClaims = { sub: 'alice', nonce: 'n-123', aud: 'app', exp: iat + 3600, iat, iss: 'https://id.example.com', sid: 's-1' };

/** A code-flow login as `finalize` makes it: userinfo claims merged over the ID token's person claims. */
function codeLogin(over: Partial<Authentication> = {}): Authentication {
  const idToken = jwt(idTokenClaims);
  return {
    provider: 'corp',
    user: {
      sub: 'alice', provider: 'corp',
      claims: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', email_verified: true, groups: ['staff'] },
      name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true,
    },
    idToken,
    idTokenClaims: { ...idTokenClaims },
    accessToken: { value: 'at-123', tokenType: 'bearer', scope: 'openid profile email', expiresAt: iat + 3600 },
    refreshToken: 'rt-123',
    authTime: iat,
    ...over,
  };
}

/** What a session store gives back: a JSON copy. */
const throughStore = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe('toStoredLogin / readStoredLogin', () => {
  test('a code-flow login keeps the ID token once: no user, no idTokenClaims, no "bearer", no authTime equal to iat', () => {
    const auth = codeLogin();
    const stored = toStoredLogin(auth) as StoredLogin;
    expect(stored).toEqual({
      provider: 'corp',
      idToken: auth.idToken,
      claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true, groups: ['staff'] },
      accessToken: { value: 'at-123', scope: 'openid profile email', expiresAt: iat + 3600 },
      refreshToken: 'rt-123',
    });
    expect(readStoredLogin(throughStore(stored))).toEqual(auth);
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(auth).length - JSON.stringify(auth.idTokenClaims).length - 100);
  });

  test('person claims the ID token carries are not kept again; a userinfo value that differs from the token is', () => {
    const idToken = jwt({ ...idTokenClaims, email: 'alice@example.org', name: 'Alice' });
    const auth = codeLogin({
      idToken,
      idTokenClaims: { ...idTokenClaims, email: 'alice@example.org', name: 'Alice' },
      user: { sub: 'alice', provider: 'corp', claims: { sub: 'alice', email: 'alice@example.org', name: 'Alice L.' }, email: 'alice@example.org', name: 'Alice L.' },
    });
    const stored = toStoredLogin(auth) as StoredLogin;
    expect(stored.claims).toEqual({ name: 'Alice L.' });
    expect(readStoredLogin(throughStore(stored))).toEqual(auth);
  });

  test('a protocol claim that came from userinfo (not in the ID token) stays in user.claims', () => {
    const auth = codeLogin();
    auth.user.claims = { ...auth.user.claims, azp: 'other' };
    expect(readStoredLogin(throughStore(toStoredLogin(auth)))).toEqual(auth);
  });

  test('a provider\'s profile() mapping is kept only where it differs from the claims (oauth2 without ID token)', () => {
    const auth: Authentication = {
      provider: 'gh',
      user: { sub: '583231', provider: 'gh', name: 'The Octocat', email: 'octo@example.org', claims: { id: 583231, login: 'octocat', name: 'The Octocat', email: 'octo@example.org' } },
      accessToken: { value: 'gho_x', tokenType: 'bearer', scope: 'read:user' },
      authTime: iat,
    };
    const stored = toStoredLogin(auth) as StoredLogin;
    expect(stored.profile).toEqual({ sub: '583231' });
    expect(stored.authTime).toBe(iat); // no ID token to take it from
    expect(readStoredLogin(throughStore(stored))).toEqual(auth);
  });

  test('authTime is kept when it is not the token\'s (auth_time, else iat), e.g. after a refresh brought a new ID token', () => {
    const auth = codeLogin({ authTime: iat - 500 });
    expect((toStoredLogin(auth) as StoredLogin).authTime).toBe(iat - 500);
    expect(readStoredLogin(throughStore(toStoredLogin(auth)))).toEqual(auth);
    const withAuthTime = codeLogin({ idToken: jwt({ ...idTokenClaims, auth_time: iat - 60 }), idTokenClaims: { ...idTokenClaims, auth_time: iat - 60 }, authTime: iat - 60 });
    withAuthTime.user.claims.auth_time = iat - 60; // not a protocol claim: normalizeUser keeps it in user.claims
    expect(toStoredLogin(withAuthTime)).not.toHaveProperty('authTime');
    expect(readStoredLogin(throughStore(toStoredLogin(withAuthTime)))).toEqual(withAuthTime);
  });

  test('another token type (DPoP) and members of other features (dpop key) are kept as they are', () => {
    const dpop = { kty: 'EC' as const, crv: 'P-256', x: 'x', y: 'y', d: 'd' };
    const auth = codeLogin({ accessToken: { value: 'at', tokenType: 'dpop', expiresAt: iat + 60 }, dpop });
    const stored = toStoredLogin(auth) as StoredLogin;
    expect(stored.accessToken).toEqual({ value: 'at', tokenType: 'dpop', expiresAt: iat + 60 });
    expect(stored.dpop).toEqual(dpop);
    expect(readStoredLogin(throughStore(stored))).toEqual(auth);
  });

  test('the compact form is what a store gives back: plain JSON, sharing no object with the login it was made from', () => {
    const dpop = { kty: 'EC' as const, crv: 'P-256', x: 'x', y: 'y', d: 'd' };
    const auth = codeLogin({ dpop, extra: undefined } as Partial<Authentication>);
    const stored = toStoredLogin(auth) as StoredLogin;
    expect(Object.hasOwn(stored, 'extra')).toBe(false); // as a store would drop it
    expect(stored.dpop).toEqual(dpop);
    expect(stored.dpop).not.toBe(dpop);
    dpop.d = 'changed later';
    expect((stored.dpop as { d: string }).d).toBe('d');
  });

  test('a login the compact form cannot give back exactly is kept whole', () => {
    // user.claims lacks a person claim the ID token carries (the compact form would add it back)
    const odd = codeLogin({ idToken: jwt({ ...idTokenClaims, locale: 'fr' }), idTokenClaims: { ...idTokenClaims, locale: 'fr' } });
    expect(toStoredLogin(odd)).toBe(odd);
    // idTokenClaims that are not the token's payload
    const forged = codeLogin({ idTokenClaims: { ...idTokenClaims, sub: 'mallory' } });
    expect(toStoredLogin(forged)).toBe(forged);
  });

  test('a whole login (written by an earlier version) reads back unchanged', () => {
    const auth = throughStore(codeLogin());
    expect(readStoredLogin(auth)).toBe(auth);
  });

  test('every read gets its own copy of the ID token\'s claims: what one request changes, the next does not see', () => {
    const stored = throughStore(toStoredLogin(codeLogin({ idTokenClaims: { ...idTokenClaims, groups: ['staff'] }, idToken: jwt({ ...idTokenClaims, groups: ['staff'] }) })));
    const first = readStoredLogin(throughStore(stored));
    (first.idTokenClaims as { groups: string[] }).groups.push('admin');
    first.idTokenClaims!.sub = 'mallory';
    first.user.claims.email = 'mallory@example.org';
    const second = readStoredLogin(throughStore(stored));
    expect(second.idTokenClaims).toMatchObject({ sub: 'alice', groups: ['staff'] });
    expect(second.user.sub).toBe('alice');
    expect(second.user.claims.email).toBe('alice@example.org');
  });

  test('two ID tokens that end alike (the same signature) each read back their own claims', () => {
    // payloads are kept by the token's last characters and used only for the very same token
    const signature = Buffer.alloc(256, 9).toString('base64url');
    const token = (sub: string): string => `${b64({ alg: 'RS256' })}.${b64({ ...idTokenClaims, sub })}.${signature}`;
    const alice = { provider: 'corp', idToken: token('alice') };
    const mallory = { provider: 'corp', idToken: token('mallory') };
    for (let i = 0; i < 3; i += 1) {
      expect(readStoredLogin(throughStore(alice)).user.sub).toBe('alice');
      expect(readStoredLogin(throughStore(mallory)).user.sub).toBe('mallory');
      expect(readStoredLogin(throughStore(alice)).idTokenClaims?.sub).toBe('alice');
    }
  });

  test('logins read after many others (past what is kept decoded) still read back exactly', () => {
    const logins = Array.from({ length: 1500 }, (_, i) => {
      const auth = codeLogin({ idToken: jwt({ ...idTokenClaims, sub: `user-${i}` }), idTokenClaims: { ...idTokenClaims, sub: `user-${i}` } });
      auth.user = { ...auth.user, sub: `user-${i}`, claims: { ...auth.user.claims, sub: `user-${i}` } };
      return { auth, stored: throughStore(toStoredLogin(auth)) };
    });
    for (const round of [0, 1]) {
      for (const { auth, stored } of round ? [...logins].reverse() : logins) expect(readStoredLogin(throughStore(stored))).toEqual(auth);
    }
  });

  test('a "__proto__" claim in the ID token stays a plain member, as JSON.parse reads it (no prototype set)', () => {
    const payload = `{"sub":"alice","iss":"https://id.example.com","aud":"app","iat":${iat},"exp":${iat + 3600},"__proto__":{"isAdmin":true}}`;
    const idToken = `${b64({ alg: 'RS256' })}.${Buffer.from(payload).toString('base64url')}.${Buffer.alloc(256, 1).toString('base64url')}`;
    for (let i = 0; i < 2; i += 1) { // twice: nothing of the first read changes the second
      const auth = readStoredLogin({ provider: 'corp', idToken });
      const claims = auth.idTokenClaims as Record<string, unknown>;
      expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
      expect((claims as { isAdmin?: unknown }).isAdmin).toBeUndefined();
      expect(Object.getOwnPropertyDescriptor(claims, '__proto__')?.value).toEqual({ isAdmin: true });
      expect((auth.user.claims as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    }
  });
});
