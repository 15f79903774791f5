import { memoryAdapter } from '../src/adapters/memory.js';
import { describeStoreContract } from './adapter-contract.js';

// A fake clock: memory expiry is tested without waiting.
let fakeNow = Date.now();
const now = (): number => fakeNow;

describe('memoryAdapter', () => {
  describeStoreContract({
    create: () => memoryAdapter({ now }),
    elapse: async (seconds) => {
      fakeNow += seconds * 1000;
    },
    epochSeconds: () => Math.floor(fakeNow / 1000),
  });

  it('calls itself "memory" for logs and the production warning', () => {
    expect(memoryAdapter().kind).toBe('memory');
  });

  it('a long-running server does not keep expired records: a sweep drops them all', async () => {
    const store = memoryAdapter({ now });
    const tokens = store.adapterFor('AccessToken');
    const sessions = store.adapterFor('Session');
    for (let i = 0; i < 500; i += 1) {
      await tokens.upsert(`at-${i}`, { grantId: `g-${i % 10}` }, 60);
      await sessions.upsert(`s-${i}`, { uid: `uid-${i}` }, 60);
      await store.increment(`login:${i}`, 60);
    }
    await store.adapterFor('Grant').upsert('kept', { accountId: 'alice' }, 3600);
    expect(store.size).toBeGreaterThan(1500);

    fakeNow += 61_000;
    const dropped = store.sweep();

    expect(dropped).toBe(500 + 500 + 500 + 10 + 500);
    expect(store.size).toBe(1);
    expect(await store.adapterFor('Grant').find('kept')).toEqual({ accountId: 'alice' });
  });

  it('sweeps on its own, without anything being read', async () => {
    const store = memoryAdapter({ now, sweepIntervalMs: 10 });
    await store.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 1);
    expect(store.size).toBe(2);
    fakeNow += 2_000;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.size).toBe(0);
  });

  it('its sweep timer does not keep the process alive', () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const stores = [memoryAdapter(), memoryAdapter({ sweepIntervalMs: 5 })];
    expect(stores).toHaveLength(2);
    expect(timers()).toBe(before);
  });

  it('two memory stores are independent', async () => {
    const a = memoryAdapter();
    const b = memoryAdapter();
    await a.adapterFor('Grant').upsert('g-1', { accountId: 'alice' }, 60);
    await a.increment('login:alice', 60);
    expect(await b.adapterFor('Grant').find('g-1')).toBeUndefined();
    expect(await b.count('login:alice')).toBe(0);
  });
});
