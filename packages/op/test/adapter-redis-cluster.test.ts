import { randomUUID } from 'node:crypto';
import { createClient, createCluster } from 'redis';
import { startRedisCluster, type RedisCluster } from '../../../test/support/redis-cluster.js';
import { redisAdapter } from '../src/adapters/redis.js';
import { describeSharedStoreContract, describeStoreContract } from './adapter-contract.js';

// The same contract as on one Redis, on a real three-master Redis Cluster: a script that touched
// keys of two hash slots would fail here with CROSSSLOT.

type Cluster = ReturnType<typeof createCluster>;

let cluster: RedisCluster;
let client: Cluster;
const extraClients: Cluster[] = [];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uniquePrefix = (): string => `t-${randomUUID()}:`;

async function connect(): Promise<Cluster> {
  const extra = createCluster({ rootNodes: cluster.rootNodes });
  extra.on('error', () => undefined);
  await extra.connect();
  extraClients.push(extra);
  return extra;
}

/** Every key under `prefix` on every master (KEYS only sees one node's keys). */
async function keysUnder(prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const port of cluster.ports) {
    const node = createClient({ url: `redis://127.0.0.1:${port}` });
    await node.connect();
    found.push(...(await node.keys(`${prefix}*`)));
    node.destroy();
  }
  return found.sort();
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = await connect();
}, 60_000);

afterAll(async () => {
  for (const c of extraClients) if (c.isOpen) c.destroy();
  await cluster?.stop();
});

describe('redisAdapter on Redis Cluster', () => {
  describeStoreContract({
    create: () => redisAdapter(client, { prefix: uniquePrefix() }),
    elapse: (seconds) => sleep(seconds * 1000),
  });

  describeSharedStoreContract({
    instances: async (count) => {
      const prefix = uniquePrefix();
      return Promise.all(Array.from({ length: count }, async () => redisAdapter(await connect(), { prefix })));
    },
  });

  it('spreads its keys over the masters: the contract above really crossed slots', async () => {
    const prefix = uniquePrefix();
    const store = redisAdapter(client, { prefix });
    for (let i = 0; i < 30; i += 1) await store.adapterFor('AccessToken').upsert(`at-${i}`, { grantId: `g-${i}` }, 60);
    const perNode = await Promise.all(
      cluster.ports.map(async (port) => {
        const node = createClient({ url: `redis://127.0.0.1:${port}` });
        await node.connect();
        const count = (await node.keys(`${prefix}*`)).length;
        node.destroy();
        return count;
      }),
    );
    expect(perNode.every((count) => count > 0)).toBe(true);
    expect(perNode.reduce((a, b) => a + b)).toBe(60);
  });

  it('keeps a grant index and its tombstone in one slot, whatever the prefix', async () => {
    for (const prefix of [uniquePrefix(), `{app}:${randomUUID()}:`, `a}b{${randomUUID()}:`]) {
      const store = redisAdapter(client, { prefix });
      await store.adapterFor('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 60);
      await store.adapterFor('RefreshToken').revokeByGrantId('g-1');
      expect(await store.adapterFor('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await keysUnder(prefix)).toEqual([`${prefix}grant:{g-1}:revoked`]);
    }
  });

  it('revoking one grant many times at once (oidc-provider does it once per model) leaves nothing', async () => {
    const prefix = uniquePrefix();
    const store = redisAdapter(client, { prefix });
    const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];
    for (const [i, model] of models.entries()) await store.adapterFor(model).upsert(`x-${i}`, { grantId: 'g-1' }, 60);
    await Promise.all(models.map((model) => store.adapterFor(model).revokeByGrantId('g-1')));
    for (const [i, model] of models.entries()) expect(await store.adapterFor(model).find(`x-${i}`)).toBeUndefined();
  });

  it('keeps working after every node forgot its scripts', async () => {
    const store = redisAdapter(client, { prefix: uniquePrefix() });
    await store.adapterFor('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 60);
    for (const port of cluster.ports) {
      const node = createClient({ url: `redis://127.0.0.1:${port}` });
      await node.connect();
      await node.scriptFlush();
      node.destroy();
    }
    await store.adapterFor('RefreshToken').consume('rt-1');
    expect(await store.adapterFor('RefreshToken').find('rt-1')).toMatchObject({ consumed: expect.any(Number) });
  });

  it('refuses a cluster client that is not connected yet, saying what to do', () => {
    expect(() => redisAdapter(createCluster({ rootNodes: cluster.rootNodes }))).toThrow(/not connected.*client\.connect\(\)/);
  });

  it('a machine without redis-cli is told how to install it, not skipped', async () => {
    await expect(startRedisCluster({ server: '/usr/bin/redis-server', cli: '/nonexistent/redis-cli' })).rejects.toThrow(
      /apt-get install -y redis-tools/,
    );
    await expect(startRedisCluster({ server: '/nonexistent/redis-server', cli: '/usr/bin/redis-cli' })).rejects.toThrow(
      /apt-get install -y redis-server/,
    );
  });
});
