import type { AdapterPayload } from 'oidc-provider';
import type { OpStore } from '../src/adapters/types.js';

/** How the contract suite drives one kind of store. */
export interface StoreHarness {
  /** A fresh, empty store that no other test sees. */
  create(): OpStore;
  /** Lets `seconds` of store time pass: a fake clock for memory, real time for Redis. */
  elapse(seconds: number): Promise<void>;
  /** The store's clock in epoch seconds. Default: the real one. */
  epochSeconds?(): number;
}

const epoch = (): number => Math.floor(Date.now() / 1000);

const token = (grantId: string, extra: Partial<AdapterPayload> = {}): AdapterPayload => ({
  accountId: 'alice',
  clientId: 'client-1',
  grantId,
  scope: 'openid',
  ...extra,
});

/**
 * The behaviour oidc-provider and the login throttle rely on, for any `OpStore`.
 * Memory and Redis both run it, so they cannot drift apart.
 */
export function describeStoreContract(harness: StoreHarness): void {
  const clock = (): number => harness.epochSeconds?.() ?? epoch();
  let store: OpStore;
  beforeEach(() => {
    store = harness.create();
  });

  describe('records', () => {
    it('a saved record is found again, exactly as written', async () => {
      const payload = {
        accountId: 'alice',
        claims: { id_token: { email: null } },
        amr: [],
        extra: { nested: { n: 1.5, yes: true, list: ['a', 'b'] } },
      } as unknown as AdapterPayload;
      await store.adapterFor('Grant').upsert('g-1', payload, 60);
      expect(await store.adapterFor('Grant').find('g-1')).toEqual(payload);
      expect(await store.adapterFor('Grant').find('g-unknown')).toBeUndefined();
    });

    it('changing a returned record does not change the stored one', async () => {
      await store.adapterFor('Grant').upsert('g-1', { accountId: 'alice' }, 60);
      const found = (await store.adapterFor('Grant').find('g-1'))!;
      found.accountId = 'mallory';
      expect(await store.adapterFor('Grant').find('g-1')).toEqual({ accountId: 'alice' });
    });

    it('changing a returned record at any depth, on any read, does not change the stored one', async () => {
      const grants = store.adapterFor('Grant');
      const saved = { accountId: 'alice', openid: { scope: 'openid', claims: ['email'] }, rejected: [{ scope: 'x' }] };
      await grants.upsert('g-1', saved as unknown as AdapterPayload, 60);
      saved.openid.scope = 'changed after saving';
      for (let read = 0; read < 3; read += 1) {
        const found = (await grants.find('g-1')) as unknown as typeof saved;
        expect(found).toEqual({ accountId: 'alice', openid: { scope: 'openid', claims: ['email'] }, rejected: [{ scope: 'x' }] });
        found.openid.scope = 'openid profile';
        found.openid.claims.push('name');
        found.rejected[0]!.scope = 'y';
      }
    });

    it('a "__proto__" key in a record comes back as a plain property, never as a prototype', async () => {
      const grants = store.adapterFor('Grant');
      const payload = JSON.parse('{"accountId":"alice","claims":{"__proto__":{"admin":true}},"__proto__":{"polluted":1}}') as AdapterPayload;
      await grants.upsert('g-1', payload, 60);
      for (let read = 0; read < 2; read += 1) {
        const found = (await grants.find('g-1')) as Record<string, unknown>;
        expect(Object.getPrototypeOf(found)).toBe(Object.prototype);
        expect(Object.hasOwn(found, '__proto__')).toBe(true);
        expect(found.polluted).toBeUndefined();
        const claims = found.claims as Record<string, unknown>;
        expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
        expect(Object.getOwnPropertyDescriptor(claims, '__proto__')?.value).toEqual({ admin: true });
        expect(claims.admin).toBeUndefined();
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('a record comes back as JSON carries it: what is not JSON data is converted or left out as JSON.stringify does', async () => {
      class Resource {
        constructor(readonly name: string) {}
      }
      // one kind of non-JSON value per record, each in an otherwise plain record
      const cases: Array<[string, unknown, unknown]> = [
        ['a Date', new Date('2026-12-04T10:00:00.000Z'), '2026-12-04T10:00:00.000Z'],
        ['an object with toJSON', { toJSON: () => 'tagged' }, 'tagged'],
        ['a class instance', new Resource('api'), { name: 'api' }],
        ['a boxed string', Object('boxed'), 'boxed'],
        ['undefined in an array', [1, undefined, 'x'], [1, null, 'x']],
        ['NaN and Infinity', [Number.NaN, Number.POSITIVE_INFINITY], [null, null]],
        ['keys left undefined, a function, a symbol', { kept: 0, gone: undefined, fn: () => 1, sym: Symbol('s') }, { kept: 0 }],
      ];
      const tokens = store.adapterFor('AccessToken');
      for (const [what, value, asJson] of cases) {
        const payload = { accountId: 'alice', extra: { value, nested: [{ value }] } } as unknown as AdapterPayload;
        await tokens.upsert(`t-${what}`, payload, 60);
        const found = await tokens.find(`t-${what}`);
        expect([what, found]).toStrictEqual([what, JSON.parse(JSON.stringify(payload))]);
        expect([what, found]).toStrictEqual([what, { accountId: 'alice', extra: { value: asJson, nested: [{ value: asJson }] } }]);
      }
      // plain data with keys left undefined (oidc-provider's `extra` when no claims are added)
      await store.adapterFor('ClientCredentials').upsert('cc-1', { clientId: 'svc', extra: undefined, scope: 'api' } as AdapterPayload, 60);
      expect(Object.keys((await store.adapterFor('ClientCredentials').find('cc-1'))!)).toEqual(['clientId', 'scope']);
    });

    it('a record that JSON cannot carry is refused when saved, and nothing is kept', async () => {
      const cyclic: Record<string, unknown> = { accountId: 'alice' };
      cyclic.self = cyclic;
      await expect(store.adapterFor('Grant').upsert('g-cyclic', cyclic as AdapterPayload, 60)).rejects.toThrow(TypeError);
      await expect(store.adapterFor('Grant').upsert('g-big', { accountId: 'alice', n: 1n } as unknown as AdapterPayload, 60)).rejects.toThrow(TypeError);
      expect(await store.adapterFor('Grant').find('g-cyclic')).toBeUndefined();
      expect(await store.adapterFor('Grant').find('g-big')).toBeUndefined();
      // saved over a record: the record stays as it was
      await store.adapterFor('Grant').upsert('g-kept', { accountId: 'alice' }, 60);
      await expect(store.adapterFor('Grant').upsert('g-kept', cyclic as AdapterPayload, 60)).rejects.toThrow(TypeError);
      expect(await store.adapterFor('Grant').find('g-kept')).toEqual({ accountId: 'alice' });
    });

    it('saving again replaces the record: dropped fields are gone', async () => {
      const grants = store.adapterFor('Grant');
      await grants.upsert('g-1', { accountId: 'alice', scope: 'openid' }, 60);
      await grants.upsert('g-1', { accountId: 'alice' }, 60);
      expect(await grants.find('g-1')).toEqual({ accountId: 'alice' });
    });

    it('models do not see each other records under the same id', async () => {
      await store.adapterFor('AccessToken').upsert('same', token('g-1'), 60);
      expect(await store.adapterFor('RefreshToken').find('same')).toBeUndefined();
      expect(await store.adapterFor('AccessToken').find('same')).toEqual(token('g-1'));
    });

    it('a record is gone once its expiresIn has passed, while one without expiry stays', async () => {
      const tokens = store.adapterFor('AccessToken');
      await tokens.upsert('short', token('g-1'), 1);
      await tokens.upsert('forever', token('g-1'));
      await harness.elapse(0.4);
      expect(await tokens.find('short')).toBeDefined();
      await harness.elapse(0.8);
      expect(await tokens.find('short')).toBeUndefined();
      expect(await tokens.find('forever')).toEqual(token('g-1'));
    });

    it('a destroyed record is gone, and destroying an unknown one is harmless', async () => {
      const tokens = store.adapterFor('AccessToken');
      await tokens.upsert('at-1', token('g-1'), 60);
      await tokens.destroy('at-1');
      expect(await tokens.find('at-1')).toBeUndefined();
      await expect(tokens.destroy('never-there')).resolves.toBeUndefined();
    });
  });

  describe('lookups by uid and user code', () => {
    it('a session is found by its uid, and only while it exists under that uid', async () => {
      const sessions = store.adapterFor('Session');
      await sessions.upsert('s-1', { uid: 'uid-1', accountId: 'alice' }, 60);
      expect(await sessions.findByUid('uid-1')).toEqual({ uid: 'uid-1', accountId: 'alice' });
      expect(await sessions.findByUid('uid-unknown')).toBeUndefined();

      await sessions.upsert('s-1', { uid: 'uid-2', accountId: 'alice' }, 60);
      expect(await sessions.findByUid('uid-1')).toBeUndefined();
      expect(await sessions.findByUid('uid-2')).toMatchObject({ uid: 'uid-2' });

      await sessions.destroy('s-1');
      expect(await sessions.findByUid('uid-2')).toBeUndefined();
    });

    it('a session found by uid expires with the session', async () => {
      const sessions = store.adapterFor('Session');
      await sessions.upsert('s-1', { uid: 'uid-1' }, 1);
      await harness.elapse(1.2);
      expect(await sessions.findByUid('uid-1')).toBeUndefined();
    });

    it('an expired device code is still found for a while, so a polling device is told expired_token (RFC 8628 §3.5)', async () => {
      const codes = store.adapterFor('DeviceCode');
      await codes.upsert('dc-old', token('g-1', { userCode: 'BCDF-GHJK' }), 1);
      await harness.elapse(1.2);
      expect(await codes.find('dc-old')).toMatchObject({ userCode: 'BCDF-GHJK' }); // oidc-provider sees exp and answers expired_token
      expect(await codes.findByUserCode('BCDF-GHJK')).toMatchObject({ grantId: 'g-1' }); // the /device page says "expired"
    });

    it('a device code is found by its user code, and not once destroyed', async () => {
      const codes = store.adapterFor('DeviceCode');
      await codes.upsert('dc-1', token('g-1', { userCode: 'WDJB-MJHT' }), 60);
      expect(await codes.findByUserCode('WDJB-MJHT')).toMatchObject({ userCode: 'WDJB-MJHT', grantId: 'g-1' });
      expect(await codes.findByUserCode('XXXX-XXXX')).toBeUndefined();
      await codes.destroy('dc-1');
      expect(await codes.findByUserCode('WDJB-MJHT')).toBeUndefined();
    });
  });

  describe('consume', () => {
    it('marks the record consumed now, keeping the rest of it and its expiry', async () => {
      const codes = store.adapterFor('AuthorizationCode');
      await codes.upsert('code-1', token('g-1'), 1);
      const before = clock();
      await codes.consume('code-1');
      const found = await codes.find('code-1');
      expect(found).toEqual({ ...token('g-1'), consumed: expect.any(Number) });
      expect(found!.consumed).toBeGreaterThanOrEqual(before);
      expect(found!.consumed).toBeLessThanOrEqual(clock());
      await harness.elapse(1.2);
      expect(await codes.find('code-1')).toBeUndefined();
    });

    it('a second redemption of a code is refused with invalid_grant', async () => {
      const codes = store.adapterFor('AuthorizationCode');
      await codes.upsert('code-1', token('g-1'), 60);
      await codes.consume('code-1');
      const first = (await codes.find('code-1'))!.consumed;
      await expect(codes.consume('code-1')).rejects.toMatchObject({
        error: 'invalid_grant',
        error_detail: 'authorization code already consumed',
      });
      expect((await codes.find('code-1'))!.consumed).toBe(first);
    });

    it('of twenty concurrent redemptions of one refresh token exactly one wins', async () => {
      const tokens = store.adapterFor('RefreshToken');
      await tokens.upsert('rt-1', token('g-1'), 60);
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => tokens.consume('rt-1')));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const lost of outcomes.filter((o) => o.status === 'rejected')) {
        expect((lost as PromiseRejectedResult).reason).toMatchObject({ error: 'invalid_grant' });
      }
    });

    it('consuming a record that is gone is refused, and creates nothing', async () => {
      const codes = store.adapterFor('AuthorizationCode');
      await expect(codes.consume('no-such-code')).rejects.toMatchObject({
        error: 'invalid_grant',
        error_detail: 'authorization code not found',
      });
      expect(await codes.find('no-such-code')).toBeUndefined();
    });

    it('a pushed authorization request is single-use: reuse is invalid_request_uri', async () => {
      const requests = store.adapterFor('PushedAuthorizationRequest');
      await requests.upsert('par-1', { request: 'eyJ...' }, 60);
      await requests.consume('par-1');
      await expect(requests.consume('par-1')).rejects.toMatchObject({ error: 'invalid_request_uri' });
    });

    it('a record saved with consumed: null is not consumed yet', async () => {
      const codes = store.adapterFor('AuthorizationCode');
      await codes.upsert('code-1', token('g-1', { consumed: null }), 60);
      expect(await codes.find('code-1')).toEqual(token('g-1'));
      await expect(codes.consume('code-1')).resolves.toBeUndefined();
    });

    it('a consumed record saved again stays consumed', async () => {
      const codes = store.adapterFor('DeviceCode');
      await codes.upsert('dc-1', token('g-1', { userCode: 'AAAA-BBBB', consumed: 1700000000 }), 60);
      expect(await codes.find('dc-1')).toMatchObject({ consumed: 1700000000 });
      await expect(codes.consume('dc-1')).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('revokeByGrantId', () => {
    it('a grant with many tokens, some of them expired, still loses every live one', async () => {
      const tokens = store.adapterFor('AccessToken');
      for (let i = 0; i < 40; i += 1) await tokens.upsert(`short-${i}`, token('g-many'), 1);
      await harness.elapse(2);
      // past the expired ones, the grant's index is cleaned while these are saved; none of these may go with them
      for (let i = 0; i < 70; i += 1) await tokens.upsert(`long-${i}`, token('g-many'), 600);
      await tokens.upsert('other', token('g-other'), 600);
      for (let i = 0; i < 70; i += 1) expect(await tokens.find(`long-${i}`)).toEqual(token('g-many'));
      await tokens.revokeByGrantId('g-many');
      for (let i = 0; i < 70; i += 1) expect(await tokens.find(`long-${i}`)).toBeUndefined();
      expect(await tokens.find('other')).toEqual(token('g-other'));
    });

    it('removes every token of the grant, and only those', async () => {
      await store.adapterFor('AccessToken').upsert('at-1', token('g-1'), 60);
      await store.adapterFor('RefreshToken').upsert('rt-1', token('g-1'), 120);
      await store.adapterFor('AuthorizationCode').upsert('code-1', token('g-1'), 10);
      await store.adapterFor('AccessToken').upsert('at-2', token('g-2'), 60);
      await store.adapterFor('Grant').upsert('g-1', { accountId: 'alice' }, 60);
      await store.adapterFor('Interaction').upsert('i-1', { grantId: 'g-1' } as AdapterPayload, 60);

      await store.adapterFor('AccessToken').revokeByGrantId('g-1');

      expect(await store.adapterFor('AccessToken').find('at-1')).toBeUndefined();
      expect(await store.adapterFor('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await store.adapterFor('AuthorizationCode').find('code-1')).toBeUndefined();
      expect(await store.adapterFor('AccessToken').find('at-2')).toEqual(token('g-2'));
      expect(await store.adapterFor('Grant').find('g-1')).toEqual({ accountId: 'alice' });
      expect(await store.adapterFor('Interaction').find('i-1')).toEqual({ grantId: 'g-1' });
    });

    it('still reaches a long-lived token after the short-lived ones of its grant expired', async () => {
      await store.adapterFor('AccessToken').upsert('at-1', token('g-1'), 1);
      await store.adapterFor('RefreshToken').upsert('rt-1', token('g-1'), 30);
      await store.adapterFor('AccessToken').upsert('at-3', token('g-1'), 1);
      await harness.elapse(1.2);
      await store.adapterFor('AccessToken').upsert('at-2', token('g-1'), 1);
      await store.adapterFor('RefreshToken').revokeByGrantId('g-1');
      expect(await store.adapterFor('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await store.adapterFor('AccessToken').find('at-2')).toBeUndefined();
    });

    it('revoking an unknown grant is harmless', async () => {
      await store.adapterFor('AccessToken').upsert('at-1', token('g-1'), 60);
      await store.adapterFor('AccessToken').revokeByGrantId('g-unknown');
      expect(await store.adapterFor('AccessToken').find('at-1')).toBeDefined();
    });
  });

  describe('counters', () => {
    it('count up per key and start again after reset', async () => {
      expect(await store.increment('login:alice', 60)).toBe(1);
      expect(await store.increment('login:alice', 60)).toBe(2);
      expect(await store.increment('login:alice', 60)).toBe(3);
      expect(await store.count('login:alice')).toBe(3);
      expect(await store.count('login:bob')).toBe(0);
      await store.reset('login:alice');
      expect(await store.count('login:alice')).toBe(0);
      expect(await store.increment('login:alice', 60)).toBe(1);
    });

    it('expire ttl seconds after the first hit, later hits do not extend it', async () => {
      await store.increment('login:alice', 1);
      await harness.elapse(0.6);
      expect(await store.increment('login:alice', 1)).toBe(2);
      await harness.elapse(0.6);
      expect(await store.count('login:alice')).toBe(0);
      expect(await store.increment('login:alice', 1)).toBe(1);
    });

    it('decrement takes one off, never below zero, and keeps the expiry', async () => {
      expect(typeof store.decrement).toBe('function');
      await store.decrement!('ip:none');
      expect(await store.count('ip:none')).toBe(0);
      await store.increment('ip:a', 1);
      await store.increment('ip:a', 1);
      await store.decrement!('ip:a');
      expect(await store.count('ip:a')).toBe(1);
      await store.decrement!('ip:a');
      await store.decrement!('ip:a');
      expect(await store.count('ip:a')).toBe(0);
      expect(await store.increment('ip:a', 1)).toBe(1);
      await harness.elapse(1.2);
      expect(await store.count('ip:a')).toBe(0);
    });
  });
}

/** How the shared-store suite gets several OP instances over one store. */
export interface SharedStoreHarness {
  /** `count` stores over the same records (same server, same prefix), each on its own connection. */
  instances(count: number): Promise<OpStore[]>;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What several OP instances sharing one store rely on: one winner among racing redemptions, and
 * a revoked grant keeps no token, even one written while the revocation ran. The Redis stores
 * run it (one server and Cluster); the memory store is one process and cannot be shared.
 */
export function describeSharedStoreContract(harness: SharedStoreHarness): void {
  describe('shared by several OP instances', () => {
    it('of 8 instances redeeming one code at once, exactly one succeeds', async () => {
      const instances = await harness.instances(8);
      await instances[0]!.adapterFor('AuthorizationCode').upsert('code-1', token('g-1'), 60);
      const outcomes = await Promise.allSettled(instances.map((s) => s.adapterFor('AuthorizationCode').consume('code-1')));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const lost of outcomes.filter((o) => o.status === 'rejected')) {
        expect((lost as PromiseRejectedResult).reason).toMatchObject({ error: 'invalid_grant' });
      }
    });

    it('a grant revoked by one instance loses the tokens every instance wrote', async () => {
      const [one, two, three] = await harness.instances(3);
      await one!.adapterFor('AccessToken').upsert('at-1', token('g-1'), 60);
      await two!.adapterFor('RefreshToken').upsert('rt-1', token('g-1'), 600);
      await two!.adapterFor('DeviceCode').upsert('dc-1', token('g-1', { userCode: 'QQQQ-RRRR' }), 60);
      await one!.adapterFor('AccessToken').upsert('at-2', token('g-2'), 60);
      await three!.adapterFor('RefreshToken').revokeByGrantId('g-1');
      expect(await one!.adapterFor('AccessToken').find('at-1')).toBeUndefined();
      expect(await one!.adapterFor('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await one!.adapterFor('DeviceCode').findByUserCode('QQQQ-RRRR')).toBeUndefined();
      expect(await three!.adapterFor('AccessToken').find('at-2')).toEqual(token('g-2'));
    });

    it('a grant revoked while its tokens are being written keeps none of them', async () => {
      const instances = await harness.instances(4);
      const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode'];
      const written: Array<{ model: string; id: string; started: number; ended: number }> = [];
      const write = async (i: number): Promise<void> => {
        await pause(i % 20); // spread the writes around the revocation
        const model = models[i % models.length]!;
        const started = performance.now();
        await instances[i % instances.length]!.adapterFor(model).upsert(`t-${i}`, token('g-race'), 60);
        written.push({ model, id: `t-${i}`, started, ended: performance.now() });
      };
      await Promise.all(Array.from({ length: 30 }, (_, i) => write(1000 + i))); // tokens that exist before
      await instances[0]!.adapterFor('AccessToken').upsert('bystander', token('g-other'), 60);

      let revokeStarted = 0;
      let revokeEnded = 0;
      const revoke = async (): Promise<void> => {
        await pause(8);
        revokeStarted = performance.now();
        await instances[1]!.adapterFor('RefreshToken').revokeByGrantId('g-race');
        revokeEnded = performance.now();
      };
      await Promise.all([...Array.from({ length: 300 }, (_, i) => write(i)), revoke()]);

      // The race really happened: writes finished before, overlapped, and started after the revoke.
      expect(written.some((w) => w.ended < revokeStarted)).toBe(true);
      expect(written.some((w) => w.started < revokeEnded && w.ended > revokeStarted)).toBe(true);
      const survivors = [];
      for (const { model, id } of written) {
        if (await instances[2]!.adapterFor(model).find(id)) survivors.push(`${model}:${id}`);
      }
      expect(survivors).toEqual([]);
      expect(await instances[3]!.adapterFor('AccessToken').find('bystander')).toEqual(token('g-other'));
    });
  });
}
