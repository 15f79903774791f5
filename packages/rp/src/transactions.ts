/**
 * The pending logins kept in the session between the authorization request and the callback:
 * keyed by `state`, single-use, short-lived, at most a few per session.
 */
import { RpError } from './errors.js';
import { MAX_PENDING_TRANSACTIONS, type OidcSessionData, type Transaction } from './session.js';

const expired = (t: Transaction, ttlSeconds: number): boolean => Date.now() - t.createdAt > ttlSeconds * 1000;

/** Keeps `transaction` under `state`, dropping expired ones and the oldest beyond the cap. */
export function saveTransaction(data: OidcSessionData, state: string, transaction: Transaction, ttlSeconds: number): void {
  const kept = Object.entries(data.transactions ?? {})
    .filter(([, t]) => !expired(t, ttlSeconds))
    .slice(-(MAX_PENDING_TRANSACTIONS - 1));
  data.transactions = Object.fromEntries([...kept, [state, transaction]]);
}

/** Removes and returns the transaction of `state` (single use); throws when missing, foreign or expired. */
export function takeTransaction(data: OidcSessionData | undefined, state: string | null, provider: string, ttlSeconds: number): Transaction {
  if (!state) throw new RpError('missing_state', 'the callback has no state parameter');
  const transaction = data?.transactions && Object.hasOwn(data.transactions, state) ? data.transactions[state] : undefined;
  if (transaction) delete data!.transactions![state];
  if (!transaction || transaction.provider !== provider) {
    throw new RpError('invalid_state',
      'the state of this callback matches no login started in this browser. Usually the session cookie did not come back: another app on the same host ' +
      'uses the same cookie name (give each express-session its own `name`), the login started on another host name (localhost vs 127.0.0.1) or scheme, ' +
      'or `cookie.secure` is set on http. Otherwise the response was replayed, tampered with, or started in another browser');
  }
  if (expired(transaction, ttlSeconds)) throw new RpError('transaction_expired', 'this login was started too long ago; please start again');
  return transaction;
}
