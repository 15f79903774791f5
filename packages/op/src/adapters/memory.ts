import type { Adapter, AdapterPayload } from 'oidc-provider';
import { copyJson } from '@openid-express/rp';
import { OpConfigError } from '../errors.js';
import { jsonCopy } from './json-copy.js';
import { GRANTABLE, consumeRefused, ttlSeconds } from './models.js';
import { TtlMap, type DropReason } from './ttl-map.js';
import type { OpStore } from './types.js';
import { recordConsumed } from '../request-scope.js';

// about what oidc-provider's own development store holds (a QuickLRU of 1 000: 1 000 to 2 000 records)
const DEFAULT_MAX_RECORDS = 2_000;

/**
 * Models never evicted to make room: forgetting a ReplayDetection entry would accept a replayed
 * client assertion or DPoP proof, and registered clients with their registration and initial
 * access tokens are configuration, not traffic. They still expire as usual. (None is GRANTABLE.)
 */
const PINNED: ReadonlySet<string> = new Set(['ReplayDetection', 'Client', 'RegistrationAccessToken', 'InitialAccessToken']);

// A revoked grant's tombstone outlives any in-flight write of its tokens, as in redisAdapter: at
// least an hour, at most oidc-provider's default Grant lifetime (14 days), else as long as its longest record.
const TOMBSTONE_MIN_MS = 60 * 60 * 1000;
const TOMBSTONE_MAX_MS = 14 * 24 * 60 * 60 * 1000;

/** Options of {@link memoryAdapter}. */
export interface MemoryAdapterOptions {
  /** The clock, in milliseconds since the epoch (tests pass a fake one). Default `Date.now`. */
  now?: () => number;
  /** How often expired records are swept, in ms. Default 60 000. The timer never keeps the process alive. */
  sweepIntervalMs?: number;
  /**
   * Most records kept, all models together; one more evicts the least recently used (saved or
   * read; by second chance, the CLOCK approximation of LRU, so a read costs no reordering).
   * Default 2 000, about what oidc-provider's own development store holds: a few hundred
   * signed-in users (each login keeps a Session, a Grant and its tokens). Every live record is
   * marked by each full GC, so a bigger cap costs every request a little (bench/RESULTS.md);
   * under load any cap fills in seconds. A whole number ≥ 1, or `Infinity` for no cap (memory
   * then grows with the number of live records). What eviction means for clients:
   * - an evicted access token, code, refresh token or device code is simply unknown: the client
   *   gets `invalid_token` / `invalid_grant`, as if it had expired (never a wrongful success);
   * - an evicted Grant invalidates the tokens issued under it, an evicted Session logs the user
   *   out, an evicted Interaction ends that login attempt ("interaction expired");
   * - a code or refresh token evicted *after* its use is still refused when replayed, but the
   *   replay is no longer recognised as one, so it does not revoke the grant (reuse detection
   *   holds only for records still held: size the cap to the logins you expect, or use Redis).
   * Never evicted: ReplayDetection, registered clients and their registration/initial access
   * tokens (they only expire), the login-throttling counters (evicting one would reset an
   * attacker's failed-login count; one exists per login name and IP that failed within the
   * throttle window) and revoked-grant tombstones (capped at `maxRecords` too, oldest first).
   * The first eviction prints one warning; `store.evicted` counts them.
   *
   * @example
   * ```ts
   * // a development OP under load tests: keep at most 50 000 records (about 50 MB)
   * app.use('/op', op({ issuer, clients, accounts, adapter: memoryAdapter({ maxRecords: 50_000 }) }));
   * ```
   */
  maxRecords?: number;
}

/** The memory store, plus what tests and dashboards need to see that it stays bounded. */
export interface MemoryOpStore extends OpStore {
  /** Drops every expired record, index, tombstone and counter now; returns how many went. */
  sweep(): number;
  /** How many entries (records, indexes, tombstones, counters) are held, expired ones not yet swept included. */
  readonly size: number;
  /** How many records were evicted to stay within `maxRecords` (expired ones not counted). */
  readonly evicted: number;
}

