/**
 * Cross-instance coordination: the few atomic operations the RP needs so that several instances
 * behind a load balancer act as one — one refresh grant per refresh token, one code exchange per
 * login callback, an atomic back-channel-logout index, and single-use logout tokens.
 *
 * Without the `coordination` option these run over the session store, one after another within
 * the process: right for one instance. With several instances, pass `redisCoordination(client)`.
 */
import { createHash } from 'node:crypto';
import createDebug from 'debug';
import type { SessionData, Store } from 'express-session';
import { RpError, logRefusal, redisFailureMessage, redisRefusal } from './errors.js';
import { KeyQueue } from './key-queue.js';
import { inThisProcess, sessionOp, storeWrapper } from './session-guard.js';
import type { PendingLogin } from './session.js';
import { connectionLimitReply, recoverReadOnlyConnection, recoverStuckConnection } from './stuck-connection.js';

const debug = createDebug('openid-express:rp');

/** The atomic operations behind `rp({ coordination })`. Each one is atomic across every instance sharing it. */
export interface Coordination {
  /** Sets `key` to `value` for `ttlMs` unless it exists; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** The value of `key`, or undefined. */
  get(key: string): Promise<string | undefined>;
  /** Sets `key` to `value` for `ttlMs`. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Deletes `key` when it still holds `value` (releases a lock only its owner holds). */
  deleteIfEquals(key: string, value: string): Promise<void>;
  /**
   * Restarts the expiry of `key` at `ttlMs` when it still holds `value`, in one step; true when it
   * did (optional: a lease's renewal). Without it a renewal reads, then writes, and a lease that ran
   * out in between, taken by another instance, would be written back.
   */
  renewIfEquals?(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Adds `member` to the set at `key`, keeping the newest `max`, and makes it live at least `ttlMs` more
   * (a longer expiry it has is kept: its other members may need it).
   * May return how many members the set holds then (both built-in coordinations do): a login's
   * back-channel-logout index then drops the ids of sessions that are gone once it holds many.
   */
  addToSet(key: string, member: string, ttlMs: number, max: number): Promise<number | void>;
  /** Removes the set at `key` and returns its members. */
  takeSet(key: string): Promise<string[]>;
  /**
   * The members of the set at `key`, leaving it in place (optional, with `removeFromSet`). A logout
   * reads its sessions, ends them, and only then removes them from the set: a take that a stalled
   * store ran after the request had given up (503) would have emptied the set, and the OP's retry of
   * that logout found no session to end. Without these two, `takeSet` is used.
   */
  readSet?(key: string): Promise<string[]>;
  /** Removes `members` from the set at `key` (members added meanwhile stay). */
  removeFromSet?(key: string, members: string[]): Promise<void>;
}

/** What `redisCoordination` needs of a Redis client: node-redis v5 `createClient()` or `createCluster()` fits. */
export interface RedisEvalClient {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** Options of {@link redisCoordination}. */
export interface RedisCoordinationOptions {
  /** Prepended to every key. Default `"openid-express:rp:"`. */
  prefix?: string;
  /** Milliseconds a Redis call may take before the request answers 503 `store_unavailable`. Default 2000. */
  timeout?: number;
}

// Every script touches one key, so each runs on Redis Cluster as well.
const SET_IF_ABSENT = `return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0`;
const DELETE_IF_EQUALS = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const RENEW_IF_EQUALS = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// the set lives as long as its longest-lived member needs: a TTL is extended, never shortened
const ADD_TO_SET = `
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('ZCARD', KEYS[1])`;
const TAKE_SET = `local m = redis.call('ZRANGE', KEYS[1], 0, -1) redis.call('DEL', KEYS[1]) return m`;
const READ_SET = `return redis.call('ZRANGE', KEYS[1], 0, -1)`;
const REMOVE_FROM_SET = `return redis.call('ZREM', KEYS[1], unpack(ARGV))`;

/**
 * Coordination over Redis (a single server or Redis Cluster), for several RP instances.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * const redis = await createClient({ url: process.env.REDIS_URL }).on('error', console.error).connect();
 * app.use(rp({ baseURL, providers, coordination: redisCoordination(redis) }));
 * ```
 */
export function redisCoordination(client: RedisEvalClient, options: RedisCoordinationOptions = {}): Coordination {
  if (typeof client?.eval !== 'function' || typeof client.evalSha !== 'function') {
    throw new RpError('invalid_options', 'redisCoordination(client): pass a connected node-redis v5 client (createClient() or createCluster() from "redis")');
  }
  const prefix = options.prefix ?? 'openid-express:rp:';
  const timeout = options.timeout ?? 2000;
  if (typeof prefix !== 'string') throw new RpError('invalid_options', 'redisCoordination: "prefix" must be a string');
  if (!Number.isInteger(timeout) || timeout <= 0) throw new RpError('invalid_options', 'redisCoordination: "timeout" must be a positive number of milliseconds');
  const shas = new Map<string, string>(); // script → its SHA1, so only the hash travels (EVALSHA)
  // a missed deadline: is the connection dead while Redis answers? (a failover that closed nothing)
  const late = (): void => recoverStuckConnection(client, timeout, 'redisCoordination');
  // READONLY: the old master after a failover behind one endpoint? (a new connection may reach the new one)
  // A closed socket while reconnecting: refused at Redis's connection limit? (node-redis does not say so)
  const failed = (message: string): string => {
    if (message.startsWith('READONLY')) recoverReadOnlyConnection(client, 'redisCoordination');
    return connectionLimitReply(client) ?? message;
  };
  // each command has its deadline: a server (or cluster node) that has not seen the script yet (restarted,
  // failed over) answers NOSCRIPT, and the EVAL that sends it gets a `timeout` of its own (before, both
  // shared one, and with replies about half a `timeout` late every script failed on its first use)
  const run = async (script: string, key: string, args: string[] = []): Promise<unknown> => {
    const options = { keys: [prefix + key], arguments: args };
    let sha = shas.get(script);
    if (!sha) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await withDeadline(client.evalSha(sha, options), timeout, late, failed, client);
    } catch (err) {
      if (!String(((err as RpError).cause as Error | undefined)?.message).startsWith('NOSCRIPT')) throw err;
      return withDeadline(client.eval(script, options), timeout, late, failed, client);
    }
  };
  // advice only: whatever it meets (a client of another shape included), it never fails the app
  // (the check writes a key of the prefix, as the calls do, and deletes it: an ACL user that may not is said at start-up)
  const time = (): Promise<unknown> => run(`return redis.call('TIME')`, 'ping');
  const checked = startupCheck(client, prefix, () => run(`redis.call('SET', KEYS[1], '1', 'PX', 1000) return redis.call('DEL', KEYS[1])`, 'startup-check'), time).catch(() => undefined);
  // a clock that goes wrong later (NTP stopped, a VM resumed from a snapshot) is said too, every ten
  // minutes while it lasts; the check ends with the client (quit or destroyed)
  const clockCheck = setInterval(() => {
    if ((client as { isOpen?: boolean }).isOpen === false) return clearInterval(clockCheck);
    void warnOnClockSkew(() => time().catch(() => undefined));
  }, CLOCK_CHECK_MS).unref();
  const coordination: Coordination = {
    setIfAbsent: async (key, value, ttlMs) => Number(await run(SET_IF_ABSENT, key, [value, String(Math.ceil(ttlMs))])) === 1,
    get: async (key) => (await run(`return redis.call('GET', KEYS[1])`, key)) as string | undefined ?? undefined,
    set: async (key, value, ttlMs) => void (await run(`return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])`, key, [value, String(Math.ceil(ttlMs))])),
    deleteIfEquals: async (key, value) => void (await run(DELETE_IF_EQUALS, key, [value])),
    renewIfEquals: async (key, value, ttlMs) => Number(await run(RENEW_IF_EQUALS, key, [value, String(Math.ceil(ttlMs))])) === 1,
    addToSet: async (key, member, ttlMs, max) => Number(await run(ADD_TO_SET, key, [member, String(Math.ceil(ttlMs)), String(max), String(Date.now())])),
    takeSet: async (key) => ((await run(TAKE_SET, key)) as string[] | null) ?? [],
    readSet: async (key) => ((await run(READ_SET, key)) as string[] | null) ?? [],
    removeFromSet: async (key, members) => void (members.length && (await run(REMOVE_FROM_SET, key, members))),
  };
  Object.defineProperty(coordination, EVICTION, { value: checked });
  return coordination;
}

/** What withDeadline's deadline rejects with: its failure says more (or the deadline) once `onFailure` has seen it. */
const LATE = Symbol('late');

/**
 * A Redis call that fails or takes longer than `ms` is a `store_unavailable` (503), never a hang;
 * `onLate` is told of a missed deadline, `onFailure` of a failure's message ('' for a missed
 * deadline) and may say more (a refusal the client did not report). `client` (the one that made the
 * call) gives a node-redis TimeoutError's timeout (see redisFailureMessage).
 */
function withDeadline<T>(call: Promise<T>, ms: number, onLate: () => void, onFailure: (message: string) => string, client: unknown): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onLate();
      reject(LATE);
    }, ms);
  });
  return Promise.race([call, deadline]).catch((err: unknown) => {
    if (err instanceof RpError) throw err;
    // (Redis names the script a refusal came from, `script: <sha>, on @user_script:1`: nothing for a reader)
    const message = onFailure(err === LATE ? '' : redisFailureMessage(err, client).replace(/\.? script: [0-9a-f]{40}, on @user_script:\d+\.?$/, ''));
    if (!message) throw new RpError('store_unavailable', `Redis did not answer within ${ms} ms; check that it is running and reachable`);
    const refusal = redisRefusal(message, 'redisCoordination', 'EVAL and EVALSHA (+@scripting; the scripts call GET, SET, DEL, PEXPIRE, TIME and Z* commands) '
      + 'and every key under its prefix (~openid-express:rp:*)');
    const failure = new RpError('store_unavailable', `redisCoordination: Redis failed: ${message}; ${refusal?.hint ?? 'check that it is running and reachable'}`, { cause: err, lasting: refusal?.lasting });
    if (refusal) logRefusal(failure);
    throw failure;
  }).finally(() => clearTimeout(timer));
}

