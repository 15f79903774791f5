import debug from 'debug';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { OpConfigError, StoreUnavailableError, warnStoreFailure } from '../errors.js';
import { GRANTABLE, consumeRefused, ttlSeconds } from './models.js';
import { holdUntilAnswered, recordConsumed } from '../request-scope.js';
import { connectionLimitReply, recoverReadOnlyConnection, recoverStuckConnection } from './stuck-connection.js';
import { CONSUME, GRANT_ADD, STARTUP_CHECK, DECREMENT, INCREMENT, LEASE_LEFT, RENEW, REVOKE_GRANT, SCHEDULE, SETTLE, TAKE_DUE, TAKE_LEGACY_GRANT, UNCONSUME, UPSERT, type Script } from './redis-scripts.js';
import type { OpStore } from './types.js';

/** Per-command options the adapter passes to node-redis (its `CommandOptions` has these). */
export interface RedisCommandOptions {
  /** node-redis rejects a command still waiting to be written after this many ms. */
  timeout?: number;
  /** node-redis rejects (and drops) a command still waiting to be written when this aborts. */
  abortSignal?: AbortSignal;
}

/**
 * What the store needs from a single-Redis client: node-redis v5's `createClient()` (connected)
 * fits. Typed structurally so that memory users never load `redis`.
 */
export interface RedisCommandClient {
  sendCommand(args: string[], options?: RedisCommandOptions): Promise<unknown>;
  /** What tells a node-redis v5 client from a v4 or ioredis one (whose sendCommand differs). */
  withTypeMapping(...args: never[]): unknown;
  readonly isOpen?: boolean;
  /** False while node-redis reconnects: a deadline then says "unreachable", not "slow". */
  readonly isReady?: boolean;
}

/**
 * What the store needs from a Redis Cluster client: node-redis v5's `createCluster()` (connected)
 * fits. Told apart from {@link RedisCommandClient} by its `masters` list.
 */
export interface RedisClusterCommandClient {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[], options?: RedisCommandOptions): Promise<unknown>;
  readonly masters: readonly unknown[];
  withTypeMapping(...args: never[]): unknown;
  readonly isOpen?: boolean;
}

/**
 * What the store needs from a Redis Sentinel client: node-redis v5's `createSentinel()` (connected)
 * fits (it follows failovers to the new master). Told apart by its `getMasterNode`.
 */
export interface RedisSentinelCommandClient {
  sendCommand(isReadonly: boolean | undefined, args: string[], options?: RedisCommandOptions): Promise<unknown>;
  getMasterNode(): unknown;
  withTypeMapping(...args: never[]): unknown;
  readonly isOpen?: boolean;
  readonly isReady?: boolean;
}

/** Any client redisAdapter() takes: single Redis, Redis Cluster or Redis Sentinel (node-redis v5). */
export type RedisAdapterClient = RedisCommandClient | RedisClusterCommandClient | RedisSentinelCommandClient;

/** Options of {@link redisAdapter}. */
export interface RedisAdapterOptions {
  /** Prepended to every key, so several OPs (or apps) can share one Redis. Default `"oidc:"`. */
  prefix?: string;
  /**
   * Milliseconds Redis may take over each reply of a store call (find, upsert, consume, revoke,
   * counters ...) before the call rejects with `StoreUnavailableError` (503 `store_unavailable`).
   * A call sends up to 4 commands one after another, each given this much. Default 2000.
   */
  timeout?: number;
}

const log = debug('openid-express:op');

const DEFAULT_TIMEOUT_MS = 2_000;
// setTimeout fires at once for delays above 2^31-1 ms: a bigger "timeout" would mean none at all.
const MAX_TIMEOUT_MS = 2_147_483_647;
// A revoked grant's tombstone outlives any in-flight write of its tokens: at least an hour, at
// most oidc-provider's default Grant lifetime (14 days), otherwise as long as its longest record.
const TOMBSTONE_MIN_MS = 60 * 60 * 1000;
const TOMBSTONE_MAX_MS = 14 * 24 * 60 * 60 * 1000;
// A consume made inside a request is held as a lease of CONSUME_LEASE_MS, renewed every
// CONSUME_RENEW_MS until the request has answered. Another request finding the record meanwhile
// waits up to LEASE_WAIT_MS (polling every LEASE_POLL_MS) for it to answer or for the lease to run out.
const CONSUME_LEASE_MS = 3_000;
const CONSUME_RENEW_MS = 1_000;
const LEASE_WAIT_MS = CONSUME_LEASE_MS + 1_000;
const LEASE_POLL_MS = 100;
// The most commands one store call sends one after another (a find: the lookup, the record, the
// lease; an upsert: the record, the grant index; each EVALSHA may meet NOSCRIPT and send EVAL).
const MAX_COMMANDS = 4;