/** One record. Every field is always set (undefined when it does not apply): one shape for V8, whatever the model. */
interface Stored {
  model: string;
  id: string;
  /**
   * The payload as JSON would carry it (`jsonCopy`: what redisAdapter() gives back), `consumed`
   * left out: a copy nothing else holds. Every read hands out its own copy of it.
   */
  payload: AdapterPayload;
  consumed: number | undefined;
  uid: string | undefined;
  userCode: string | undefined;
  /** Only for GRANTABLE models: the grant whose revocation removes this record. */
  grantId: string | undefined;
}

/** A grant's records: key → when it expires (ms). */
class GrantMembers extends Map<string, number> {
  static readonly FIRST_PRUNE = 16;
  /** The size at which expired members are next looked for. */
  pruneAt = GrantMembers.FIRST_PRUNE;
}

/** Everything one memory store holds; the sweep timer only reaches it through a WeakRef. */
class MemoryState {
  /** Records that may be evicted, least recently used first. */
  readonly records: TtlMap<Stored>;
  /** Records of PINNED models: never evicted. */
  readonly pinned: TtlMap<Stored>;
  readonly uids: TtlMap<string>;
  readonly userCodes: TtlMap<string>;
  readonly grants: TtlMap<GrantMembers>;
  /** Revoked grant ids: a record of one of them saved later is not kept. */
  readonly revoked: TtlMap<true>;
  readonly counters: TtlMap<number>;
  evicted = 0;

  constructor(
    readonly now: () => number,
    maxRecords: number,
  ) {
    const onDrop = (key: string, stored: Stored, why: DropReason): void => this.dropped(key, stored, why);
    this.records = new TtlMap(now, { maxEntries: maxRecords, touchOnRead: true, onDrop });
    this.pinned = new TtlMap(now, { onDrop });
    this.uids = new TtlMap(now);
    this.userCodes = new TtlMap(now);
    this.grants = new TtlMap(now);
    this.revoked = new TtlMap(now, { maxEntries: maxRecords });
    this.counters = new TtlMap(now);
  }

  private get maps(): Array<Pick<TtlMap<unknown>, 'sweep' | 'size'>> {
    return [this.records, this.pinned, this.uids, this.userCodes, this.grants, this.revoked, this.counters];
  }

  // Dropping a record also drops its indexes, so those stay bounded by the records.
  sweep(): number {
    const before = this.size;
    for (const map of this.maps) map.sweep();
    return before - this.size;
  }

  get size(): number {
    return this.maps.reduce((total, map) => total + map.size, 0);
  }

  mapFor(model: string): TtlMap<Stored> {
    return PINNED.has(model) ? this.pinned : this.records;
  }

  save(key: string, stored: Stored, expiresAt: number): void {
    this.mapFor(stored.model).set(key, stored, expiresAt);
    if (stored.uid) this.uids.set(`${stored.model}:${stored.uid}`, stored.id, expiresAt);
    if (stored.userCode) this.userCodes.set(`${stored.model}:${stored.userCode}`, stored.id, expiresAt);
    if (stored.grantId) this.addToGrant(stored.grantId, key, expiresAt);
  }

  remove(model: string, key: string): void {
    this.removeFrom(this.mapFor(model), key);
  }

  private removeFrom(map: TtlMap<Stored>, key: string): void {
    const stored = map.get(key);
    map.delete(key);
    if (stored) this.unindex(key, stored);
  }

