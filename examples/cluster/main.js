// `npm run cluster` (node examples/cluster/main.js): 2 OP + 2 RP instances on one Redis behind two
// round-robin proxies, on this machine. Uses REDIS_URL, or starts a throw-away redis-server.
// Ctrl+C stops everything.
//
// Env: REDIS_URL, OPS / RPS (instances per tier, default 2), ACCESS_TOKEN_TTL (seconds, default 60
// so you see refreshes), ECHO=1 (show the instances' logs).
import { fileURLToPath } from 'node:url';
import { startCluster, startRedis } from './cluster.js';
import { demoAccounts } from './op-instance.js';

const instanceScript = fileURLToPath(new URL('./instance.js', import.meta.url));
const count = (name, fallback) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    console.error(`${name} must be a number of instances (1-16), got "${process.env[name]}".`);
    process.exit(1);
  }
  return n;
};

let redis;
let cluster;
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  setTimeout(() => {
    cluster?.killAll();
    if (redis?.alive()) redis.child.kill('SIGKILL');
    process.exit(code);
  }, 5000).unref();
  await cluster?.stop().catch(() => {});
  await redis?.stop().catch(() => {});
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop(0));
process.on('exit', () => {
  cluster?.killAll();
  if (redis?.alive()) redis.child.kill('SIGKILL');
});

try {
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    redis = await startRedis();
    redisUrl = redis.url;
  }
  cluster = await startCluster({
    redisUrl,
    instanceScript,
    ops: count('OPS', 2),
    rps: count('RPS', 2),
    accessTokenTtl: Number(process.env.ACCESS_TOKEN_TTL ?? 60),
    echo: Boolean(process.env.ECHO),
  });
} catch (err) {
  console.error(err.message);
  await stop(1);
}

const list = (instances) => instances.map((i) => `${i.url} (pid ${i.pid})`).join(', ');
console.log(`
  The cluster is running.

  Application:  ${cluster.rpURL}   (round robin over ${list(cluster.instances.rp)})
  OP issuer:    ${cluster.issuer}   (round robin over ${list(cluster.instances.op)})
  Redis:        ${redis ? `${redis.url} (throw-away, pid ${redis.pid})` : process.env.REDIS_URL}

  Sign in as ${demoAccounts[0].username} / ${demoAccounts[0].password}. Every request may hit another instance:
  kill one (kill -9 <pid>) and carry on.

  Open ${cluster.rpURL} in your browser. Press Ctrl+C to stop.
`);

// An instance that dies by itself is reported (a test or you may also kill it on purpose).
for (const i of cluster.all) {
  i.child.once('exit', (code, signal) => {
    if (!stopping) console.log(`  ${i.name} (pid ${i.child.pid}) exited (${code ?? signal}); the proxy routes around it.`);
  });
}
