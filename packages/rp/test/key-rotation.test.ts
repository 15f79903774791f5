import { startRp, type TestRp } from './support/rp-app.js';

describe('ID token keys (JWKS)', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({ rp: { jwksCooldown: 0 } });
  });
  afterAll(() => t.close());

  test('are downloaded once, cached, and downloaded again once when the OP rotates its key', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1);
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1); // cached

    const oldKid = t.op.signingKey.kid;
    t.op.rotateKeys();
    expect(t.op.signingKey.kid).not.toBe(oldKid);
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302); // unknown kid → one refetch
    expect(t.op.counts.jwks).toBe(2);
    expect((await agent.get('/me')).status).toBe(200);

    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(2); // the new key is cached
  });
});

describe('with the default gap between downloads (1 s)', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp();
  });
  afterAll(() => t.close());

  test('rp-key-rotation-op-sign-key: a login right after the OP rotated its key succeeds (the unknown kid is fetched at once)', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1);
    t.op.rotateKeys();
    const agent = t.agent();
    const started = Date.now();
    const res = await t.login(agent);
    expect(res.status).toBe(302);
    expect(t.op.counts.jwks).toBe(2);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await agent.get('/me')).status).toBe(200);
  });

  test('tokens naming unknown kids do not hammer the OP: one download in flight, at most one a second', async () => {
    const { relyingParty } = t;
    const jwksUri = `${t.op.issuer}/jwks`;
    const set = (relyingParty as unknown as { keySets: { get(u: string, p: object): (h: object) => Promise<unknown> } }).keySets.get(jwksUri, {});
    const before = t.op.counts.jwks;
    const started = Date.now();
    const misses = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => set({ alg: 'RS256', kid: `forged-${i}` })));
    expect(misses.every((m) => m.status === 'rejected')).toBe(true);
    // 20 unknown kids at once: jose shares the one download in flight (maybe one more, spaced by the gap)
    expect(t.op.counts.jwks - before).toBeLessThanOrEqual(2);
    const again = await Promise.allSettled([set({ alg: 'RS256', kid: 'forged-late' })]);
    expect(again[0].status).toBe('rejected');
    // the next download waited for the 1 s gap
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
