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

describe('with the default cooldown', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp();
  });
  afterAll(() => t.close());

  test('an unknown kid right after a download does not trigger another download (no refetch storm)', async () => {
    expect((await t.login(t.agent())).status).toBe(302);
    expect(t.op.counts.jwks).toBe(1);
    t.op.rotateKeys();
    const agent = t.agent();
    const res = await t.login(agent);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_id_token');
    expect(t.op.counts.jwks).toBe(1);
    expect((await agent.get('/me')).status).toBe(401);
  });
});
