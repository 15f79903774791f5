/**
 * Back-channel logout with a real Redis session store shared by two app instances: the OP calls
 * one instance, the session was made by the other.
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { CLIENT_ID, CLIENT_SECRET, close, listen, startRp, type ListableStore, type TestRp } from './support/rp-app.js';
import { logoutToken as signLogoutToken } from './support/logout-token.js';
import { expectOnlyPendingLogins, expectTabSignsIn } from './support/expect.js';
import { coordinationOf } from '../src/coordination.js';
import { unscopedLogoutIndexKey } from '../src/session.js';
import { eventually } from '../../../test/support/eventually.js';

let redis: RedisServer;
let client: ReturnType<typeof createClient>;
let t: TestRp;

beforeAll(async () => {
  redis = await startRedisServer();
  client = createClient({ url: redis.url });
  await client.connect();
  t = await startRp({ store: new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore });
}, 60_000);
afterAll(async () => {
  await t.close();
  await client.quit();
  await redis.stop();
});

/** A second instance of the app of `t` (same store, its own process state), and a user signed in there. */
async function signedInOnInstanceTwo(opts: { resave?: boolean } = {}) {
  const server = createServer();
  await listen(server);
  const app = express();
  app.use(session({ secret: 'test-session-secret', resave: opts.resave ?? false, saveUninitialized: false, store: t.store, name: 'sid' }));
  app.use(rp({ baseURL: t.baseURL, providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true }) } }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  app.get('/slow', requireAuth(), (_req, res) => void setTimeout(() => res.send('done'), 600));
  server.on('request', app);
  const browser = t.op.browser();
  const agent = request.agent(server);
  const start = await agent.get('/auth/login/op');
  const callback = await browser.authorize(start.headers.location);
  expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
  return { server, browser, agent };
}

test('a logout at the OP ends a session made by another instance, through the Redis store', async () => {
  const { server, browser, agent } = await signedInOnInstanceTwo();
  try {
    expect((await agent.get('/me')).status).toBe(200);
    const [id] = await t.authenticatedSessions();
    expect(await client.exists(`sess:${id}`)).toBe(1);
    const index = await client.keys('sess:oidc-bcl:op:*');
    // (keyed by the provider's name, its issuer and client: apps that share a store and a name keep apart)
    // and under 0.1.0's unscoped keys, which instances still on 0.1.0 read during a rolling upgrade
    expect(index).toHaveLength(4);
    expect(index).toEqual(expect.arrayContaining([expect.stringMatching(/^sess:oidc-bcl:op:[\w-]{12}:sid:/), expect.stringMatching(/^sess:oidc-bcl:op:[\w-]{12}:sub:alice$/),
      expect.stringMatching(/^sess:oidc-bcl:op:sid:/), 'sess:oidc-bcl:op:sub:alice']));

    await browser.endSession(`${t.op.issuer}/session/end`); // the OP posts the logout token to instance one
    for (let i = 0; i < 200 && (await client.exists(`sess:${id}`)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await client.exists(`sess:${id}`)).toBe(0);
    expect((await agent.get('/me')).status).toBe(401);
    expect(await t.authenticatedSessions()).toEqual([]);
    // the logout's sid leaves both indexes, 0.1.0's too (before, its key outlived every sign-out by 30 days)
    await eventually(async () => expect((await client.keys('sess:oidc-bcl:op:*')).filter((k) => k.includes(':sid:'))).toEqual([]), 3000);
  } finally {
    await close(server);
  }
});

test('a session that also holds another tab\'s pending login keeps only that one in the Redis store, and that tab still signs in (tabs probe F3)', async () => {
  const agent = t.agent();
  const startB = await agent.get('/auth/login/op?returnTo=/p2');
  await t.login(agent, { returnTo: '/p1' });
  const [id] = await t.authenticatedSessions();
  const token = await signLogoutToken(t.op, { sub: 'alice' });
  expect((await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token })).status).toBe(200);
  expect((await agent.get('/me')).status).toBe(401);
  await expectOnlyPendingLogins(t, id!, ['/p2']);
  // kept as long as a session of pending logins only (twice their life, 20 minutes), not the login's day
  expect(await client.pTTL(`sess:${id}`)).toBeLessThanOrEqual(2 * t.relyingParty.options.transactionTtl * 1000);
  await expectTabSignsIn(t, agent, startB.headers.location, 'bob', '/p2');
  for (const bob of await t.authenticatedSessions()) await new Promise((r) => t.store.destroy(bob, r)); // the next tests count alice's
});

