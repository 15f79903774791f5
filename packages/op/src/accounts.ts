import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { appCall } from './bounded-store.js';
import { OpConfigError } from './errors.js';

/** Standard OIDC claims (and any others) an account releases, keyed by claim name. */
export type AccountClaims = Record<string, unknown>;

/** What the OP knows about an account. `id` becomes the `sub` claim. */
export interface Account {
  id: string;
  /** Names the user signs in with (username, email ...), compared case-insensitively. */
  logins: string[];
}

/**
 * Where the OP finds accounts. Implement it over your user database; `memoryAccounts()` is the
 * in-memory one for development and tests.
 */
export interface AccountStore {
  /** The account a login name (username or email) belongs to, or undefined. */
  findByLogin(login: string): Promise<Account | undefined>;
  /** The account with this id, or undefined. */
  findById(id: string): Promise<Account | undefined>;
  /**
   * The account id when `password` is right for `login`, else undefined. Must take the same time
   * whether or not the login exists (no user enumeration by timing).
   */
  verifyPassword(login: string, password: string): Promise<string | undefined>;
  /** The claims of the account released for `scope` (space-separated), without `sub`. */
  claims(id: string, scope: string): Promise<AccountClaims>;
}

/** One account given to `memoryAccounts()`. */
export interface MemoryAccount {
  id: string;
  username: string;
  /** Clear text, hashed with scrypt at start-up and then forgotten. */
  password: string;
  /** The account's claims. Its `sub` is always `id`: a `sub` given here is not kept. */
  claims?: AccountClaims;
}

/** Which claims each standard scope releases (OIDC Core 5.4). */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  profile: [
    'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username',
    'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  ],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
};

/**
 * `scope` widened by the scopes that release `claimNames` (claims asked by name, e.g. through the
 * `claims` request parameter, OIDC Core 5.5); the provider still releases only what was asked.
 *
 * @example
 * scopeCovering('openid', ['email']) // 'openid email'
 */
export function scopeCovering(scope: string, claimNames: string[]): string {
  const scopes = new Set(scope.split(' ').filter(Boolean));
  for (const name of claimNames) {
    const releasedBy = RELEASED_BY.get(name);
    if (releasedBy) scopes.add(releasedBy);
  }
  return [...scopes].join(' ');
}

const KEYLEN = 32;

