// Why memoryAdapter()'s LRU no longer deletes and re-inserts a key on every read: V8's Map keeps a
// deleted entry in its hash bucket until the table is rebuilt, so a hot key (an access token read
// on every userinfo call) re-inserted again and again makes each insert walk a growing chain of
// dead entries. Prints ns per read of one hot key in a map of 10 000 other keys: the old
// delete + set touch, a set in place, and TtlMap as memoryAdapter() uses it (a use only marks).
//
// Second table: inserts past the cap (a client-credentials load: every token a new key, the oldest
// evicted). Taking the oldest entry with a new iterator each time (`map.entries().next()`) steps over
// every evicted entry still lying deleted at the front of V8's table; TtlMap keeps its iterator.
//
// Run after a build:  node bench/map-hot-key.mjs
import { TtlMap } from '../packages/op/dist/adapters/ttl-map.js';

const KEYS = 10_000;
const filled = (map, set) => {
  for (let i = 0; i < KEYS; i += 1) set(map, `AccessToken:${Math.random().toString(36).slice(2)}${i}`);
  return map;
};
const hot = 'AccessToken:hot-key-0123456789';
function perRead(read, n) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) read();
  return Number(process.hrtime.bigint() - t) / n;
}
const rows = [];
for (const n of [1000, 10_000, 20_000]) {
  const old = filled(new Map(), (m, k) => m.set(k, { k }));
  old.set(hot, { hot: true });
  const oldNs = perRead(() => { const v = old.get(hot); old.delete(hot); old.set(hot, v); }, n);
  const inPlace = filled(new Map(), (m, k) => m.set(k, { k }));
  inPlace.set(hot, { hot: true });
  const inPlaceNs = perRead(() => inPlace.set(hot, inPlace.get(hot)), n);
  const ttl = filled(new TtlMap(Date.now, { maxEntries: KEYS + 1, touchOnRead: true }), (m, k) => m.set(k, { k }, Infinity));
  ttl.set(hot, { hot: true }, Infinity);
  const ttlNs = perRead(() => ttl.get(hot), n);
  rows.push(`| ${n} | ${oldNs.toFixed(0)} | ${inPlaceNs.toFixed(0)} | ${ttlNs.toFixed(0)} |`);
}
console.log(`node ${process.version}, one hot key in a Map of ${KEYS} others, ns per read (after that many reads)\n`);
console.log('| reads | delete + set (the old touch) | set in place | TtlMap.get (touchOnRead) |\n|---:|---:|---:|---:|');
console.log(rows.join('\n'));

// inserts past the cap: ns per new key in a full map of `cap`
const INSERTS = 100_000;
const newKeys = Array.from({ length: INSERTS }, (_, i) => `AccessToken:${Math.random().toString(36).slice(2)}${i}`);
function perInsert(insert) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < INSERTS; i += 1) insert(newKeys[i]);
  return Number(process.hrtime.bigint() - t) / INSERTS;
}
const capRows = [];
for (const cap of [1000, 10_000, 50_000]) {
  const fresh = filled(new Map(), (m, k) => m.set(k, { k }));
  while (fresh.size > cap) fresh.delete(fresh.keys().next().value);
  const freshNs = perInsert((k) => {
    if (fresh.size >= cap) fresh.delete(fresh.entries().next().value[0]);
    fresh.set(k, { k });
  });
  const ttl = new TtlMap(Date.now, { maxEntries: cap, touchOnRead: true });
  for (let i = 0; i < cap; i += 1) ttl.set(`AccessToken:fill-${i}`, { i }, Infinity);
  const ttlNs = perInsert((k) => ttl.set(k, { k }, Infinity));
  capRows.push(`| ${cap} | ${freshNs.toFixed(0)} | ${ttlNs.toFixed(0)} | ${(freshNs / ttlNs).toFixed(1)}× |`);
}
console.log(`\n${INSERTS} new keys into a full map, ns per insert (the oldest evicted each time)\n`);
console.log('| cap | a new iterator per eviction (before) | TtlMap (kept iterator) | before / TtlMap |\n|---:|---:|---:|---:|');
console.log(capRows.join('\n'));