test('a logout at the OP sticks while a request of that session is under way on the other instance and saves the session at its end (resave: true)', async () => {
  const { server, browser, agent } = await signedInOnInstanceTwo({ resave: true });
  try {
    const [id] = await t.authenticatedSessions();
    const slow = agent.get('/slow').then((res) => res);
    await new Promise((r) => setTimeout(r, 200));
    await browser.endSession(`${t.op.issuer}/session/end`); // the OP posts the logout token to instance one
    for (let i = 0; i < 200 && (await client.exists(`sess:${id}`)); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await slow).status).toBe(200); // resave: its end saved the session it read, with the login
    expect(await client.exists(`sess:${id}`)).toBe(0);
    expect((await agent.get('/me')).status).toBe(401); // before: 200, signed in again
  } finally {
    await close(server);
  }
});

describe('Redis full (maxmemory reached under noeviction: writes refused, reads and deletes served)', () => {
  const full = async <T>(during: () => Promise<T>): Promise<T> => {
    await client.configSet('maxmemory-policy', 'noeviction');
    await client.configSet('maxmemory', '1');
    try {
      return await during();
    } finally {
      await client.configSet('maxmemory', '0');
    }
  };

  test('a logout at the OP still ends the session; its 503 makes the OP retry, and the retry is not a replay', async () => {
    const agent = t.agent();
    await t.login(agent);
    const token = await signLogoutToken(t.op, { sub: 'alice' });
    const failed = await full(() => t.agent().post('/auth/backchannel-logout/op').set('accept', 'application/json').type('form').send({ logout_token: token }));
    expect([failed.status, failed.body.error, failed.headers['retry-after']]).toEqual([503, 'store_unavailable', '5']);
    expect(failed.body.error_description).toContain('Redis is out of memory: raise maxmemory');
    expect((await agent.get('/me')).status).toBe(401); // before: 200, the user still signed in once Redis had room
    const retried = await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token });
    expect(retried.status).toBe(200);
  });

  test('signing out here while Redis is full: 503 that keeps the login (its marks could not be written: a sign-out that would not hold is not answered as done)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await full(() => agent.post('/auth/logout').set('origin', t.baseURL).set('accept', 'application/json').type('form').send({}));
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'store_unavailable', '5']);
    expect((await agent.get('/me')).status).toBe(200);
    const again = await agent.post('/auth/logout').set('origin', t.baseURL).type('form').send({});
    expect(again.status).toBe(303);
    expect(again.headers.location).toContain(`${t.op.issuer}/session/end`);
    expect((await agent.get('/me')).status).toBe(401);
  });
});

describe('two apps on one Redis, each with a provider named "op" at its own OP (one session store, one coordination)', () => {
  let u: TestRp;
  beforeAll(async () => {
    u = await startRp({ store: new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore });
  });
  afterAll(() => u?.close());

  /** alice signed in at app t (OP t) and at app u (OP u): the same provider name, client id and `sub`. */
  async function aliceAtBoth() {
    const [atT, atU] = [t.agent(), u.agent()];
    expect((await t.login(atT)).status).toBe(302);
    expect((await u.login(atU)).status).toBe(302);
    expect((await atT.get('/me')).body).toMatchObject({ sub: 'alice', provider: 'op' });
    expect((await atU.get('/me')).body).toMatchObject({ sub: 'alice', provider: 'op' });
    return { atT, atU };
  }

  test('OP t\'s logout of its alice (a token with sub only) ends her session at app t, not the other alice\'s at app u', async () => {
    const { atT, atU } = await aliceAtBoth();
    const token = await signLogoutToken(t.op, { sub: 'alice' });
    expect((await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token })).status).toBe(200);
    expect((await atT.get('/me')).status).toBe(401);
    expect((await atU.get('/me')).status).toBe(200); // before: 401, the index key named only the provider ("op") and the sub
  });

  test('an index written by 0.1.0 (shared by both apps): the logout ends only the sessions of its own OP and client', async () => {
    const { atT, atU } = await aliceAtBoth();
    // as 0.1.0 indexed them: both apps' sessions under one key, nothing under the scoped ones
    const ids = (await client.keys('sess:*')).filter((k) => !k.startsWith('sess:oidc-')).map((k) => k.slice('sess:'.length));
    for (const key of await client.keys('sess:oidc-bcl:op:*:sub:alice')) await client.del(key);
    const coordination = coordinationOf(t.relyingParty, t.store);
    for (const id of ids) await coordination.addToSet(unscopedLogoutIndexKey('op', 'sub', 'alice'), id, 60_000, 500);
    const token = await signLogoutToken(t.op, { sub: 'alice' });
    expect((await t.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: token })).status).toBe(200);
    expect((await atT.get('/me')).status).toBe(401);
    expect((await atU.get('/me')).status).toBe(200);
    // app u's own logout still finds its session there
    const fromU = await signLogoutToken(u.op, { sub: 'alice' });
    expect((await u.agent().post('/auth/backchannel-logout/op').type('form').send({ logout_token: fromU })).status).toBe(200);
    expect((await atU.get('/me')).status).toBe(401);
  });
});
