/**
 * A refresh saves the session in the middle of its request. What other requests of the same session
 * wrote or destroyed while the OP answered stays as they left it: the refresh reads the session again
 * and merges (concurrent-writes.ts). One instance, MemoryStore, express-session mounted before rp().
 * (Two instances on Redis: scale-out.test.ts, "a request that read the session before a refresh saves it".)
 */
import type { Express } from 'express';
import session from 'express-session';
import request from 'supertest';
import { requireAuth } from '@openid-express/rp';
import { sessionCookieOf } from './support/expect.js';
import { startRp, tokenRoute, type ListableStore, type TestRp } from './support/rp-app.js';
import { pendingLogins } from '../src/transactions.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
};

/**
 * The OP's answer to a refresh, held while `op.hold` is set (after resolving `op.reached`), once `op.skip`
 * refreshes went through; with `op.refuse`, invalid_grant.
 */
const op = { hold: undefined as Promise<void> | undefined, reached: deferred(), refuse: false, skip: 0 };

/** A MemoryStore whose next read of session `missNext` answers none (a store that misses a read), or of `stallNext` never answers. */
class ReadFaults extends session.MemoryStore {
  missNext: string | undefined;
  stallNext: string | undefined;
  override get(sid: string, cb: (err: unknown, s?: session.SessionData | null) => void): void {
    if (this.missNext === sid) {
      this.missNext = undefined;
      return void setImmediate(() => cb(null, null));
    }
    if (this.stallNext === sid) {
      this.stallNext = undefined;
      return; // rp()'s deadline (storeTimeout) answers instead
    }
    super.get(sid, cb);
  }
}
/** `GET /slow-token` waits for this before it asks for the access token. */
let slowToken = deferred();

