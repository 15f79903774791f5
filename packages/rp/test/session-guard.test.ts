/**
 * Deadlines on session store calls (`boundStore`): a stalled call answers store_unavailable, a late answer is ignored.
 */
import session from 'express-session';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RequestHandler } from 'express';
import { boundStore, guardedSession, sessionOp } from '../src/session-guard.js';
import { RpError, publicStoreFailure } from '../src/errors.js';
import { errorPage } from '../src/page.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Cb = (err?: any, value?: any) => void;

/** A store whose calls answer only when the test says so. */
function manualStore(): session.Store & { calls: Array<{ name: string; cb: Cb }> } {
  const store = new session.MemoryStore() as session.Store & { calls: Array<{ name: string; cb: Cb }> };
  store.calls = [];
  store.get = (_sid: string, cb: Cb) => void store.calls.push({ name: 'get', cb });
  store.set = (_sid: string, _s: unknown, cb?: Cb) => void store.calls.push({ name: 'set', cb: cb! });
  store.destroy = (_sid: string, cb?: Cb) => void store.calls.push({ name: 'destroy', cb: cb! });
  return store;
}

const call = (fn: (cb: Cb) => void): Promise<{ err?: unknown; value?: unknown; at: number }> =>
  new Promise((resolve) => fn((err, value) => resolve({ err, value, at: Date.now() })));

describe('boundStore', () => {
  test('express-session\'s own MemoryStore, as it comes, gets no deadline (it cannot stall); a changed or derived one does', async () => {
    const plain = new session.MemoryStore();
    const methods = { get: plain.get, set: plain.set, touch: plain.touch, destroy: plain.destroy };
    boundStore(plain, 50);
    expect({ get: plain.get, set: plain.set, touch: plain.touch, destroy: plain.destroy }).toEqual(methods);
    expect(await call((cb) => plain.set('a', { cookie: {} } as never, cb))).toMatchObject({ err: undefined });
    expect((await call((cb) => plain.get('a', cb))).value).toMatchObject({ cookie: {} });

    const changed = new session.MemoryStore();
    changed.get = (_sid, _cb) => undefined; // never answers
    boundStore(changed, 50);
    expect((await call((cb) => changed.get('a', cb))).err).toMatchObject({ code: 'store_unavailable' });

    class Derived extends session.MemoryStore {}
    const derived = new Derived();
    boundStore(derived, 50);
    expect(derived.get).not.toBe(session.MemoryStore.prototype.get);
  });

  test('an answer in time passes through with its value; a late one after the deadline is ignored', async () => {
    const store = manualStore();
    boundStore(store, 80);
    const first = call((cb) => store.get('a', cb));
    store.calls[0]!.cb(null, { cookie: {} });
    expect(await first).toMatchObject({ err: null, value: { cookie: {} } });

    const started = Date.now();
    const second = call((cb) => store.get('b', cb));
    const stalled = await second;
    expect(stalled.err).toMatchObject({ code: 'store_unavailable', status: 503 });
    expect(stalled.at - started).toBeGreaterThanOrEqual(70);
    expect(stalled.at - started).toBeLessThan(1000);
    store.calls[1]!.cb(null, { late: true }); // ignored: the caller already has its answer
  });

  test('many pending calls each get their own deadline', async () => {
    const store = manualStore();
    boundStore(store, 60);
    const t0 = Date.now();
    const a = call((cb) => store.set('a', {} as never, cb));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const b = call((cb) => store.destroy('b', cb));
    const c = call((cb) => store.get('c', cb));
    store.calls[2]!.cb(null, undefined); // c answers at once
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(rc.err).toBeNull();
    expect(ra.err).toMatchObject({ code: 'store_unavailable' });
    expect(rb.err).toMatchObject({ code: 'store_unavailable' });
    expect(ra.at - t0).toBeGreaterThanOrEqual(50);
    expect(rb.at - t0).toBeGreaterThanOrEqual(80); // 30 ms later than a, its own 60 ms
    expect(rb.at).toBeGreaterThanOrEqual(ra.at);
  });

  test('one timer serves every pending call of a store, and it stops once none is pending', async () => {
    const store = manualStore();
    boundStore(store, 40);
    const timeouts = jest.spyOn(global, 'setTimeout');
    const intervals = jest.spyOn(global, 'setInterval');
    const cleared = jest.spyOn(global, 'clearInterval');
    try {
      const answers = Array.from({ length: 100 }, (_, i) => call((cb) => store.get(String(i), cb)));
      expect(intervals).toHaveBeenCalledTimes(1);
      expect(cleared).not.toHaveBeenCalled(); // running while calls are pending
      store.calls.forEach((c, i) => i % 2 === 0 && c.cb(null, undefined)); // half answer, half stall
      const results = await Promise.all(answers);
      expect(results.filter((r) => r.err === null)).toHaveLength(50);
      expect(results.filter((r) => (r.err as { code?: string })?.code === 'store_unavailable')).toHaveLength(50);
      expect(timeouts).not.toHaveBeenCalled();
      expect(intervals).toHaveBeenCalledTimes(1);
      // the sweep that failed the last stalled call found none pending and stopped its timer
      expect(cleared).toHaveBeenCalledWith(intervals.mock.results[0]!.value);
    } finally {
      timeouts.mockRestore();
      intervals.mockRestore();
      cleared.mockRestore();
    }
  });

  test('a call without a callback goes straight to the store; binding twice wraps once', () => {
    const store = manualStore();
    boundStore(store, 50);
    const wrapped = store.get;
    boundStore(store, 50);
    expect(store.get).toBe(wrapped);
    (store.set as (sid: string, s: unknown) => void)('x', {});
    expect(store.calls).toHaveLength(1);
  });

  test('a store that keeps the callback after answering does not keep the request alive', async () => {
    // (bench/RESULTS.md, 2026-12-03: calls that kept their caller's callback made V8 keep, then
    // pretenure, every request natively)
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = manualStore(); // keeps every callback it was given, like a store's own queue may
    boundStore(store, 1000);
    let request: WeakRef<object> | undefined;
    const answered = await new Promise<unknown>((resolve) => {
      const req = { body: new Array(1000).fill('request data') };
      request = new WeakRef(req);
      store.get('a', (err, value) => resolve(req.body.length && (err ?? value)));
      store.calls[0]!.cb(null, { cookie: {} });
    });
    expect(answered).toEqual({ cookie: {} });
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(store.calls).toHaveLength(1); // the store still holds the call's callback...
    expect(request!.deref()).toBeUndefined(); // ...but no longer what the caller's callback held
  });
});