/**
 * The production store: oidc-provider's records and the login counters in Redis, each key
 * expiring with its record. Works on one Redis (`createClient()`), on Redis Sentinel
 * (`createSentinel()`, which follows failovers) and on Redis Cluster (`createCluster()`): every
 * script touches one hash slot. Consume is atomic (a single-key Lua
 * script), so of two concurrent redemptions of one code only one succeeds. Every call rejects with
 * `StoreUnavailableError` after `timeout` ms or when Redis cannot be reached, never hangs.
 * A client without an `error` listener gets one that logs to `DEBUG=openid-express:op` (node-redis
 * would otherwise end the process on the first connection error); add your own to handle them.
 * Bad arguments throw `OpConfigError` saying what to pass.
 *
 * Key layout (`P` = prefix): records `P<Model>:<id>` (a hash: payload, consumed, consumer: which call consumed it, and lease: until when that call may still answer, see CONSUME);
 * `Puid:<Model>:<uid>` and `PuserCode:<Model>:<code>` → record id; counters `Pcounter:<key>`; work to
 * try again (back-channel logouts) `Pqueue:<name>` (a sorted set by when it is due, shared by the instances);
 * a grant's index `Pgrant:{<grantId>}` (sorted set of record keys by expiry) and, once revoked,
 * its tombstone `Pgrant:{<grantId>}:revoked`, hash-tagged so both sit in one slot.
 *
 * @example
 * ```ts
 * import { createClient, createCluster, createSentinel } from 'redis';
 * import { op, redisAdapter } from '@openid-express/op';
 * const redis = await createClient({ url: process.env.REDIS_URL }).on('error', console.error).connect();
 * app.use('/op', op({ issuer, clients, accounts, adapter: redisAdapter(redis, { prefix: 'id:' }) }));
 * // or, on Redis Cluster:
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:6379' }] }).on('error', console.error).connect();
 * app.use('/op', op({ issuer, clients, accounts, adapter: redisAdapter(cluster, { timeout: 1500 }) }));
 * // or, a master and replicas watched by Sentinel:
 * const sentinel = await createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '10.0.0.5', port: 26379 }] }).on('error', console.error).connect();
 * app.use('/op', op({ issuer, clients, accounts, adapter: redisAdapter(sentinel) }));
 * ```
 */
export function redisAdapter(client: RedisAdapterClient, options: RedisAdapterOptions = {}): OpStore {
  checkClient(client);
  const { prefix, timeout } = checkOptions(options);
  keepAliveOnErrors(client);
  const redis = new Redis(client, timeout);
  const keys = new KeyLayout(prefix);
  // a Redis that refuses this client (a password it was not given, an ACL user that may not run scripts
  // or touch keys under `prefix`) is said at start-up, with what to fix, not at the first sign-in; one
  // that is not reachable yet is left to reconnect. A script that writes a key of the prefix, as every store call does
  void redis.guard('its start-up check (a script writing a key of the prefix)', () => redis.run(STARTUP_CHECK, [`${prefix}startup-check`], []))
    .then(() => Promise.all([warnOnEviction(redis, `${prefix}ping`), warnOnClockSkew(redis, `${prefix}ping`)]))
    .catch(() => undefined); // advice only: never fails the app
  // a clock that goes wrong later (NTP stopped, a VM resumed from a snapshot) is said too, every ten
  // minutes while it lasts; the check ends with the client (quit or destroyed)
  const clockCheck = setInterval(() => {
    if (client.isOpen === false) return clearInterval(clockCheck);
    void warnOnClockSkew(redis, `${prefix}ping`).catch(() => undefined);
  }, CLOCK_CHECK_MS).unref();
  return {
    kind: 'redis',
    adapterFor: (model) => new RedisModelAdapter(model, keys, redis),
    increment: (key, ttl) =>
      redis.guard('a sign-in counter\'s increment', async () => {
        const seconds = String(Math.max(1, Math.ceil(ttl)));
        return Number(await redis.run(INCREMENT, [keys.counter(key)], [seconds]));
      }),
    decrement: (key) => redis.guard('a sign-in counter\'s decrement', async () => void (await redis.run(DECREMENT, [keys.counter(key)], []))),
    count: (key) => redis.guard('a sign-in counter\'s read', async () => Number((await redis.command(keys.counter(key), ['GET', keys.counter(key)])) ?? 0)),
    reset: (key) => redis.guard('a sign-in counter\'s reset', async () => void (await redis.command(keys.counter(key), ['DEL', keys.counter(key)]))),
    // due times are kept on Redis's clock (the delay until `dueAt`, then "now" when taking), so
    // instances whose clocks differ take each item when it is due, not early or minutes late
    schedule: (queue, item, dueAt) =>
      redis.guard('a back-channel logout\'s retry, to queue it', async () => void (await redis.run(SCHEDULE, [keys.queue(queue)], [String(Math.round(dueAt - Date.now())), item, String(MAX_QUEUED)]))),
    // (polled every second: once the app closed its client, nothing is asked, rather than a failure a second)
    takeDue: async (queue, _now, max) => (client.isOpen === false ? [] : redis.guard('the back-channel logout retries due, to take them',
      async () => ((await redis.run(TAKE_DUE, [keys.queue(queue)], [String(max)])) as string[] | null) ?? [])),
  };
}