  // The grant's member list lives as long as its longest-lived member. A member leaves with its
  // record (expired, evicted, destroyed); what the sweep has not reached yet goes in one pass once
  // the list has doubled since the last, so a save costs O(1) on average however many tokens the
  // grant holds (a pass on every save made a grant of n tokens cost O(n) per save: bench/op-store-calls.mjs).
  private addToGrant(grantId: string, key: string, expiresAt: number): void {
    const members = this.grants.get(grantId) ?? new GrantMembers();
    members.set(key, expiresAt);
    if (members.size >= members.pruneAt) {
      const now = this.now();
      for (const [member, until] of members) if (until <= now) members.delete(member);
      members.pruneAt = Math.max(GrantMembers.FIRST_PRUNE, 2 * members.size);
    }
    this.grants.set(grantId, members, Math.max(this.grants.expiresAt(grantId) ?? 0, expiresAt));
  }

  private unindex(key: string, stored: Stored): void {
    if (stored.uid) unlink(this.uids, `${stored.model}:${stored.uid}`, stored.id);
    if (stored.userCode) unlink(this.userCodes, `${stored.model}:${stored.userCode}`, stored.id);
    if (stored.grantId) this.leaveGrant(stored.grantId, key);
  }

  // An empty member list goes at once: grant indexes never outnumber the records.
  private leaveGrant(grantId: string, key: string): void {
    const members = this.grants.get(grantId);
    members?.delete(key);
    if (members?.size === 0) this.grants.delete(grantId);
  }

  private dropped(key: string, stored: Stored, why: DropReason): void {
    this.unindex(key, stored);
    if (why === 'evicted') this.noteEviction();
  }

  // Eviction turns live tokens invalid: say so once, loudly, rather than let it pass unseen.
  private noteEviction(): void {
    this.evicted += 1;
    if (this.evicted > 1) return;
    console.warn('openid-express memoryAdapter(): more records than `maxRecords`; evicting the least recently used '
      + '(their clients get invalid_token / invalid_grant). Raise maxRecords, or use redisAdapter(client).');
  }

  isRevoked(grantId: string): boolean {
    return this.revoked.get(grantId) !== undefined;
  }

  /** Tombstones the grant (never shortening a tombstone), then removes every record it indexed. */
  revoke(grantId: string): void {
    const now = this.now();
    const keep = Math.min(Math.max((this.grants.expiresAt(grantId) ?? now) - now, TOMBSTONE_MIN_MS), TOMBSTONE_MAX_MS);
    this.revoked.set(grantId, true, Math.max(this.revoked.expiresAt(grantId) ?? 0, now + keep));
    const members = this.grants.get(grantId);
    this.grants.delete(grantId);
    // GRANTABLE models are never PINNED: every member lives in `records`.
    for (const key of members?.keys() ?? []) this.removeFrom(this.records, key);
  }
}

// Only while the index still points at this record: another may have taken the value since.
function unlink(index: TtlMap<string>, indexKey: string, id: string): void {
  if (index.get(indexKey) === id) index.delete(indexKey);
}

/**
 * An in-process store for development and tests: every oidc-provider model plus the login
 * counters, with expiry. Expired records vanish when read and on a periodic sweep, and at most
 * `maxRecords` records are held (least recently used evicted first; see
 * {@link MemoryAdapterOptions.maxRecords} for what that means to clients), so a long-running or
 * load-tested dev server stays bounded. A revoked grant keeps none of its tokens, even ones saved
 * while or after it was revoked. Each record is kept as JSON carries it, as {@link redisAdapter}
 * gives it back. Records are lost on restart and are not shared between processes: use
 * {@link redisAdapter} in production.
 *
 * @example
 * ```ts
 * import { op, memoryAdapter } from '@openid-express/op';
 * app.use('/op', op({ issuer, clients, accounts, adapter: memoryAdapter() }));
 * ```
 */
export function memoryAdapter(options: MemoryAdapterOptions = {}): MemoryOpStore {
  if (typeof options !== 'object' || options === null) {
    throw new OpConfigError('adapter', 'memoryAdapter(options): `options` must be an object like { maxRecords: 10000 }, or left out');
  }
  const state = new MemoryState(options.now ?? Date.now, maxRecordsOf(options));
  startSweeper(state, options.sweepIntervalMs ?? 60_000);
  return {
    kind: 'memory',
    adapterFor: (model) => new MemoryModelAdapter(model, state),
    increment: async (key, ttl) => increment(state, key, ttl),
    count: async (key) => state.counters.get(key) ?? 0,
    decrement: async (key) => {
      const current = state.counters.get(key);
      if (current) state.counters.set(key, current - 1, state.counters.expiresAt(key) ?? Infinity);
    },
    reset: async (key) => state.counters.delete(key),
    sweep: () => state.sweep(),
    get size() {
      return state.size;
    },
    get evicted() {
      return state.evicted;
    },
  };
}

