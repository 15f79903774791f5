import { createHash } from 'node:crypto';
import type { AccountStore } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import { isStoreUnavailable } from './store-unavailable.js';

/** Failed-login limits per login name and per client IP, kept in the shared store. */
export interface Throttle {
  /**
   * Counts an attempt at `login` from `ip` before its password is checked, and answers whether it
   * may be checked: not once the login name has had `maxFailures` attempts without a success in the
   * window, nor once the IP has had `maxFailures` failures. Both counts go up first and atomically
   * (the IP's when the store can `decrement`), so guesses sent all at once, for one account or
   * sprayed over many, are held to the limit as guesses sent one by one are.
   */
  attempt(login: string | undefined, ip: string): Promise<boolean>;
  /** After `attempt()` and a failed check: counts the IP's failure when `attempt()` could not (a store without `decrement`). */
  failed(ip: string): Promise<void>;
  /** A failure that no `attempt()` counted (e.g. a sign-in at another provider refused): counts it against the IP. */
  fail(ip: string): Promise<void>;
  /** After `attempt()` and a success: forgets the login's count and gives the IP its attempt back. */
  succeed(login: string | undefined, ip: string): Promise<void>;
  /**
   * After `attempt()` and a check that could not be made (the account store unavailable, a 503):
   * takes back the attempts `attempt()` counted, so retries during an outage lock nobody out.
   * Needs a store that can `decrement` (else they stay counted).
   */
  giveBack(login: string | undefined, ip: string): Promise<void>;
  /** Seconds a lock-out may last (the window): the `Retry-After` of a refused attempt. */
  readonly windowSeconds: number;
}

// hashed so store keys carry no login names or addresses in clear
const key = (kind: string, value: string) => `openid-express:login:${kind}:${createHash('sha256').update(value).digest('base64url')}`;

/** The throttle's login key of an account: whichever of its login names was typed counts here. */
export const accountLoginKey = (accountId: string) => `account:${accountId}`;

/**
 * The login key failures are counted against: the account's when the typed login name belongs to
 * one (so its email alias or another spelling gets no fresh count), else the name itself.
 *
 * @example
 * await throttle.attempt(await throttleKeyOf(accounts, 'Alice@Example.org'), ip);
 */
export async function throttleKeyOf(accounts: AccountStore, login: string | undefined): Promise<string | undefined> {
  const account = login && login.length <= 1024 ? await accounts.findByLogin(login) : undefined;
  return account ? accountLoginKey(account.id) : login;
}

/**
 * Throttling over an `OpStore`'s counters.
 *
 * @example
 * const t = throttle(store, { maxFailures: 5, windowSeconds: 900 });
 * if (!(await t.attempt(login, req.ip))) return tooMany();
 */
export function throttle(store: OpStore, limits: { maxFailures: number; windowSeconds: number }): Throttle {
  // the IP's attempt is counted up front only when a success can give it back
  const upFront = typeof store.decrement === 'function';
  return {
    windowSeconds: limits.windowSeconds,
    async attempt(login, ip) {
      const ipCount = upFront ? await store.increment(key('ip', ip), limits.windowSeconds) - 1 : await store.count(key('ip', ip));
      if (ipCount >= limits.maxFailures) return false;
      // counted before the (slow) password check: a success takes it back (`succeed`)
      return !login || (await store.increment(key('login', login), limits.windowSeconds)) <= limits.maxFailures;
    },
    async failed(ip) {
      if (!upFront) await store.increment(key('ip', ip), limits.windowSeconds);
    },
    async fail(ip) {
      await store.increment(key('ip', ip), limits.windowSeconds);
    },
    async succeed(login, ip) {
      await Promise.all([login ? store.reset(key('login', login)) : undefined, upFront ? store.decrement!(key('ip', ip)) : undefined]);
    },
    async giveBack(login, ip) {
      if (!upFront) return;
      await Promise.all([login ? store.decrement!(key('login', login)) : undefined, store.decrement!(key('ip', ip))]);
    },
  };
}

/**
 * Lifts a login lock-out before it expires (e.g. from a support tool, after checking who asks):
 * forgets the failures counted against an account, a login name and/or a client IP.
 * `accountId` is what to give for a known account (its failures are counted per account, whatever
 * login name was typed); `login` is for a name that matches no account; `ip` for an address locked
 * out by failures from it (all users behind it).
 *
 * @example
 * import { unlockLogin } from '@openid-express/op';
 * await unlockLogin(store, { accountId: 'alice' });
 * await unlockLogin(store, { ip: '203.0.113.7' });
 */
export async function unlockLogin(store: OpStore, who: { accountId?: string; login?: string; ip?: string }): Promise<void> {
  const keys = [
    ...(who?.accountId ? [key('login', accountLoginKey(who.accountId))] : []),
    ...(who?.login ? [key('login', who.login)] : []),
    ...(who?.ip ? [key('ip', who.ip)] : []),
  ];
  if (keys.length === 0) throw new TypeError('unlockLogin(store, who): give at least one of accountId, login or ip');
  await Promise.all(keys.map((k) => store.reset(k)));
}

/**
 * The rejection handler of a password check: when the check could not be made because a store was
 * unavailable (a 503 the user is asked to retry), the attempt it counted is given back; a lock-out
 * must come from wrong passwords, not from an outage. Rethrows.
 */
export function giveBackOnOutage(throttle: Throttle, login: string | undefined, ip: string): (err: unknown) => Promise<never> {
  return async (err) => {
    if (isStoreUnavailable(err)) await throttle.giveBack(login, ip).catch(() => undefined);
    throw err;
  };
}
