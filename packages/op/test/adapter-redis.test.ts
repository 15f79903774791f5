import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { redisAdapter } from '../src/adapters/redis.js';
import { describeStoreContract } from './adapter-contract.js';

type Client = ReturnType<typeof createClient>;

let server: RedisServer;
let client: Client;
const extraClients: Client[] = [];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uniquePrefix = (): string => `t-${randomUUID()}:`;

async function connect(): Promise<Client> {
  const extra = createClient({ url: server.url });
  await extra.connect();
  extraClients.push(extra);
  return extra;
}

async function keysUnder(prefix: string): Promise<string[]> {
  return client.keys(`${prefix}*`);
}

beforeAll(async () => {
  server = await startRedisServer();
  client = createClient({ url: server.url });
  await client.connect();
});

afterAll(async () => {
  for (const c of [client, ...extraClients]) if (c?.isOpen) c.destroy();
  await server?.stop();
});

describe('redisAdapter', () => {
  // Every contract test gets its own prefix on the one real server, so no test sees another's keys.
  describeStoreContract({
    create: () => redisAdapter(client, { prefix: uniquePrefix() }),
    elapse: (seconds) => sleep(seconds * 1000),
  });

  it('calls itself "redis" for logs', () => {
    expect(redisAdapter(client).kind).toBe('redis');
  });

  it('records survive a new adapter on a new connection: a restarted OP keeps its sessions', async () => {
    const prefix = uniquePrefix();
    const before = redisAdapter(client, { prefix });
    await before.adapterFor('Session').upsert('s-1', { uid: 'uid-1', accountId: 'alice' }, 60);
    await before.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await before.increment('login:alice', 60);

    const after = redisAdapter(await connect(), { prefix });
    expect(await after.adapterFor('Session').findByUid('uid-1')).toEqual({ uid: 'uid-1', accountId: 'alice' });
    expect(await after.count('login:alice')).toBe(1);
    await after.adapterFor('AccessToken').revokeByGrantId('g-1');
    expect(await before.adapterFor('AccessToken').find('at-1')).toBeUndefined();
  });

  it('of ten OP instances redeeming one code at once, exactly one succeeds', async () => {
    const prefix = uniquePrefix();
    const instances = await Promise.all(Array.from({ length: 10 }, async () => redisAdapter(await connect(), { prefix })));
    await instances[0]!.adapterFor('AuthorizationCode').upsert('code-1', { grantId: 'g-1' }, 60);
    const outcomes = await Promise.allSettled(instances.map((s) => s.adapterFor('AuthorizationCode').consume('code-1')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(9);
  });

  it('two OPs with different prefixes share a Redis without seeing each other', async () => {
    const one = redisAdapter(client, { prefix: uniquePrefix() });
    const two = redisAdapter(client, { prefix: uniquePrefix() });
    await one.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await two.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1', scope: 'two' }, 60);
    await one.adapterFor('Session').upsert('s-1', { uid: 'uid-1' }, 60);
    await one.increment('login:alice', 60);

    await two.adapterFor('AccessToken').revokeByGrantId('g-1');

    expect(await one.adapterFor('AccessToken').find('at-1')).toEqual({ grantId: 'g-1' });
    expect(await two.adapterFor('AccessToken').find('at-1')).toBeUndefined();
    expect(await two.adapterFor('Session').findByUid('uid-1')).toBeUndefined();
    expect(await two.count('login:alice')).toBe(0);
  });

  it('writes only under its prefix, and every key it writes expires', async () => {
    const prefix = uniquePrefix();
    const store = redisAdapter(client, { prefix });
    await store.adapterFor('Session').upsert('s-1', { uid: 'uid-1' }, 60);
    await store.adapterFor('DeviceCode').upsert('dc-1', { grantId: 'g-1', userCode: 'ABCD-EFGH' }, 60);
    await store.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await store.increment('login:alice', 60);

    const keys = await keysUnder(prefix);
    expect(keys.sort()).toEqual(
      [
        'AccessToken:at-1',
        'DeviceCode:dc-1',
        'Session:s-1',
        'counter:login:alice',
        'grant:g-1',
        'uid:Session:uid-1',
        'userCode:DeviceCode:ABCD-EFGH',
      ].map((k) => prefix + k),
    );
    for (const key of keys) {
      const ttl = await client.ttl(key);
      expect([key, ttl > 0 && ttl <= 60]).toEqual([key, true]);
    }
  });

  it('a grant index lives as long as its longest-lived token and drops expired ones', async () => {
    const prefix = uniquePrefix();
    const tokens = redisAdapter(client, { prefix }).adapterFor('AccessToken');
    await tokens.upsert('at-long', { grantId: 'g-1' }, 30);
    await tokens.upsert('at-short', { grantId: 'g-1' }, 1);
    const ttl = await client.pTTL(`${prefix}grant:g-1`);
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);

    await sleep(1_200);
    await tokens.upsert('at-next', { grantId: 'g-1' }, 1);
    expect((await client.zRange(`${prefix}grant:g-1`, 0, -1)).sort()).toEqual([
      `${prefix}AccessToken:at-long`,
      `${prefix}AccessToken:at-next`,
    ]);
  });

  it('keeps working after the server forgot its scripts (restart, SCRIPT FLUSH)', async () => {
    const store = redisAdapter(client, { prefix: uniquePrefix() });
    await store.adapterFor('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 60);
    await client.scriptFlush();
    await store.adapterFor('RefreshToken').consume('rt-1');
    expect(await store.adapterFor('RefreshToken').find('rt-1')).toMatchObject({ consumed: expect.any(Number) });
    await client.scriptFlush();
    expect(await store.increment('login:alice', 60)).toBe(1);
  });

  it('refuses, with a message saying what to do, a client that is not connected or not a client', () => {
    expect(() => redisAdapter(createClient({ url: server.url }))).toThrow(/not connected.*client\.connect\(\)/);
    expect(() => redisAdapter({} as never)).toThrow(/node-redis v5 client/);
    expect(() => redisAdapter(client, { prefix: 42 as never })).toThrow(/prefix/);
  });

  it('a machine without redis-server is told how to install it, not skipped', async () => {
    await expect(startRedisServer('/nonexistent/redis-server')).rejects.toThrow(/apt-get install -y redis-server/);
  });

  it('surfaces Redis errors instead of hiding them', async () => {
    const prefix = uniquePrefix();
    await client.set(`${prefix}counter:login:alice`, 'not a number');
    await expect(redisAdapter(client, { prefix }).increment('login:alice', 60)).rejects.toThrow(/not an integer/);
  });
});
