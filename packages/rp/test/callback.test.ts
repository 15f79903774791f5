import { startRp, type TestRp } from './support/rp-app.js';

let t: TestRp;
beforeAll(async () => {
  t = await startRp();
});
afterAll(() => t.close());

describe('GET /auth/callback/:provider', () => {
  test('a user who logs in at the OP reaches /me with her normalized profile', async () => {
    const agent = t.agent();
    const done = await t.login(agent);
    expect(done.status).toBe(302);
    expect(done.headers.location).toBe('/me');
    const me = await agent.get('/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ sub: 'alice', provider: 'op', name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true });
  });
});
