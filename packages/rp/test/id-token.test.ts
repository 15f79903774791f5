/**
 * The ID token checks at the callback, against a hand-written OP that misbehaves on purpose
 * (a real oidc-provider cannot be made to sign a wrong nonce, audience or issuer).
 */
import type { Server } from 'node:http';
import request from 'supertest';
import { generateKeyPair } from 'jose';
import type { StubOp } from './support/op-stub.js';
import { startStubRp, type StubRp } from './support/stub-rp.js';

let t: StubRp;
let stub: StubOp;
let server: Server;

beforeAll(async () => {
  t = await startStubRp({ clientSecret: 'secret', fetchUserInfo: false });
  ({ stub, server } = t);
});
afterAll(() => t.close());
beforeEach(() => {
  stub.idToken = (claims) => stub.sign(claims);
  return t.clearStore();
});

const callback = (agent: request.Agent) => t.callback(agent);
/** How a refused ID token's message begins: the provider entry, its issuer and the token endpoint the token came from. */
const at = () => `provider "stub" (issuer ${stub.issuer}), token endpoint ${stub.issuer}/token: `;

async function expectRefused(res: request.Response, agent: request.Agent, pattern?: RegExp): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_id_token');
  if (pattern) expect(res.body.error_description).toMatch(pattern);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await t.loggedInSessions()).toEqual([]);
}

describe('the ID token at the callback', () => {
  test('a well-formed ID token logs in (the stub itself is sound)', async () => {
    const agent = request.agent(server);
    const res = await callback(agent);
    expect(res.status).toBe(302);
    expect((await agent.get('/me')).body.sub).toBe('mallory');
  });

  test('a wrong nonce does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, nonce: 'not-the-nonce' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /nonce/);
  });

  test('a missing nonce does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, nonce: undefined });
    const agent = request.agent(server);
    const res = await callback(agent);
    await expectRefused(res, agent, /nonce/);
  });

  test('a wrong audience does not log in, and the error names the provider, its token endpoint and the option to check', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: 'another-client' });
    const agent = request.agent(server);
    const res = await callback(agent);
    await expectRefused(res, agent, /aud/);
    expect(res.body.error_description).toBe(`${at()}the token was refused: unexpected JWT "aud" (audience) claim value. `
      + 'The ID token is for another client: check providers.stub.clientId against the client registered at the OP');
  });

  test('a wrong issuer does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iss: 'https://evil.example' });
    const agent = request.agent(server);
    const res = await callback(agent);
    await expectRefused(res, agent, /iss/);
    expect(res.body.error_description).toBe(`${at()}the token was refused: unexpected JWT "iss" (issuer) claim value. `
      + 'The ID token names another issuer: check providers.stub.issuer (the OP\'s exact issuer identifier)');
  });

  test('an expired ID token does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iat: Number(claims.iat) - 3600, exp: Number(claims.iat) - 600 });
    const agent = request.agent(server);
    const res = await callback(agent);
    await expectRefused(res, agent, /exp|timestamp/);
    expect(res.body.error_description.startsWith(at())).toBe(true);
    expect(res.body.error_description).toMatch(/clocks of this server and the OP/);
  });

  test('an ID token signed with another key (same kid) does not log in', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    stub.idToken = (claims) => stub.sign(claims, { key: privateKey });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /signature/);
  });

  test('an ID token with an unknown kid does not log in', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    stub.idToken = (claims) => stub.sign(claims, { key: privateKey, kid: 'attacker-key' });
    const agent = request.agent(server);
    const res = await callback(agent);
    await expectRefused(res, agent, /key/i);
    // the message names the OP's JWKS, where the key was looked for: the token endpoint is not added
    expect(res.body.error_description.startsWith(`provider "stub" (issuer ${stub.issuer}): `)).toBe(true);
  });

  test('an unsigned (alg none) ID token does not log in', async () => {
    stub.idToken = async (claims) => {
      const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${part({ alg: 'none' })}.${part(claims)}.`;
    };
    const agent = request.agent(server);
    const res = await callback(agent);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await agent.get('/me')).status).toBe(401);
  });
});

describe('the ID token sid: what a login takes, a front-channel logout can name', () => {
  const frontchannelLogout = (sid: string) => request(server).get(`/auth/frontchannel-logout/stub?iss=${encodeURIComponent(stub.issuer)}&sid=${sid}`);

  test('a login whose sid is longer than 256 characters is ended by the OP\'s front-channel logout of it', async () => {
    const sid = `${'s'.repeat(296)}-300`;
    stub.idToken = (claims) => stub.sign({ ...claims, sid });
    const agent = request.agent(server);
    expect((await callback(agent)).status).toBe(302);
    const res = await frontchannelLogout(sid);
    expect(res.status).toBe(200);
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('the bound is on the sid as a URL carries it: 1366 "€" (12294 characters percent-encoded) are refused at login (review-56: 4096 of them were taken, and their front-channel logout got 431 from Node); 455 (4095) sign in and are ended by it', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, sid: '\u20ac'.repeat(1366) });
    const refused = request.agent(server);
    await expectRefused(await callback(refused), refused, /^provider "stub" \(issuer [^)]+\), token endpoint \S+: the ID token's "sid" is 12294 characters long in a URL, longer than 4096/);
    const sid = '\u20ac'.repeat(455);
    stub.idToken = (claims) => stub.sign({ ...claims, sid });
    const agent = request.agent(server);
    expect((await callback(agent)).status).toBe(302);
    expect((await frontchannelLogout(encodeURIComponent(sid))).status).toBe(200);
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('a sid longer than 4096 characters is refused at login, saying so, rather than leave a login front-channel logout cannot end', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, sid: 's'.repeat(4097) });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /^provider "stub" \(issuer [^)]+\), token endpoint \S+: the ID token's "sid" is 4097 characters long in a URL, longer than 4096/);
  });

  test('a front-channel logout naming a longer sid is told that, not that it has no sid', async () => {
    const res = await frontchannelLogout('s'.repeat(4097)).set('accept', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', error_description: 'the front-channel logout request\'s sid is 4097 characters long in a URL, longer than any login takes (4096)' });
  });
});
