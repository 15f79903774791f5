// Prints the functions with the most CPU time in a V8 .cpuprofile (node --cpu-prof output): self
// time by default, or time including callees with --inclusive (optionally only for paths matching --match=RE).
// Usage: node bench/lib/profile-top.mjs bench/profiles/ours/CPU.*.cpuprofile [N=30] [--inclusive] [--match=packages/rp]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const [file, n = '30'] = args.filter((a) => !a.startsWith('--'));
const inclusive = args.includes('--inclusive');
const match = new RegExp(args.find((a) => a.startsWith('--match='))?.slice(8) ?? '');
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const name = ({ callFrame: f }) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\/\.pnpm\/([^/]+)\/node_modules\//, '$1 ').replace(/^file:\/\/\/work\/main\//, '')}:${f.lineNumber + 1}`;
const time = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id);
  if (node.callFrame.functionName !== '(idle)') total += dt;
  const keys = new Set();
  for (let at = id; at !== undefined; at = inclusive ? parent.get(at) : undefined) keys.add(name(byId.get(at)));
  for (const key of keys) if (match.test(key)) time.set(key, (time.get(key) ?? 0) + dt);
});
console.log(`busy (not idle): ${(total / 1000).toFixed(0)} ms`);
for (const [where, us] of [...time].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) {
  console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${where}`);
}