/**
 * Says at start-up when Redis may evict keys before they expire (any maxmemory-policy but
 * `noeviction`; managed Redis often defaults to `volatile-lru`, and every key here has a TTL): a
 * full Redis would then drop sign-ins under way, codes, tokens, login counters and grant indexes
 * (a revoked grant's tokens could outlive it) instead of refusing writes (503). A Redis that does not
 * allow CONFIG (some managed ones) is not checked.
 */
async function warnOnEviction(redis: Redis, routeKey: string): Promise<void> {
  const reply = await redis.command(routeKey, ['CONFIG', 'GET', 'maxmemory-policy']).catch(() => undefined);
  const policy = evictionPolicy(reply);
  if (!policy || policy === 'noeviction') return;
  console.warn(`[@openid-express/op] redisAdapter: Redis runs with maxmemory-policy ${policy}: once it is full it deletes keys before they expire `
    + '(sign-ins under way, codes, tokens, login counters, the index that revokes a grant\'s tokens). Set maxmemory-policy noeviction '
    + '(redis.conf, `CONFIG SET maxmemory-policy noeviction`, or your provider\'s parameter group) and give Redis enough maxmemory: '
    + 'a full Redis then refuses writes, answered 503, and loses nothing.');
}

/** Seconds this server's clock may differ from Redis's before it is said (at start-up, then every CLOCK_CHECK_MS). */
const CLOCK_SKEW_WARN_S = 5;
/** How often a running instance compares its clock with Redis's again. */
const CLOCK_CHECK_MS = 10 * 60_000;

/**
 * Says at start-up when this server's clock differs from Redis's (the one clock every instance
 * shares) by more than CLOCK_SKEW_WARN_S: oidc-provider dates codes, tokens and sign-ins with the
 * clock of the instance that makes them and checks them with the clock of the one that reads them,
 * so a code issued by one instance can be expired for another.
 */
async function warnOnClockSkew(redis: Redis, routeKey: string): Promise<void> {
  const sent = Date.now();
  const reply = await redis.command(routeKey, ['TIME']).catch(() => undefined);
  const received = Date.now();
  if (!Array.isArray(reply) || reply.length < 2) return;
  const redisMs = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
  const skew = Math.round(((sent + received) / 2 - redisMs) / 1000);
  if (!Number.isFinite(skew) || Math.abs(skew) <= CLOCK_SKEW_WARN_S + (received - sent) / 1000) return;
  console.warn(`[@openid-express/op] redisAdapter: this server's clock is ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} Redis's, and so likely of the other instances'. `
    + 'Instances whose clocks differ disagree on when codes, tokens and sign-ins expire (a code issued by one can be expired for another, '
    + 'and apps refuse ID tokens "issued in the future"): keep every server in time (NTP, e.g. chrony or systemd-timesyncd).');
}

/** The policy from a CONFIG GET reply (node-redis v5 gives an array or a map, by RESP version). */
function evictionPolicy(reply: unknown): string | undefined {
  if (Array.isArray(reply)) return typeof reply[1] === 'string' ? reply[1] : undefined;
  if (reply instanceof Map) return reply.get('maxmemory-policy') as string | undefined;
  if (reply && typeof reply === 'object') return (reply as Record<string, string>)['maxmemory-policy'];
  return undefined;
}

/** Items a queue keeps at most (a store that nobody takes from stays bounded). */
const MAX_QUEUED = 10_000;

function checkClient(client: RedisAdapterClient): void {
  if (typeof (client as unknown as Promise<unknown>)?.then === 'function') {
    throw new OpConfigError('adapter', 'redisAdapter(client): got a Promise; pass the connected client: `const redis = await createClient({ url }).connect()`, then redisAdapter(redis)');
  }
  if (typeof client?.sendCommand !== 'function') {
    throw new OpConfigError('adapter', 'redisAdapter(client): pass a node-redis v5 client (createClient(), createCluster() or createSentinel() from "redis")');
  }
  // ioredis and node-redis v4 have a sendCommand too, but another one: every request would fail (ioredis)
  // or a command given up on could still run later (v4 ignores the abort signal); v5 clients have withTypeMapping
  if (typeof (client as { withTypeMapping?: unknown }).withTypeMapping !== 'function') { // a JavaScript app, or `as never`
    const which = typeof (client as { status?: unknown }).status === 'string' ? 'an ioredis client' : 'not a node-redis v5 client (node-redis v4?)';
    throw new OpConfigError('adapter', `redisAdapter(client): this is ${which}; pass a node-redis v5 client (\`npm install redis@5\`, then createClient(), createCluster() or createSentinel() from "redis"). An app that keeps node-redis v4 for connect-redis can install v5 beside it under another name: \`npm install redis5@npm:redis@5\``);
  }
  if (client.isOpen === false) {
    throw new OpConfigError('adapter', 'redisAdapter(client): the client is not connected; `await client.connect()` first');
  }
}

