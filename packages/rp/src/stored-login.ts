/**
 * What the session keeps of a login (`req.session.oidc.auth`), and how it reads back as the
 * `Authentication` that `req.oidc` and the `RelyingParty` operations use.
 *
 * The session holds the signed ID token (its signature and claims were checked at login) and only
 * what cannot be read from it: `idTokenClaims` are its payload, the person claims it carries are
 * taken from it again, the normalized user is worked out from the claims (only the fields a
 * provider's `profile()` mapped differently are kept), `authTime` is kept only when it is not the
 * token's `auth_time` (else `iat`), and an access token's `tokenType` only when it is not "bearer".
 * A login this form cannot give back exactly (checked when it is written) is kept whole, as are
 * logins written by earlier versions: both read back unchanged.
 */
import type { Authentication, StoredAccessToken } from './session.js';
import { MAX_CLAIM_DEPTH, copyJson, nestedDeeperThan } from './copy-json.js';
import { RpError, oneLine } from './errors.js';
import { PROTOCOL_CLAIMS, putMember, userFromClaims, type MappedUser } from './user.js';

/** The compact form of a login in the session. */
export interface StoredLogin {
  provider: string;
  /** The signed ID token (decrypted, when it came encrypted): its payload is `idTokenClaims`. */
  idToken?: string;
  /** The user's claims that the ID token does not carry with the same value (userinfo, the provider's user endpoint). */
  claims?: Record<string, unknown>;
  /** Normalized-user fields the provider's `profile()` set to something else than the claims' defaults. */
  profile?: MappedUser;
  /** The access token; `tokenType` absent means "bearer". */
  accessToken?: Omit<StoredAccessToken, 'tokenType'> & { tokenType?: string };
  refreshToken?: string;
  /** Epoch seconds; absent: the ID token's `auth_time`, else its `iat`. */
  authTime?: number;
  /** Anything else a login carries (e.g. `dpop`), kept as it is. */
  [other: string]: unknown;
}

const PROFILE_FIELDS = ['sub', 'name', 'email', 'emailVerified', 'picture'] as const;

/** The decoded payload of a compact JWS (its signature was verified when the login was made). */
function decodePayload(jwt: string): Record<string, unknown> | undefined {
  const first = jwt.indexOf('.');
  const second = jwt.indexOf('.', first + 1);
  if (first < 0 || second < 0) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(jwt.slice(first + 1, second), 'base64url').toString('utf8')) as unknown;
    return payload && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The payloads of the ID tokens read lately, by token. A login is read back from the session on
 * every request that uses it, and decoding its ID token (base64url, UTF-8, JSON) was most of that
 * read (bench/RESULTS.md, 2026-12-03, "req.oidc on first use"). An entry is found by the token's
 * last characters (hashing a whole token freshly parsed from the session costs as much as decoding
 * it) and used only when the whole token is the same, so it can never give another token's claims.
 * Two generations of at most `GENERATION` tokens: a token read again moves to the newer one, and
 * the older one is dropped when the newer one is full. What is kept is what the sessions hold
 * already (a pure function of the token, so nothing to keep in step between instances); every read
 * gets its own copy.
 */
const GENERATION = 500;
const TAIL = 24;
type Decoded = { jwt: string; payload: Record<string, unknown> | undefined };
let newer = new Map<string, Decoded>();
let older = new Map<string, Decoded>();

function payloadOf(jwt: string): Record<string, unknown> | undefined {
  const key = jwt.length > TAIL ? jwt.slice(-TAIL) : jwt;
  let entry = newer.get(key);
  if (entry === undefined || entry.jwt !== jwt) {
    entry = older.get(key);
    if (entry === undefined || entry.jwt !== jwt) entry = { jwt, payload: decodePayload(jwt) };
    if (newer.size >= GENERATION) {
      older = newer;
      newer = new Map();
    }
    newer.set(key, entry);
  }
  return copyJson(entry.payload);
}

/** The ID token claims about the person (without the protocol claims, which stay in `idTokenClaims`). */
function personClaims(payload: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name in payload) if (!PROTOCOL_CLAIMS.has(name)) putMember(out, name, payload[name]);
  return out;
}

/** `auth_time`, else `iat`, of an ID token payload. */
function tokenAuthTime(payload: Record<string, unknown> | undefined): number | undefined {
  if (typeof payload?.auth_time === 'number') return payload.auth_time;
  return typeof payload?.iat === 'number' ? payload.iat : undefined;
}

/**
 * Reads a login kept in the session back as an `Authentication` (the form of `req.oidc.authentication`).
 * Accepts both the compact form and a whole `Authentication` (earlier versions, or logins kept whole).
 *
 * @example
 * ```ts
 * store.all((err, sessions) => Object.values(sessions).filter((s) => s.oidc?.auth).map((s) => readStoredLogin(s.oidc.auth).user.email));
 * ```
 */
