/**
 * `redisCoordination` through node-redis's Sentinel client (createSentinel): its operations, and
 * its start-up check of the eviction policy (a Sentinel client's sendCommand takes isReadonly
 * first: the check was skipped without a word).
 */
import { createClient, createSentinel } from 'redis';
import { redisCoordination } from '@openid-express/rp';
import { useSentinelClient } from '../../../test/support/redis-sentinel.js';

const sentinel = useSentinelClient((o) => createSentinel(o));

test('locks, values and the back-channel-logout index work through Sentinel', async () => {
  const c = redisCoordination(sentinel.client(), { prefix: 'sentinel:' });
  expect(await c.setIfAbsent('lock', 'A', 5000)).toBe(true);
  expect(await c.setIfAbsent('lock', 'B', 5000)).toBe(false);
  expect(await c.renewIfEquals!('lock', 'A', 5000)).toBe(true);
  await c.addToSet('oidc-bcl:op:sub:alice', 'session-1', 5000, 50);
  expect(await c.readSet!('oidc-bcl:op:sub:alice')).toEqual(['session-1']);
});

test('an eviction policy on the master is said at start-up', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const master = createClient({ url: `redis://127.0.0.1:${await sentinel.topology().masterPort()}` });
  await master.connect();
  await master.configSet({ 'maxmemory-policy': 'volatile-lru', maxmemory: '512mb' });
  try {
    redisCoordination(sentinel.client(), { prefix: 'sentinel:' });
    for (let i = 0; i < 40 && !warn.mock.calls.flat().join('\n').includes('maxmemory-policy'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(warn.mock.calls.flat().join('\n')).toMatch(/redisCoordination: Redis runs with maxmemory-policy volatile-lru/);
  } finally {
    await master.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '0' });
    master.destroy();
    warn.mockRestore();
  }
});
