/**
 * TtlMap's cap by second chance: a use marks the entry and never deletes and re-inserts its key
 * (a key re-inserted on every read made V8's Map walk a growing chain of dead entries: bench/map-hot-key.mjs),
 * and eviction keeps its place in the Map between evictions (a new iterator stepped over every
 * evicted entry still lying deleted at the front of V8's table).
 */
import { TtlMap } from '../src/adapters/ttl-map.js';

const full = (n: number) => {
  const map = new TtlMap<number>(() => 0, { maxEntries: n, touchOnRead: true });
  for (let i = 0; i < n; i += 1) map.set(`k${i}`, i, Infinity);
  return map;
};

describe('TtlMap', () => {
  test('reads and re-sets of a key in a full map change the Map in place: no delete, no insert', () => {
    const map = full(1000);
    const del = jest.spyOn(Map.prototype, 'delete');
    const set = jest.spyOn(Map.prototype, 'set');
    try {
      for (let i = 0; i < 5000; i += 1) {
        expect(map.get('k500')).toBe(500);
        map.set('k7', i, Infinity);
      }
      expect(del).not.toHaveBeenCalled();
      expect(set).not.toHaveBeenCalled();
    } finally {
      del.mockRestore();
      set.mockRestore();
    }
  });

  test('eviction gives a used entry a second chance, then takes it once it goes unused', () => {
    const map = full(3); // k0, k1, k2, each new (so used)
    // every entry is used: one pass unmarks them all, and the oldest goes
    map.set('k3', 3, Infinity);
    expect(map.size).toBe(3);
    map.get('k1'); // k1 used again since its pass: passed over once more
    map.set('k4', 4, Infinity);
    expect(map.size).toBe(3);
    expect([map.get('k0'), map.get('k1'), map.get('k2'), map.get('k3'), map.get('k4')]).toEqual([undefined, 1, undefined, 3, 4]);
  });

  test('the entries just written outlive older ones: a full map whose every entry was read evicts the oldest, not the newest', () => {
    // memoryAdapter() at its cap: a sign-in writes its session, then its grant and tokens; every older
    // record had been read since it was written. Before, new entries started unused and were the first
    // to go (the session of the user signing in), while the older ones got their second chance.
    const map = new TtlMap<number>(() => 0, { maxEntries: 200, touchOnRead: true });
    for (let i = 0; i < 198; i += 1) map.set(`k${i}`, i, Infinity);
    for (let i = 0; i < 198; i += 1) map.get(`k${i}`);
    map.set('session', -1, Infinity);
    map.set('grant', -2, Infinity); // the map is full
    map.set('token', -3, Infinity); // the first eviction
    expect([map.get('session'), map.get('grant'), map.get('token')]).toEqual([-1, -2, -3]);
    expect([map.get('k0'), map.get('k1')]).toEqual([undefined, 1]);
  });

  test('an expired entry at the front goes as expired even if it was used', () => {
    let now = 0;
    const dropped: string[] = [];
    const map = new TtlMap<number>(() => now, { maxEntries: 2, touchOnRead: true, onDrop: (key, _v, why) => dropped.push(`${key}:${why}`) });
    map.set('a', 1, 10);
    map.set('b', 2, Infinity);
    map.get('a');
    now = 20;
    map.set('c', 3, Infinity);
    expect(dropped).toEqual(['a:expired']);
  });

  test('over thousands of random sets, reads, deletes, expiries and sweeps, it keeps and drops exactly what a plain second-chance list would', () => {
    // the reference: an array in insertion order, evicting from the front, a used entry sent to the back unmarked
    type Ref = { key: string; value: number; expiresAt: number; used: boolean };
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (const cap of [1, 3, 17, 200]) {
      let now = 0;
      const dropped: string[] = [];
      const refDropped: string[] = [];
      const map = new TtlMap<number>(() => now, { maxEntries: cap, touchOnRead: true, onDrop: (key, _v, why) => dropped.push(`${key}:${why}`) });
      let ref: Ref[] = [];
      const refDrop = (i: number, why: string) => {
        refDropped.push(`${ref[i]!.key}:${why}`);
        ref.splice(i, 1);
      };
      const refLive = (key: string): Ref | undefined => {
        const i = ref.findIndex((e) => e.key === key);
        if (i < 0) return undefined;
        if (ref[i]!.expiresAt > now) return ref[i];
        refDrop(i, 'expired');
        return undefined;
      };
      for (let step = 0; step < 5000; step += 1) {
        const key = `k${random(cap * 3)}`;
        const op = random(10);
        if (op < 5) {
          const expiresAt = random(4) === 0 ? now + 1 + random(50) : Infinity;
          map.set(key, step, expiresAt);
          const entry = ref.find((e) => e.key === key);
          if (entry) Object.assign(entry, { value: step, expiresAt, used: true });
          else {
            while (ref.length >= cap) {
              const first = ref[0]!;
              if (first.used && first.expiresAt > now) {
                first.used = false;
                ref = [...ref.slice(1), first];
                continue;
              }
              refDrop(0, first.expiresAt <= now ? 'expired' : 'evicted');
            }
            ref.push({ key, value: step, expiresAt, used: true });
          }
        } else if (op < 8) {
          const entry = refLive(key);
          if (entry) entry.used = true;
          expect(map.get(key)).toBe(entry?.value);
        } else if (op < 9) {
          map.delete(key);
          ref = ref.filter((e) => e.key !== key);
        } else if (random(20) === 0) {
          map.sweep();
          for (let i = ref.length - 1; i >= 0; i -= 1) if (ref[i]!.expiresAt <= now) refDrop(i, 'expired');
        }
        now += random(3);
        expect(map.size).toBe(ref.length);
      }
      expect(dropped.sort()).toEqual(refDropped.sort()); // a sweep drops in table order: compare the drops as a set
      for (const e of ref) if (e.expiresAt > now) expect(map.get(e.key)).toBe(e.value);
    }
  });
});
