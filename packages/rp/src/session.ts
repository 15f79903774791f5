/**
 * The typed shape of what the RP keeps in `req.session` (under `oidc`), and nothing else.
 */
import { createHash } from 'node:crypto';
import type { NormalizedUser, ProviderConfig } from './options.js';
import type { DPoPKey } from './dpop.js';
import type { StoredLogin } from './stored-login.js';

/** One login started and not yet finished (found by its `state`). Single-use, short-lived. */
export interface Transaction {
  provider: string;
  /** PKCE code verifier (S256), absent only when the provider turned PKCE off. */
  codeVerifier?: string;
  nonce?: string;
  /** Same-origin path to go to after the callback. */
  returnTo: string;
  /** `max_age` sent in the authorization request, checked against `auth_time`. */
  maxAge?: number;
  /**
   * The authorization request named a `resource` (RFC 8707): the access token is for that API, which
   * the OP's userinfo endpoint refuses, so it is not asked unless the entry says `fetchUserInfo: true`.
   */
  forResource?: true;
  /** Epoch milliseconds. */
  createdAt: number;
  /**
   * The OP's token answer, kept when the code was redeemed but the login could not be finished for a
   * transient reason (its userinfo endpoint down): the same callback, tried again, goes on from it
   * instead of redeeming the spent code again.
   */
  redeemed?: { idToken?: string; accessToken: StoredAccessToken; refreshToken?: string };
}

/** The access token as kept in the session. */
export interface StoredAccessToken {
  value: string;
  tokenType: string;
  scope?: string;
  /**
   * Epoch seconds from which the app treats the token as expired (`isExpired()`, and
   * `getValidAccessToken()` refreshes it), when the OP said `expires_in`: the OP's expiry less a margin
   * (see `expiryOf`).
   */
  expiresAt?: number;
}

/**
 * `expiresAt` of a token the OP said lives `expiresIn` seconds: that expiry, by this instance's clock,
 * less 30 s, or less a quarter of its life (whole seconds) when it lives under two minutes. The
 * margin covers the time on the way to the resource server, and instances whose clocks differ by a
 * few seconds (the one that got the token writes its expiry, another reads it by its own clock):
 * without it, an instance 5 s behind handed out a token the OP had expired 5 s before. A token of a
 * few seconds keeps (nearly) all of its life: with a larger share gone, one that had just been
 * refreshed could read as expired at once, and concurrent requests refreshed it again.
 */
export function expiryOf(expiresIn: number): number {
  return Math.floor(Date.now() / 1000) + expiresIn - Math.min(30, Math.floor(expiresIn / 4));
}

/** An authenticated login. */
export interface Authentication {
  provider: string;
  user: NormalizedUser;
  idToken?: string;
  idTokenClaims?: Record<string, unknown>;
  accessToken?: StoredAccessToken;
  refreshToken?: string;
  /** Epoch seconds of the end-user authentication (`auth_time`, else when the ID token was issued at login, else the login time). */
  authTime: number;
  /** The private key (JWK) the access token is bound to by DPoP (`dpop` provider option; `accessToken.tokenType` "dpop"). */
  dpop?: DPoPKey;
}

/** A {@link Transaction} as the session keeps it, with the `state` it answers to. */
export type PendingLogin = Transaction & { state: string };

/** What lives at `req.session.oidc`. */
export interface OidcSessionData {
  /**
   * The pending logins, oldest first. A list, not an object keyed by `state`: every new key would
   * give V8 a new hidden class, on every login and every read of the session (bench/RESULTS.md).
   * Sessions written by 0.1.0 keep them keyed by `state`; those are still read.
   */
  transactions?: PendingLogin[] | Record<string, Transaction>;
  /** The login, in its compact form (read it with `readStoredLogin()`, or use `req.oidc`); logins of earlier versions are whole `Authentication`s. */
  auth?: StoredLogin | Authentication;
  /**
   * Until when the login's back-channel-logout index lives, in minutes since the epoch (rounded down):
   * renewed when the session comes to outlive it (a rolling cookie, a session in use for weeks).
   * Named short because every signed-in session carries it (its size is an issue #11 target).
   */
  iu?: number;
  /** {@link iu} as earlier versions wrote it, in epoch seconds: still read, and dropped at the next renewal. */
  indexedUntil?: number;
}

declare module 'express-session' {
  interface SessionData {
    oidc?: OidcSessionData;
  }
}

/** At most this many logins may be pending in one session (bounds the session size). */
export const MAX_PENDING_TRANSACTIONS = 10;

/**
 * Store key of the back-channel logout index record of a `sid` or `sub` of provider `provider`, whose
 * issuer and client are `scope` (`logoutScope()`): apps that share a coordination store and a provider
 * name (two apps on one Redis, each with its own "corp") keep apart.
 */
export function logoutIndexKey(provider: string, scope: string, kind: 'sid' | 'sub', value: string): string {
  return `oidc-bcl:${provider}:${scope}:${kind}:${value}`;
}

/** The key of {@link logoutIndexKey} as 0.1.0 wrote it, without the scope: still read at a logout, until those indexes expire (31 days). */
export function unscopedLogoutIndexKey(provider: string, kind: 'sid' | 'sub', value: string): string {
  return `oidc-bcl:${provider}:${kind}:${value}`;
}

/** The issuer and client a provider entry stands for, short (12 characters of a SHA-256), for {@link logoutIndexKey}. */
export function logoutScope(p: Pick<ProviderConfig, 'issuer' | 'providerInfo' | 'clientId'>): string {
  return createHash('sha256').update(`${p.issuer ?? p.providerInfo?.issuer ?? ''}\n${p.clientId}`).digest('base64url').slice(0, 12);
}

/** Store key remembering a used logout token `jti` (hashed: bounded key size), so a replay is refused. */
export function logoutJtiKey(provider: string, jtiHash: string): string {
  return `oidc-bcl:${provider}:jti:${jtiHash}`;
}
