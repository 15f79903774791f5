/** Why a {@link TtlMap} dropped an entry by itself. */
export type DropReason = 'expired' | 'evicted';

/** Options of {@link TtlMap}. */
export interface TtlMapOptions<V> {
  /** Most entries kept; one more set drops the least recently used (see {@link TtlMap}). Default Infinity (no cap). */
  maxEntries?: number;
  /** Reads count as a use. Default false: only a `set` does. */
  touchOnRead?: boolean;
  /** Told of every entry the map drops by itself (expired or evicted); not of `delete`. */
  onDrop?: (key: string, value: V, why: DropReason) => void;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
  /** Used (set, read, or set again) since it was last given its second chance; a new entry is used. */
  used: boolean;
}

/**
 * A Map whose entries vanish at their `expiresAt` (ms; Infinity = never), on read or on `sweep`,
 * optionally capped: past `maxEntries` the least recently used entry goes, by second chance (the
 * CLOCK approximation of LRU): a use only marks the entry; eviction takes the oldest entry, and
 * one marked since it was last passed over goes to the back unmarked instead. A new entry starts
 * marked, as CLOCK loads a page referenced: unmarked, the entries a request had just written (a
 * sign-in's session and grant) were the first to go once every older entry had been used, while
 * hundreds of older ones stayed.
 *
 * A use does not delete and re-insert the key: V8's Map keeps a deleted entry in its hash bucket
 * until the table is rebuilt, so a key re-inserted on every read (a hot access token) made every
 * later insert of it walk thousands of dead entries (bench/map-hot-key.mjs, a map of 10 000: 2-13 µs
 * per read after 1 000-20 000 reads, against at most 0.2 µs in place).
 *
 * Eviction reads the oldest entry through one iterator kept from eviction to eviction. A new
 * iterator starts at the front of V8's table, where the evicted entries lie deleted until the table
 * is rebuilt, and stepped over all of them: at 10 000 entries an insert past the cap cost 4.3 µs,
 * against 0.3 µs with the kept iterator (bench/map-hot-key.mjs). The kept iterator is already past
 * them; entries added after it was made (new ones, and used ones sent to the back) are still ahead
 * of it, in order.
 */
export class TtlMap<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxEntries: number;
  private readonly touchOnRead: boolean;
  private readonly onDrop?: (key: string, value: V, why: DropReason) => void;
  /** Where eviction stopped: every entry before it has been dropped or sent to the back. */
  private cursor: IterableIterator<[string, Entry<V>]> | undefined;

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
    if (entry && this.touchOnRead) entry.used = true;
    return entry?.value;
  }

  /** Milliseconds since the epoch at which `key` expires (Infinity when it never does). Not a use. */
  expiresAt(key: string): number | undefined {
    return this.live(key)?.expiresAt;
  }

  /** Sets `key` (setting a key again is a use, in place), then evicts the least recently used past the cap. */
  set(key: string, value: V, expiresAt: number): void {
    const entry = this.entries.get(key);
    if (entry) {
      entry.value = value;
      entry.expiresAt = expiresAt;
      entry.used = true;
      return;
    }
    // room first, so a new entry is never the one evicted for itself
    while (this.entries.size >= this.maxEntries) this.evictOldest();
    this.entries.set(key, { value, expiresAt, used: true });
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

  // Second chance: a used entry at the front goes to the back unmarked (each entry moves at most
  // once per pass over the map, so its bucket gathers no chain of dead entries).
  private evictOldest(): void {
    const now = this.now();
    for (;;) {
      let next = this.cursor?.next();
      if (next === undefined || next.done) {
        // passed every entry (or never started): start again at the front
        this.cursor = this.entries.entries();
        next = this.cursor.next();
        if (next.done) return; // nothing to evict
      }
      const [key, entry] = next.value;
      if (entry.used && entry.expiresAt > now) {
        entry.used = false;
        this.entries.delete(key);
        this.entries.set(key, entry);
        continue;
      }
      this.drop(key, entry, entry.expiresAt <= now ? 'expired' : 'evicted');
      return;
    }
  }

  private drop(key: string, entry: Entry<V>, why: DropReason): void {
    this.entries.delete(key);
    this.onDrop?.(key, entry.value, why);
  }
}