/** How often a running instance compares its clock with Redis's again. */
const CLOCK_CHECK_MS = 10 * 60_000;

/**
 * Says when this server's clock differs from Redis's (the clock every instance shares) by more than
 * 5 s: an access token's expiry is kept in the session as a time by the clock of the instance that
 * got it and read by the others' clocks, so a skewed instance makes the others use expired tokens
 * (or refresh early), and a login started on one can be "too old" on another.
 */
async function warnOnClockSkew(time: () => Promise<unknown>): Promise<void> {
  const sent = Date.now();
  const reply = await time();
  const received = Date.now();
  if (!Array.isArray(reply) || reply.length < 2) return;
  const redisMs = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
  const skew = Math.round(((sent + received) / 2 - redisMs) / 1000);
  if (!Number.isFinite(skew) || Math.abs(skew) <= 5 + (received - sent) / 1000) return;
  console.warn(`[@openid-express/rp] redisCoordination: this server's clock is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} Redis's, and so likely of the other instances'. `
    + 'Instances whose clocks differ disagree on when access tokens expire (one may use a token the OP has already expired) and when a login started too long ago, '
    + 'and tokens may be refused as issued in the future: keep every server in time (NTP, e.g. chrony or systemd-timesyncd).');
}


/**
 * At start-up, says what would otherwise show only at the first sign-ins: a Redis that refuses this
 * client (a password it was not given, a replica, an ACL user that may not run scripts or write
 * keys of the prefix), and one that may delete keys before they expire
 * (any maxmemory-policy but `noeviction`: managed Redis often has `volatile-lru`, and every key
 * here expires): a full Redis would then drop refresh results and back-channel-logout indexes,
 * where `noeviction` refuses the write (503) and loses nothing. A Redis that is not reachable yet
 * is left to reconnect; one that does not allow CONFIG (some managed ones) is not checked.
 */
