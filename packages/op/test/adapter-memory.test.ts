import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { OpStore } from '../src/adapters/types.js';
import { memoryAdapter, type MemoryOpStore } from '../src/adapters/memory.js';
import { OpConfigError } from '../src/errors.js';
import { describeSharedStoreContract, describeStoreContract } from './adapter-contract.js';

// A fake clock: memory expiry is tested without waiting.
let fakeNow = Date.now();
const now = (): number => fakeNow;
const HOUR = 3600;

/** The store as another OP instance reaches it: every call crosses event-loop turns, as a network store's would. */
function overTheWire(store: OpStore): OpStore {
  const methods = ['upsert', 'find', 'findByUid', 'findByUserCode', 'consume', 'destroy', 'revokeByGrantId'] as const;
  const slow = (adapter: Adapter): Adapter => Object.fromEntries(methods.map((m) => [m, async (...args: unknown[]) => {
    await nextTurn();
    const result = await (adapter[m] as (...a: unknown[]) => Promise<unknown>).apply(adapter, args);
    await nextTurn();
    return result;
  }])) as unknown as Adapter;
  return { ...store, kind: store.kind, adapterFor: (model) => slow(store.adapterFor(model)) };
}

const token = (grantId: string): AdapterPayload => ({ accountId: 'alice', clientId: 'client-1', grantId, scope: 'openid' });