function checkOptions(options: RedisAdapterOptions): { prefix: string; timeout: number } {
  if (typeof options !== 'object' || options === null) {
    throw new OpConfigError('adapter', 'redisAdapter(client, options): `options` must be an object like { prefix, timeout }');
  }
  const unknown = Object.keys(options).find((k) => k !== 'prefix' && k !== 'timeout');
  if (unknown !== undefined) {
    throw new OpConfigError('adapter', `redisAdapter(client, options): unknown option \`${unknown}\`; the options are \`prefix\` (e.g. "oidc:") and \`timeout\` (milliseconds)`);
  }
  const prefix = options.prefix ?? 'oidc:';
  if (typeof prefix !== 'string') throw new OpConfigError('adapter', 'redisAdapter: `prefix` must be a string, e.g. "oidc:"');
  // An empty hash tag makes Redis hash the whole key: a grant's index and tombstone would split.
  if (prefix.includes('{}')) throw new OpConfigError('adapter', 'redisAdapter: `prefix` must not contain an empty hash tag "{}"');
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS) {
    throw new OpConfigError('adapter', `redisAdapter: \`timeout\` must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (default ${DEFAULT_TIMEOUT_MS})`);
  }
  return { prefix, timeout };
}

/**
 * node-redis emits `error` on every connection problem and reconnects by itself; without an `error`
 * listener Node treats the event as unhandled and the process exits on the first Redis blip. A
 * client without one gets ours, which logs (DEBUG=openid-express:op): the store calls themselves
 * already fail as 503 `store_unavailable` while Redis is away, so the process keeps serving. An app's
 * own listener, added before or after, runs too.
 */
function keepAliveOnErrors(client: object): void {
  const events = client as { listenerCount?: (event: string) => number; on?: (event: string, fn: (err: unknown) => void) => unknown };
  if (typeof events.on !== 'function' || typeof events.listenerCount !== 'function' || events.listenerCount('error') > 0) return;
  let told = false;
  events.on('error', (err) => {
    const message = err instanceof Error ? err.message : String(err);
    if (told) return log('redis client error: %s', message);
    told = true;
    log('redis client error: %s (redisAdapter added an "error" listener because the client had none: without one '
      + 'node-redis errors end the process; to handle them yourself, add createClient(...).on(\'error\', (err) => ...) before redisAdapter(client))', message);
  });
}

/**
 * Key names. Records, uid/userCode indexes, counters and queues are only ever touched one key at a time,
 * so they may land in any slot (and keep the layout of earlier versions). A grant's index and
 * tombstone are touched together, so the grant id is their hash tag.
 */
class KeyLayout {
  constructor(private readonly prefix: string) {}

  record(model: string, id: string): string {
    return `${this.prefix}${model}:${id}`;
  }

  lookup(kind: 'uid' | 'userCode', model: string, value: string): string {
    return `${this.prefix}${kind}:${model}:${value}`;
  }

  grant(grantId: string): string {
    return `${this.prefix}grant:{${grantId}}`;
  }

  revoked(grantId: string): string {
    return `${this.grant(grantId)}:revoked`;
  }

  /** The grant index of earlier versions (untagged); still emptied on revoke during an upgrade. */
  legacyGrant(grantId: string): string {
    return `${this.prefix}grant:${grantId}`;
  }

  queue(name: string): string {
    return `${this.prefix}queue:${name}`;
  }

  counter(key: string): string {
    return `${this.prefix}counter:${key}`;
  }
}

/**
 * The client behind one interface: commands routed by their key (a cluster client needs it),
 * scripts by EVALSHA with an EVAL fallback, every store call under a deadline.
 */
class Redis {
  private readonly cluster: boolean;
  private readonly sentinel: boolean;

  constructor(
    private readonly client: RedisAdapterClient,
    private readonly timeout: number,
  ) {
    this.cluster = isCluster(client);
    this.sentinel = isSentinel(client);
  }

