/**
 * TtlMap's cap by second chance: a use marks the entry and never deletes and re-inserts its key
 * (a key re-inserted on every read made V8's Map walk a growing chain of dead entries: bench/map-hot-key.mjs).
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
    const map = full(3); // k0, k1, k2
    map.get('k0'); // k0 used: passed over once
    map.set('k3', 3, Infinity);
    expect([map.get('k0'), map.get('k1'), map.get('k2'), map.get('k3')]).toEqual([0, undefined, 2, 3]);
    // every entry is now used (k2, k3, k0): one pass unmarks them all, the oldest goes, and the new one stays
    map.set('k4', 4, Infinity);
    expect(map.size).toBe(3);
    expect([map.get('k2'), map.get('k3'), map.get('k0'), map.get('k4')]).toEqual([undefined, 3, 0, 4]);
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
});
