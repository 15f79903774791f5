/** Why a {@link TtlMap} dropped an entry by itself. */
export type DropReason = 'expired' | 'evicted';

/** Options of {@link TtlMap}. */
export interface TtlMapOptions<V> {
  /** Most entries kept; one more set drops the least recently used. Default Infinity (no cap). */
  maxEntries?: number;
  /** Reads make an entry the most recently used. Default false: order is that of the last `set`. */
  touchOnRead?: boolean;
  /** Told of every entry the map drops by itself (expired or evicted); not of `delete`. */
  onDrop?: (key: string, value: V, why: DropReason) => void;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A Map whose entries vanish at their `expiresAt` (ms; Infinity = never), on read or on `sweep`,
 * optionally capped: past `maxEntries` the least recently used entry goes, in O(1) (a Map keeps
 * insertion order, so its first entry is the oldest; a touch deletes and re-inserts).
 */
export class TtlMap<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxEntries: number;
  private readonly touchOnRead: boolean;
  private readonly onDrop?: (key: string, value: V, why: DropReason) => void;

  constructor(
    private readonly now: () => number,
    options: TtlMapOptions<V> = {},
  ) {
    this.maxEntries = options.maxEntries ?? Infinity;
    this.touchOnRead = options.touchOnRead ?? false;
    this.onDrop = options.onDrop;
  }

  get(key: string): V | undefined {
    const entry = this.live(key);
    // reordering costs a delete and an insert per read: only worth it once eviction is in sight (half full)
    if (entry && this.touchOnRead && this.entries.size * 2 > this.maxEntries) this.moveToEnd(key, entry);
    return entry?.value;
  }

  /** Milliseconds since the epoch at which `key` expires (Infinity when it never does). Not a use. */
  expiresAt(key: string): number | undefined {
    return this.live(key)?.expiresAt;
  }

  /** Sets `key` as the most recently used entry, then evicts the least recently used past the cap. */
  set(key: string, value: V, expiresAt: number): void {
    // Map.set keeps an existing key's place: delete first so a re-set counts as a use.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
    while (this.entries.size > this.maxEntries) this.evictOldest();
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every expired entry; returns how many went. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.drop(key, entry, 'expired');
        dropped += 1;
      }
    }
    return dropped;
  }

  get size(): number {
    return this.entries.size;
  }

  // The entry if it has not expired; an expired one is dropped on the way.
  private live(key: string): Entry<V> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > this.now()) return entry;
    this.drop(key, entry, 'expired');
    return undefined;
  }

  private moveToEnd(key: string, entry: Entry<V>): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  private evictOldest(): void {
    const [key, entry] = this.entries.entries().next().value as [string, Entry<V>];
    this.drop(key, entry, entry.expiresAt <= this.now() ? 'expired' : 'evicted');
  }

  private drop(key: string, entry: Entry<V>, why: DropReason): void {
    this.entries.delete(key);
    this.onDrop?.(key, entry.value, why);
  }
}