export function readStoredLogin(stored: StoredLogin | Authentication): Authentication {
  if (isWhole(stored)) return stored;
  // on the path of every request that reads its login: plain loops and assignments, no spreads
  const { idToken } = stored;
  const payload = idToken === undefined ? undefined : payloadOf(idToken);
  const claims = payload ? personClaims(payload) : {};
  if (stored.claims) for (const name in stored.claims) putMember(claims, name, stored.claims[name]);
  const auth = {} as Record<string, unknown>;
  for (const key in stored) if (!DERIVED.has(key)) putMember(auth, key, stored[key]);
  auth.user = userFromClaims(stored.provider, claims, stored.profile ?? NO_PROFILE);
  if (idToken !== undefined) auth.idTokenClaims = payload;
  const token = stored.accessToken;
  if (token) {
    const full: StoredAccessToken = { value: token.value, tokenType: token.tokenType ?? 'bearer' };
    if (token.scope !== undefined) full.scope = token.scope;
    if (token.expiresAt !== undefined) full.expiresAt = token.expiresAt;
    auth.accessToken = full;
  }
  auth.authTime = stored.authTime ?? tokenAuthTime(payload) ?? 0;
  return auth as unknown as Authentication;
}

/** Members of the compact form that read back as something else. */
const DERIVED: ReadonlySet<string> = new Set(['claims', 'profile', 'accessToken', 'authTime']);
const NO_PROFILE: MappedUser = Object.freeze({});

/**
 * The compact form of `auth` for the session, or `auth` itself when the compact form would not read
 * back exactly as `auth` (checked here, once per login or refresh).
 */
export function toStoredLogin(auth: Authentication): StoredLogin | Authentication {
  const { provider, user, idToken, idTokenClaims, accessToken, refreshToken, authTime, ...rest } = auth;
  refuseDeepClaims(idTokenClaims);
  refuseDeepClaims(user.claims);
  if (user.provider !== provider || Object.keys(user).some((k) => k !== 'provider' && k !== 'claims' && !(PROFILE_FIELDS as readonly string[]).includes(k))) return auth;
  const payload = idToken === undefined ? undefined : payloadOf(idToken);
  if (idToken !== undefined && (!payload || (idTokenClaims !== undefined && !sameJson(payload, idTokenClaims)))) return auth;
  const fromToken = payload ? personClaims(payload) : {};
  const claims: Record<string, unknown> = {};
  for (const name in user.claims) if (!(name in fromToken && sameJson(fromToken[name], user.claims[name]))) putMember(claims, name, user.claims[name]);
  const merged = { ...fromToken, ...claims };
  const defaults = userFromClaims(provider, merged, { sub: user.sub }); // (a user always has a sub; the claims may not: GitHub's `id`)
  const profile: MappedUser = {};
  if (user.sub !== merged.sub) profile.sub = user.sub;
  for (const field of PROFILE_FIELDS) if (field !== 'sub' && user[field] !== defaults[field]) (profile as Record<string, unknown>)[field] = user[field];
  const stored: StoredLogin = {
    ...rest,
    provider,
    ...(idToken !== undefined ? { idToken } : {}),
    ...(Object.keys(claims).length ? { claims } : {}),
    ...(Object.keys(profile).length ? { profile } : {}),
    ...(accessToken ? { accessToken: compactAccessToken(accessToken) } : {}),
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(authTime !== tokenAuthTime(payload) ? { authTime } : {}),
  };
  // checked as a session store gives it back (parsed JSON), and kept in that form: the session holds
  // the plain objects a store returns (no member left undefined, nothing shared with `auth`), and the
  // per-request read sees objects of that one shape also right after a login or refresh
  const readBack = JSON.parse(JSON.stringify(stored)) as StoredLogin;
  return sameJson(readStoredLogin(readBack), auth) ? readBack : auth;
}

/**
 * A login whose claims nest deeper than {@link MAX_CLAIM_DEPTH} is refused here, before anything copies, compares or
 * stores them (each recursing once per level): a plain reason rather than "Maximum call stack size exceeded".
 */
function refuseDeepClaims(claims: Record<string, unknown> | undefined): void {
  if (claims) for (const name in claims) {
    if (nestedDeeperThan(claims[name], MAX_CLAIM_DEPTH)) {
      throw new RpError('invalid_response', `the OpenID Provider's answer was refused: its claim ${JSON.stringify(oneLine(name, 100))} is nested deeper than ${MAX_CLAIM_DEPTH} levels`);
    }
  }
}

/** True for a login kept whole (it has its `user`). */
function isWhole(stored: StoredLogin | Authentication): stored is Authentication {
  return typeof (stored as { user?: unknown }).user === 'object' && (stored as { user?: unknown }).user !== null;
}

function compactAccessToken(token: StoredAccessToken): NonNullable<StoredLogin['accessToken']> {
  return { value: token.value, ...(token.tokenType !== 'bearer' ? { tokenType: token.tokenType } : {}), ...scopeAndExpiry(token) };
}

function scopeAndExpiry(token: { scope?: string; expiresAt?: number }): { scope?: string; expiresAt?: number } {
  return { ...(token.scope !== undefined ? { scope: token.scope } : {}), ...(token.expiresAt !== undefined ? { expiresAt: token.expiresAt } : {}) };
}

/** Deep equality of JSON values, as the session store keeps them (undefined members are absent, key order does not count). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => sameJson(v, (b as unknown[])[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