async function startupCheck(client: RedisEvalClient, prefix: string, ping: () => Promise<unknown>, time: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await ping();
  } catch {
    return; // a refusal is said by withDeadline; an unreachable Redis is left to reconnect
  }
  await warnOnClockSkew(() => time().catch(() => undefined));
  const commands = client as unknown as { sendCommand?: (...args: unknown[]) => Promise<unknown>; masters?: unknown; getMasterNode?: unknown };
  if (typeof commands.sendCommand !== 'function') return;
  const args = ['CONFIG', 'GET', 'maxmemory*'];
  // a cluster client routes by key, a Sentinel client takes isReadonly first, a single client the args alone
  const asked = Array.isArray(commands.masters) ? commands.sendCommand(`${prefix}ping`, false, args)
    : typeof commands.getMasterNode === 'function' ? commands.sendCommand(false, args) : commands.sendCommand(args);
  const reply = await asked.catch(() => undefined);
  const policy = configValue(reply, 'maxmemory-policy');
  // without a memory limit (maxmemory 0, Redis's default) nothing is evicted, whatever the policy
  if (typeof policy !== 'string' || policy === 'noeviction' || configValue(reply, 'maxmemory') === '0') return;
  console.warn(`[@openid-express/rp] redisCoordination: Redis runs with maxmemory-policy ${policy}: ${EVICTION_RISK}. ${EVICTION_FIX}.`);
  return policy;
}

