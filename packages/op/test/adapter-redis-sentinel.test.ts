import { randomUUID } from 'node:crypto';
import { createSentinel } from 'redis';
import { useSentinelClient } from '../../../test/support/redis-sentinel.js';
import { redisAdapter } from '../src/adapters/redis.js';
import { describeStoreContract } from './adapter-contract.js';

// The same contract as on one Redis, through node-redis's Sentinel client (createSentinel), whose
// sendCommand takes isReadonly first: before, every call failed with "Protocol error" and each
// sign-in was a 500. And a failover: the adapter follows the new master.

const sentinel = useSentinelClient((o) => createSentinel(o));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uniquePrefix = (): string => `t-${randomUUID()}:`;

describe('redisAdapter on Redis Sentinel', () => {
  describeStoreContract({
    create: () => redisAdapter(sentinel.client(), { prefix: uniquePrefix() }),
    elapse: (seconds) => sleep(seconds * 1000),
  });

  it('a failover: the same store serves from the new master (503s at most meanwhile), and what was written before is there', async () => {
    const store = redisAdapter(sentinel.client(), { prefix: uniquePrefix() });
    const tokens = store.adapterFor('AccessToken');
    await tokens.upsert('before', { grantId: 'g-1' }, 60);
    await sentinel.topology().replicated(); // replication is asynchronous: a failover before it loses the write
    const old = await sentinel.topology().masterPort();
    const promoted = await sentinel.topology().failover();
    expect(promoted).not.toBe(old);
    let written = false;
    for (let i = 0; i < 100 && !written; i++) {
      written = await tokens.upsert('after', { grantId: 'g-1' }, 60).then(() => true, (err: Error) => {
        expect(err.name).toBe('StoreUnavailableError'); // never another error
        return false;
      });
      if (!written) await sleep(100);
    }
    expect(written).toBe(true);
    expect(await tokens.find('before')).toMatchObject({ grantId: 'g-1' });
    expect(await tokens.find('after')).toMatchObject({ grantId: 'g-1' });
  }, 40_000);
});
