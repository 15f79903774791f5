/**
 * Two tabs of one browser starting a sign-in at the same moment (tabs probe F1): each login start
 * reads the session, adds its pending login and saves the session. Both pending logins must be
 * kept, whichever save lands last; on a MemoryStore and on connect-redis over a real redis-server.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { oidc, redisCoordination, rp, type Coordination } from '@openid-express/rp';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { CLIENT_ID, CLIENT_SECRET, close, listen, startRp, type ListableStore, type TestRp } from './support/rp-app.js';
import { expectTabSignsIn, sessionCookieOf } from './support/expect.js';
import { pendingLogins } from '../src/transactions.js';

type Cb = (err?: unknown, value?: unknown) => void;

/** Holds the store's next `set` (or the answer to its next `get`) of a session until released. */
class Holder {
  private held?: { release: () => void };
  private seen?: () => void;
  holdSet = false;
  holdGet = false;
  /** Resolves once a call is held. */
  reached = new Promise<void>((resolve) => (this.seen = resolve));
  private onSet?: () => void;

  wrap(store: ListableStore): void {
    const { set, get } = store;
    store.set = (sid: string, data: session.SessionData, cb?: Cb) => {
      if (!this.holdSet) {
        this.onSet?.();
        return set.call(store, sid, data, cb);
      }
      this.holdSet = false;
      this.held = { release: () => set.call(store, sid, data, cb) };
      this.seen!();
    };
    store.get = (sid: string, cb: (err: unknown, value?: session.SessionData | null) => void) => {
      if (!this.holdGet) return get.call(store, sid, cb);
      this.holdGet = false;
      // read now, answered when released: the request goes on with the session as it was at this moment
      get.call(store, sid, (err: unknown, value?: session.SessionData | null) => {
        this.held = { release: () => cb(err, value) };
        this.seen!();
      });
    };
  }

  /** Resolves at the next `set` that is not held. */
  nextSet(): Promise<void> {
    return new Promise((resolve) => (this.onSet = resolve));
  }

  release(): void {
    this.held!.release();
    this.held = undefined;
    this.reached = new Promise<void>((resolve) => (this.seen = resolve));
  }
}