/** Setting `name` in a `CONFIG GET` reply: a flat list of names and values (RESP2), or a map (RESP3). */
function configValue(reply: unknown, name: string): unknown {
  if (Array.isArray(reply)) {
    const at = reply.findIndex((item, i) => i % 2 === 0 && String(item) === name);
    return at < 0 ? undefined : reply[at + 1];
  }
  return reply instanceof Map ? reply.get(name) : (reply as Record<string, unknown> | undefined)?.[name];
}

/** What a Redis that evicts keys costs the RP, and what to do (said at start-up and by the doctor). */
export const EVICTION_RISK = 'once it is full it deletes keys before they expire '
  + '(refresh results, back-channel-logout indexes: a logout at the OP could then no longer end the login here)';
export const EVICTION_FIX = 'Set maxmemory-policy noeviction (redis.conf, `CONFIG SET maxmemory-policy noeviction`, '
  + 'or your provider\'s parameter group) and give Redis enough maxmemory';
const EVICTION = Symbol('the maxmemory-policy redisCoordination found at start-up, when it evicts');

/**
 * The `maxmemory-policy` the Redis of a `redisCoordination()` runs with, when it is one that deletes
 * keys before they expire (read once at start-up); undefined for `noeviction`, a policy that could not
 * be read, or another coordination.
 */
export function evictionPolicyOf(coordination: Coordination | undefined): Promise<string | undefined> {
  return (coordination as { [EVICTION]?: Promise<string | undefined> } | undefined)?.[EVICTION] ?? Promise.resolve(undefined);
}

/** A record of ours in the session store; `cookie.expires` makes the store expire it. */
interface StoreRecord {
  value?: string;
  members?: string[];
  cookie: { expires: string; originalMaxAge: number };
}

/**
 * The default: coordination over the app's session store, one operation per key at a time within
 * this process. Exact for one instance; with several, only as atomic as the store's get-then-set.
 */
export function sessionStoreCoordination(store: Store): Coordination {
  const queue = new KeyQueue();
  const read = async (key: string): Promise<StoreRecord | undefined> => (await sessionOp<StoreRecord | null>((cb) => store.get(key, cb as never))) ?? undefined;
  const write = (key: string, record: Omit<StoreRecord, 'cookie'>, ttlMs: number): Promise<void> => {
    const cookie = { expires: new Date(Date.now() + ttlMs).toISOString(), originalMaxAge: ttlMs };
    return sessionOp<void>((cb) => store.set(key, { ...record, cookie } as unknown as SessionData, cb));
  };
  const drop = (key: string): Promise<void> => sessionOp<void>((cb) => store.destroy(key, cb));
  return {
    setIfAbsent: (key, value, ttlMs) => queue.run(key, async () => {
      if ((await read(key))?.value !== undefined) return false;
      await write(key, { value }, ttlMs);
      return true;
    }),
    get: async (key) => (await read(key))?.value,
    set: (key, value, ttlMs) => queue.run(key, () => write(key, { value }, ttlMs)),
    deleteIfEquals: (key, value) => queue.run(key, async () => {
      if ((await read(key))?.value === value) await drop(key);
    }),
    addToSet: (key, member, ttlMs, max) => queue.run(key, async () => {
      const record = await read(key);
      const members = [...(record?.members ?? []).filter((m) => m !== member), member].slice(-max);
      // extended, never shortened (as redisCoordination's)
      const left = record?.cookie?.expires ? Date.parse(record.cookie.expires) - Date.now() : 0;
      await write(key, { members }, Math.max(ttlMs, Number.isFinite(left) ? left : 0));
      return members.length;
    }),
    takeSet: (key) => queue.run(key, async () => {
      const members = (await read(key))?.members ?? [];
      await drop(key);
      return members;
    }),
    readSet: async (key) => (await read(key))?.members ?? [],
    removeFromSet: (key, members) => queue.run(key, async () => {
      const record = await read(key);
      if (!record?.members) return;
      const left = record.members.filter((m) => !members.includes(m));
      if (!left.length) return drop(key);
      const ttlMs = Date.parse(record.cookie.expires) - Date.now();
      if (ttlMs > 0) await write(key, { members: left }, ttlMs);
    }),
  };
}

