// What the session-store deadline (rp()'s boundStore) costs per store call, in-process: express-session's
// MemoryStore answering get + touch as express-session calls them on every request with a session,
// with and without the deadline. With BEFORE=<dir> (made by `node bench/build-rp-at.mjs <commit> <dir>`)
// the deadline as it was at that commit runs too. Interleaved rounds, medians; CPU time and the bytes
// that outlived a scavenge (V8's sampling heap profiler, objects collected by a minor GC left out).
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/rp-store-deadline.mjs
// Knobs: N=200000 call pairs per variant and round, ROUNDS=7, CONCURRENT=4 (calls in flight at once).
import { pathToFileURL } from 'node:url';
import inspector from 'node:inspector/promises';
import session from 'express-session';

const N = Number(process.env.N ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const CONCURRENT = Number(process.env.CONCURRENT ?? 4);
const current = await import('../packages/rp/dist/session-guard.js');
const before = process.env.BEFORE ? await import(pathToFileURL(`${process.env.BEFORE}/packages/rp/dist/session-guard.js`).href) : undefined;

function storeWith(bound) {
  const store = new session.MemoryStore();
  store.sessions.abc = JSON.stringify({ cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }, n: 1 });
  bound?.boundStore(store, 3000);
  return store;
}
const variants = { none: storeWith(undefined), current: storeWith(current), ...(before ? { before: storeWith(before) } : {}) };

/** `count` get + touch pairs, CONCURRENT at a time, as express-session makes them. */
async function pairs(store, count) {
  const one = () => new Promise((resolve, reject) => store.get('abc', (err, sess) => (err ? reject(err) : store.touch('abc', sess, (e) => (e ? reject(e) : resolve())))));
  for (let i = 0; i < count; i += CONCURRENT) await Promise.all(Array.from({ length: CONCURRENT }, one));
}

const cpu = {};
for (const store of Object.values(variants)) await pairs(store, 20_000); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  const names = Object.keys(variants);
  for (const name of names.map((_, i) => names[(i + round) % names.length])) {
    const t = process.cpuUsage();
    await pairs(variants[name], N);
    const u = process.cpuUsage(t);
    (cpu[name] ??= []).push(((u.user + u.system) * 1000) / N);
  }
}
const profiler = new inspector.Session();
profiler.connect();
const survived = {};
for (const [name, store] of Object.entries(variants)) {
  await profiler.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  await pairs(store, N / 4);
  const { profile } = await profiler.post('HeapProfiler.stopSampling');
  let bytes = 0;
  const walk = (node) => { bytes += node.selfSize; node.children.forEach(walk); };
  walk(profile.head);
  survived[name] = bytes / (N / 4);
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`node ${process.version}, ${N} get + touch pairs per variant and round, ${CONCURRENT} in flight, ${ROUNDS} interleaved rounds\n`);
console.log('| store | CPU ns per get + touch (median) | above none | bytes per pair that outlived a scavenge |\n|---|---:|---:|---:|');
for (const name of Object.keys(variants)) console.log(`| ${name} | ${median(cpu[name]).toFixed(0)} | ${(median(cpu[name]) - median(cpu.none)).toFixed(0)} | ${survived[name].toFixed(0)} |`);
