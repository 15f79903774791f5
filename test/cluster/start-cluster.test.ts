/**
 * startCluster() and startRedis() (examples/cluster/cluster.js) find their ports by binding port 0
 * and releasing it; another process can take such a port before the instance binds it (seen in CI:
 * `listen EADDRINUSE`). They then start again on new ports, and only for that error. The instances
 * here are stand-in scripts that fail the way a real one does, then listen; the Redis is real.
 *
 * Needs: redis-server on PATH (apt-get install -y redis-server).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExample } from '../examples/load.js';

interface Cluster { all: { alive(): boolean; port: number }[]; stop(): Promise<void> }
interface Redis { url: string; port: number; stop(): Promise<void> }
const { startCluster, startRedis } = loadExample<{
  startCluster(o: Record<string, unknown>): Promise<Cluster>;
  startRedis(o?: Record<string, unknown>): Promise<Redis>;
}>('examples/cluster/cluster.js');

/** An instance script: the OP's first `failures` starts exit with `message`, the next ones (and the RP's) listen on $PORT. */
function standIn(dir: string, failures: number, message: string): { script: string; opStarts: () => number } {
  const count = join(dir, 'starts');
  writeFileSync(count, '');
  const script = join(dir, 'instance.cjs');
  writeFileSync(script, `
const fs = require('node:fs');
if (process.argv[2] === 'op') fs.appendFileSync(${JSON.stringify(count)}, 'x');
if (process.argv[2] === 'op' && fs.readFileSync(${JSON.stringify(count)}, 'utf8').length <= ${failures}) {
  console.error(${JSON.stringify(message)});
  process.exit(1);
}
require('node:http').createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log('listening on http://127.0.0.1:' + process.env.PORT);
});
`);
  return { script, opStarts: () => readFileSync(count, 'utf8').length };
}

describe('startCluster() and a port taken before its instance binds it', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'start-cluster-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('an instance that exits with EADDRINUSE: the cluster starts again on new ports, and runs', async () => {
    const { script, opStarts } = standIn(dir, 1, 'op: listen EADDRINUSE: address already in use 127.0.0.1:33123');
    const cluster = await startCluster({ redisUrl: 'redis://127.0.0.1:1', instanceScript: script, ops: 1, rps: 1 });
    try {
      expect(cluster.all.every((i) => i.alive())).toBe(true);
      expect(opStarts()).toBe(2);
    } finally {
      await cluster.stop();
    }
  });

  test('any other early exit is not retried: the error names the instance and carries its output', async () => {
    const { script, opStarts } = standIn(dir, 10, 'op: REDIS_URL is not set');
    await expect(startCluster({ redisUrl: 'redis://127.0.0.1:1', instanceScript: script, ops: 1, rps: 1 }))
      .rejects.toThrow(/exited \(1\) before it was ready[\s\S]*REDIS_URL is not set/);
    expect(opStarts()).toBe(1);
  });

  test('a port that stays taken: three attempts, then the error', async () => {
    const { script, opStarts } = standIn(dir, 100, 'op: listen EADDRINUSE: address already in use 127.0.0.1:1');
    await expect(startCluster({ redisUrl: 'redis://127.0.0.1:1', instanceScript: script, ops: 1, rps: 1 })).rejects.toThrow(/EADDRINUSE/);
    expect(opStarts()).toBe(3);
  });

  test('startRedis() on a port that is taken: redis-server\'s own error; on a free port taken meanwhile: a new port', async () => {
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    const { port } = held.address() as { port: number };
    try {
      // a port asked for is never changed: the error is redis-server's, which the retry recognizes
      await expect(startRedis({ port })).rejects.toThrow(/Address already in use/);
    } finally {
      await new Promise((resolve) => held.close(resolve));
    }
    // a redis-server whose first start finds its port taken
    const count = join(dir, 'starts');
    const binary = join(dir, 'redis-server');
    writeFileSync(binary, `#!/bin/sh\necho x >> '${count}'\nif [ "$(wc -l < '${count}')" -le 1 ]; then echo "bind: Address already in use"; exit 1; fi\nexec redis-server "$@"\n`);
    chmodSync(binary, 0o755);
    const redis = await startRedis({ binary });
    try {
      expect(readFileSync(count, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    } finally {
      await redis.stop();
    }
  });
});
