/**
 * The user as the app sees it (`req.oidc.user`), whatever the provider.
 */
import { RpError } from './errors.js';
import type { NormalizedUser, ProviderConfig } from './options.js';

/**
 * ID token claims about the token and the sign-in protocol rather than the person: kept once, in
 * `idTokenClaims`, not copied into `user.claims` (smaller sessions).
 */
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'at_hash', 'c_hash', 's_hash', 'azp', 'jti', 'sid']);

/** The normalized-user fields a provider's `profile()` maps. */
export type MappedUser = Partial<Omit<NormalizedUser, 'provider' | 'claims'>>;

/**
 * The app-facing user: the provider's `profile()` mapping over all claims; `user.claims` keeps
 * them without the protocol claims that came from the ID token `idTokenClaims`.
 */
export function normalizeUser(
  provider: string, p: ProviderConfig, claims: Record<string, unknown>, idTokenClaims?: Record<string, unknown>,
): NormalizedUser {
  const mapped = p.profile ? p.profile(claims) : {};
  const user = userFromClaims(provider, claims, mapped);
  if (idTokenClaims) user.claims = withoutProtocolClaims(claims, idTokenClaims);
  return user;
}

/** The user from its claims and what `profile()` mapped: each field is the mapped value, else the standard claim. */
export function userFromClaims(provider: string, claims: Record<string, unknown>, mapped: MappedUser): NormalizedUser {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const sub = mapped.sub ?? str(claims.sub);
  if (!sub) throw new RpError('invalid_response', 'the provider returned no subject (sub) for the user');
  const user: NormalizedUser = { sub, provider, claims };
  const name = mapped.name ?? str(claims.name);
  const email = mapped.email ?? str(claims.email);
  const emailVerified = mapped.emailVerified ?? (typeof claims.email_verified === 'boolean' ? claims.email_verified : undefined);
  const picture = mapped.picture ?? str(claims.picture);
  if (name !== undefined) user.name = name;
  if (email !== undefined) user.email = email;
  if (emailVerified !== undefined) user.emailVerified = emailVerified;
  if (picture !== undefined) user.picture = picture;
  return user;
}

/**
 * `target[key] = value` as an own member, "__proto__" included: claims come from the network, and
 * assigning one named "__proto__" would set the object's prototype instead (as a spread or
 * JSON.parse would not).
 *
 * @example
 * putMember(claims, name, value);
 */
export function putMember(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** `claims` minus the protocol claims the ID token carries (they stay in `idTokenClaims`). */
function withoutProtocolClaims(claims: Record<string, unknown>, idTokenClaims: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(claims)) {
    if (!(PROTOCOL_CLAIMS.has(name) && Object.hasOwn(idTokenClaims, name))) putMember(kept, name, value);
  }
  return kept;
}
