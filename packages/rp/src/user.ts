/**
 * The user as the app sees it (`req.oidc.user`), whatever the provider.
 */
import { RpError } from './errors.js';
import type { NormalizedUser, ProviderConfig } from './options.js';

/** The app-facing user: the provider's `profile()` mapping over the standard claims. */
export function normalizeUser(provider: string, p: ProviderConfig, claims: Record<string, unknown>): NormalizedUser {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const mapped = p.profile ? p.profile(claims) : {};
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