  /** One command about `key`. Never flagged read-only: a replica could miss a code written just now. */
  command(key: string, args: string[]): Promise<unknown> {
    // a command node-redis has not written yet (reconnecting, or held by a stalled socket) is dropped when
    // its call gives up (guard()'s signal), so what a request was answered 503 for never runs later. Not
    // node-redis's own `timeout`: an AbortSignal.timeout per command, whose timer ran its full course even
    // after the answer (about a fifth of a Redis-backed request's CPU, bench/RESULTS.md)
    const call = underWay.getStore();
    const options: RedisCommandOptions = call ? { abortSignal: call.signal } : { timeout: this.timeout };
    const sent = this.cluster ? (this.client as RedisClusterCommandClient).sendCommand(key, false, args, options)
      : this.sentinel ? (this.client as RedisSentinelCommandClient).sendCommand(false, args, options)
        : (this.client as RedisCommandClient).sendCommand(args, options);
    return call ? sent.finally(call.answered) : sent;
  }

  /**
   * One EVAL with the script's source, never EVALSHA: for the consume and its undo, whose order on the
   * connection matters. A NOSCRIPT answer (a restarted Redis) would send the script again only after
   * what was sent meanwhile (the undo of a request that gave up), too late.
   */
  evalInOrder(script: Script, keys: string[], args: string[]): Promise<unknown> {
    return this.command(keys[0]!, ['EVAL', script.source, String(keys.length), ...keys, ...args]);
  }

  async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.command(keys[0]!, ['EVALSHA', script.sha, ...tail]);
    } catch (error) {
      // A restarted server (or each cluster node, the first time) does not know the script yet.
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return this.command(keys[0]!, ['EVAL', script.source, ...tail]);
    }
  }

  /**
   * Runs one store call with a deadline, whatever the client's own settings: a stalled Redis
   * makes node-redis wait forever for a command it already wrote. The deadline is `timeout` for
   * each reply: every answer to one of the call's commands gives it `timeout` more, up to
   * {@link MAX_COMMANDS} of them. So a Redis whose every reply is late but within `timeout` (another
   * zone, a busy server) still serves a call of several commands (before, their sum had to fit in
   * one `timeout`, and a script Redis had forgotten after a restart, EVALSHA then EVAL, timed out),
   * while a stalled one fails it within `timeout`. Connection failures become
   * `StoreUnavailableError`; other errors (script errors, WRONGTYPE: bugs) pass unchanged.
   * Work still running at the deadline is abandoned, not undone: Redis may yet apply it.
   */
  guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let giveUp!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (giveUp = reject));
    const last = Date.now() + MAX_COMMANDS * this.timeout;
    // aborted when the call gives up: its commands not written yet are dropped (see `command`)
    const abandon = new AbortController();
    const answered = (): void => {
      if (settled) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        abandon.abort();
        giveUp(timedOut(what, this.timeout, this.client));
      }, Math.max(0, Math.min(this.timeout, last - Date.now())));
    };
    answered();
    const attempt = underWay.run({ answered, signal: abandon.signal }, () => Promise.resolve().then(work))
      .catch((error: unknown) => {
        throw isUnavailable(error) ? unreachable(what, error, this.client) : error;
      });
    return Promise.race([attempt, late]).finally(() => {
      settled = true;
      clearTimeout(timer);
    });
  }
}

/** The store call under way in this async context (see `Redis.guard`): each reply gives it another `timeout`. */
const underWay = new AsyncLocalStorage<{ answered(): void; signal: AbortSignal }>();

/** node-redis's cluster client has a list of masters; a single-node client has none. */
function isCluster(client: RedisAdapterClient): client is RedisClusterCommandClient {
  return 'masters' in client && Array.isArray((client as RedisClusterCommandClient).masters);
}

/** node-redis's Sentinel client finds its master through Sentinel; its sendCommand takes isReadonly first. */
function isSentinel(client: RedisAdapterClient): client is RedisSentinelCommandClient {
  return typeof (client as RedisSentinelCommandClient).getMasterNode === 'function' && !isCluster(client);
}

