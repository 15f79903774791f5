/**
 * Several RP instances on one Redis (sessions through connect-redis, `redisCoordination`), one real
 * OP that rotates refresh tokens: the instances act as one. And transient failures (the OP or the
 * store down) are 503s that keep the login, never a logout.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import session from 'express-session';
import request from 'supertest';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { oidc, redisCoordination, requireAuth, rp, type Coordination, type RpOptions } from '@openid-express/rp';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { CLIENT_ID, CLIENT_SECRET, close, listen, startRp, tokenRoute, type ListableStore, type TestRp } from './support/rp-app.js';
import { logoutToken as signLogoutToken } from './support/logout-token.js';
import { sessionStoreCoordination } from '../src/coordination.js';
import { sessionCookieOf } from './support/expect.js';
import { pendingLogins } from '../src/transactions.js';

let redis: RedisServer;
let client: ReturnType<typeof createClient>;

beforeAll(async () => {
  redis = await startRedisServer();
  client = createClient({ url: redis.url });
  client.on('error', () => undefined); // the stall tests stop Redis on purpose
  await client.connect();
}, 60_000);
afterAll(async () => {
  await client.quit().catch(() => undefined);
  await redis.stop();
});

/** A second instance of the app of `t`: same baseURL, session store and client, its own process state. */
async function secondInstance(t: TestRp, extra: Partial<RpOptions>, routes?: (app: Express) => void, store: session.Store = t.store): Promise<{ server: Server; app: Express }> {
  const server = createServer();
  await listen(server);
  const app = express();
  app.use(rp({
    baseURL: t.baseURL,
    session: session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store, name: 'sid' }),
    providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email offline_access', allowInsecureRequests: true }) },
    ...extra,
  }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  routes?.(app);
  tokenRoute(app);
  server.on('request', app);
  return { server, app };
}

