import type { Adapter, AdapterPayload } from 'oidc-provider';
import { GRANTABLE, consumeRefused, ttlSeconds } from './models.js';
import { TtlMap } from './ttl-map.js';
import type { OpStore } from './types.js';

/** Options of {@link memoryAdapter}. */
export interface MemoryAdapterOptions {
  /** The clock, in milliseconds since the epoch (tests pass a fake one). Default `Date.now`. */
  now?: () => number;
  /** How often expired records are swept, in ms. Default 60 000. The timer never keeps the process alive. */
  sweepIntervalMs?: number;
}

/** The memory store, plus what tests and dashboards need to see that it stays bounded. */
export interface MemoryOpStore extends OpStore {
  /** Drops every expired record, index and counter now; returns how many went. */
  sweep(): number;
  /** How many entries (records, indexes, counters) are held, expired ones not yet swept included. */
  readonly size: number;
}

interface Stored {
  payload: string;
  consumed?: number;
}

/** Everything one memory store holds; the sweep timer only reaches it through a WeakRef. */
class MemoryState {
  readonly records: TtlMap<Stored>;
  readonly uids: TtlMap<string>;
  readonly userCodes: TtlMap<string>;
  readonly grants: TtlMap<Map<string, number>>;
  readonly counters: TtlMap<number>;

  constructor(readonly now: () => number) {
    this.records = new TtlMap(now);
    this.uids = new TtlMap(now);
    this.userCodes = new TtlMap(now);
    this.grants = new TtlMap(now);
    this.counters = new TtlMap(now);
  }

  private get maps(): TtlMap<unknown>[] {
    return [this.records, this.uids, this.userCodes, this.grants, this.counters];
  }

  sweep(): number {
    return this.maps.reduce((dropped, map) => dropped + map.sweep(), 0);
  }

  get size(): number {
    return this.maps.reduce((total, map) => total + map.size, 0);
  }
}

/**
 * An in-process store for development and tests: every oidc-provider model plus the login
 * counters, with expiry. Expired records vanish when read and on a periodic sweep, so a
 * long-running dev server does not grow without end. Records are lost on restart and are not
 * shared between processes: use {@link redisAdapter} in production.
 *
 * @example
 * ```ts
 * import { op, memoryAdapter } from '@openid-express/op';
 * app.use('/op', op({ issuer, clients, accounts, adapter: memoryAdapter() }));
 * ```
 */
export function memoryAdapter(options: MemoryAdapterOptions = {}): MemoryOpStore {
  const state = new MemoryState(options.now ?? Date.now);
  startSweeper(state, options.sweepIntervalMs ?? 60_000);
  return {
    kind: 'memory',
    adapterFor: (model) => new MemoryModelAdapter(model, state),
    increment: async (key, ttl) => increment(state, key, ttl),
    count: async (key) => state.counters.get(key) ?? 0,
    reset: async (key) => state.counters.delete(key),
    sweep: () => state.sweep(),
    get size() {
      return state.size;
    },
  };
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

class MemoryModelAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly state: MemoryState,
  ) {}

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const ttl = ttlSeconds(expiresIn);
    const expiresAt = ttl === undefined ? Infinity : this.state.now() + ttl * 1000;
    const key = this.key(id);
    await this.destroy(id);
    const { consumed, ...rest } = payload;
    this.state.records.set(key, { payload: JSON.stringify(rest), consumed: consumed ?? undefined }, expiresAt);
    if (payload.uid) this.state.uids.set(this.key(payload.uid), id, expiresAt);
    if (payload.userCode) this.state.userCodes.set(this.key(payload.userCode), id, expiresAt);
    if (payload.grantId && GRANTABLE.has(this.model)) this.addToGrant(payload.grantId, key, expiresAt);
  }

  // The grant's member list lives as long as its longest-lived member; expired members are pruned.
  private addToGrant(grantId: string, key: string, expiresAt: number): void {
    const now = this.state.now();
    const members = this.state.grants.get(grantId) ?? new Map<string, number>();
    for (const [member, until] of members) if (until <= now) members.delete(member);
    members.set(key, expiresAt);
    this.state.grants.set(grantId, members, Math.max(this.state.grants.expiresAt(grantId) ?? 0, expiresAt));
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const stored = this.state.records.get(this.key(id));
    if (!stored) return undefined;
    const payload = JSON.parse(stored.payload) as AdapterPayload;
    return stored.consumed === undefined ? payload : { ...payload, consumed: stored.consumed };
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
    const stored = this.state.records.get(this.key(id));
    if (!stored) throw consumeRefused(this.model, 'missing');
    if (stored.consumed !== undefined) throw consumeRefused(this.model, 'consumed');
    stored.consumed = Math.floor(this.state.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    const key = this.key(id);
    const stored = this.state.records.get(key);
    this.state.records.delete(key);
    if (!stored) return;
    const payload = JSON.parse(stored.payload) as AdapterPayload;
    this.unindex(this.state.uids, payload.uid, id);
    this.unindex(this.state.userCodes, payload.userCode, id);
    if (payload.grantId) this.state.grants.get(payload.grantId)?.delete(key);
  }

  // Only while the index still points at this record: another may have taken the value since.
  private unindex(index: TtlMap<string>, value: string | undefined, id: string): void {
    if (value && index.get(this.key(value)) === id) index.delete(this.key(value));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const members = this.state.grants.get(grantId);
    this.state.grants.delete(grantId);
    for (const key of members?.keys() ?? []) this.state.records.delete(key);
  }
}