// node-redis (and Node's net) errors that mean "Redis cannot be reached now", not "this is a bug".
const UNAVAILABLE_ERRORS = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'ReconnectStrategyError',
  'RootNodesUnavailableError',
  'DisconnectsClientError',
  'TimeoutError',
  'CommandTimeoutDuringMaintenanceError',
  'SocketTimeoutDuringMaintenanceError',
]);
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// Replies of a server that is up but cannot serve yet (loading, failing over, busy with a script).
// Replies of a server that refuses this client until someone changes a setting (a password, an ACL, the
// connection limit): 503 as well (the user can do nothing else), and said in the log with what to change.
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|READONLY|OOM|MISCONF|NOREPLICAS|NOAUTH|WRONGPASS|NOPERM|ERR max number of clients)\b/;
// Of those, the refusals that last until someone changes a setting (a password, an ACL, maxmemory: a full
// Redis under noeviction frees room only as keys expire, in hours): the others may pass by themselves (a
// failover's READONLY, the connection limit), as @openid-express/rp has it.
const LASTING_REPLIES = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM', 'OOM']);
/** What to check for the replies that say more than "not reachable". */
const REPLY_HINTS: Record<string, string> = {
  READONLY: 'this connection reaches a read-only replica (after a failover, the old master): when a new connection to the client\'s address reaches the master '
    + '(an endpoint that follows failovers), the client is reconnected within seconds; otherwise point the client at the current master (Sentinel or Cluster clients follow failovers)',
  OOM: 'Redis is out of memory (maxmemory reached, and noeviction refuses writes): raise maxmemory, or find which keys grew (redis-cli --bigkeys), '
    + 'and keep maxmemory-policy noeviction (an eviction policy would drop sign-ins, tokens and login counters); see the README, "Running several instances"',
  MISCONF: 'Redis refuses writes because it cannot save its snapshot (stop-writes-on-bgsave-error): check its disk and logs',
  NOREPLICAS: 'Redis refuses writes because too few replicas are connected (min-replicas-to-write): check the replicas',
  NOAUTH: 'Redis needs a password: give it in the client\'s url (redis://:password@host:6379) or its password option',
  WRONGPASS: 'Redis refused the client\'s user name or password: check the client\'s url (redis://user:password@host:6379) or its username and password options',
  NOPERM: 'the Redis user (ACL) may not run a command or touch a key the store needs: it needs the scripting commands EVAL and EVALSHA '
    + '(+@scripting; the scripts call GET, SET, DEL, EXISTS, EXPIRE, PEXPIRE, PTTL, TTL, H*, Z* commands), PING and TIME, and every key under '
    + 'redisAdapter\'s prefix (e.g. ~oidc:*); +@all -@dangerous works',
  'ERR max number of clients': 'Redis has as many connections as it allows (maxclients, or the plan\'s connection limit): raise it, or find the clients '
    + 'that hold connections (each instance of the OP holds one per client it creates)',
};
const UNAVAILABLE_MESSAGES = /client is (closed|offline)|socket closed unexpectedly|connection timeout|root nodes are unavailable|reconnect/i;
const REPLY_ERRORS = new Set(['ErrorReply', 'SimpleError', 'BlobError']);

function isUnavailable(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const name = error.constructor?.name ?? error.name;
  const message = String(error.message);
  if (REPLY_ERRORS.has(name)) return UNAVAILABLE_REPLIES.test(message);
  const code = (error as { code?: unknown }).code;
  return (
    UNAVAILABLE_ERRORS.has(name) ||
    (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) ||
    UNAVAILABLE_REPLIES.test(message) ||
    UNAVAILABLE_MESSAGES.test(message)
  );
}

// Messages name the operation and what to check; never a key, a token id or the client's URL.
function timedOut(what: string, ms: number, client: object): StoreUnavailableError {
  recoverStuckConnection(client, ms, 'redisAdapter'); // a dead connection while Redis answers (a failover that closed nothing)?
  if ((client as { isReady?: unknown }).isReady === false) {
    // its reconnections refused at Redis's connection limit? (node-redis does not say so)
    const limit = connectionLimitReply(client);
    if (limit) return unreachable(what, new Error(limit), client);
    return new StoreUnavailableError(
      `Redis is unreachable (the client is reconnecting) and did not answer ${what} within ${ms} ms: check that `
        + 'Redis is running and reachable at the client\'s address (url, network, firewall)',
    );
  }
  return new StoreUnavailableError(
    `Redis did not answer ${what} within ${ms} ms: check that Redis is running, reachable from this host `
      + 'and not overloaded (or raise redisAdapter\'s `timeout`)',
  );
}

function unreachable(what: string, error: Error, client: object): StoreUnavailableError {
  const code = (error as { code?: unknown }).code;
  const reply = UNAVAILABLE_REPLIES.exec(error.message)?.[1];
  // the old master after a failover behind one endpoint: does a new connection reach the new one?
  if (reply === 'READONLY') recoverReadOnlyConnection(client, 'redisAdapter');
  // a reconnection refused at Redis's connection limit, which node-redis reports as a closed socket
  const limit = reply ? undefined : connectionLimitReply(client);
  if (limit) return unreachable(what, new Error(limit, { cause: error }), client);
  // a reply is quoted (it names the command or the limit; never a key or a secret)
  const reason = typeof code === 'string' ? code : reply ? error.message.slice(0, 200) : error.constructor?.name ?? 'error';
  const toFix = reply ? REPLY_HINTS[reply] : undefined;
  const hint = toFix ?? 'check that Redis is running and reachable at the client\'s '
    + 'address (url, network, firewall, cluster state); the client reconnects on its own once it is back';
  const err = new StoreUnavailableError(`Redis is unavailable (${reason}) for ${what}: ${hint}`, { cause: error, lasting: reply !== undefined && LASTING_REPLIES.has(reply) });
  // a reply that needs someone to act is said where operators look, once a minute, even for a call no
  // request waits on (a back-channel retry); the 503 of a request says it too (the same line, once)
  if (reply && toFix) warnStoreFailure(err);
  return err;
}