/** An express-session cookie signed with `secret`, as a browser would send it (so the store is asked for it). */
const signedCookie = (id: string, secret: string): string =>
  `sid=${encodeURIComponent(`s:${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`)}`;
const cookieOf = (res: request.Response): string => sessionCookieOf(res);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  ['with redisCoordination', true],
  ['without coordination (the control: what the option prevents)', false],
])('ten concurrent requests of one session over two instances, access token expired, %s', (_label, coordinated) => {
  let t: TestRp;
  let b: { server: Server };
  let coordination: Coordination | undefined;
  beforeAll(async () => {
    const prefix = `sess-${coordinated ? 'c' : 'n'}:`;
    coordination = coordinated ? redisCoordination(client, { prefix: `rp-${prefix}` }) : undefined;
    t = await startRp({
      store: new RedisStore({ client, prefix }) as unknown as ListableStore,
      op: { ttl: { AccessToken: 2 } },
      rp: { coordination },
      routes: tokenRoute,
    });
    b = await secondInstance(t, { coordination });
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test(coordinated ? 'one refresh grant, every request succeeds, the login stays' : 'more than one grant, or a logout', async () => {
    const callback = await t.login(t.agent());
    const cookie = cookieOf(callback);
    await sleep(3100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const servers = [t.server, b.server];
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => request(servers[i % 2]).get('/token').set('cookie', cookie)));
    const made = (t.op.counts.grants.refresh_token ?? 0) - grants;
    if (!coordinated) {
      // each instance runs its own grant: two grants, or a replayed rotated token that logs the user out
      expect(made > 1 || answers.some((a) => a.status !== 200)).toBe(true);
      return;
    }
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(made).toBe(1);
    expect(new Set(answers.map((a) => a.body.value)).size).toBe(1);
    for (const server of servers) expect((await request(server).get('/me').set('cookie', cookie)).status).toBe(200);
    const later = await request(b.server).get('/token').set('cookie', cookie);
    expect(later.status).toBe(200);
    expect(later.body.value).toBe(answers[0]!.body.value);
  });
});

// A plain refresh on one instance and req.oidc.refresh({ scope }) of the same login on another at once both
// spent its refresh token: the Redis lock was keyed by scope. The OP, which rotates refresh tokens, took the
// second use for a replay and revoked the grant: a 401 refresh_failed, and the login ended (probe24 F1b).
describe('a narrowed refresh on one instance beside a plain one on another (redisCoordination, an OP that rotates refresh tokens)', () => {
  let t: TestRp;
  let b: { server: Server };
  let signal: () => void = () => undefined;
  // the OP's token endpoint is slow (300 ms), so the second refresh surely comes while the first runs
  const customFetch = async (url: string, init: unknown): Promise<Response> => {
    if (new URL(url).pathname === '/token') {
      signal();
      await sleep(300);
    }
    return fetch(url, init as RequestInit);
  };
  const narrow = (app: Express): void => {
    app.post('/narrow', requireAuth(), async (req, res, next) => {
      try {
        res.json({ scope: (await req.oidc.refresh({ scope: 'openid' })).scope });
      } catch (err) {
        next(err);
      }
    });
  };
  beforeAll(async () => {
    const coordination = redisCoordination(client, { prefix: 'rp-narrow:' });
    t = await startRp({
      store: new RedisStore({ client, prefix: 'sess-narrow:' }) as unknown as ListableStore,
      rp: { coordination },
      provider: { customFetch },
      routes: (app) => { narrow(app); tokenRoute(app); },
    });
    b = await secondInstance(t, {
      coordination,
      providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email offline_access', allowInsecureRequests: true, customFetch }) },
    }, narrow);
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test.each([
    ['the plain one first', '/auth/refresh', '/narrow'],
    ['the narrowed one first', '/narrow', '/auth/refresh'],
  ])('%s: the other waits for the lock and goes on from the rotated token; both succeed and the login stays', async (_label, first, second) => {
    const cookie = cookieOf(await t.login(t.agent()));
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const sent = new Promise<void>((resolve) => void (signal = resolve));
    const one = request(t.server).post(first).set('cookie', cookie).then((res) => res);
    await sent; // instance A's grant is at the OP: instance B's request comes while it runs
    const [a, other] = await Promise.all([one, request(b.server).post(second).set('cookie', cookie)]);
    expect([a.status, other.status]).toEqual([200, 200]);
    expect((first === '/narrow' ? a : other).body.scope).toBe('openid');
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(2); // one after the other, the second with the rotated token
    // the session holds a refresh token the OP still takes, on either instance
    expect((await request(b.server).post('/auth/refresh').set('cookie', cookie)).status).toBe(200);
    expect((await request(t.server).post('/auth/refresh').set('cookie', cookie)).status).toBe(200);
    expect((await request(t.server).get('/me').set('cookie', cookie)).status).toBe(200);
  });
});

/** A MemoryStore whose get/set/destroy a library replaced on the instance, writing through to `shared` (each instance has its own). */
function writingThrough(shared: session.Store): ListableStore {
  const store = new session.MemoryStore();
  store.get = (sid, cb) => shared.get(sid, cb);
  store.set = (sid, data, cb) => shared.set(sid, data, cb);
  store.destroy = (sid, cb) => shared.destroy(sid, cb);
  return store as ListableStore;
}

describe('two instances whose MemoryStores a library writes through to one Redis (no coordination option)', () => {
  let t: TestRp;
  let b: { server: Server };
  beforeAll(async () => {
    const shared = new RedisStore({ client, prefix: 'sess-through:' });
    t = await startRp({ store: writingThrough(shared) });
    b = await secondInstance(t, {}, undefined, writingThrough(shared));
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test('a sign-in answer lost on its way from instance A, sent again to instance B: B joins the login A made, with no second code exchange (review C1)', async () => {
    const start = await request(t.server).get('/auth/login/op');
    const cookie = cookieOf(start);
    const callback = await t.op.browser().authorize(start.headers.location);
    const path = callback.pathname + callback.search;
    const done = await request(t.server).get(path).set('cookie', cookie);
    expect(done.status).toBe(302);
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const again = await request(b.server).get(path).set('cookie', cookie);
    // before: 400 invalid_state, each instance kept the claim of the answer in its own process's map
    expect([again.status, again.headers.location, cookieOf(again)]).toEqual([302, '/', cookieOf(done)]);
    expect((await request(b.server).get('/me').set('cookie', cookieOf(again))).body.sub).toBe('alice');
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
  });
});

describe('back-channel logout and logout-token replay across instances (redisCoordination)', () => {
  let t: TestRp;
  let b: { server: Server };
  beforeAll(async () => {
    const coordination = redisCoordination(client, { prefix: 'rp-bcl:' });
    t = await startRp({ store: new RedisStore({ client, prefix: 'sess-bcl:' }) as unknown as ListableStore, rp: { coordination } });
    b = await secondInstance(t, { coordination });
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test('instance A receives the logout token, the session instance B wrote ends; the index lives in Redis', async () => {
    const browser = t.op.browser();
    const agent = request.agent(b.server);
    const start = await agent.get('/auth/login/op');
    const callback = await browser.authorize(start.headers.location);
    expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
    expect((await agent.get('/me')).status).toBe(200);
    // this provider's index (its issuer and client hashed in), and 0.1.0's unscoped one, which instances still on 0.1.0 read
    const keys = await client.keys('rp-bcl:oidc-bcl:op:*');
    expect(keys).toHaveLength(4);
    expect(keys).toEqual(expect.arrayContaining([expect.stringMatching(/^rp-bcl:oidc-bcl:op:[\w-]{12}:sid:/), expect.stringMatching(/^rp-bcl:oidc-bcl:op:[\w-]{12}:sub:alice$/),
      expect.stringMatching(/^rp-bcl:oidc-bcl:op:sid:/), 'rp-bcl:oidc-bcl:op:sub:alice']));
    await browser.endSession(`${t.op.issuer}/session/end`); // the OP posts to the registered URI: instance A (t)
    for (let i = 0; i < 200 && (await t.authenticatedSessions()).length; i++) await sleep(50);
    expect(await t.authenticatedSessions()).toEqual([]);
    expect((await agent.get('/me')).status).toBe(401);
    // the sid's index record was taken (0.1.0's keeps the id of the ended session until it expires: an id whose
    // session is gone is not ended from it, as it may be another app's login under way)
    expect(await client.keys('rp-bcl:oidc-bcl:op:*:sid:*')).toEqual([]);
  });

  test('Redis stalls just as a back-channel logout reads its index: 503, and the OP\'s retry ends the session (the stalled call, run late, did not empty the index)', async () => {
    const inner = redisCoordination(client, { prefix: 'rp-bcl:', timeout: 400 });
    let stallNext = false;
    /** Freezes Redis for 1.2 s right as the index is read: the call runs when Redis wakes, after the request gave up. */
    const stalling = <T>(call: () => Promise<T>): Promise<T> => {
      if (stallNext) {
        stallNext = false;
        process.kill(redis.pid, 'SIGSTOP');
        setTimeout(() => process.kill(redis.pid, 'SIGCONT'), 1200);
      }
      return call();
    };
    const coordination: Coordination = {
      ...inner,
      takeSet: (key) => stalling(() => inner.takeSet(key)),
      readSet: (key) => stalling(() => inner.readSet!(key)),
    };
    const c = await secondInstance(t, { coordination });
    try {
      const agent = request.agent(b.server);
      const browser = t.op.browser();
      const start = await agent.get('/auth/login/op');
      const callback = await browser.authorize(start.headers.location);
      expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
      const token = await signLogoutToken(t.op, { sub: 'alice' });
      stallNext = true;
      const refused = await request(c.server).post('/auth/backchannel-logout/op').set('accept', 'application/json').type('form').send({ logout_token: token });
      expect([refused.status, refused.body.error, refused.headers['retry-after']]).toEqual([503, 'store_unavailable', '5']);
      await sleep(1500); // Redis is back, and has run what was sent to it meanwhile
      expect((await agent.get('/me')).status).toBe(200);
      const retried = await request(c.server).post('/auth/backchannel-logout/op').type('form').send({ logout_token: token });
      expect(retried.status).toBe(200);
      expect((await agent.get('/me')).status).toBe(401);
      const [subIndex] = await client.keys('rp-bcl:oidc-bcl:op:*:sub:alice');
      expect(subIndex === undefined ? [] : await client.zRange(subIndex, 0, -1)).toEqual([]);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
      await close(c.server);
    }
  });

  /** A login at the OP up to its answer: the browser's cookie, the callback path, and the Redis key of its claim. */
  async function answeredLogin(): Promise<{ cookie: string; callback: string; state: string; claimKey: string }> {
    const start = await request.agent(t.server).get('/auth/login/op');
    const callback = await t.op.browser().authorize(start.headers.location);
    const state = new URL(start.headers.location).searchParams.get('state')!;
    return { cookie: cookieOf(start), callback: callback.pathname + callback.search, state, claimKey: `rp-bcl:oidc-cb:${createHash('sha256').update(state).digest('base64url')}` };
  }

  test('the same callback at both instances at once (a double submit across the load balancer): one code exchange, one login, both answers signed in', async () => {
    const { cookie, callback, claimKey } = await answeredLogin();
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const answers = await Promise.all([t.server, b.server].map((server) => request(server).get(callback).set('cookie', cookie)));
    expect(answers.map((a) => a.status)).toEqual([302, 302]);
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(1);
    const [first, second] = answers.map(cookieOf);
    expect(first).toBe(second); // the copy joined the login the other instance finished
    for (const server of [t.server, b.server]) expect((await request(server).get('/me').set('cookie', first!)).status).toBe(200);
    // the claim, in Redis: it now says the answer signed in (sealed with the browser's old session)
    expect(await client.get(claimKey)).toMatch(/^done:/);
    // the old session is gone: the same browser sending the answer again (it never got one) joins the login,
    // with no exchange; without that browser's cookie the answer signs nobody in
    const again = await request(b.server).get(callback).set('cookie', cookie);
    expect([again.status, again.headers.location, cookieOf(again)]).toEqual([302, '/', first]);
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(1);
    const replay = await request(b.server).get(callback);
    expect(replay.status).toBe(400);
    expect(cookieOf(replay)).not.toBe(first);
  });

  test('an instance that died holding the callback (a load balancer sends the GET again to another instance): the claim frees itself and the other instance signs in', async () => {
    const { cookie, callback, claimKey } = await answeredLogin();
    // what the dead instance left: its claim, no longer renewed (1.5 s of its lease left)
    await client.set(claimKey, 'run:dead-instance', { PX: 1500 });
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const started = Date.now();
    const retried = await request(b.server).get(callback).set('cookie', cookie);
    expect(retried.status).toBe(302); // before: 400 "already used" for as long as the login could last
    expect(Date.now() - started).toBeGreaterThan(1200); // it waited for the lease, not longer than needed
    expect(Date.now() - started).toBeLessThan(5000);
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(1);
    expect((await request(t.server).get('/me').set('cookie', cookieOf(retried))).status).toBe(200);
  });

  test('a claim still renewed by a live instance is waited for, then its answer is taken: a second copy never redeems the code', async () => {
    const { cookie, callback, state, claimKey } = await answeredLogin();
    await client.set(claimKey, 'run:slow-instance', { PX: 1000 });
    // the slow instance renews its lease, then fails for good (say the OP refused the code)
    const renew = setInterval(() => void client.set(claimKey, 'run:slow-instance', { PX: 1000 }), 300);
    setTimeout(() => {
      clearInterval(renew);
      void client.set(claimKey, 'spent', { PX: 60_000 });
    }, 2500);
    const grants = t.op.counts.grants.authorization_code ?? 0;
    const started = Date.now();
    const copy = await request(b.server).get(callback).set('cookie', cookie);
    clearInterval(renew);
    expect(Date.now() - started).toBeGreaterThan(2300);
    expect(copy.status).toBe(400);
    expect(copy.body.error_description).toMatch(/already used/);
    expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
    // the copy read the session before the owner ended: it does not write that old copy back (which
    // would undo what an owner kept for a retry, or bring back a session its login replaced)
    const sid = decodeURIComponent(cookie).replace(/^sid=s:/, '').replace(/\.[^.]*$/, '');
    expect(await client.get(`sess-bcl:${sid}`)).toContain(state);
  });
});

/**
 * Two instances on Redis (sessions under `sess-<name>:`, `redisCoordination` under `rp-<name>:`),
 * access tokens of 2 s, whose session writes fail while `failing.saves` is set.
 */
/** `failing.saves`: every save fails; `failing.readsAfter`: that many reads answer, then every read fails (until it is unset). */
async function instancesWithFailingSaves(name: string): Promise<{ t: TestRp; b: { server: Server }; failing: { saves: boolean; readsAfter?: number } }> {
  const failing: { saves: boolean; readsAfter?: number } = { saves: false };
  const store = new RedisStore({ client, prefix: `sess-${name}:` }) as unknown as ListableStore;
  const set = store.set.bind(store);
  store.set = (sid, data, cb) => (failing.saves ? cb?.(new Error('ECONNRESET')) : set(sid, data, cb));
  const get = store.get.bind(store);
  store.get = (sid, cb) => (failing.readsAfter !== undefined && failing.readsAfter-- <= 0 ? cb(new Error('ECONNRESET')) : get(sid, cb));
  const coordination = redisCoordination(client, { prefix: `rp-${name}:` });
  const t = await startRp({ store, op: { ttl: { AccessToken: 2 } }, rp: { coordination }, routes: tokenRoute });
  return { t, b: await secondInstance(t, { coordination }), failing };
}

describe('a session store that fails while the refreshed tokens are saved (redisCoordination, two instances)', () => {
  let t: TestRp;
  let b: { server: Server };
  let failing: { saves: boolean; readsAfter?: number };
  beforeAll(async () => {
    ({ t, b, failing } = await instancesWithFailingSaves('keep'));
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test('the refresh answers 503 and keeps its result until the session holds it: the next request, on the other instance, gets the new tokens, with no second grant', async () => {
    const cookie = cookieOf(await t.login(t.agent()));
    await sleep(3100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    failing.saves = true;
    const refused = await request(t.server).get('/token').set('cookie', cookie);
    failing.saves = false;
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('store_unavailable');
    expect(refused.headers['retry-after']).toBe('5');
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1); // the OP rotated the refresh token
    // the session still holds the rotated one: the shared result is its only way to the new tokens,
    // kept far longer than the 30 s a saved result needs (before, it expired then, and the next
    // request replayed the rotated token: the OP revoked the grant and the user was logged out)
    const [resultKey] = await client.keys('rp-keep:refresh-result:*');
    expect(await client.pTTL(resultKey!)).toBeGreaterThan(3600_000);
    const later = await request(b.server).get('/token').set('cookie', cookie);
    expect(later.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    // now saved: the result only outlives the requests that read the session before (2 minutes)
    for (let i = 0; i < 50 && (await client.pTTL(resultKey!)) > 120_000; i++) await sleep(20);
    expect(await client.pTTL(resultKey!)).toBeLessThanOrEqual(120_000);
    expect((await request(t.server).get('/me').set('cookie', cookie)).status).toBe(200);
    expect((await request(t.server).get('/token').set('cookie', cookie)).body.value).toBe(later.body.value);
  });

  test('the same when the store fails as the refresh reads the session again before it saves (to keep what other requests wrote meanwhile)', async () => {
    const cookie = cookieOf(await t.login(t.agent()));
    await sleep(3100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    failing.readsAfter = 1; // the request's own read of its session answers, the read before the save does not
    const refused = await request(t.server).get('/token').set('cookie', cookie);
    failing.readsAfter = undefined;
    expect({ status: refused.status, error: refused.body.error, retryAfter: refused.headers['retry-after'] }).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    const later = await request(b.server).get('/token').set('cookie', cookie);
    expect(later.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1); // the kept result: no second grant, no replay
    expect((await request(t.server).get('/token').set('cookie', cookie)).body.value).toBe(later.body.value);
  });
});

/** A promise and its `resolve`, to hold one request at a chosen point until the test lets it go on. */
const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
};

/**
 * The other request of the session: `POST /slow-write` reads the session, says so (`reached`), waits
 * until the test lets it go on (`go`), then writes something of its own (`lastSeen`) and removes the
 * `cart` (`POST /cart` put it there), and with `?visits=N` sets `visits`. `GET /visit-token`: the refreshing request writes something of
 * its own before it asks for the token.
 */
const slowRequest = { reached: deferred(), go: deferred() };
const slowWrite = (app: Express): void => {
  app.post('/cart', requireAuth(), (req, res) => {
    (req.session as unknown as { cart: string }).cart = 'three books';
    res.json({});
  });
  app.post('/slow-write', requireAuth(), async (req, res) => {
    slowRequest.reached.resolve();
    await slowRequest.go.promise;
    (req.session as unknown as { lastSeen: string }).lastSeen = 'the app wrote this';
    delete (req.session as unknown as { cart?: string }).cart;
    if (req.query.visits) (req.session as unknown as { visits: number }).visits = Number(req.query.visits);
    res.json({});
  });
  app.get('/visit-token', requireAuth(), async (req, res, next) => {
    (req.session as unknown as { visits: number }).visits = 1;
    try {
      res.json({ value: (await req.oidc.getValidAccessToken()).value });
    } catch (err) {
      next(err);
    }
  });
};

describe.each([
  ['two instances on Redis (redisCoordination)', true],
  ['one instance, MemoryStore, no coordination', false],
])('a request that read the session before a refresh saves it: %s', (_label, coordinated) => {
  let t: TestRp;
  let b: { server: Server } | undefined;
  /** While set, the OP's answer to a refresh waits for it (after resolving `opReached`). */
  let opHold: Promise<void> | undefined;
  let opReached = deferred();
  beforeAll(async () => {
    const coordination = coordinated ? redisCoordination(client, { prefix: 'rp-stale:' }) : undefined;
    t = await startRp({
      ...(coordinated ? { store: new RedisStore({ client, prefix: 'sess-stale:' }) as unknown as ListableStore } : {}),
      op: { ttl: { AccessToken: 2 } },
      rp: { coordination },
      routes: (app) => { slowWrite(app); tokenRoute(app); },
      // the app's middleware between express-session and rp() writes too, on the refreshing request
      afterSession: (app) => app.use((req, _res, next) => {
        if (req.path === '/visit-token') (req.session as unknown as { via: string }).via = 'a middleware before rp()';
        next();
      }),
      provider: {
        customFetch: async (url, init) => {
          if (opHold && url.endsWith('/token') && String(init.body).includes('grant_type=refresh_token')) {
            opReached.resolve();
            await opHold;
          }
          return fetch(url, init as RequestInit);
        },
      },
    });
    b = coordinated ? await secondInstance(t, { coordination }, slowWrite) : undefined;
  }, 60_000);
  afterAll(async () => {
    if (b) await close(b.server);
    await t.close();
  });
  beforeEach(() => {
    Object.assign(slowRequest, { reached: deferred(), go: deferred() });
    opHold = undefined;
    opReached = deferred();
  });

  let sid: string;
  const signIn = async (): Promise<string> => {
    const cookie = cookieOf(await t.login(t.agent()));
    sid = /^s:([^.]+)\./.exec(decodeURIComponent(cookie.slice('sid='.length)))![1]!;
    return cookie;
  };
  type Stored = { refreshToken?: string; lastSeen?: string; cart?: string; visits?: number; via?: string; pending: number };
  const stored = async (): Promise<Stored> => {
    const data = await new Promise<session.SessionData & Omit<Stored, 'refreshToken' | 'pending'>>((resolve, reject) => t.store.get(sid, (err, s) => (err ? reject(err) : resolve(s as never))));
    const { lastSeen, cart, visits, via } = data;
    return { refreshToken: (data.oidc!.auth as { refreshToken?: string }).refreshToken, lastSeen, cart, visits, via, pending: pendingLogins(data.oidc).length };
  };

  test('the refresh saves first, the other request after: its save keeps the new refresh token, not the spent one (with a rotating OP its next refresh would revoke the grant), and its own write', async () => {
    const cookie = await signIn();
    const before = (await stored()).refreshToken;
    await sleep(2100); // the access token has expired
    const grants = t.op.counts.grants.refresh_token ?? 0;
    const slow = request(b?.server ?? t.server).post('/slow-write').set('cookie', cookie).then((r) => r);
    await slowRequest.reached.promise; // it has read the session (the spent refresh token to be)
    expect((await request(t.server).get('/token').set('cookie', cookie)).status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    const rotated = (await stored()).refreshToken;
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(before);
    slowRequest.go.resolve();
    expect((await slow).status).toBe(200);
    let after = await stored();
    for (let i = 0; i < 50 && after.refreshToken !== rotated; i++) after = (await sleep(20), await stored());
    // before: the slow route's save put `before` back, and once the shared result was gone (30 s) the
    // next refresh replayed it: the OP revoked the grant and the user was logged out
    expect(after).toMatchObject({ refreshToken: rotated, lastSeen: 'the app wrote this' });
    await sleep(2100);
    const later = await request(b?.server ?? t.server).get('/token').set('cookie', cookie);
    expect(later.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(2);
    expect((await stored()).refreshToken).not.toBe(rotated);
  }, 60_000);

  test('the same when the refresh asked for a narrower scope (POST /auth/refresh { scope }; review)', async () => {
    const cookie = await signIn();
    const before = (await stored()).refreshToken;
    const slow = request(b?.server ?? t.server).post('/slow-write').set('cookie', cookie).then((r) => r);
    await slowRequest.reached.promise;
    const narrowed = await request(t.server).post('/auth/refresh').set({ cookie, origin: t.baseURL }).type('form').send({ scope: 'openid email' });
    expect(narrowed.status).toBe(200);
    const rotated = (await stored()).refreshToken;
    expect(rotated).not.toBe(before);
    slowRequest.go.resolve();
    expect((await slow).status).toBe(200);
    let after = await stored();
    for (let i = 0; i < 50 && after.refreshToken !== rotated; i++) after = (await sleep(20), await stored());
    expect(after).toMatchObject({ refreshToken: rotated, lastSeen: 'the app wrote this' });
  }, 60_000);

  test('the other request saves while the OP answers the refresh: the refresh\'s save keeps that request\'s write and removal, a login started meanwhile in another tab, and its own request\'s writes, a middleware\'s before rp() included (before, it put the session back as it read it)', async () => {
    const cookie = await signIn();
    expect((await request(t.server).post('/cart').set('cookie', cookie)).status).toBe(200);
    const before = await stored();
    expect(before).toMatchObject({ cart: 'three books', pending: 0 });
    await sleep(2100); // the access token has expired
    const hold = deferred();
    opHold = hold.promise;
    const refreshing = request(t.server).get('/visit-token').set('cookie', cookie).then((r) => r);
    await opReached.promise; // its request read the session, and the OP has the refresh
    slowRequest.go.resolve();
    expect((await request(b?.server ?? t.server).post('/slow-write').set('cookie', cookie)).status).toBe(200);
    // another tab starts a login (a step-up, say) on the same session meanwhile
    const otherTab = await request(b?.server ?? t.server).get('/auth/login/op?returnTo=/me').set('cookie', cookie);
    expect(otherTab.status).toBe(302);
    expect(await stored()).toMatchObject({ refreshToken: before.refreshToken, lastSeen: 'the app wrote this', pending: 1 });
    expect((await stored()).cart).toBeUndefined();
    hold.resolve();
    expect((await refreshing).status).toBe(200);
    const after = await stored();
    expect(after.refreshToken).toBeDefined();
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after).toEqual({ refreshToken: after.refreshToken, lastSeen: 'the app wrote this', visits: 1, via: 'a middleware before rp()', pending: 1 });
    // the other tab's login still finishes on this session
    const callback = await t.op.browser().authorize(otherTab.headers.location as string);
    const finished = await request(b?.server ?? t.server).get(callback.pathname + callback.search).set('cookie', cookie);
    expect(finished.status).toBe(302);
    expect(finished.headers.location).toBe('/me');
  }, 60_000);

  test('both requests change the same member: the refresh\'s save, the later, keeps its request\'s value (as any later save would)', async () => {
    const cookie = await signIn();
    await sleep(2100);
    const hold = deferred();
    opHold = hold.promise;
    const refreshing = request(t.server).get('/visit-token').set('cookie', cookie).then((r) => r);
    await opReached.promise;
    slowRequest.go.resolve();
    expect((await request(b?.server ?? t.server).post('/slow-write?visits=7').set('cookie', cookie)).status).toBe(200);
    expect(await stored()).toMatchObject({ visits: 7 });
    hold.resolve();
    expect((await refreshing).status).toBe(200);
    expect(await stored()).toMatchObject({ visits: 1, lastSeen: 'the app wrote this' });
  }, 60_000);
});
describe('a refresh slower than a load balancer waits (slow store and slow OP, two instances)', () => {
  let t: TestRp;
  let b: { server: Server };
  const slow = { store: 0, op: 0 };
  beforeAll(async () => {
    // every call to the shared store `slow.store` ms late (Redis in another zone, or overloaded), and
    // the OP's refresh answers `slow.op` ms late: each call within its deadline, their sum not
    const inner = redisCoordination(client, { prefix: 'rp-slow:' });
    const coordination = new Proxy(inner, {
      get: (target, name) => {
        const value = Reflect.get(target, name) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (slow.store) await sleep(slow.store);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    t = await startRp({
      store: new RedisStore({ client, prefix: 'sess-slow:' }) as unknown as ListableStore,
      // the login's access token expires at once, a refreshed one lasts (so the next request can use it)
      op: { ttl: { AccessToken: (ctx) => (ctx.oidc.params?.grant_type === 'refresh_token' ? 120 : 2) } },
      rp: { coordination, storeTimeout: 500 },
      routes: tokenRoute,
      provider: {
        customFetch: async (url, init) => {
          if (url.endsWith('/token') && String(init.body).includes('grant_type=refresh_token') && slow.op) await sleep(slow.op);
          return fetch(url, init as RequestInit);
        },
      },
    });
    b = await secondInstance(t, { coordination, storeTimeout: 500 });
  }, 60_000);
  afterAll(async () => {
    await close(b.server);
    await t.close();
  });

  test('503 with Retry-After once the OP\'s timeout and a store deadline have passed (10.5 s here), the refresh goes on, and the next request (on the other instance) gets its result with no second grant', async () => {
    const cookie = cookieOf(await t.login(t.agent()));
    await sleep(2100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    Object.assign(slow, { store: 1000, op: 9000 }); // lock 1 s + shared result 1 s + grant 9 s + result 1 s + lock 1 s: 13 s
    const started = Date.now();
    const cut = await request(t.server).get('/token').set('cookie', cookie);
    const took = Date.now() - started;
    expect({ status: cut.status, error: cut.body.error, retryAfter: cut.headers['retry-after'] }).toEqual({ status: 503, error: 'op_unavailable', retryAfter: '5' });
    expect(cut.body.error_description).toContain('took longer than 10.5 s');
    expect(took).toBeLessThan(12_000); // before: 200 after ≈ 16 s, and past a 30 s cut with a slower store
    // the grant finishes meanwhile, and its result is shared
    for (let i = 0; i < 100 && (await client.keys('rp-slow:refresh-result:*')).length === 0; i++) await sleep(100);
    await sleep(2500); // the lock let go
    slow.store = 0;
    slow.op = 0;
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    const next = await request(b.server).get('/token').set('cookie', cookie);
    expect(next.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1); // the result of the cut refresh, not a second grant
    expect((await request(t.server).get('/token').set('cookie', cookie)).body.value).toBe(next.body.value);
  }, 40_000);
});

describe('refresh results kept from earlier serve only while their access token is valid', () => {
  test('the session\'s store failed at a refresh, and the user comes back after the new access token expired too: the kept result\'s rotated refresh token is refreshed in turn (no replay of the old one)', async () => {
    const { t, b, failing } = await instancesWithFailingSaves('chain');
    try {
      const cookie = cookieOf(await t.login(t.agent()));
      await sleep(3100);
      const grants = t.op.counts.grants.refresh_token ?? 0;
      failing.saves = true;
      expect((await request(t.server).get('/token').set('cookie', cookie)).status).toBe(503);
      failing.saves = false;
      await sleep(3100); // the kept result's access token has expired as well
      const later = await request(b.server).get('/token').set('cookie', cookie);
      expect(later.status).toBe(200);
      expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(2); // kept result, then its own refresh token: no replay
      expect((await request(t.server).get('/me').set('cookie', cookie)).status).toBe(200);
      expect((await request(t.server).get('/token').set('cookie', cookie)).body.value).toBe(later.body.value);
    } finally {
      await close(b.server);
      await t.close();
    }
  }, 60_000);

  test('an OP that does not rotate refresh tokens: a refresh after the last result\'s access token expired is a new grant, not that result again', async () => {
    const t = await startRp({ op: { ttl: { AccessToken: 2 }, config: { rotateRefreshToken: false } }, routes: tokenRoute });
    try {
      const agent = t.agent();
      await t.login(agent);
      await sleep(3100);
      const grants = t.op.counts.grants.refresh_token ?? 0;
      const first = await agent.get('/token');
      expect(first.status).toBe(200);
      await sleep(3100); // within the 30 s the first result is shared, but its access token has expired
      const second = await agent.get('/token');
      expect(second.status).toBe(200);
      expect(second.body.value).not.toBe(first.body.value);
      expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(2);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('a transient OP failure during a refresh keeps the login', () => {
  let t: TestRp;
  let mode: 'ok' | '502' | 'down' | 'invalid_client' = 'ok';
  beforeAll(async () => {
    t = await startRp({
      op: { ttl: { AccessToken: 2 } },
      routes: tokenRoute,
      provider: {
        // stands in for the load balancer in front of the OP: a 502 page, a refused connection, a refused client
        customFetch: async (url, init) => {
          const isToken = url.endsWith('/token') && String(init.body).includes('grant_type=refresh_token');
          if (isToken && mode === '502') return new Response('<html><body>502 Bad Gateway</body></html>', { status: 502, headers: { 'content-type': 'text/html' } });
          if (isToken && mode === 'down') throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
          if (isToken && mode === 'invalid_client') return Response.json({ error: 'invalid_client', error_description: 'client authentication failed' }, { status: 401 });
          return fetch(url, init as RequestInit);
        },
      },
    });
  }, 60_000);
  afterAll(() => t.close());
  afterEach(() => void (mode = 'ok'));

  test.each([
    ['a 502 page from the load balancer', '502', 503, 'op_unavailable'],
    ['a refused connection', 'down', 503, 'op_unreachable'],
  ] as const)('%s (%s): %i %s with Retry-After, still signed in, and the next refresh works', async (_label, failure, status, code) => {
    const agent = t.agent();
    await t.login(agent);
    await sleep(3100);
    mode = failure;
    const refused = await agent.get('/token');
    expect(refused.status).toBe(status);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.error).toBe(code);
    const page = await agent.post('/auth/refresh').set('accept', 'text/html');
    expect(page.status).toBe(status);
    expect(page.text).toContain('try again in a few seconds');
    expect((await agent.get('/me')).status).toBe(200);
    mode = 'ok';
    expect((await agent.get('/token')).status).toBe(200);
  });

  test('invalid_client from the token endpoint (this instance\'s client secret is not the OP\'s: a secret being changed) keeps the login: 500 client_auth_failed naming what to check, and the next refresh with the right credentials works', async () => {
    const agent = t.agent();
    await t.login(agent);
    await sleep(3100);
    mode = 'invalid_client';
    const refused = await agent.post('/auth/refresh');
    // before: 401 refresh_failed, and the user was logged out for good by one misconfigured instance
    expect(refused.status).toBe(500);
    expect(refused.body).toMatchObject({ error: 'client_auth_failed', op_error: 'invalid_client' });
    expect(refused.body.error_description).toContain('Check providers.op.clientId ("app"), clientSecret and tokenEndpointAuthMethod');
    expect((await agent.get('/me')).status).toBe(200);
    mode = 'ok';
    expect((await agent.post('/auth/refresh')).status).toBe(200);
    expect((await agent.get('/token')).status).toBe(200);
  });
});

describe('a session store that stalls or fails (rp({ session }))', () => {
  let server: Server;
  let baseURL: string;
  let behaviour: 'ok' | 'hang' | 'fail' = 'ok';
  beforeAll(async () => {
    server = createServer();
    baseURL = await listen(server);
    const store = new session.MemoryStore();
    const get = store.get.bind(store);
    store.get = (sid, cb) => (behaviour === 'hang' ? undefined : behaviour === 'fail' ? cb(new Error('ECONNREFUSED')) : get(sid, cb));
    const app = express();
    app.use(rp({
      baseURL,
      storeTimeout: 500,
      session: session({ secret: 's', resave: false, saveUninitialized: false, store, name: 'sid' }),
      providers: { op: oidc({ issuer: 'http://127.0.0.1:9/', clientId: 'x', clientSecret: 'y', allowInsecureRequests: true }) },
    }));
    app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
    server.on('request', app);
  });
  afterAll(() => close(server));
  afterEach(() => void (behaviour = 'ok'));

  test.each(['hang', 'fail'] as const)('a store that %ss: 503 store_unavailable with Retry-After in bounded time, JSON and HTML', async (how) => {
    behaviour = how;
    const started = Date.now();
    const api = await request(server).get('/me').set('cookie', signedCookie('abc', 's'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(api.status).toBe(503);
    expect(api.headers['retry-after']).toBe('5');
    expect(api.body.error).toBe('store_unavailable');
    const page = await request(server).get('/me').set('cookie', signedCookie('abc', 's')).set('accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.text).toContain('store_unavailable');
    expect(page.text).not.toMatch(/at .*\.(js|ts):\d+/); // no stack trace
  });

  test('once the store answers again the same process serves requests', async () => {
    behaviour = 'hang';
    expect((await request(server).get('/me').set('cookie', signedCookie('abc', 's'))).status).toBe(503);
    behaviour = 'ok';
    const res = await request(server).get('/me');
    expect(res.status).toBe(401); // no login, but served
  });
});

describe('redisCoordination', () => {
  test('setIfAbsent is atomic: of eight concurrent callers one wins', async () => {
    const c = redisCoordination(client, { prefix: 'atomic:' });
    const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => c.setIfAbsent('k', String(i), 5000)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    await c.deleteIfEquals('k', 'not the owner');
    expect(await c.get('k')).toBeDefined();
    await c.deleteIfEquals('k', String(wins.indexOf(true)));
    expect(await c.get('k')).toBeUndefined();
  });

  test('addToSet keeps the newest members, takeSet empties the set atomically', async () => {
    const c = redisCoordination(client, { prefix: 'set:' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.addToSet('s', `id${i}`, 5000, 50)));
    const members = await c.takeSet('s');
    expect(members.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `id${i}`).sort());
    expect(await c.takeSet('s')).toEqual([]);
    for (let i = 0; i < 5; i++) await c.addToSet('t', `m${i}`, 5000, 3);
    expect((await c.takeSet('t')).sort()).toEqual(['m2', 'm3', 'm4']);
  });

  test.each([
    ['redisCoordination', () => redisCoordination(client, { prefix: 'read-set:' })],
    ['the session store\'s (MemoryStore)', () => sessionStoreCoordination(new session.MemoryStore())],
  ])('%s: readSet leaves the set, removeFromSet removes only the members named (one added meanwhile stays)', async (_name, make) => {
    const c = make();
    for (const m of ['a', 'b', 'c']) await c.addToSet('s', m, 5000, 50);
    const read = await c.readSet!('s');
    expect(read.sort()).toEqual(['a', 'b', 'c']);
    expect((await c.readSet!('s')).sort()).toEqual(['a', 'b', 'c']);
    await c.addToSet('s', 'd', 5000, 50); // a login while the logout ran
    await c.removeFromSet!('s', read);
    expect(await c.readSet!('s')).toEqual(['d']);
    await c.removeFromSet!('s', ['d']);
    expect(await c.readSet!('s')).toEqual([]);
    await c.removeFromSet!('s', ['x']); // nothing there: no error
    await c.removeFromSet!('s', []);
  });

  test.each([
    ['redisCoordination', () => redisCoordination(client, { prefix: 'set-size:' })],
    ['the session store\'s (MemoryStore)', () => sessionStoreCoordination(new session.MemoryStore())],
  ])('%s: addToSet answers how many members the set holds (what a login\'s logout index prunes by)', async (_name, make) => {
    const c = make();
    expect(await c.addToSet('s', 'a', 5000, 3)).toBe(1);
    expect(await c.addToSet('s', 'b', 5000, 3)).toBe(2);
    expect(await c.addToSet('s', 'b', 5000, 3)).toBe(2); // already there
    expect(await c.addToSet('s', 'c', 5000, 3)).toBe(3);
    expect(await c.addToSet('s', 'd', 5000, 3)).toBe(3); // the oldest went
  });

  test('a stopped Redis is a store_unavailable within the timeout, and the same client works after it resumes', async () => {
    const c = redisCoordination(client, { prefix: 'stall:', timeout: 300 });
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      await expect(c.setIfAbsent('k', 'v', 1000)).rejects.toMatchObject({ code: 'store_unavailable', status: 503 });
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    for (let i = 0; i < 50; i++) {
      if (await c.setIfAbsent(`k${i}`, 'v', 1000).catch(() => false)) return;
      await sleep(100);
    }
    throw new Error('Redis did not answer again after SIGCONT');
  });

  test('a bad client or option is refused with a message that says what to pass', () => {
    expect(() => redisCoordination({} as never)).toThrow(/node-redis v5 client/);
    expect(() => redisCoordination(client, { timeout: 0 })).toThrow(/timeout/);
  });
});

describe('a login started while the session store cannot save', () => {
  test('is a 503 store_unavailable before the browser is sent to the OP', async () => {
    const store = new session.MemoryStore();
    let failing = false;
    const set = store.set.bind(store);
    store.set = (sid, data, cb) => (failing ? cb?.(new Error('ECONNREFUSED')) : set(sid, data, cb));
    const t = await startRp({ store: store as unknown as ListableStore });
    try {
      failing = true;
      const res = await t.agent().get('/auth/login/op').set('accept', 'text/html');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.headers.location).toBeUndefined();
      expect(res.text).toContain('store_unavailable');
      failing = false;
      expect((await t.agent().get('/auth/login/op')).status).toBe(302);
    } finally {
      await t.close();
    }
  });
});