describe('memoryAdapter', () => {
  describeStoreContract({
    create: () => memoryAdapter({ now }),
    elapse: async (seconds) => {
      fakeNow += seconds * 1000;
    },
    epochSeconds: () => Math.floor(fakeNow / 1000),
  });

  // One process, so every "instance" is the same store; each reaches it with a delay so that
  // calls really interleave (a revoke lands between a write's start and its end).
  describeSharedStoreContract({
    instances: async (count) => {
      const store = memoryAdapter();
      return Array.from({ length: count }, () => overTheWire(store));
    },
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

  describe('maxRecords: least recently used records are evicted', () => {
    let warn: jest.SpyInstance;
    beforeEach(() => {
      warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    });
    afterEach(() => warn.mockRestore());

    it('past the cap the least recently used record goes, and the ones just read stay', async () => {
      const store = memoryAdapter({ now, maxRecords: 3 });
      const tokens = store.adapterFor('AccessToken');
      const grants = store.adapterFor('Grant');
      await tokens.upsert('a', token('g-1'), 60);
      await grants.upsert('b', { accountId: 'alice' }, 60);
      await tokens.upsert('c', token('g-1'), 60);
      await tokens.upsert('d', token('g-1'), 60); // a goes: the oldest, nothing read since the writes
      expect(await grants.find('b')).toBeDefined(); // b is now the most recently used

      await tokens.upsert('e', token('g-1'), 60);

      expect(await tokens.find('a')).toBeUndefined();
      expect(await tokens.find('c')).toBeUndefined();
      expect(await grants.find('b')).toEqual({ accountId: 'alice' });
      expect(await tokens.find('d')).toEqual(token('g-1'));
      expect(await tokens.find('e')).toEqual(token('g-1'));
      expect(store.evicted).toBe(2);
    });

    it('saving a record again counts as a use', async () => {
      const store = memoryAdapter({ now, maxRecords: 2 });
      const sessions = store.adapterFor('Session');
      await sessions.upsert('s-1', { accountId: 'alice' }, 60);
      await sessions.upsert('s-2', { accountId: 'bob' }, 60);
      await sessions.upsert('s-1', { accountId: 'alice', amr: ['pwd'] } as AdapterPayload, 60);
      await sessions.upsert('s-3', { accountId: 'carol' }, 60);
      expect(await sessions.find('s-2')).toBeUndefined();
      expect(await sessions.find('s-1')).toMatchObject({ amr: ['pwd'] });
    });

    it('memory stays bounded: 50 000 saves with a cap of 1000 hold at most 1000 records', async () => {
      const store = memoryAdapter({ now, maxRecords: 1000 });
      const tokens = store.adapterFor('ClientCredentials');
      for (let i = 0; i < 50_000; i += 1) await tokens.upsert(`cc-${i}`, { clientId: 'svc', scope: 'api:read' }, 600);
      expect(store.size).toBeLessThanOrEqual(1000);
      expect(store.evicted).toBe(49_000);
      expect(await tokens.find('cc-49999')).toBeDefined();
      expect(await tokens.find('cc-48999')).toBeUndefined();
    });

    it('an evicted record takes its uid, user code and grant indexes with it', async () => {
      const store = memoryAdapter({ now, maxRecords: 100 });
      for (let i = 0; i < 5_000; i += 1) {
        await store.adapterFor('Session').upsert(`s-${i}`, { uid: `uid-${i}` }, 600);
        await store.adapterFor('DeviceCode').upsert(`dc-${i}`, { ...token(`g-${i}`), userCode: `UC-${i}` }, 600);
      }
      // 100 records, each with at most one index entry (a uid, or a user code and a grant)
      expect(store.size).toBeLessThanOrEqual(100 * 3);
      expect(await store.adapterFor('Session').findByUid('uid-0')).toBeUndefined();
      expect(await store.adapterFor('DeviceCode').findByUserCode('UC-0')).toBeUndefined();
      expect(await store.adapterFor('DeviceCode').findByUserCode('UC-4999')).toMatchObject({ grantId: 'g-4999' });
    });

    it('an evicted code is refused like an unknown one: invalid_grant, never a success', async () => {
      const store = memoryAdapter({ now, maxRecords: 1 });
      const codes = store.adapterFor('AuthorizationCode');
      await codes.upsert('code-1', token('g-1'), 60);
      await codes.upsert('code-2', token('g-2'), 60);
      await expect(codes.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant', error_detail: 'authorization code not found' });
    });

    it('says so once on the first eviction', async () => {
      const store = memoryAdapter({ now, maxRecords: 1 });
      for (let i = 0; i < 5; i += 1) await store.adapterFor('AccessToken').upsert(`at-${i}`, token('g-1'), 60);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toMatch(/maxRecords.*evicting the least recently used/);
    });

    it('never evicts replay detection, registered clients or login counters', async () => {
      const store = memoryAdapter({ now, maxRecords: 2 });
      await store.adapterFor('ReplayDetection').upsert('jti-1', { iss: 'client-1' } as AdapterPayload, 300);
      await store.adapterFor('Client').upsert('dyn-1', { client_id: 'dyn-1' } as AdapterPayload);
      await store.increment('login:alice', 60);
      for (let i = 0; i < 100; i += 1) await store.adapterFor('AccessToken').upsert(`at-${i}`, token('g-1'), 60);
      expect(await store.adapterFor('ReplayDetection').find('jti-1')).toEqual({ iss: 'client-1' });
      expect(await store.adapterFor('Client').find('dyn-1')).toEqual({ client_id: 'dyn-1' });
      expect(await store.count('login:alice')).toBe(1);
      fakeNow += 301_000;
      expect(await store.adapterFor('ReplayDetection').find('jti-1')).toBeUndefined(); // still expires
    });

    it('an expired record makes room without counting as an eviction', async () => {
      const store = memoryAdapter({ now, maxRecords: 1 });
      await store.adapterFor('AccessToken').upsert('at-1', token('g-1'), 1);
      fakeNow += 2_000;
      await store.adapterFor('AccessToken').upsert('at-2', token('g-1'), 60);
      expect(store.evicted).toBe(0);
      expect(warn).not.toHaveBeenCalled();
    });

    it.each([0, -1, 1.5, Number.NaN, '1000', null])('refuses maxRecords %p with a clear error', (bad) => {
      const create = (): MemoryOpStore => memoryAdapter({ maxRecords: bad as number });
      expect(create).toThrow(OpConfigError);
      expect(create).toThrow(/memoryAdapter: `maxRecords` must be a whole number of records ≥ 1, or Infinity for no cap \(default 2000\)/);
    });

    it.each([null, 'big', 5])('refuses options %p that are not an object, saying what to pass', (bad) => {
      const create = (): MemoryOpStore => memoryAdapter(bad as never);
      expect(create).toThrow(OpConfigError);
      expect(create).toThrow(/memoryAdapter\(options\): `options` must be an object like \{ maxRecords: 10000 \}/);
    });

    it('takes Infinity for no cap', async () => {
      const store = memoryAdapter({ now, maxRecords: Infinity });
      for (let i = 0; i < 20_000; i += 1) await store.adapterFor('AccessToken').upsert(`at-${i}`, { clientId: 'svc' }, 60);
      expect(store.size).toBe(20_000);
      expect(store.evicted).toBe(0);
    });

    it('keeps 2 000 records by default', async () => {
      const store = memoryAdapter({ now });
      for (let i = 0; i < 2_001; i += 1) await store.adapterFor('AccessToken').upsert(`at-${i}`, { clientId: 'svc' }, 60);
      expect(store.size).toBe(2_000);
      expect(store.evicted).toBe(1);
    });
  });

  describe('revoked grants', () => {
    it('a token of a grant saved after its revocation is not kept; other grants are', async () => {
      const store = memoryAdapter({ now });
      await store.adapterFor('RefreshToken').revokeByGrantId('g-1');
      await store.adapterFor('AccessToken').upsert('at-late', token('g-1'), 60);
      await store.adapterFor('RefreshToken').upsert('rt-late', token('g-1'), 600);
      await store.adapterFor('AccessToken').upsert('at-other', token('g-2'), 60);
      expect(await store.adapterFor('AccessToken').find('at-late')).toBeUndefined();
      expect(await store.adapterFor('RefreshToken').find('rt-late')).toBeUndefined();
      expect(await store.adapterFor('AccessToken').find('at-other')).toEqual(token('g-2'));
    });

    it('records that revocation does not reach (Grant, Interaction, Session) are still saved', async () => {
      const store = memoryAdapter({ now });
      await store.adapterFor('AccessToken').revokeByGrantId('g-1');
      await store.adapterFor('Interaction').upsert('i-1', { grantId: 'g-1' } as AdapterPayload, 60);
      await store.adapterFor('Grant').upsert('g-1', { accountId: 'alice' }, 60);
      expect(await store.adapterFor('Interaction').find('i-1')).toEqual({ grantId: 'g-1' });
      expect(await store.adapterFor('Grant').find('g-1')).toEqual({ accountId: 'alice' });
    });

    it('the tombstone lasts at least an hour, as long as the grant longest record, and then goes', async () => {
      const store = memoryAdapter({ now });
      await store.adapterFor('RefreshToken').upsert('rt-1', token('g-long'), 3 * HOUR);
      await store.adapterFor('RefreshToken').revokeByGrantId('g-long');
      await store.adapterFor('AccessToken').revokeByGrantId('g-short');

      fakeNow += 2 * HOUR * 1000;
      await store.adapterFor('AccessToken').upsert('at-long', token('g-long'), 60);
      await store.adapterFor('AccessToken').upsert('at-short', token('g-short'), 60);
      expect(await store.adapterFor('AccessToken').find('at-long')).toBeUndefined();
      expect(await store.adapterFor('AccessToken').find('at-short')).toEqual(token('g-short'));

      fakeNow += 2 * HOUR * 1000;
      expect(store.sweep()).toBeGreaterThanOrEqual(1);
      await store.adapterFor('AccessToken').upsert('at-long', token('g-long'), 60);
      expect(await store.adapterFor('AccessToken').find('at-long')).toEqual(token('g-long'));
    });

    it('a second revocation (oidc-provider revokes once per model) never shortens the tombstone', async () => {
      const store = memoryAdapter({ now });
      await store.adapterFor('RefreshToken').upsert('rt-1', token('g-1'), 5 * HOUR);
      await store.adapterFor('RefreshToken').revokeByGrantId('g-1');
      await store.adapterFor('AccessToken').revokeByGrantId('g-1'); // the index is gone by now
      fakeNow += 4 * HOUR * 1000;
      await store.adapterFor('AccessToken').upsert('at-1', token('g-1'), 60);
      expect(await store.adapterFor('AccessToken').find('at-1')).toBeUndefined();
    });

    it('tombstones are bounded too: past maxRecords the oldest revocation is forgotten', async () => {
      const store = memoryAdapter({ now, maxRecords: 10 });
      for (let i = 0; i < 1_000; i += 1) await store.adapterFor('AccessToken').revokeByGrantId(`g-${i}`);
      expect(store.size).toBeLessThanOrEqual(10);
      await store.adapterFor('AccessToken').upsert('at-new', token('g-999'), 60);
      expect(await store.adapterFor('AccessToken').find('at-new')).toBeUndefined();
    });
  });
});