function strings(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.filter((item): item is string => typeof item === 'string') : [];
}

/** A record as read: its payload (with `consumed`), and the ms left on a consume lease someone holds. */
interface Found {
  payload: AdapterPayload;
  leaseLeft?: number;
}

class RedisModelAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly keys: KeyLayout,
    private readonly redis: Redis,
  ) {}

  private key(id: string): string {
    return this.keys.record(this.model, id);
  }

  private guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
    return this.redis.guard(`${this.model}.${operation}`, work);
  }

  /**
   * Writes the record first, then its lookups and its grant index entry (each a one-slot step).
   * Indexes may point at a record that is gone or changed: readers check the record itself.
   */
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    return this.guard('upsert', async () => {
      const { consumed, ...rest } = payload;
      const ttl = ttlSeconds(expiresIn, this.model) ?? 0;
      const key = this.key(id);
      const consumedArg = consumed === undefined || consumed === null ? '' : String(consumed);
      await this.redis.run(UPSERT, [key], [JSON.stringify(rest), consumedArg, String(ttl)]);
      const grantId = payload.grantId && GRANTABLE.has(this.model) ? payload.grantId : '';
      await Promise.all([
        grantId ? this.addToGrant(grantId, key, ttl) : undefined,
        payload.uid ? this.setLookup('uid', payload.uid, id, ttl) : undefined,
        payload.userCode ? this.setLookup('userCode', payload.userCode, id, ttl) : undefined,
      ]);
    });
  }

  /**
   * Why no record of a revoked grant survives, on one Redis or a Cluster. An upsert is
   * U1 (write the record) → U2 (GRANT_ADD on the grant's slot) → U3 (delete the record if U2 saw
   * the tombstone); a revoke is V1 (REVOKE_GRANT on the same slot: tombstone, take the index) →
   * V2 (delete every member). U2 and V1 are scripts on one slot, so one runs wholly before the
   * other. If U2 runs first, the key is in the index V1 takes, and V2 deletes it after U1 (U1 <
   * U2 < V1 < V2). If V1 runs first, U2 sees the tombstone and U3 deletes the record after U1.
   * A later re-save of the same record repeats U1..U3 and meets the tombstone again; the
   * tombstone outlives every record the index knew (at least an hour, at most 14 days).
   */
  private async addToGrant(grantId: string, key: string, ttl: number): Promise<void> {
    const added = Number(await this.redis.run(GRANT_ADD, [this.keys.grant(grantId), this.keys.revoked(grantId)], [key, String(ttl)]));
    if (added === 0) await this.redis.command(key, ['DEL', key]);
  }

  private async setLookup(kind: 'uid' | 'userCode', value: string, id: string, ttl: number): Promise<void> {
    const lookup = this.keys.lookup(kind, this.model, value);
    await this.redis.command(lookup, ttl > 0 ? ['SET', lookup, id, 'EX', String(ttl)] : ['SET', lookup, id]);
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.settled('find', () => this.read(id));
  }

  /**
   * The record as `read` finds it, once no other request holds a consume lease on it: while one
   * does (an instance between its consume and its answer), waits for it to answer (then the record
   * is consumed) or for the lease to run out (an instance that died: the record is found unspent,
   * and this request may consume it again). A lease still held after LEASE_WAIT_MS is a 503.
   */
  private async settled(operation: string, read: () => Promise<Found | undefined>): Promise<AdapterPayload | undefined> {
    const until = Date.now() + LEASE_WAIT_MS;
    for (;;) {
      const found = await this.guard(operation, read);
      if (!found || found.leaseLeft === undefined) return found?.payload;
      if (found.leaseLeft <= 0) {
        log('%s: the consume lease of a request that never answered ran out; the record is given back', this.model);
        const { consumed: _spent, ...unspent } = found.payload;
        return unspent;
      }
      if (Date.now() + Math.min(found.leaseLeft, LEASE_POLL_MS) > until) {
        throw new StoreUnavailableError(`another request is still using this ${this.model} (it holds its consume lease): try again in a moment`, { busy: true });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(found.leaseLeft!, LEASE_POLL_MS)));
    }
  }

  private async read(id: string): Promise<Found | undefined> {
    const key = this.key(id);
    const reply = await this.redis.command(key, ['HMGET', key, 'payload', 'consumed', 'lease']);
    const [payload, consumed, lease] = reply as [string | null, string | null, string | null];
    if (typeof payload !== 'string') return undefined;
    const found = JSON.parse(payload) as AdapterPayload;
    const record = consumed === null || consumed === undefined ? found : { ...found, consumed: Number(consumed) };
    if (lease === null || lease === undefined) return { payload: record };
    const left = await this.redis.run(LEASE_LEFT, [key], []);
    return { payload: record, leaseLeft: typeof left === 'number' ? left : undefined };
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.settled('findByUid', async () => {
      const found = await this.findByLookup('uid', uid);
      return found?.payload.uid === uid ? found : undefined;
    });
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.settled('findByUserCode', async () => {
      const found = await this.findByLookup('userCode', userCode);
      return found?.payload.userCode === userCode ? found : undefined;
    });
  }

  // The lookup may outlive (or predate) its record: callers check the record still matches.
  private async findByLookup(kind: 'uid' | 'userCode', value: string): Promise<Found | undefined> {
    const lookup = this.keys.lookup(kind, this.model, value);
    const id = await this.redis.command(lookup, ['GET', lookup]);
    return typeof id === 'string' ? this.read(id) : undefined;
  }

  consume(id: string): Promise<void> {
    // the undo is recorded before the consume is sent: a consume whose reply the deadline gave up on
    // may still run (Redis stalled), and the request's 503 must give it back all the same. The undo
    // runs after it (in order on the connection) and takes back only this call's consume (`consumer`)
    const consumer = randomUUID();
    recordConsumed(() => this.unconsume(id, consumer));
    // Inside a request, the consume is a lease until the request has answered (see CONSUME), renewed
    // from the moment it is sent (a slow reply must not let it run out) and settled before the answer
    // is written: an answer carries tokens only if SETTLE made the consume final (a lost SETTLE
    // would let the lease run out and the code be redeemed again). Each step touches only this call's consume.
    // A refused consume holds nothing: its request answers the refusal (invalid_grant), not a 503.
    const key = this.key(id);
    const held = holdUntilAnswered(() => void this.guard('renew', () => this.redis.run(RENEW, [key], [consumer, String(CONSUME_LEASE_MS)]))
      .catch((err: unknown) => log('%s.renew failed: %s', this.model, (err as Error)?.message)), CONSUME_RENEW_MS);
    const lease = held ? CONSUME_LEASE_MS : 0; // outside a request: final at once
    return this.guard('consume', async () => {
      const now = String(Math.floor(Date.now() / 1000));
      const outcome = Number(await this.redis.evalInOrder(CONSUME, [key], [now, consumer, String(lease)]));
      if (outcome === 0 || outcome === 2) {
        held?.release();
        throw consumeRefused(this.model, outcome === 0 ? 'missing' : 'consumed');
      }
      if (outcome === 3) log('%s consumed again: the request that consumed it first never answered (its lease ran out)', this.model);
      held?.settleWith(() => this.guard('settle', async () => {
        const settled = Number(await this.redis.run(SETTLE, [key], [consumer]));
        return settled === -1 ? 'gone' : settled === 1;
      }));
    });
  }

  /**
   * Takes back the consume made as `consumer` (see `consumedInRequest`): sent even while Redis stalls, it
   * runs in order after what this request sent (both are sent as one EVAL each, see `evalInOrder`).
   */
  unconsume(id: string, consumer: string): Promise<void> {
    return this.guard('unconsume', async () => void (await this.redis.evalInOrder(UNCONSUME, [this.key(id)], [consumer])));
  }

  destroy(id: string): Promise<void> {
    return this.guard('destroy', async () => void (await this.redis.command(this.key(id), ['DEL', this.key(id)])));
  }

  /** Tombstone and take the grant's index on its slot, then delete each member (see addToGrant). */
  revokeByGrantId(grantId: string): Promise<void> {
    return this.guard('revokeByGrantId', async () => {
      if (!grantId) return; // upsert never indexes an empty grant id
      const grantKeys = [this.keys.grant(grantId), this.keys.revoked(grantId)];
      const [members, legacy] = await Promise.all([
        this.redis.run(REVOKE_GRANT, grantKeys, [String(TOMBSTONE_MIN_MS), String(TOMBSTONE_MAX_MS)]),
        this.redis.run(TAKE_LEGACY_GRANT, [this.keys.legacyGrant(grantId)], []),
      ]);
      const records = new Set([...strings(members), ...strings(legacy)]);
      // One DEL per key: on a cluster the records live in other slots than the index.
      await Promise.all([...records].map((key) => this.redis.command(key, ['DEL', key])));
    });
  }
}