describe('a Redis session store that refuses (connect-redis passes Redis\'s reply on)', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => void (warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined)));
  afterEach(() => warn.mockRestore());

  test('an ACL refusal is a 503 saying what to change, said in the log, and a page that does not promise it passes by itself', async () => {
    const reply = `NOPERM this user has no permissions to access one of the keys used as arguments ${Math.random()}`;
    const failure = (await sessionOp((cb) => cb(new Error(reply))).catch((err: unknown) => err)) as RpError;
    expect(failure).toMatchObject({ code: 'store_unavailable', status: 503, retryAfter: 5, lasting: true });
    expect(failure.message).toBe(`the session store failed (${reply}); the Redis user (ACL) may not run a command or touch a key the session store needs: `
      + 'it needs every key under its prefix (~sess:* for connect-redis, or the prefix you gave it); +@all -@dangerous works');
    expect(warn.mock.calls.flat().join('\n')).toContain(`[@openid-express/rp] the session store failed (${reply})`);
    const page = errorPage(failure);
    expect(page).toContain('<h1>Unavailable</h1>'); // a sign-out, a page of the app: not about signing in (review)
    expect(page).toContain('its operators have been told about');
    expect(page).not.toContain('passes by itself');
    failure.loginUrl = '/auth/login/op'; // a sign-in's callback
    expect(errorPage(failure)).toContain('<h1>Sign-in is unavailable</h1>');
    expect(errorPage(failure)).not.toContain('passes by itself');
  });

  test('out of memory says what happened and what an operator does, on a page that does not promise it passes by itself (redacted in production); other failures stay as they were', async () => {
    const oom = (await sessionOp((cb) => cb(new Error("OOM command not allowed when used memory > 'maxmemory'."))).catch((err: unknown) => err)) as RpError;
    expect(oom).toMatchObject({ code: 'store_unavailable', lasting: true, message: expect.stringContaining(
      'Redis is out of memory: raise maxmemory, or find which keys grew (redis-cli --bigkeys); until then it refuses writes (README, "Running several instances")') });
    const full = errorPage(oom);
    expect(full).not.toContain('passes by itself'); // before: "This usually passes by itself" while Redis stayed full
    expect(full).toContain('its operators have been told about');
    expect(full).toContain('raise maxmemory, or find which keys grew'); // the detail, for whoever fixes it
    // under NODE_ENV=production: the same wording, and nothing of Redis
    const shown = errorPage(publicStoreFailure(oom));
    expect(shown).not.toContain('passes by itself');
    expect(shown).toContain('its operators have been told about');
    expect(shown).not.toMatch(/maxmemory|OOM|Redis/);
    expect(warn.mock.calls.flat().join('\n')).toMatch(/Redis is out of memory: raise maxmemory.*until it is fixed/);
    const lost = (await sessionOp((cb) => cb(new Error('Socket closed unexpectedly'))).catch((err: unknown) => err)) as RpError;
    expect(lost.message).toBe('the session store failed (Socket closed unexpectedly); check that it (e.g. Redis) is running and reachable');
    // outside a sign-in (a sign-out, a page of the app), the page does not speak of signing in
    const page = errorPage(lost);
    expect(page).toContain('<h1>Briefly unavailable</h1>');
    expect(page).not.toContain('Sign-in');
  });

  test('what a visitor is shown under NODE_ENV=production (publicStoreFailure): no quote of the store, the same status, Retry-After and sign-in link; the log says it once a minute', async () => {
    const lost = (await sessionOp((cb) => cb(new Error(`Socket closed unexpectedly ${Math.random()}`))).catch((err: unknown) => err)) as RpError;
    lost.loginUrl = '/auth/login/op';
    const shown = [publicStoreFailure(lost), publicStoreFailure(lost)];
    expect(shown[0]).toMatchObject({ code: 'store_unavailable', status: 503, retryAfter: 5, loginUrl: '/auth/login/op', message: expect.not.stringContaining('Socket') });
    expect(shown[0]!.lasting).toBeUndefined();
    expect(errorPage(shown[0]!)).toContain('passes by itself');
    expect(warn.mock.calls).toEqual([[expect.stringMatching(/^\[@openid-express\/rp\] the session store failed \(Socket closed unexpectedly .*while it lasts/)]]);
  });

  test('the log\'s once a minute is per failure: one that differs only by its numbers is said once; past 100 failures the one said longest ago goes, not all of them (they were all said again at once)', () => {
    const failing = (message: string) => new RpError('store_unavailable', message, { retryAfter: 5 });
    publicStoreFailure(failing('the session store failed (connect ECONNREFUSED 10.0.0.7:6379 after 1203 ms)'));
    publicStoreFailure(failing('the session store failed (connect ECONNREFUSED 10.0.0.7:6379 after 987 ms)'));
    expect(warn.mock.calls).toHaveLength(1);
    const named = (i: number) => failing(`the session store failed (${i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!)} refused)`);
    for (let i = 0; i < 101; i += 1) publicStoreFailure(named(i));
    expect(warn.mock.calls).toHaveLength(102);
    publicStoreFailure(named(50)); // still within its minute
    expect(warn.mock.calls).toHaveLength(102);
  });

  test('a failure without a message (node-redis\'s TimeoutError, with the README\'s commandOptions: { timeout }) is named by its kind, not "failed ()" or "failed (Error)"', async () => {
    class TimeoutError extends Error {} // as node-redis's: no message, and its name is "Error"
    const late = (await sessionOp((cb) => cb(new TimeoutError())).catch((err: unknown) => err)) as RpError;
    expect(late.message).toBe('the session store failed (Redis did not answer within the client\'s commandOptions.timeout); check that it (e.g. Redis) is running and reachable');
    class OtherError extends Error {}
    expect(((await sessionOp((cb) => cb(new OtherError())).catch((err: unknown) => err)) as RpError).message).toMatch(/^the session store failed \(OtherError\)/);
  });
});

test('a session middleware of the app\'s that returns a promise and fails on the start-up check\'s made-up request: nothing is left unhandled (review-54: it would stop the process)', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    guardedSession((async () => {
      throw new Error('a wrapper that expects a real request');
    }) as unknown as RequestHandler, 1000);
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  expect(unhandled).toEqual([]);
});
