/**
 * An ID token in an `alg` the OP advertises but the RP does not accept by default (HMAC: the key is
 * the client secret, accepted only when the provider entry registers it). LemonLDAP::NG signs with
 * HS512 until told otherwise: the refusal names the alg and what to set.
 */
import request from 'supertest';
import { startStubRp, type StubRp } from './support/stub-rp.js';

const CLIENT_SECRET = 'stub-client-secret-0123456789-0123456789';
let t: StubRp;

beforeAll(async () => {
  t = await startStubRp({ clientSecret: CLIENT_SECRET });
  // read at the first login (discovery is cached)
  t.stub.metadata = { id_token_signing_alg_values_supported: ['HS512', 'RS256'] };
});
afterAll(() => t.close());

test('an HS512 ID token from an OP that advertises HS512 is refused, naming the alg and idTokenSignedResponseAlg; no login is written', async () => {
  t.stub.idToken = (claims) => t.stub.sign(claims, { alg: 'HS512', key: new TextEncoder().encode(CLIENT_SECRET) });
  const agent = request.agent(t.server);
  const res = await t.callback(agent);
  expect([res.status, res.body.error]).toEqual([401, 'invalid_id_token']);
  expect(res.body.error_description).toBe(`provider "stub" (issuer ${t.stub.issuer}), token endpoint ${t.stub.issuer}/token: `
    + 'the token was refused: it is signed with "alg" HS512, and tokens from this OP are accepted signed with RS256: '
    + "HMAC-signed tokens (keyed with the client secret) are accepted only when the provider entry sets idTokenSignedResponseAlg: 'HS512' "
    + "and the client is registered with it at the OP; otherwise have the OP sign this client's tokens with RS256");
  expect((await agent.get('/me')).status).toBe(401);
  expect(await t.loggedInSessions()).toEqual([]);
});

test('an ID token whose header "alg" is a hostile text is refused, naming it on one short line; no login is written', async () => {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  t.stub.idToken = async (claims) => `${part({ alg: `HS512\r\nSet-Cookie: x=1\u0007${'B'.repeat(300)}`, typ: 'JWT' })}.${part(claims)}.${'A'.repeat(86)}`;
  const agent = request.agent(t.server);
  const res = await t.callback(agent);
  expect([res.status, res.body.error]).toEqual([401, 'invalid_id_token']);
  expect(res.body.error_description).toContain('it is signed with "alg" HS512 Set-Cookie: x=1 BBBB');
  expect(res.body.error_description).not.toMatch(/[\u0000-\u001f\u007f]|B{30}/);
  expect(String(res.headers['set-cookie'] ?? '')).not.toContain('x=1');
  expect(await t.loggedInSessions()).toEqual([]);
});

test('(control) an RS256 ID token from the same OP logs in', async () => {
  t.stub.idToken = (claims) => t.stub.sign(claims);
  const agent = request.agent(t.server);
  expect((await t.callback(agent)).status).toBe(302);
  expect((await agent.get('/me')).status).toBe(200);
});