/**
 * The default with express-session's `MemoryStore`, whose sessions only this process reads (one
 * instance, nothing to share): the records in a map of this process, each call one step (as atomic as
 * Redis's scripts), expired when read and swept every 1 000 writes. Kept in the MemoryStore itself, as
 * with other stores, each call cost a JSON round trip and a turn of the event loop (a sign-in makes
 * six), and the store's `all()` and `length` counted them among the app's sessions.
 */
export function processCoordination(): Coordination {
  const made = processCoordinationOf();
  inProcess.add(made);
  return made;
}

/** The coordinations {@link processCoordination} made. */
const inProcess = new WeakSet<Coordination>();

/** Whether `coordination` is a map of this process ({@link processCoordination}): no other instance reads its records. */
export const isProcessCoordination = (coordination: Coordination): boolean => inProcess.has(coordination);

function processCoordinationOf(): Coordination {
  // (a set's members in a Set, in the order added, so the oldest goes first: a user with 500 sessions is one
  // step per login, not a scan; a set of one member, as most logout indexes are, is that string: a Set took
  // ≈ 140 bytes more of every login's heap)
  type Entry = { value?: string; members?: string | Set<string>; expires: number };
  const entries = new Map<string, Entry>();
  let writes = 0;
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expires <= Date.now()) entries.delete(key);
    else return entry;
  };
  const put = (key: string, entry: Entry): void => {
    entries.set(key, entry);
    if ((writes += 1) % 1000 !== 0) return;
    const now = Date.now();
    for (const [k, e] of entries) if (e.expires <= now) entries.delete(k);
  };
  const listed = (members: Entry['members']): string[] => (members === undefined ? [] : typeof members === 'string' ? [members] : [...members]);
  return {
    setIfAbsent: async (key, value, ttlMs) => {
      if (live(key)?.value !== undefined) return false;
      put(key, { value, expires: Date.now() + ttlMs });
      return true;
    },
    get: async (key) => live(key)?.value,
    set: async (key, value, ttlMs) => put(key, { value, expires: Date.now() + ttlMs }),
    deleteIfEquals: async (key, value) => {
      if (live(key)?.value === value) entries.delete(key);
    },
    renewIfEquals: async (key, value, ttlMs) => {
      const entry = live(key);
      if (entry?.value !== value) return false;
      entry.expires = Date.now() + ttlMs;
      return true;
    },
    addToSet: async (key, member, ttlMs, max) => {
      const entry = live(key);
      let members = entry?.members;
      if (members === undefined || members === member || max <= 1) {
        members = member;
      } else {
        if (typeof members === 'string') members = new Set([members]);
        members.delete(member); // added again: now the newest
        members.add(member);
        for (const oldest of members) {
          if (members.size <= max) break;
          members.delete(oldest);
        }
      }
      // extended, never shortened (as redisCoordination's)
      put(key, { members, expires: Math.max(Date.now() + ttlMs, entry?.expires ?? 0) });
      return typeof members === 'string' ? 1 : members.size;
    },
    takeSet: async (key) => {
      const members = listed(live(key)?.members);
      entries.delete(key);
      return members;
    },
    readSet: async (key) => listed(live(key)?.members),
    removeFromSet: async (key, members) => {
      const entry = live(key);
      if (entry?.members === undefined) return;
      if (typeof entry.members === 'string') {
        if (members.includes(entry.members)) entries.delete(key);
        return;
      }
      for (const m of members) entry.members.delete(m);
      if (!entry.members.size) entries.delete(key);
    },
  };
}