const routes = (app: Express): void => {
  app.post('/write', requireAuth(), (req, res) => {
    (req.session as unknown as { lastSeen: string }).lastSeen = 'another request';
    res.json({});
  });
  // the app's own sign-out, with no word to rp()
  app.post('/app-signout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({}))));
  app.get('/slow-token', requireAuth(), async (req, res, next) => {
    await slowToken.promise;
    try {
      res.json({ value: (await req.oidc.getValidAccessToken()).value });
    } catch (err) {
      next(err);
    }
  });
  // two refreshes in one request: the token's, then one the route asks for
  app.get('/twice', requireAuth(), async (req, res, next) => {
    try {
      await req.oidc.getValidAccessToken();
      await req.oidc.refresh();
      res.json({});
    } catch (err) {
      next(err);
    }
  });
  tokenRoute(app);
};

const start = (accessTokenTtl: number, store: ReadFaults): Promise<TestRp> => startRp({
  op: { ttl: { AccessToken: accessTokenTtl } },
  store: store as unknown as ListableStore,
  routes,
  // the app's middleware between express-session and rp() writes on the refresh route's requests
  afterSession: (app) => app.use((req, _res, next) => {
    if (req.path === '/auth/refresh') (req.session as unknown as { via: string }).via = 'a middleware before rp()';
    next();
  }),
  provider: {
    customFetch: async (url, init) => {
      if (op.hold && url.endsWith('/token') && String(init.body).includes('grant_type=refresh_token') && op.skip-- <= 0) {
        op.reached.resolve();
        await op.hold;
        if (op.refuse) return Response.json({ error: 'invalid_grant', error_description: 'grant request is invalid' }, { status: 400 });
      }
      return fetch(url, init as RequestInit);
    },
  },
});

/** Holds the OP's next refresh answer until the returned function is called. */
const holdRefresh = (refuse = false, skip = 0): (() => void) => {
  const hold = deferred();
  Object.assign(op, { hold: hold.promise, reached: deferred(), refuse, skip });
  return hold.resolve;
};

afterEach(() => {
  Object.assign(op, { hold: undefined, refuse: false, skip: 0 });
  slowToken = deferred();
});

const sidOf = (cookie: string): string => /^s:([^.]+)\./.exec(decodeURIComponent(cookie.slice('sid='.length)))![1]!;
const storedSession = (t: TestRp, sid: string): Promise<(session.SessionData & { lastSeen?: string; via?: string }) | null | undefined> =>
  new Promise((resolve, reject) => t.store.get(sid, (err, s) => (err ? reject(err) : resolve(s as never))));

/** Signs in, waits until the access token is due, and starts `GET /token`: its refresh reaches the OP, which holds it until `release()`. */
async function refreshHeld(t: TestRp, refuse = false): Promise<{ cookie: string; release: () => void; refreshing: Promise<request.Response> }> {
  const cookie = sessionCookieOf(await t.login(t.agent()));
  await sleep(3100);
  const release = holdRefresh(refuse);
  const refreshing = request(t.server).get('/token').set('cookie', cookie).then((r) => r);
  await op.reached.promise;
  return { cookie, release, refreshing };
}

describe('an access token of 4 s (its refresh is due 3 s after the login)', () => {
  let t: TestRp;
  const store = new ReadFaults();
  beforeAll(async () => {
    t = await start(4, store);
  }, 60_000);
  afterAll(() => t.close());

  test('the OP refuses the refresh (the grant was revoked) while another tab starts a sign-in and another request writes: the session loses its login and keeps both, and that sign-in finishes', async () => {
    const { cookie, release, refreshing } = await refreshHeld(t, true);
    const otherTab = await request(t.server).get('/auth/login/op?returnTo=/me').set('cookie', cookie);
    expect(otherTab.status).toBe(302);
    expect((await request(t.server).post('/write').set('cookie', cookie)).status).toBe(200);
    release();
    const refused = await refreshing;
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 401, error: 'refresh_failed' });
    const stored = await storedSession(t, sidOf(cookie));
    // before: the session was saved as the refreshing request had read it, less its login: no pending sign-in, no lastSeen
    expect({ login: stored?.oidc?.auth, pending: pendingLogins(stored?.oidc).length, lastSeen: stored?.lastSeen })
      .toEqual({ login: undefined, pending: 1, lastSeen: 'another request' });
    const callback = await t.op.browser().authorize(otherTab.headers.location as string);
    const finished = await request(t.server).get(callback.pathname + callback.search).set('cookie', cookie);
    expect(finished.status).toBe(302);
    expect(finished.headers.location).toBe('/me');
    expect((await request(t.server).get('/me').set('cookie', sessionCookieOf(finished))).status).toBe(200);
  }, 60_000);

  test('the app destroys the session (its own sign-out) while the OP answers the refresh: it stays destroyed, and the refresh answers 401', async () => {
    const { cookie, release, refreshing } = await refreshHeld(t);
    expect((await request(t.server).post('/app-signout').set('cookie', cookie)).status).toBe(200);
    release();
    const answered = await refreshing;
    expect({ status: answered.status, error: answered.body.error }).toEqual({ status: 401, error: 'not_authenticated' });
    // before: the refresh's save wrote the session back, signed in
    expect(await storedSession(t, sidOf(cookie))).toBeFalsy();
    expect((await request(t.server).get('/me').set('cookie', cookie)).status).toBe(401);
  }, 60_000);

  test('the same when the OP refuses that refresh: the destroyed session is not written back without its login either', async () => {
    const { cookie, release, refreshing } = await refreshHeld(t, true);
    expect((await request(t.server).post('/app-signout').set('cookie', cookie)).status).toBe(200);
    release();
    expect((await refreshing).status).toBe(401);
    expect(await storedSession(t, sidOf(cookie))).toBeFalsy();
  }, 60_000);

  test('the store misses the session at the refresh\'s read before its save (it is there): 401, the session is neither written nor destroyed, and its next request gets the new tokens (no second grant)', async () => {
    const grants = t.op.counts.grants.refresh_token ?? 0; // (a sign-in makes no refresh grant)
    const { cookie, release, refreshing } = await refreshHeld(t);
    store.missNext = sidOf(cookie);
    release();
    expect((await refreshing).status).toBe(401);
    expect((await storedSession(t, sidOf(cookie)))?.oidc?.auth).toBeTruthy();
    const next = await request(t.server).get('/token').set('cookie', cookie);
    expect(next.status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1); // the kept result: no replay of the rotated token
  }, 60_000);

  test('the OP refuses the refresh and the store stalls at the read before the save: the 401 waits 250 ms for it, not the store\'s deadline, and the session is saved as read, less the refused login', async () => {
    const { cookie, release, refreshing } = await refreshHeld(t, true);
    store.stallNext = sidOf(cookie);
    const started = Date.now();
    release();
    const refused = await refreshing;
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 401, error: 'refresh_failed' });
    expect(Date.now() - started).toBeLessThan(1500); // rp()'s storeTimeout is 3 s
    // the refused login is gone (it must: requireAuth() would pass on it, and each token request ask the OP again)
    const stored = await storedSession(t, sidOf(cookie));
    expect(stored).toBeTruthy();
    expect(stored?.oidc?.auth).toBeUndefined();
    expect((await request(t.server).get('/me').set('cookie', cookie)).status).toBe(401);
  }, 60_000);

  test('two refreshes in one request (the due token\'s, then one the route asks for): the second\'s save keeps what another request wrote while the OP answered it', async () => {
    const cookie = sessionCookieOf(await t.login(t.agent()));
    await sleep(3100);
    const release = holdRefresh(false, 1);
    const twice = request(t.server).get('/twice').set('cookie', cookie).then((r) => r);
    await op.reached.promise;
    expect((await request(t.server).post('/write').set('cookie', cookie)).status).toBe(200);
    release();
    expect((await twice).status).toBe(200);
    expect((await storedSession(t, sidOf(cookie)))?.lastSeen).toBe('another request');
  }, 60_000);

  test('a request that began a minute or less before its access token was due, and refreshes it later in the request, keeps what another request wrote meanwhile', async () => {
    const cookie = sessionCookieOf(await t.login(t.agent()));
    // the token is not due yet as the request begins (its refresh comes 3 s after the login)
    const slow = request(t.server).get('/slow-token').set('cookie', cookie).then((r) => r);
    await sleep(300);
    expect((await request(t.server).post('/write').set('cookie', cookie)).status).toBe(200);
    await sleep(3100);
    const grants = t.op.counts.grants.refresh_token ?? 0;
    slowToken.resolve();
    expect((await slow).status).toBe(200);
    expect((t.op.counts.grants.refresh_token ?? 0) - grants).toBe(1);
    expect((await storedSession(t, sidOf(cookie)))?.lastSeen).toBe('another request');
  }, 60_000);
});

