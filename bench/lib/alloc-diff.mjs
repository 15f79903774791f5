// Where two servers' allocations differ, per request, by function: the .heapprofile files that
// ALLOC_PROFILE=dir writes (bench/lib/children.mjs; their names end in -<requests>req.heapprofile).
//   node bench/lib/alloc-diff.mjs dir/app-floor-tokens-*.heapprofile dir/app-ours-*.heapprofile [rows]
// Prints bytes per request of each (all sampled allocations, objects the GC collected included) and
// the functions whose allocation differs most. An inlined function's allocations may be counted
// under its caller, so read the net of related rows.
import { readFileSync } from 'node:fs';
const [a, b, n = 40] = process.argv.slice(2);
function load(f) {
  const reqs = Number(/-(\d+)req\.heapprofile$/.exec(f)[1]);
  const p = JSON.parse(readFileSync(f, 'utf8'));
  const byId = new Map();
  const index = (node) => { byId.set(node.id, node); for (const c of node.children) index(c); };
  index(p.head);
  const m = new Map();
  for (const s of p.samples) {
    const cf = byId.get(s.nodeId).callFrame;
    const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*node_modules\/\.pnpm\//, '').replace('file:///work/main/', '')}:${cf.lineNumber + 1}`;
    m.set(key, (m.get(key) ?? 0) + s.size / reqs);
  }
  return m;
}
const A = load(a), B = load(b);
const total = (m) => [...m.values()].reduce((x, y) => x + y, 0);
console.log('bytes per request', total(A).toFixed(0), total(B).toFixed(0), 'diff', (total(B) - total(A)).toFixed(0));
const keys = [...new Set([...A.keys(), ...B.keys()])].sort((x, y) => ((B.get(y) ?? 0) - (A.get(y) ?? 0)) - ((B.get(x) ?? 0) - (A.get(x) ?? 0)));
const f = (v) => v.toFixed(0).padStart(6);
for (const k of keys.slice(0, n)) console.log(f((B.get(k) ?? 0) - (A.get(k) ?? 0)), f(A.get(k) ?? 0), f(B.get(k) ?? 0), k);
console.log('...');
for (const k of keys.slice(-12)) console.log(f((B.get(k) ?? 0) - (A.get(k) ?? 0)), f(A.get(k) ?? 0), f(B.get(k) ?? 0), k);
