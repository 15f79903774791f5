// Why memoryAdapter()'s LRU no longer deletes and re-inserts a key on every read: V8's Map keeps a
// deleted entry in its hash bucket until the table is rebuilt, so a hot key (an access token read
// on every userinfo call) re-inserted again and again makes each insert walk a growing chain of
// dead entries. Prints ns per read of one hot key in a map of 10 000 other keys: the old
// delete + set touch, a set in place, and TtlMap as memoryAdapter() uses it (a use only marks).
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
