/**
 * The pending logins kept in the session between the authorization request and the callback:
 * a short list, each found by its `state`; single-use, short-lived, at most a few per session.
 */
import { RpError } from './errors.js';
import { MAX_PENDING_TRANSACTIONS, type OidcSessionData, type PendingLogin, type Transaction } from './session.js';

const expired = (t: Transaction, ttlSeconds: number): boolean => Date.now() - t.createdAt > ttlSeconds * 1000;

/** The pending logins of a session, oldest first (a session written by 0.1.0 keeps them keyed by state). */
export function pendingLogins(data: OidcSessionData | undefined): PendingLogin[] {
  const pending = data?.transactions;
  if (!pending) return [];
  if (Array.isArray(pending)) return pending;
  return Object.entries(pending).map(([state, t]) => ({ ...t, state }));
}

/**
 * The pending logins of a session that are still usable (not expired), oldest first, and not redeemed
 * yet: one that holds the OP's tokens already (its code spent, the login not finished) is a login of the
 * OP session a logout ends, which a retry of its callback would bring back (review).
 */
export function livePendingLogins(data: OidcSessionData | undefined, ttlSeconds: number): PendingLogin[] {
  return pendingLogins(data).filter((t) => !expired(t, ttlSeconds) && !t.redeemed);
}

/** True when the session has a pending login of `state`. */
export function hasPendingLogin(data: OidcSessionData | undefined, state: string): boolean {
  return pendingLogins(data).some((t) => t.state === state);
}

/** Keeps `transaction` under `state`, dropping expired ones and the oldest beyond the cap. */
export function saveTransaction(data: OidcSessionData, state: string, transaction: Transaction, ttlSeconds: number): void {
  const kept = pendingLogins(data)
    .filter((t) => t.state !== state && !expired(t, ttlSeconds))
    .slice(-(MAX_PENDING_TRANSACTIONS - 1));
  data.transactions = [...kept, { state, ...transaction }];
}

/** Where an expired login was going, by its `transaction_expired` error: its "Sign in again" goes there too. */
export const expiredReturnTo = new WeakMap<RpError, string>();

/** Removes and returns the transaction of `state` (single use); throws when missing, foreign or expired. */
export function takeTransaction(data: OidcSessionData | undefined, state: string | null, provider: string, ttlSeconds: number): Transaction {
  if (!state) throw new RpError('missing_state', 'the callback has no state parameter');
  const pending = pendingLogins(data);
  const found = pending.find((t) => t.state === state);
  if (found) data!.transactions = pending.filter((t) => t !== found);
  if (!found || found.provider !== provider) {
    throw new RpError('invalid_state',
      'the state of this callback matches no login started in this browser. Usually the session cookie did not come back: another app on the same host ' +
      'uses the same cookie name (give each express-session its own `name`), the login started on another host name (localhost vs 127.0.0.1) or scheme, ' +
      'or `cookie.secure` is set on http; with several instances, this one may not share the session store of the one that started the sign-in. ' +
      'Otherwise the response was replayed, tampered with, or started in another browser');
  }
  if (expired(found, ttlSeconds)) {
    const err = new RpError('transaction_expired', 'this login was started too long ago; please start again');
    expiredReturnTo.set(err, found.returnTo);
    throw err;
  }
  const { state: _state, ...transaction } = found;
  return transaction;
}
