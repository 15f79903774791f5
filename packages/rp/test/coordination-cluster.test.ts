/**
 * `redisCoordination` on a real three-master Redis Cluster (node-redis `createCluster`): every
 * operation touches one key, so each works whatever slot its key hashes to.
 */
import { createCluster } from 'redis';
import { redisCoordination } from '@openid-express/rp';
import { startRedisCluster, type RedisCluster } from '../../../test/support/redis-cluster.js';

let cluster: RedisCluster;
let client: ReturnType<typeof createCluster>;

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = createCluster({ rootNodes: cluster.rootNodes });
  client.on('error', () => undefined);
  await client.connect();
}, 60_000);
afterAll(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stop();
});

test('setIfAbsent is atomic for keys on every master: of eight callers per key one wins', async () => {
  const c = redisCoordination(client, { prefix: 'coord:' });
  const keys = Array.from({ length: 24 }, (_, i) => `lock-${i}`); // spread over the three masters' slots
  for (const key of keys) {
    const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => c.setIfAbsent(key, String(i), 5000)));
    expect([key, wins.filter(Boolean).length]).toEqual([key, 1]);
  }
  const owners = new Set(await Promise.all(client.masters.map(async (m) => (await client.nodeClient(m)).dbSize())));
  expect([...owners].every((n) => n > 0)).toBe(true); // every master holds some of them
});

test('the back-channel-logout index and the refresh result round-trip on the cluster', async () => {
  const c = redisCoordination(client, { prefix: 'coord:' });
  for (let i = 0; i < 5; i++) await c.addToSet('oidc-bcl:op:sid:abc', `session-${i}`, 5000, 3);
  expect((await c.takeSet('oidc-bcl:op:sid:abc')).sort()).toEqual(['session-2', 'session-3', 'session-4']);
  expect(await c.takeSet('oidc-bcl:op:sid:abc')).toEqual([]);
  for (let i = 0; i < 3; i++) await c.addToSet('oidc-bcl:op:sub:alice', `session-${i}`, 5000, 50);
  expect((await c.readSet!('oidc-bcl:op:sub:alice')).sort()).toEqual(['session-0', 'session-1', 'session-2']);
  await c.removeFromSet!('oidc-bcl:op:sub:alice', ['session-0', 'session-2']);
  expect(await c.readSet!('oidc-bcl:op:sub:alice')).toEqual(['session-1']);
  await c.set('refresh-result:k', 'sealed', 5000);
  expect(await c.get('refresh-result:k')).toBe('sealed');
  await c.deleteIfEquals('refresh-result:k', 'sealed');
  expect(await c.get('refresh-result:k')).toBeUndefined();
});

test('an eviction policy on the cluster\'s nodes is said at start-up (asked of the node that holds the check\'s key)', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const nodes = await Promise.all(client.masters.map((m) => client.nodeClient(m)));
  await Promise.all(nodes.map((n) => n.configSet({ 'maxmemory-policy': 'allkeys-lru', maxmemory: '512mb' })));
  try {
    redisCoordination(client, { prefix: 'coord:' });
    for (let i = 0; i < 40 && !warn.mock.calls.flat().join('\n').includes('maxmemory-policy'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(warn.mock.calls.flat().join('\n')).toMatch(/Redis runs with maxmemory-policy allkeys-lru/);
  } finally {
    await Promise.all(nodes.map((n) => n.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '0' })));
    warn.mockRestore();
  }
});
