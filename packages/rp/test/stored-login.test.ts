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

  test('a login read again reads what its session holds now: a change to any member with the same ID token is read', () => {
    // what is kept per ID token (its decoded payload) must never stand in for a changed login
    const base = codeLogin();
    const dpop = { kty: 'EC' as const, crv: 'P-256', x: 'x', y: 'y', d: 'd' };
    const variants: Authentication[] = [
      base,
      codeLogin({ accessToken: { value: 'at-456', tokenType: 'bearer', scope: 'openid', expiresAt: iat + 7200 } }), // a refresh
      codeLogin({ accessToken: { value: 'at-123', tokenType: 'bearer', expiresAt: iat + 3600 } }), // no scope
      codeLogin({ accessToken: { value: 'at-123', tokenType: 'dpop', scope: 'openid profile email', expiresAt: iat + 3600 }, dpop }),
      codeLogin({ accessToken: undefined }),
      codeLogin({ refreshToken: 'rt-456' }),
      codeLogin({ refreshToken: undefined }),
      codeLogin({ authTime: iat - 900 }),
      codeLogin({ authTime: iat - 1800 }),
      codeLogin({ user: { ...base.user, claims: { ...base.user.claims, email: 'alice@corp.example.org' }, email: 'alice@corp.example.org' } }),
      codeLogin({ user: { ...base.user, claims: { ...base.user.claims, groups: ['staff', 'admin'] } } }),
      codeLogin({ user: { ...base.user, name: 'Alice L.' } }), // a profile() mapping
      codeLogin({ user: { ...base.user, name: 'Alice M.' } }),
      codeLogin({ user: { ...base.user, name: 'Alice M.', picture: 'https://example.org/a.png' } }),
      codeLogin({ user: { ...base.user, name: 'Alice M.', picture: 'https://example.org/b.png' } }),
      codeLogin({ accessToken: undefined }), // then as many members, the other token
      codeLogin({ refreshToken: undefined }),
      codeLogin({ provider: 'corp2', user: { ...base.user, provider: 'corp2' } }),
    ];
    const stored = variants.map((auth) => {
      const compact = toStoredLogin(auth);
      expect(compact).not.toBe(auth); // each is kept in the compact form, all with the same ID token
      expect((compact as StoredLogin).idToken).toBe(base.idToken);
      return compact;
    });
    for (const order of [variants.keys(), [...variants.keys()].reverse()]) {
      for (const i of order) {
        expect(readStoredLogin(throughStore(stored[i]))).toEqual(variants[i]);
        expect(readStoredLogin(throughStore(stored[i]))).toEqual(variants[i]); // read again, right after
      }
    }
    // members of the access token or the profile that the read does not take change nothing
    const extra = throughStore(stored[0]) as StoredLogin;
    (extra.accessToken as Record<string, unknown>).unused = 1;
    expect(readStoredLogin(extra)).toEqual(base);
  });

  test('every read is its own: what one request changes anywhere in its login, the next does not see', () => {
    const auth = codeLogin({ idTokenClaims: { ...idTokenClaims, amr: ['pwd'] }, idToken: jwt({ ...idTokenClaims, amr: ['pwd'] }) });
    auth.user.claims.amr = ['pwd']; // (a person claim of the ID token: normalizeUser keeps it in user.claims)
    const stored = throughStore(toStoredLogin(auth)) as StoredLogin;
    expect(stored).not.toHaveProperty('user'); // the compact form
    for (let i = 0; i < 3; i += 1) {
      const read = readStoredLogin(throughStore(stored));
      expect(read).toEqual(auth);
      read.user.name = 'Mallory';
      read.user.claims.email = 'mallory@example.org';
      (read.user.claims.groups as string[]).push('admin');
      (read.idTokenClaims!.amr as string[]).push('mfa');
      read.idTokenClaims!.sub = 'mallory';
      read.accessToken!.value = 'stolen';
      read.refreshToken = 'stolen';
      read.provider = 'other';
    }
    // a store that hands out its own objects (no JSON copy): a change made to the stored login is read
    readStoredLogin(throughStore({ ...stored, claims: { ...stored.claims, name: 'Someone else' } })); // (another form of this ID token read first)
    const own = throughStore(stored) as StoredLogin;
    expect(readStoredLogin(own).user.name).toBe('Alice Liddell');
    (own.claims as Record<string, unknown>).name = 'Alice L.';
    own.accessToken!.value = 'at-456';
    const changed = readStoredLogin(own);
    expect(changed.user.name).toBe('Alice L.');
    expect(changed.accessToken?.value).toBe('at-456');
    const mapped = throughStore(toStoredLogin({ ...auth, user: { ...auth.user, name: 'Alice P.' } })) as StoredLogin; // a profile() mapping
    readStoredLogin(throughStore(stored)); // (another form of this ID token read first)
    expect(readStoredLogin(mapped).user.name).toBe('Alice P.');
    mapped.profile!.name = 'Alice Q.';
    expect(readStoredLogin(mapped).user.name).toBe('Alice Q.');
    expect(readStoredLogin(throughStore(stored))).toEqual(auth);
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