/** The `coordination` option, else coordination over the session store (one per store; in this process for a MemoryStore). */
const storeCoordinations = new WeakMap<Store, Coordination>();
export function coordinationOf(rp: { options: { coordination?: Coordination } }, store: Store): Coordination {
  if (rp.options.coordination) return rp.options.coordination;
  let c = storeCoordinations.get(store);
  if (!c) storeCoordinations.set(store, (c = inThisProcess(store) ? processCoordination() : sessionStoreCoordination(store)));
  return c;
}

/** How long an ended session is remembered: longer than any refresh can be under way (grant, then save). */
const ENDED_TTL_MS = 10 * 60 * 1000;
const endedKey = (sessionId: string): string => hashedKey('oidc-ended:', sessionId);

/** A coordination key for a secret or unbounded value (a session id, a state, a token id): `prefix` + its SHA-256. */
export function hashedKey(prefix: string, value: string): string {
  return prefix + createHash('sha256').update(value).digest('base64url');
}

/**
 * The pending logins a session ended by a logout keeps (other tabs' sign-ins under way): those still
 * usable; none, and the session is destroyed.
 */
export type KeepPending = (session: Partial<SessionData>) => PendingLogin[];

/**
 * Ends sessions for a logout at the OP (back- or front-channel): remembers them as ended first, then
 * destroys them. A request of one of them that is refreshing its tokens meanwhile (on this instance
 * or another) would otherwise save the session again after the destroy, and the logout would not
 * stick: it checks `sessionEnded()` after its save.
 *
 * With `keepPending`, a session that also holds pending logins keeps only those (`endSession`).
 */