function maxRecordsOf(options: MemoryAdapterOptions): number {
  const max = options.maxRecords === undefined ? DEFAULT_MAX_RECORDS : options.maxRecords;
  if (max === Infinity || (Number.isSafeInteger(max) && max >= 1)) return max;
  throw new OpConfigError('adapter', `memoryAdapter: \`maxRecords\` must be a whole number of records ≥ 1, or Infinity for no cap (default ${DEFAULT_MAX_RECORDS}); got ${String(max)}`);
}

function increment(state: MemoryState, key: string, ttl: number): number {
  const current = state.counters.get(key);
  if (current === undefined) {
    state.counters.set(key, 1, state.now() + ttl * 1000);
    return 1;
  }
  state.counters.set(key, current + 1, state.counters.expiresAt(key) ?? Infinity);
  return current + 1;
}

// The timer holds the state weakly: a store nobody uses any more is collected, and its timer stops.
function startSweeper(state: MemoryState, intervalMs: number): void {
  const ref = new WeakRef(state);
  const timer = setInterval(() => {
    const alive = ref.deref();
    if (alive) alive.sweep();
    else clearInterval(timer);
  }, intervalMs);
  timer.unref();
}

// Every method runs in one synchronous step: no other store call interleaves with it.
class MemoryModelAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly state: MemoryState,
  ) {}

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    // first, so a payload JSON cannot carry is refused (as redisAdapter refuses it) with the record as it was
    const copy = jsonCopy(payload, 'consumed');
    const key = this.key(id);
    this.state.remove(this.model, key);
    const grantId = GRANTABLE.has(this.model) && payload.grantId ? payload.grantId : undefined;
    // A token of a revoked grant is not kept, even one whose request began before the revocation.
    if (grantId && this.state.isRevoked(grantId)) return;
    const ttl = ttlSeconds(expiresIn, this.model);
    const expiresAt = ttl === undefined ? Infinity : this.state.now() + ttl * 1000;
    const stored: Stored = {
      model: this.model, id, payload: copy, consumed: payload.consumed ?? undefined,
      uid: payload.uid || undefined, userCode: payload.userCode || undefined, grantId,
    };
    this.state.save(key, stored, expiresAt);
  }

  private stored(id: string): Stored | undefined {
    return this.state.mapFor(this.model).get(this.key(id));
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const stored = this.stored(id);
    if (!stored) return undefined;
    const payload = copyJson(stored.payload);
    if (stored.consumed !== undefined) payload.consumed = stored.consumed;
    return payload;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.state.uids.get(this.key(uid));
    const found = id === undefined ? undefined : await this.find(id);
    return found?.uid === uid ? found : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.state.userCodes.get(this.key(userCode));
    const found = id === undefined ? undefined : await this.find(id);
    return found?.userCode === userCode ? found : undefined;
  }

  // Check-and-set in one synchronous step: of two concurrent consumes only the first wins.
  async consume(id: string): Promise<void> {
    const stored = this.stored(id);
    if (!stored) throw consumeRefused(this.model, 'missing');
    if (stored.consumed !== undefined) throw consumeRefused(this.model, 'consumed');
    stored.consumed = Math.floor(this.state.now() / 1000);
    recordConsumed(async () => void (stored.consumed = undefined));
  }

  async destroy(id: string): Promise<void> {
    this.state.remove(this.model, this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    // upsert never indexes an empty grant id
    if (grantId) this.state.revoke(grantId);
  }
}
