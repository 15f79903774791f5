// How often a native (not Valgrind) OP runs a full mark-compact under userinfo load, ours and bare:
// the instruction counts (MEASURE=instructions) run V8 with --predictable-gc-schedule, under which
// mark-compacts come about five times as often, so they weigh the live heap's size more than a
// native server does. Prints requests per scavenge and per mark-compact and the first few --trace-gc
// lines.
//
// Run after a build:  node bench/op-gc-rate.mjs
// GC=native or GC=predictable: the same fixed schedule as the instruction counts with that `GC=`
// (bench/lib/instructions.mjs), run natively, to check it against V8's own heuristics; GC_FLAGS:
// any other V8 flags.
import { fork } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { ask, reply } from './lib/children.mjs';
import { GC_SCHEDULES } from './lib/instructions.mjs';
import { hammer } from './lib/load.mjs';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' }] };
for (const name of ['ours', 'bare']) {
  const child = fork(new URL('./op-overhead.mjs', import.meta.url).pathname, ['op', name, JSON.stringify(jwks)], { execArgv: ['--expose-gc', '--trace-gc', ...(process.env.GC ? ['--single-threaded', ...GC_SCHEDULES[process.env.GC]] : []), ...(process.env.GC_FLAGS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
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
