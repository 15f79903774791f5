/**
 * The ID token checks at the callback, against a hand-written OP that misbehaves on purpose
 * (a real oidc-provider cannot be made to sign a wrong nonce, audience or issuer).
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { generateKeyPair } from 'jose';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import { close, listen } from './support/rp-app.js';
import { startStubOp, type StubOp } from './support/op-stub.js';

let stub: StubOp;
let server: ReturnType<typeof createServer>;
let store: session.MemoryStore;

beforeAll(async () => {
  stub = await startStubOp('app');
  server = createServer();
  const baseURL = await listen(server);
  store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: 's', resave: false, saveUninitialized: false, store }));
  app.use(rp({ baseURL, providers: { stub: oidc({ issuer: stub.issuer, clientId: 'app', clientSecret: 'secret', fetchUserInfo: false, allowInsecureRequests: true }) } }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  server.on('request', app);
});
afterAll(async () => {
  await close(server);
  await stub.close();
});
beforeEach(() => {
  stub.idToken = (claims) => stub.sign(claims);
  return new Promise<void>((resolve) => store.clear(() => resolve()));
});

/** Starts a login at the RP and comes back to its callback as the stub OP would. */
async function callback(agent: request.Agent): Promise<request.Response> {
  const login = await agent.get('/auth/login/stub');
  const url = new URL(login.headers.location);
  await fetch(`${stub.issuer}/nonce`, { method: 'POST', body: url.searchParams.get('nonce')!, headers: { 'content-type': 'text/plain' } });
  return agent.get(`/auth/callback/stub?code=stub-code&state=${url.searchParams.get('state')}`);
}

async function expectRefused(res: request.Response, agent: request.Agent, pattern?: RegExp): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_id_token');
  if (pattern) expect(res.body.error_description).toMatch(pattern);
  expect((await agent.get('/me')).status).toBe(401);
  const all = await new Promise<Record<string, session.SessionData>>((resolve) => store.all((_e, s) => resolve((s ?? {}) as never)));
  expect(Object.values(all).filter((s) => s.oidc?.auth)).toEqual([]);
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

  test('a wrong audience does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: 'another-client' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /aud/);
  });

  test('a wrong issuer does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iss: 'https://evil.example' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /iss/);
  });

  test('an expired ID token does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iat: Number(claims.iat) - 3600, exp: Number(claims.iat) - 600 });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, /exp|timestamp/);
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
    await expectRefused(await callback(agent), agent, /key/i);
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
