/**
 * Claims nested absurdly deep (only a malicious OP sends them), in the ID token or the userinfo answer: the login
 * is refused with a plain reason, not "Maximum call stack size exceeded" from whatever code first recursed through them.
 */
import request from 'supertest';
import { CompactSign } from 'jose';
import { startStubRp, type StubRp } from './support/stub-rp.js';

let t: StubRp;
beforeAll(async () => {
  t = await startStubRp({ clientSecret: 'secret', fetchUserInfo: true });
  t.stub.userinfo = { sub: 'mallory' }; // (before the first login: the stub's discovery names the userinfo endpoint)
});
afterAll(() => t.close());
beforeEach(() => {
  t.stub.idToken = (claims) => t.stub.sign(claims);
  t.stub.userinfoAnswer = undefined;
  return t.clearStore();
});

/** `{"a":{"a":…"x"…}}`, `depth` objects deep, written as text (JSON.stringify itself would overflow the stack). */
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}`;

/** ID tokens whose payload carries `"deep": nested(depth)`, signed by the stub OP. */
const deepIdToken = (depth: number) => (claims: Record<string, unknown>) =>
  new CompactSign(new TextEncoder().encode(`${JSON.stringify(claims).slice(0, -1)},"deep":${nested(depth)}}`))
    .setProtectedHeader({ alg: 'RS256', kid: t.stub.kid }).sign(t.stub.key);

async function expectRefusedAsDeep(agent: request.Agent): Promise<void> {
  const res = await t.callback(agent.set('accept', 'application/json'));
  expect(res.status).toBe(400);
  expect(res.body).toEqual({ error: 'invalid_response', error_description: 'the OpenID Provider\'s answer was refused: its claim "deep" is nested deeper than 100 levels' });
  expect((await agent.get('/me')).status).toBe(401);
  expect(await t.loggedInSessions()).toEqual([]);
}

test('a claim nested 100 levels deep signs in, and reads back', async () => {
  t.stub.idToken = deepIdToken(100);
  const agent = request.agent(t.server);
  expect((await t.callback(agent)).status).toBe(302);
  const me = await agent.get('/me');
  expect(me.status).toBe(200);
  expect(JSON.stringify(me.body.claims.deep)).toBe(nested(100));
});

test.each([101, 20_000])('an ID token claim nested %i levels deep is refused, saying so', async (depth) => {
  t.stub.idToken = deepIdToken(depth);
  await expectRefusedAsDeep(request.agent(t.server));
});

test('a userinfo claim nested 20000 levels deep is refused, saying so', async () => {
  t.stub.userinfoAnswer = { status: 200, headers: { 'content-type': 'application/json' }, body: `{"sub":"mallory","deep":${nested(20_000)}}` };
  await expectRefusedAsDeep(request.agent(t.server));
});
