// How often a native (not Valgrind) OP runs a scavenge and a full mark-compact under userinfo load,
// ours and bare: what the fixed GC schedule of the instruction counts (MEASURE=instructions, GC= in
// bench/lib/instructions.mjs) is calibrated against. Prints requests per scavenge and per
// mark-compact and the first few --trace-gc lines.
//
// Run after a build:  node bench/op-gc-rate.mjs
// GC=native or GC=predictable: the same fixed schedule as the instruction counts with that `GC=`,
// run natively, to check it against V8's own heuristics (without GC=); V8_FLAGS: any other V8 flags.
import { fork } from 'node:child_process';
import { signingKey } from './lib/signing-key.mjs';
import { ask, nativeV8Flags, reply } from './lib/children.mjs';
import { hammer } from './lib/load.mjs';
const jwks = { keys: [signingKey()] };
for (const name of ['ours', 'bare']) {
  const child = fork(new URL('./op-overhead.mjs', import.meta.url).pathname, ['op', name, JSON.stringify(jwks)], { execArgv: ['--expose-gc', '--trace-gc', ...nativeV8Flags()], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const first = await reply(child, 30000);
  const token = await ask(child, { cmd: 'accessToken' });
  const url = `${first.origin}/op/me`;
  await hammer({ url, headers: { authorization: `Bearer ${token}` }, seconds: 3, connections: 10, expectStatus: 200 });
  out = '';
  const r = await hammer({ url, headers: { authorization: `Bearer ${token}` }, seconds: 10, connections: 10, expectStatus: 200 });
  const mc = (out.match(/Mark-Compact/g) ?? []).length, sc = (out.match(/Scavenge/g) ?? []).length;
  console.log(name, 'requests', r.requests, 'mark-compacts', mc, 'scavenges', sc, 'requests per scavenge', sc ? Math.round(r.requests / sc) : '∞', 'per mark-compact', mc ? Math.round(r.requests / mc) : '∞');
  console.log(out.split('\n').filter((l) => l.includes('Mark-Compact')).slice(0, 3).join('\n'));
  child.kill();
}
