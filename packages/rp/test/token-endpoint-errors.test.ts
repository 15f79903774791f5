/**
 * What the RP does with the token endpoint's error answers that are not RFC 6749 §5.2's JSON, as
 * real OPs and the proxies in front of them send them (the stub OP answers them on demand):
 * - a refresh refused with a bare 400 or 401 (Glewlwyd answers a revoked refresh token so) ends
 *   the login, as `invalid_grant` does: every later refresh would be refused alike;
 * - 429 Too Many Requests is transient, like a 5xx: 503 with Retry-After, the login is kept, and at
 *   the callback no session is written. The OP's own `Retry-After` is passed on (1 s to 2 minutes).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import request from 'supertest';
import type { StubOp } from './support/op-stub.js';
import { close, listen } from './support/rp-app.js';
import { startStubRp, type StubRp } from './support/stub-rp.js';

let t: StubRp;
let stub: StubOp;
let server: Server;

beforeAll(async () => {
  t = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789' });
  ({ stub, server } = t);
});
afterAll(() => t.close());
beforeEach(() => {
  stub.tokenAnswer = undefined;
  // one per test: the RP shares a refresh's result for a while among requests with the same token
  stub.refreshToken = `stub-refresh-token-${randomUUID()}`;
  stub.requests = [];
  return t.clearStore();
});

/** The start of a message that names the provider entry, its issuer and the token endpoint (never with a query). */
const atTokenEndpoint = (): RegExp => new RegExp(`^provider "stub" \\(issuer ${stub.issuer}\\), token endpoint ${stub.issuer}/token: `);

async function loggedIn(): Promise<request.Agent> {
  const agent = request.agent(server);
  expect((await t.callback(agent)).status).toBe(302);
  expect((await agent.get('/me')).status).toBe(200);
  return agent;
}

async function refresh(agent: request.Agent): Promise<request.Response> {
  const res = await agent.post('/auth/refresh').set('accept', 'application/json').send({});
  expect(stub.requests.at(-1)?.body.grant_type).toBe('refresh_token');
  return res;
}

describe('a refresh refused without an error body ends the login', () => {
  test.each([
    ['a bare 400 (no body, no content-type)', { status: 400 }],
    ['a bare 401', { status: 401 }],
    ['a 400 HTML page', { status: 400, body: '<h1>Bad Request</h1>', headers: { 'content-type': 'text/html' } }],
  ])('%s: 401 refresh_failed, and no login is left', async (_what, answer) => {
    const agent = await loggedIn();
    stub.tokenAnswer = answer;
    const res = await refresh(agent);
    expect([res.status, res.body.error]).toEqual([401, 'refresh_failed']);
    expect(res.body.error_description).toMatch(/refresh was refused/);
    expect(res.body.error_description).toMatch(atTokenEndpoint());
    expect((await agent.get('/me')).status).toBe(401);
    expect(await t.loggedInSessions()).toEqual([]);
  });

  test('(control) the same refresh answered with tokens keeps the login', async () => {
    const agent = await loggedIn();
    expect((await refresh(agent)).status).toBe(200);
    expect((await agent.get('/me')).status).toBe(200);
  });
});