function hash(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEYLEN, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

interface Stored {
  account: Account;
  salt: Buffer;
  hash: Promise<Buffer>;
  claims: AccountClaims;
  /** The claims each scope string releases, worked out on first use (userinfo asks on every call); each call gets its own copy. */
  released: Map<string, AccountClaims>;
}

/** How many scope strings an account remembers the released claims of (then it starts over). */
const RELEASED_CACHE = 64;

/**
 * Claims of `all` that the space-separated `scope` releases (unknown claims go with `profile`).
 *
 * @example
 * claimsForScope({ name: 'Alice', email: 'a@example.org' }, 'openid email') // { email: 'a@example.org' }
 */
export function claimsForScope(all: AccountClaims, scope: string): AccountClaims {
  const scopes = new Set(scope.split(' '));
  const out: AccountClaims = {};
  for (const [name, value] of Object.entries(all)) {
    const releasedBy = RELEASED_BY.get(name);
    if (releasedBy ? scopes.has(releasedBy) : scopes.has('profile')) out[name] = value;
  }
  return out;
}

/** The standard scope that releases each standard claim (worked out once: userinfo asks on every call). */
const RELEASED_BY: ReadonlyMap<string, string> = new Map(Object.entries(SCOPE_CLAIMS).flatMap(([scope, names]) => names.map((n) => [n, scope] as const)));

/**
 * A login name as compared (RFC 8265's UsernameCaseMapped, near enough): the same name typed in
 * full-width letters (an East Asian input method), composed or decomposed ("é" as one character or
 * two, as macOS copies it) or in another case is the same name.
 */
export function loginKey(login: string): string {
  return login.normalize('NFKC').toLowerCase().normalize('NFC');
}

/**
 * An in-memory `AccountStore`. Passwords are hashed with scrypt when it is created and compared in
 * constant time; unknown logins are checked against a dummy hash so timing does not tell them apart.
 * Logins are the username and, when present, the `email` claim, compared as `loginKey()` says (two
 * accounts with one name are refused at start-up).
 *
 * @example
 * const accounts = memoryAccounts([
 *   { id: 'alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice', email: 'alice@example.org' } },
 * ]);
 */
export function memoryAccounts(list: MemoryAccount[]): AccountStore {
  const byLogin = new Map<string, Stored>();
  const byId = new Map<string, Stored>();
  if (!Array.isArray(list)) throw new OpConfigError('accounts', 'memoryAccounts(list): pass an array of { id, username, password, claims }');
  for (const [i, entry] of list.entries()) {
    if (!entry || typeof entry.id !== 'string' || !entry.id || typeof entry.username !== 'string' || !entry.username || typeof entry.password !== 'string') {
      throw new OpConfigError('accounts', `memoryAccounts(): account ${i} needs id, username and password (strings), e.g. { id: 'alice', username: 'alice', password: '...' }`);
    }
    if (byId.has(entry.id)) throw new OpConfigError('accounts', `memoryAccounts(): duplicate account id "${entry.id}"; every id must be different`);
    const { sub: _sub, ...claims } = entry.claims ?? {}; // claims() answers without `sub` (the id is the sub)
    const logins = [...new Set([entry.username, typeof claims.email === 'string' ? claims.email : undefined]
      .filter((l): l is string => !!l)
      .map(loginKey))];
    for (const login of logins) {
      const taken = byLogin.get(login);
      if (taken) {
        throw new OpConfigError('accounts', `memoryAccounts(): accounts "${taken.account.id}" and "${entry.id}" have the same login name "${login}" `
          + '(a username or email, compared ignoring case and Unicode width and composition): give each a name of its own');
      }
    }
    const salt = randomBytes(16);
    const stored: Stored = { account: { id: entry.id, logins }, salt, hash: hash(entry.password, salt), claims, released: new Map() };
    stored.hash.catch(() => undefined); // surfaced on first verify
    byId.set(entry.id, stored);
    for (const login of logins) byLogin.set(login, stored);
  }
  const dummySalt = randomBytes(16);
  const dummy = hash(randomBytes(16).toString('hex'), dummySalt);

  const findById = (id: string): Account | undefined => byId.get(id)?.account;
  const claims = (id: string, scope: string): AccountClaims => {
    const stored = byId.get(id);
    if (!stored) return {};
    let released = stored.released.get(scope);
    if (!released) {
      released = claimsForScope(stored.claims, scope);
      if (stored.released.size >= RELEASED_CACHE) stored.released.clear();
      stored.released.set(scope, released);
    }
    return { ...released }; // each call its own copy
  };
  const store: AccountStore = {
    async findByLogin(login) {
      return byLogin.get(loginKey(login))?.account;
    },
    async findById(id) {
      return findById(id);
    },
    async verifyPassword(login, password) {
      const stored = byLogin.get(loginKey(login));
      const expected = await (stored ? stored.hash : dummy);
      const actual = await hash(password, stored ? stored.salt : dummySalt);
      return timingSafeEqual(expected, actual) && stored ? stored.account.id : undefined;
    },
    async claims(id, scope) {
      return claims(id, scope);
    },
  };
  const sync: SyncAccounts = { findById, claims, of: { findById: store.findById, claims: store.claims } };
  Object.defineProperty(store, SYNC, { value: sync }); // not enumerable: a spread copy of the store has none
  return store;
}

const SYNC = Symbol('openid-express:sync-accounts');

/** The same lookups as a `memoryAccounts()` store's, without a promise each: op() answers userinfo with them. */
interface SyncAccounts {
  findById(id: string): Account | undefined;
  claims(id: string, scope: string): AccountClaims;
  /** The store's own methods when it was made (an app that replaces one gets the store's methods called). */
  of: Pick<AccountStore, 'findById' | 'claims'>;
}

/** `accounts`' synchronous lookups when it is a `memoryAccounts()` store with its own methods, else undefined. */
export function syncAccountsOf(accounts: AccountStore): SyncAccounts | undefined {
  const sync = (accounts as AccountStore & { [SYNC]?: SyncAccounts })[SYNC];
  return sync && accounts.findById === sync.of.findById && accounts.claims === sync.of.claims ? sync : undefined;
}

/**
 * `accounts` as op() calls it: each method of an app's own store is bounded by `timeoutMs`, so a
 * user database that stops answering makes the request a 503 `store_unavailable` (the log names the
 * method), never a request that hangs. `memoryAccounts()` answers from the process and is used as it is.
 *
 * @example
 * const accounts = boundAccounts(myUserStore, 3000);
 */
export function boundAccounts(accounts: AccountStore, timeoutMs: number): AccountStore {
  if (syncAccountsOf(accounts)) return accounts;
  const bound = <A extends unknown[], R>(name: keyof AccountStore) => (...args: A): Promise<R> =>
    appCall(() => (accounts[name] as unknown as (...a: A) => Promise<R>).apply(accounts, args), timeoutMs,
      `the account store did not answer accounts.${name}() within ${timeoutMs} ms (storeTimeout)`, `accounts.${name}()`);
  // the store's own further methods stay reachable (an authenticator of the app may call them)
  return Object.assign(Object.create(accounts) as AccountStore, {
    findByLogin: bound('findByLogin'),
    findById: bound('findById'),
    verifyPassword: bound('verifyPassword'),
    claims: bound('claims'),
  });
}