describe('an access token of an hour', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await start(3600, new ReadFaults());
  }, 60_000);
  afterAll(() => t.close());

  test.each(['/auth/refresh', '/Auth/Refresh'])('POST %s of a fresh token keeps what another request wrote while the OP answered (rp()\'s routes take any letter case)', async (path) => {
    const cookie = sessionCookieOf(await t.login(t.agent()));
    const release = holdRefresh();
    const refreshing = request(t.server).post(path).set({ cookie, origin: t.baseURL }).type('form').send({}).then((r) => r);
    await op.reached.promise;
    expect((await request(t.server).post('/write').set('cookie', cookie)).status).toBe(200);
    release();
    expect((await refreshing).status).toBe(200);
    const stored = await storedSession(t, sidOf(cookie));
    expect(stored?.lastSeen).toBe('another request');
    // and the request's own write, by a middleware between express-session and rp() (at the route's usual spelling), is its own: kept
    if (path === '/auth/refresh') expect(stored?.via).toBe('a middleware before rp()');
  }, 60_000);

  test('POST /auth/refresh of a fresh token, no other request: a middleware\'s write of the same request is kept', async () => {
    const cookie = sessionCookieOf(await t.login(t.agent()));
    expect((await request(t.server).post('/auth/refresh').set({ cookie, origin: t.baseURL }).type('form').send({})).status).toBe(200);
    expect((await storedSession(t, sidOf(cookie)))?.via).toBe('a middleware before rp()');
  }, 60_000);
});
