// Throughput of the OP record stores: memory vs Redis, upsert / find / consume.
// Run after a build:  npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-adapters.mjs
// Starts its own redis-server on a free loopback port unless REDIS_URL is set. N=20000 by default.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { startRedis } from './lib/redis-server.mjs';

const opDist = new URL('../packages/op/dist/adapters/', import.meta.url);
const { memoryAdapter } = await import(new URL('memory.js', opDist).href);
const { redisAdapter } = await import(new URL('redis.js', opDist).href);
const requireFromOp = createRequire(new URL('../packages/op/package.json', import.meta.url));
const { createClient } = await import(pathToFileURL(requireFromOp.resolve('redis')).href);

const N = Number(process.env.N ?? 20_000);
const CONCURRENCY = 64;

/** Runs `op(i)` for i < N, `inFlight` at a time; returns operations per second. */
async function measureOnce(op, inFlight) {
  let next = 0;
  const worker = async () => {
    while (next < N) await op(next++);
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return N / seconds;
}

// The machine is shared: each figure is the best of ROUNDS rounds, each over fresh ids.
const ROUNDS = Number(process.env.ROUNDS ?? 3);

async function run(store, label, inFlight) {
  const tokens = store.adapterFor('AccessToken');
  const codes = store.adapterFor('AuthorizationCode');
  const payload = (i) => ({ accountId: `user-${i}`, clientId: 'app', grantId: `grant-${i % 1000}`, scope: 'openid profile email' });
  const best = { upsert: 0, find: 0, consume: 0 };
  for (let round = 0; round < ROUNDS; round += 1) {
    const id = (i) => `${label}-${inFlight}-${round}-${i}`;
    const upsert = await measureOnce((i) => tokens.upsert(id(i), payload(i), 600), inFlight);
    const find = await measureOnce((i) => tokens.find(id(i)), inFlight);
    await measureOnce((i) => codes.upsert(id(i), payload(i), 600), inFlight);
    const consume = await measureOnce((i) => codes.consume(id(i)), inFlight);
    best.upsert = Math.max(best.upsert, upsert);
    best.find = Math.max(best.find, find);
    best.consume = Math.max(best.consume, consume);
  }
  return best;
}

const PREFIX = `bench-${process.pid}:`;
const redisServer = await startRedis();
const client = await createClient({ url: redisServer.url }).connect();
try {
  const info = await client.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1];
  console.log(`node ${process.version}, redis-server ${version}, N=${N} per operation, best of ${ROUNDS}\n`);
  console.log('| mode | operation | memory ops/s | redis ops/s | memory / redis |');
  console.log('|---|---|---:|---:|---:|');
  for (const inFlight of [1, CONCURRENCY]) {
    const memory = await run(memoryAdapter(), 'memory', inFlight);
    const redis = await run(redisAdapter(client, { prefix: PREFIX }), 'redis', inFlight);
    const mode = inFlight === 1 ? 'sequential' : `${inFlight} in flight`;
    for (const op of ['upsert', 'find', 'consume']) {
      const ratio = memory[op] / redis[op];
      console.log(`| ${mode} | ${op} | ${Math.round(memory[op])} | ${Math.round(redis[op])} | ${ratio.toFixed(1)}× |`);
    }
  }
} finally {
  // Only our own keys go: REDIS_URL may point at a Redis that holds other data.
  for await (const keys of client.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 })) if (keys.length) await client.del(keys);
  client.destroy();
  redisServer.stop();
}