export async function endSessions(coordination: Coordination, store: Store, ids: string[], keepPending?: KeepPending): Promise<void> {
  const marked = await Promise.allSettled(ids.map((id) => markSessionEnded(coordination, id)));
  // destroyed even when a mark could not be written: a full Redis (OOM under noeviction) refuses the
  // marks but still deletes, and a logout that waited for room left the user signed in. The mark's
  // failure is still a 503, so the OP retries: a request under way that saved a session back meanwhile
  // is ended again by the retry, which finds the session in the index and marks it
  await Promise.all(ids.map((id) => endSession(store, id, keepPending)));
  const failed = marked.find((m): m is PromiseRejectedResult => m.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Ends session `id` (marked ended already): destroys it, or, when `keepPending` finds pending logins
 * in it, writes it back holding only those: the login and the app's data go, other tabs' sign-ins
 * under way stay. Before, a sign-in in another tab (whose pending login a login in this tab had
 * carried into its session) ended on "This sign-in has expired" when this tab's login was ended, as
 * the OP does when that other tab signs in as another user. A request under way that saves the login
 * back afterwards still finds the mark and destroys the session (`keepEndedSessionsEnded`), and
 * nothing puts a login back in this id: a sign-in always moves to a new session id.
 */
async function endSession(store: Store, id: string, keepPending: KeepPending | undefined): Promise<void> {
  const session = keepPending && (await sessionOp<Partial<SessionData> | null | undefined>((cb) => store.get(id, cb)));
  const pending = session ? keepPending!(session) : [];
  if (!session || !pending.length) return sessionOp<void>((cb) => store.destroy(id, cb));
  const kept = { cookie: session.cookie, oidc: { transactions: pending } } as SessionData;
  await sessionOp<void>((cb) => store.set(id, kept, cb));
}

/**
 * Ends the sessions a logout index (`key`) names, for a back- or front-channel logout: reads them,
 * ends them (`endSessions`), then removes them from the index. A failure on the way leaves the index
 * as it was, so the OP's retry finds them again. A `coordination` without `readSet` / `removeFromSet`
 * (an app's own) takes the set, and puts the members back when ending them fails. With `only`, just
 * the ids it keeps are ended and removed (the others stay indexed); the ids in `forget` (ended
 * already, through another index) are removed without being ended again; `keepPending` as in
 * `endSessions`. Returns the ids ended.
 */
export async function endIndexedSessions(
  coordination: Coordination, store: Store, key: string, ttlMs: number, max: number,
  { only, forget = [], keepPending }: { only?: (ids: string[]) => Promise<string[]>; forget?: readonly string[]; keepPending?: KeepPending } = {},
): Promise<string[]> {
  const { readSet, removeFromSet } = coordination;
  if (readSet && removeFromSet) {
    const read = await readSet.call(coordination, key);
    // (those ended already are not read again by `only`: their sessions are gone)
    const candidates = forget.length ? read.filter((id) => !forget.includes(id)) : read;
    const ids = only && candidates.length ? await only(candidates) : candidates;
    await endSessions(coordination, store, ids, keepPending);
    const removed = [...ids, ...read.filter((id) => forget.includes(id) && !ids.includes(id))];
    // best effort: an ended session left in the index is ended again by a later logout, which changes nothing
    if (removed.length) await removeFromSet.call(coordination, key, removed).catch(() => undefined);
    return ids;
  }
  const taken = await coordination.takeSet(key);
  const giveBack = (ids: string[]) => Promise.all(ids.map((id) => coordination.addToSet(key, id, ttlMs, max))).catch(() => undefined);
  let ids = taken;
  try {
    if (forget.length) ids = taken.filter((id) => !forget.includes(id));
    if (only && ids.length) ids = await only(ids);
    await endSessions(coordination, store, ids, keepPending);
  } catch (err) {
    await giveBack(taken);
    throw err;
  }
  if (ids.length !== taken.length) await giveBack(taken.filter((id) => !ids.includes(id) && !forget.includes(id)));
  return ids;
}

const KEEPS_ENDED = Symbol.for('@openid-express/rp keeps ended sessions ended');
const ENDED_CHECK = Symbol('the check for a sign-out mark made after the last save');
/** The longest a save waits for its check (see below) before it answers; the check goes on after. */
const CHECK_WAIT_MS = 250;

/** What a session keeps of its login, as far as {@link keepEndedSessionsEnded} reads it. */
type SavedLogin = { provider: string; refreshToken?: string };

/** What rp() adds to the checks of {@link keepEndedSessionsEnded}. */
export interface SessionStoreHooks {
  /** The login that replaced `login` after a refresh rotated its refresh token, if one did lately. */
  newerLogin?: (login: SavedLogin) => Promise<NonNullable<NonNullable<SessionData['oidc']>['auth']> | undefined>;
  /**
   * Undefined when the session's back-channel-logout index outlives it; else renews it, and the
   * promise settles once `session.oidc.iu` says so (a failure leaves it as it was).
   */
  renewIndex?: (store: Store, sid: string, session: SessionData) => Promise<void> | undefined;
}

/**
 * Makes every save of a session holding a login check, after it wrote, that no logout ended that
 * session meanwhile, and destroy it again if one did (once per store). A request of the session that
 * was under way when the user signed out (at the OP, or here on another tab or instance) otherwise
 * saved the session back at its end, whenever it had changed it (a cart, a flash message; with
 * `resave: true` always): the user was signed in again, and the old session id worked again. The
 * logout marks the session ended before it destroys it, and the check comes after the write, so
 * whichever lands last, the session ends up destroyed. A save of a session without a login pays nothing.
 *
 * The same request, when another one refreshed the tokens meanwhile, saved the login it had read:
 * the spent refresh token back over the new one, and with an OP that rotates refresh tokens the
 * session's next refresh replayed it and the OP revoked the grant. So the save also asks `newerLogin`
 * (in parallel with the check) for the login that replaced the one it wrote, and writes the session
 * again with that one (the request's other changes kept), checked as any save.
 */
export function keepEndedSessionsEnded(store: Store, coordination: Coordination, hooks: SessionStoreHooks = {}): void {
  const marked = store as Store & { [KEEPS_ENDED]?: true };
  if (marked[KEEPS_ENDED]) return;
  marked[KEEPS_ENDED] = true;
  const { newerLogin, renewIndex } = hooks;
  const set = store.set;
  const touch = store.touch;
  // a session that comes to outlive its login's back-channel-logout index (a rolling cookie, weeks of
  // use) renews it before it is written; one that is only touched is written instead, once, so the
  // session remembers the renewal (about once a day)
  if (typeof touch === 'function' && renewIndex) {
    store.touch = storeWrapper(function renewingTouch(this: Store, sid: string, session: SessionData, cb?: (err?: unknown) => void) {
      const renewing = session?.oidc?.auth ? renewIndex(this, sid, session) : undefined;
      if (!renewing) return touch.call(this, sid, session, cb);
      void renewing.then(() => this.set(sid, session, cb), () => touch.call(this, sid, session, cb));
    }, touch);
  }
  store.set = storeWrapper(function renewedSet(this: Store, sid: string, session: SessionData, cb?: (err?: unknown) => void) {
    const renewing = session?.oidc?.auth && typeof cb === 'function' ? renewIndex?.(this, sid, session) : undefined;
    if (!renewing) return checkedSet.call(this, sid, session, cb);
    // tried once per write: a renewal that fails (a full Redis) leaves the save as it would have been
    void renewing.then(() => checkedSet.call(this, sid, session, cb), () => checkedSet.call(this, sid, session, cb));
  }, set);
  function checkedSet(this: Store, sid: string, session: SessionData, cb?: (err?: unknown) => void): void {
    const login = session?.oidc?.auth;
    if (!login || typeof cb !== 'function') return void set.call(this, sid, session, cb);
    set.call(this, sid, session, (err?: unknown) => {
      if (err) return cb(err);
      let answered = false;
      const answer = (failure?: unknown): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        cb(failure);
      };
      // the write landed: a coordination store that answers slowly does not hold the request (the check
      // goes on, and still destroys the session if a logout marked it), and one that cannot be read does
      // not fail it (the answer would say nothing true; a logout needs that store too, it marks first)
      const timer = setTimeout(answer, CHECK_WAIT_MS);
      const check = sessionEnded(coordination, sid);
      const newer = newerLogin && login.refreshToken ? newerLogin(login).catch(() => undefined) : undefined;
      // kept on the session saved (not stored: a symbol), for a caller that needs the answer itself
      Object.defineProperty(session, ENDED_CHECK, { value: check, configurable: true, enumerable: false });
      const putRight = (): void => {
        if (!newer) return answer();
        void newer.then((replaced) => {
          // (unless the request's session moved on meanwhile: its own later save is checked in turn)
          if (!replaced || session.oidc?.auth !== login) return answer();
          debug('a session was saved with a refresh token that a refresh had replaced meanwhile; saved again with the new tokens');
          session.oidc.auth = replaced;
          checkedSet.call(this, sid, session, () => answer());
        });
      };
      check.then(
        (ended) => (ended ? sessionOp<void>((done) => store.destroy(sid, done)).then(() => answer(), answer) : putRight()),
        (failure: unknown) => {
          debug('a saved session was not checked for a logout meanwhile: %s; checked again in the background', (failure as Error)?.message);
          putRight();
          // the store may have stalled just as a sign-out marked this session ended: left unchecked, the
          // session this save brought back would stay signed in for good
          void checkLater(coordination, store, sid);
        },
      );
    });
  }
}

/**
 * Checks again, over a minute, whether a logout ended session `sid` (a check after its save failed),
 * and destroys it if one did; stops once the store has answered (and, ended, taken the destroy).
 */
async function checkLater(coordination: Coordination, store: Store, sid: string): Promise<void> {
  for (const wait of [500, 1500, 3000, 5000, 10_000, 40_000]) {
    await new Promise((resolve) => setTimeout(resolve, wait).unref());
    const ended = await sessionEnded(coordination, sid).catch(() => undefined);
    if (ended === false) return;
    if (ended && (await sessionOp<void>((done) => store.destroy(sid, done)).then(() => true, () => false))) {
      return debug('a session saved while a logout ended it was destroyed, once the store answered');
    }
  }
}

/**
 * Marks session `sessionId` ended (before the caller destroys it), for a logout here: see
 * `keepEndedSessionsEnded`.
 */
export function markSessionEnded(coordination: Coordination, sessionId: string): Promise<void> {
  return coordination.set(endedKey(sessionId), '1', ENDED_TTL_MS);
}

/**
 * The answer of the check `keepEndedSessionsEnded` made after `session` was last saved (one read of
 * the sign-out mark, not two in a row), and forgets it; undefined when there was none.
 */
export function endedAfterSave(session: object): Promise<boolean> | undefined {
  const check = (session as { [ENDED_CHECK]?: Promise<boolean> })[ENDED_CHECK];
  if (check) delete (session as { [ENDED_CHECK]?: Promise<boolean> })[ENDED_CHECK];
  return check;
}

/** True when a logout at the OP ended session `sessionId` in the last minutes (see `endSessions`). */
export async function sessionEnded(coordination: Coordination, sessionId: string): Promise<boolean> {
  return (await coordination.get(endedKey(sessionId))) !== undefined;
}
