import { createHash } from 'node:crypto';
import type { AccountStore } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import { isStoreUnavailable } from './store-unavailable.js';

/**
 * What `attempt()` decided: check the password, or refuse: locked out for the window, or too many
 * checks at once from the address (`busy`) or of the login (`account-busy`).
 */
export type Verdict = 'ok' | 'locked' | 'busy' | 'account-busy';

/** Failed-login limits per login name and per client IP, kept in the shared store. */
export interface Throttle {
  /**
   * Counts an attempt at `login` from `ip` before its password is checked, and says whether it may
   * be checked: `locked` once the login name or the IP has had `maxFailures` failures in the window;
   * `busy` (`account-busy`) when the IP's (the login's) failures plus its checks under way would pass
   * `maxFailures` — a burst: guesses sent all at once, from one address or from many at one account,
   * are held to the limit as guesses sent one by one are, and right passwords sent at once are told
   * to try again in a moment, not locked out. Checks under way go up first and atomically, and count
   * at most a minute. With a store that cannot `decrement`, the login's attempts are counted up front
   * instead (and a success forgets them).
   */
  attempt(login: string | undefined, ip: string): Promise<Verdict>;
  /** After `attempt()` and a failed check: counts the failure against the login and the IP, and ends their checks. */
  failed(login: string | undefined, ip: string): Promise<void>;
  /** A failure that no `attempt()` counted (e.g. a sign-in at another provider refused): counts it against the IP. */
  fail(ip: string): Promise<void>;
  /** After `attempt()` and a success: forgets the login's failures and ends the checks. */
  succeed(login: string | undefined, ip: string): Promise<void>;
  /**
   * After `attempt()` and a check that could not be made (a store unavailable, a 503): ends the
   * checks and counts nothing, so retries during an outage lock nobody out. Needs a store that can
   * `decrement` (else the login's attempt stays counted).
   */
  giveBack(login: string | undefined, ip: string): Promise<void>;
  /** Seconds a lock-out may last (the window): the `Retry-After` of a `locked` attempt. */
  readonly windowSeconds: number;
  /** The `Retry-After` of a `busy` or `account-busy` attempt. */
  readonly busySeconds: number;
}

// hashed so a listing of store keys shows no login names or addresses. Not a secret: the hash is
// unkeyed (so that unlockLogin() needs only the store), and a guessed name or address can be checked
// against it; whoever can read the store reads live tokens there anyway (oidc-provider's records)
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

/** How long an IP's check under way counts at most (an instance killed mid-check leaks it no longer). */
const CHECK_SECONDS = 60;
const BUSY_RETRY_SECONDS = 2;

/**
 * Throttling over an `OpStore`'s counters: per login name (attempts without a success), per IP
 * (failures, and checks under way when the store can `decrement`).
 *
 * @example
 * const t = throttle(store, { maxFailures: 5, maxAccountFailures: 100, windowSeconds: 900 });
 * if ((await t.attempt(login, req.ip)) !== 'ok') return tooMany();
 */
export function throttle(store: OpStore, limits: { maxFailures: number; maxAccountFailures: number; windowSeconds: number }): Throttle {
  // checks under way are counted only when their end can take them back
  const tracked = typeof store.decrement === 'function';
  const endChecks = async (login: string | undefined, ip: string): Promise<void> => {
    if (tracked) await Promise.all([store.decrement!(key('check', ip)), login ? store.decrement!(key('login-check', login)) : undefined]);
  };
  /** The failures and the checks under way (this one included) of `kind` `value`; without `decrement`, attempts counted up front. */
  const counts = async (kind: 'ip' | 'login', value: string): Promise<[failures: number, checks: number]> => {
    if (tracked) return Promise.all([store.count(key(kind, value)), store.increment(key(kind === 'ip' ? 'check' : 'login-check', value), CHECK_SECONDS)]);
    return kind === 'ip' ? [await store.count(key('ip', value)), 0] : [(await store.increment(key('login', value), limits.windowSeconds)) - 1, 1];
  };
  // without `decrement` the login's attempt was counted up front, and stays
  const giveBack = (login: string | undefined, ip: string): Promise<void> => endChecks(login, ip);
  const verdict = ([failures, checks]: [number, number], busy: Verdict, limit: number): Verdict | undefined => {
    if (failures >= limit) return 'locked';
    if (failures + checks > limit) return busy;
    return undefined;
  };
  const counting: Throttle = {
    windowSeconds: limits.windowSeconds,
    busySeconds: BUSY_RETRY_SECONDS,
    async attempt(login, ip) {
      let counted: string | undefined;
      try {
        const refused = verdict(await counts('ip', ip), 'busy', limits.maxFailures);
        if (refused) {
          await endChecks(undefined, ip);
          return refused;
        }
        if (!login) return 'ok';
        counted = login;
        // one account, from every address together: far more than one address may try (maxAccountFailures)
        const refusedLogin = verdict(await counts('login', login), 'account-busy', limits.maxAccountFailures);
        if (!refusedLogin) return 'ok';
        await endChecks(login, ip);
        return refusedLogin;
      } catch (err) {
        // a store failure on the way (a 503): the checks that may have been counted end, in order after them
        if (isStoreUnavailable(err)) await giveBack(counted, ip).catch(() => undefined);
        throw err;
      }
    },
    async failed(login, ip) {
      await Promise.all([
        store.increment(key('ip', ip), limits.windowSeconds),
        tracked && login ? store.increment(key('login', login), limits.windowSeconds) : undefined,
        endChecks(login, ip),
      ]);
    },
    async fail(ip) {
      await store.increment(key('ip', ip), limits.windowSeconds);
    },
    async succeed(login, ip) {
      await Promise.all([login ? store.reset(key('login', login)) : undefined, endChecks(login, ip)]);
    },
    giveBack,
  };
  // every address is counted as the network it stands for (an IPv6 /64)
  return {
    windowSeconds: counting.windowSeconds,
    busySeconds: counting.busySeconds,
    attempt: (login, ip) => counting.attempt(login, addressOf(ip)),
    failed: (login, ip) => counting.failed(login, addressOf(ip)),
    fail: (ip) => counting.fail(addressOf(ip)),
    succeed: (login, ip) => counting.succeed(login, addressOf(ip)),
    giveBack: (login, ip) => counting.giveBack(login, addressOf(ip)),
  };
}

/**
 * The address failures are counted against: an IPv4 address as it is (an IPv4-mapped IPv6 one as IPv4), an IPv6
 * address as its /64. One machine, or one home or office, gets a whole /64 (RFC 6177), and a /128 of it each
 * guess would give one attacker 2^64 fresh addresses, so each of them 5 more guesses.
 *
 * @example
 * addressOf('2001:db8:1:2::5') // '2001:db8:1:2::/64'
 */
export function addressOf(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${all.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
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
    ...(who?.accountId ? [key('login', accountLoginKey(who.accountId)), key('login-check', accountLoginKey(who.accountId))] : []),
    ...(who?.login ? [key('login', who.login), key('login-check', who.login)] : []),
    ...(who?.ip ? [key('ip', addressOf(who.ip)), key('check', addressOf(who.ip))] : []),
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