const returnTos = async (store: ListableStore, agent: request.Agent): Promise<string[]> => {
  const id = decodeURIComponent(agent.jar.getCookie('sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.value).slice(2).split('.')[0]!;
  const stored = await new Promise<session.SessionData | null | undefined>((resolve) => store.get(id, (_e, s) => resolve(s)));
  return pendingLogins(stored?.oidc).map((t) => t.returnTo).sort();
};

describe.each([
  ['MemoryStore', false],
  ['connect-redis', true],
])('two tabs starting a sign-in at the same moment, with a session cookie (%s)', (_name, onRedis) => {
  let redis: RedisServer | undefined;
  let client: ReturnType<typeof createClient> | undefined;
  let t: TestRp;
  const holder = new Holder();
  beforeAll(async () => {
    if (onRedis) {
      redis = await startRedisServer();
      client = createClient({ url: redis.url });
      await client.connect();
    }
    const store = client ? new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore : undefined;
    t = await startRp({ store });
    holder.wrap(t.store);
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await client?.quit();
    await redis?.stop();
  });

  test('the first save held until the second start has gone as far as it can: both pending logins are kept, and both tabs sign in where they were going', async () => {
    const agent = t.agent();
    const start0 = await agent.get('/auth/login/op?returnTo=/p0'); // a third tab: the session (and its cookie) exists
    holder.holdSet = true;
    const a = agent.get('/auth/login/op?returnTo=/p1').then((res) => res);
    await holder.reached;
    // the second start saves at once (before: its save landed, then A's save over it), or waits for A's
    const b = agent.get('/auth/login/op?returnTo=/p2').then((res) => res);
    await Promise.race([holder.nextSet(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    holder.release();
    const [startA, startB] = await Promise.all([a, b]);
    expect([startA.status, startB.status]).toEqual([302, 302]);
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before: ['/p0', '/p1']
    await expectTabSignsIn(t, agent, startA.headers.location, 'alice', '/p1');
    await expectTabSignsIn(t, agent, startB.headers.location, 'alice', '/p2');
    await expectTabSignsIn(t, agent, start0.headers.location, 'alice', '/p0');
  });

  test('a start that read the session before another one saved (another instance, a slow store): its save keeps the other\'s pending login', async () => {
    const agent = t.agent();
    await agent.get('/auth/login/op?returnTo=/p0');
    holder.holdGet = true;
    const b = agent.get('/auth/login/op?returnTo=/p2').then((res) => res); // reads the session now, goes on when released
    await holder.reached;
    const startA = await agent.get('/auth/login/op?returnTo=/p1'); // saved meanwhile
    holder.release();
    const startB = await b;
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before: ['/p0', '/p2']
    await expectTabSignsIn(t, agent, startA.headers.location, 'alice', '/p1');
    await expectTabSignsIn(t, agent, startB.headers.location, 'alice', '/p2');
  });
});

/** The names of the pending-login cookies (`oidc_pl_…`) an agent's jar holds for the callback path. */
const pendingCookies = (agent: request.Agent): string[] => {
  const jar = (agent as unknown as { jar: { getCookies(access: unknown): Array<{ name: string; value: string }> } }).jar;
  return jar.getCookies({ domain: '127.0.0.1', path: '/auth/callback/op', secure: false, script: false }).map((c) => c.name).filter((n) => n.startsWith('oidc_pl_'));
};

describe.each([
  ['MemoryStore', false],
  ['connect-redis', true],
])('two tabs starting a sign-in at the same moment in a browser with no session cookie yet (%s)', (_name, onRedis) => {
  let redis: RedisServer | undefined;
  let client: ReturnType<typeof createClient> | undefined;
  let t: TestRp;
  beforeAll(async () => {
    if (onRedis) {
      redis = await startRedisServer();
      client = createClient({ url: redis.url });
      await client.connect();
    }
    t = await startRp({ store: client ? new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore : undefined });
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await client?.quit();
    await redis?.stop();
  });

  /** Both starts leave before either answer is back: two new sessions, and the browser keeps the cookie of the one answered last. */
  const startTwo = async (agent: request.Agent): Promise<[request.Response, request.Response]> => {
    const [a, b] = await Promise.all([agent.get('/auth/login/op?returnTo=/p1'), agent.get('/auth/login/op?returnTo=/p2')]);
    expect([a.status, b.status]).toEqual([302, 302]);
    const sids = [a, b].map((res) => String(res.headers['set-cookie']).match(/sid=([^;]+)/)?.[1]);
    expect(sids[0]).not.toEqual(sids[1]); // two sessions: one of them is not the browser's
    expect(pendingCookies(agent)).toHaveLength(2);
    return [a, b];
  };

  test('both tabs sign in where they were going, in either order, and the pending-login cookies are cleared', async () => {
    for (const order of [[0, 1], [1, 0]]) {
      const agent = t.agent();
      const starts = await startTwo(agent);
      const returnTo = ['/p1', '/p2'];
      // before: the tab whose session cookie the browser lost ended on "This sign-in has expired"
      for (const i of order) await expectTabSignsIn(t, agent, starts[i]!.headers.location, 'alice', returnTo[i]!);
      expect(pendingCookies(agent)).toEqual([]);
    }
  });

  test('the cookie serves its own sign-in in the browser that holds it: not another sign-in answer, not another browser, not another session, not twice', async () => {
    const agent = t.agent();
    const [a, b] = await startTwo(agent);
    const cookieOf = (res: request.Response) => String(res.headers['set-cookie']).match(/(oidc_pl_[^=]+)=([^;]+)/)!;
    const [cookieA, , sessionA] = cookieOf(a);
    const [, nameB] = cookieOf(b);
    const callbackA = await t.op.browser().authorize(a.headers.location, { account: 'alice' });
    const callbackB = await t.op.browser().authorize(b.headers.location, { account: 'alice' });
    const before = await t.authenticatedSessions();
    const refusedIn = async (callback: URL, cookie?: string) => {
      const res = await (cookie ? t.agent().get(callback.pathname + callback.search).set('cookie', cookie) : t.agent().get(callback.pathname + callback.search));
      expect([res.status, res.text]).toEqual([400, expect.stringMatching(/matches no login started in this browser|already used/)]);
    };
    // another browser holding A's sign-in answer but not its cookie (login CSRF: an answer planted in a victim's browser)
    await refusedIn(callbackA);
    // B's cookie naming a session that does not hold B's sign-in (A's), or no session at all
    await refusedIn(callbackB, `${nameB}=${sessionA}`);
    await refusedIn(callbackB, `${nameB}=${'x'.repeat(32)}`);
    expect(await t.authenticatedSessions()).toEqual(before);
    // the browser that started both signs in through A's cookie once; the same answer and cookie again are refused
    const done = await agent.get(callbackA.pathname + callbackA.search);
    expect([done.status, done.headers.location]).toEqual([302, '/p1']);
    await refusedIn(callbackA, cookieA);
    expect((await t.authenticatedSessions()).length).toBe(before.length + 1);
  });

  test('a tab whose callback signed in but whose answer was lost (the browser sends it again): the retry joins that login, nothing exchanged again; the same URL without the browser\'s cookies does not (review-54)', async () => {
    for (const tab of [0, 1]) {
      const agent = t.agent();
      const starts = await startTwo(agent);
      await expectRetryJoins(t, agent, starts[tab]!, ['/p1', '/p2'][tab]!, t.server, t.server);
    }
  });
});

/** The cookies `agent` (a browser) sends with a request to `url`. */
const cookiesFor = (agent: request.Agent, url: URL): string => {
  const jar = (agent as unknown as { jar: { getCookies(access: unknown): Array<{ name: string; value: string }> } }).jar;
  return jar.getCookies({ domain: url.hostname, path: url.pathname, secure: false, script: false }).map((c) => `${c.name}=${c.value}`).join('; ');
};

/**
 * The callback of the sign-in `start` runs at `first` with the browser's cookies, and its answer is lost (the
 * browser keeps the cookies it had); the browser sends the same URL again at `retry`: it joins that login
 * and lands on `returnTo` (or `/`, when the browser's session cookie was the sign-in's own, as in a single
 * tab), with no second code exchange. The same URL with only some of the browser's cookies joins nothing.
 */
async function expectRetryJoins(t: TestRp, agent: request.Agent, start: request.Response, returnTo: string, first: Server, retry: Server): Promise<void> {
  const callback = await t.op.browser().authorize(start.headers.location, { account: 'alice' });
  const cookies = cookiesFor(agent, callback);
  const ownSession = String(start.headers['set-cookie']).match(/sid=([^;]+)/)![1];
  const keptOwn = cookies.includes(`sid=${ownSession}`);
  const signedIn = await t.authenticatedSessions();
  const lost = await request(first).get(callback.pathname + callback.search).set('cookie', cookies);
  expect([lost.status, lost.headers.location]).toEqual([302, returnTo]);
  const grants = t.op.counts.grants.authorization_code ?? 0;
  const refused = async (cookie: string) => {
    const res = await request(retry).get(callback.pathname + callback.search).set({ cookie, accept: 'application/json' });
    expect([res.status, res.body.error]).toEqual([400, 'invalid_state']);
  };
  // another browser with the URL and none of this browser's cookies, or its pending-login cookie alone: nothing joined
  await refused('');
  const pendingCookie = cookies.split('; ').filter((c) => c.startsWith('oidc_pl_'));
  for (const cookie of pendingCookie) await refused(cookie);
  // before: the tab whose session cookie the browser did not keep got 400 "already used", and stayed signed out
  const again = await request(retry).get(callback.pathname + callback.search).set({ cookie: cookies, accept: 'text/html' });
  expect([again.status, again.headers.location]).toEqual([302, keptOwn ? '/' : returnTo]);
  expect(sessionCookieOf(again)).toBe(sessionCookieOf(lost)); // the login's session
  expect((await request(first).get('/me').set('cookie', sessionCookieOf(again))).body.sub).toBe('alice');
  expect((t.op.counts.grants.authorization_code ?? 0) - grants).toBe(0);
  expect((await t.authenticatedSessions()).length).toBe(signedIn.length + 1);
}

/** A second instance of the app of `t` (same baseURL, client and coordination) on `store`, its own process state. */
async function secondInstance(t: TestRp, store: session.Store, coordination: Coordination): Promise<Server> {
  const server = createServer();
  await listen(server);
  server.on('request', express().use(rp({
    baseURL: t.baseURL,
    session: session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store, name: 'sid' }),
    providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email offline_access', allowInsecureRequests: true }) },
    coordination,
  })));
  return server;
}

describe('tabs starting a sign-in at the same moment on two instances (connect-redis, redisCoordination)', () => {
  let redis: RedisServer;
  let client: ReturnType<typeof createClient>;
  let t: TestRp;
  let b: Server;
  const SLOW_MS = 2700; // each store call within storeTimeout (3000 ms): nothing fails, the store is only slow
  // instance B's store, from the login start's read of the stored session on (express-session's load is the first):
  // 'hold' holds that read's answer until `held()`; 'slow' answers it, and the save after it, SLOW_MS late
  let mode: 'hold' | 'slow' | undefined;
  let reads = 0;
  let held: (() => void) | undefined;
  let reached: () => void = () => undefined;
  const startRead = (next: 'hold' | 'slow'): Promise<void> => {
    mode = next;
    reads = 0;
    return new Promise<void>((resolve) => (reached = resolve));
  };
  beforeAll(async () => {
    redis = await startRedisServer();
    client = createClient({ url: redis.url });
    await client.connect();
    const coordination = redisCoordination(client, { prefix: 'rp-tabs:' });
    t = await startRp({ store: new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore, rp: { coordination } });
    // instance B: same store (its own connect-redis object), same coordination, a process state of its own
    const storeB = new RedisStore({ client, prefix: 'sess:' });
    const get = storeB.get.bind(storeB);
    const set = storeB.set.bind(storeB);
    storeB.get = ((sid: string, cb: Cb) => {
      if (!mode || (reads += 1) < 2) return get(sid, cb);
      if (mode === 'slow') {
        reached();
        return void setTimeout(() => get(sid, cb), SLOW_MS);
      }
      mode = undefined;
      // read now, answered when released: the request goes on with the session as it was at this moment
      void get(sid, (err, value) => {
        held = () => cb(err, value);
        reached();
      });
    }) as typeof storeB.get;
    storeB.set = ((sid: string, data: session.SessionData, cb?: Cb) => {
      if (mode !== 'slow') return set(sid, data, cb);
      mode = undefined;
      setTimeout(() => set(sid, data, cb), SLOW_MS);
    }) as typeof storeB.set;
    b = await secondInstance(t, storeB, coordination);
  }, 60_000);
  afterAll(async () => {
    await close(b);
    await t.close();
    await client.quit();
    await redis.stop();
  });

  test('the second start waits for the first one\'s save (a lock in Redis): both pending logins are kept, and both tabs sign in where they were going', async () => {
    const agent = t.agent();
    const start0 = await agent.get('/auth/login/op?returnTo=/p0'); // the session (and its cookie) exists
    const cookie = agent.jar.getCookie('sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.toValueString();
    // tab B's start at instance B read the stored session and is about to save it with its own pending login
    const atRead = startRead('hold');
    const startB = request(b).get('/auth/login/op?returnTo=/p2').set('cookie', cookie).then((res) => res);
    await atRead;
    // tab A's start at instance A meanwhile: before, it saved at once, and B's save then dropped its pending login
    const startA = agent.get('/auth/login/op?returnTo=/p1').then((res) => res);
    const first = await Promise.race([startA.then(() => 'A answered'), new Promise((resolve) => setTimeout(resolve, 300, 'A waits'))]);
    held!();
    const [a, bRes] = await Promise.all([startA, startB]);
    expect([a.status, bRes.status]).toEqual([302, 302]);
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before: ['/p0', '/p2']
    expect(first).toBe('A waits');
    await expectTabSignsIn(t, agent, a.headers.location, 'alice', '/p1');
    await expectTabSignsIn(t, agent, bRes.headers.location, 'alice', '/p2');
    await expectTabSignsIn(t, agent, start0.headers.location, 'alice', '/p0');
    expect(await client.keys('rp-tabs:oidc-login-start:*')).toEqual([]); // every lock released
  });

  test('a browser with no session cookie yet starts two sign-ins; one tab\'s callback signs in at one instance and its answer is lost: the retry at the other instance joins that login (review-54)', async () => {
    for (const tab of [0, 1]) {
      const agent = t.agent();
      const starts = await Promise.all([agent.get('/auth/login/op?returnTo=/p1'), agent.get('/auth/login/op?returnTo=/p2')]);
      expect(starts.map((res) => res.status)).toEqual([302, 302]);
      await expectRetryJoins(t, agent, starts[tab]!, ['/p1', '/p2'][tab]!, t.server, b);
    }
  });

  test('a start whose read and save take 5.4 s keeps the lock all along (renewed): the other start waits, and both pending logins are kept', async () => {
    const agent = t.agent();
    expect((await agent.get('/auth/login/op?returnTo=/p0')).status).toBe(302);
    const cookie = agent.jar.getCookie('sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.toValueString();
    const atRead = startRead('slow');
    const startB = request(b).get('/auth/login/op?returnTo=/p2').set('cookie', cookie).then((res) => res);
    await atRead; // B holds the lock and is reading
    const startA = agent.get('/auth/login/op?returnTo=/p1').then((res) => res);
    const [a, bRes] = await Promise.all([startA, startB]);
    expect([a.status, bRes.status]).toEqual([302, 302]);
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before (a 5 s lease, not renewed): /p1 lost
  }, 30_000);

  test('a lock held longer than a start waits (another instance alive, its store slow): 503 with Retry-After, nothing saved without it', async () => {
    const quick = await startRp({ store: t.store, rp: { coordination: redisCoordination(client, { prefix: 'rp-tabs:' }), storeTimeout: 400 } });
    try {
      const agent = quick.agent();
      expect((await agent.get('/auth/login/op?returnTo=/p0')).status).toBe(302);
      const id = decodeURIComponent(agent.jar.getCookie('sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.value).slice(2).split('.')[0]!;
      const { hashedKey } = await import('../src/coordination.js');
      await client.set(`rp-tabs:${hashedKey('oidc-login-start:', id)}`, 'another-instance', { PX: 60_000 });
      const started = Date.now();
      const res = await agent.get('/auth/login/op?returnTo=/p1').set('accept', 'application/json');
      expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'store_unavailable', '2']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // 2.25 × storeTimeout + 1 s
      expect(await returnTos(quick.store, agent)).toEqual(['/p0']);
    } finally {
      await quick.close();
    }
  }, 30_000);
});