describe('429 from the token endpoint is transient', () => {
  test.each([
    ['with an OAuth error body and the OP\'s Retry-After (passed on)', { status: 429, body: '{"error":"slow_down"}', headers: { 'content-type': 'application/json', 'retry-after': '30' } }, '30'],
    ['bare (our own Retry-After)', { status: 429 }, '5'],
    ['with Retry-After as an HTTP date 40 s ahead', { status: 429, headers: { 'retry-after': new Date(Date.now() + 40_000).toUTCString() } }, /^(3[0-9]|4[01])$/],
    ['with a Retry-After of a day (kept at 2 minutes: a user is looking at the page)', { status: 429, headers: { 'retry-after': '86400' } }, '120'],
    ['with an unreadable Retry-After (our own)', { status: 429, headers: { 'retry-after': 'soon' } }, '5'],
    ['with a Retry-After of 0 (at least 1 s)', { status: 429, headers: { 'retry-after': '0' } }, '1'],
  ])('a refresh answered 429 %s: 503 op_unavailable with Retry-After, and the login is kept', async (_what, answer, retryAfter) => {
    const agent = await loggedIn();
    stub.tokenAnswer = answer;
    const res = await refresh(agent);
    expect([res.status, res.body.error]).toEqual([503, 'op_unavailable']);
    expect(res.headers['retry-after']).toMatch(retryAfter);
    expect(res.body.error_description).toMatch(/HTTP 429/);
    expect(res.body.error_description).toMatch(atTokenEndpoint());
    stub.tokenAnswer = undefined;
    expect((await agent.get('/me')).status).toBe(200);
    expect(await t.loggedInSessions()).toHaveLength(1);
  });

  test('a code exchange answered 503 with the OP\'s Retry-After: passed on, and no login is written', async () => {
    stub.tokenAnswer = { status: 503, body: '<h1>Down for maintenance</h1>', headers: { 'content-type': 'text/html', 'retry-after': '17' } };
    const agent = request.agent(server).set('accept', 'application/json');
    const res = await t.callback(agent);
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'op_unavailable', '17']);
    expect((await agent.get('/me')).status).toBe(401);
    expect(await t.loggedInSessions()).toEqual([]);
  });

  test('a code exchange answered 429: 503 op_unavailable with Retry-After, and no login is written', async () => {
    stub.tokenAnswer = { status: 429 };
    const agent = request.agent(server).set('accept', 'application/json');
    const res = await t.callback(agent);
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'op_unavailable', '5']);
    expect((await agent.get('/me')).status).toBe(401);
    expect(await t.loggedInSessions()).toEqual([]);
  });
});

describe('an error of the code exchange says which provider and endpoint failed, and what to do', () => {
  test('the code refused (invalid_grant): 400, naming the token endpoint, and "sign in again"', async () => {
    stub.tokenAnswer = { status: 400, body: '{"error":"invalid_grant","error_description":"grant request is invalid"}', headers: { 'content-type': 'application/json' } };
    const res = await t.callback(request.agent(server).set('accept', 'application/json'));
    expect([res.status, res.body.error, res.body.op_error]).toEqual([400, 'invalid_grant', 'invalid_grant']);
    expect(res.body.error_description).toMatch(atTokenEndpoint());
    expect(res.body.error_description).toMatch(/the OpenID Provider answered "invalid_grant": grant request is invalid\. The authorization code was used already, .*: sign in again$/);
  });

  test('a login page instead of JSON: 400 invalid_response, saying to check that the URL is the OP\'s', async () => {
    stub.tokenAnswer = { status: 200, body: '<html>Sign in to the proxy</html>', headers: { 'content-type': 'text/html' } };
    const res = await t.callback(request.agent(server).set('accept', 'application/json'));
    expect([res.status, res.body.error]).toEqual([400, 'invalid_response']);
    expect(res.body.error_description).toMatch(atTokenEndpoint());
    expect(res.body.error_description).toMatch(/unexpected response content-type\. Check that this URL is the OP's endpoint/);
  });

  test('a token endpoint nobody listens on: 503 op_unreachable with Retry-After, "connection refused", and what to check', async () => {
    const closed = createServer();
    const port = Number(new URL(await listen(closed)).port);
    await close(closed);
    const refused = await startStubRp({ clientSecret: 'stub-client-secret-0123456789-0123456789' });
    refused.stub.metadata = { token_endpoint: `http://127.0.0.1:${port}/token` };
    try {
      const res = await refused.callback(request.agent(refused.server).set('accept', 'application/json'));
      expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'op_unreachable', '5']);
      expect(res.body.error_description).toBe(`provider "stub" (issuer ${refused.stub.issuer}), token endpoint http://127.0.0.1:${port}/token: `
        + 'the OpenID Provider could not be reached (connection refused). Check that the OP is up and that this server can reach it (DNS, firewall, outbound proxy); try again shortly');
    } finally {
      await refused.close();
    }
  });
});
