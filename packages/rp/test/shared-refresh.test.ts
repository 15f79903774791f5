/**
 * The cross-instance refresh lock on its own: callers that stand for separate instances (no shared
 * process memory between them, only the coordination store) run one grant per refresh token.
 */
import session from 'express-session';
import { sessionStoreCoordination, type Coordination } from '../src/coordination.js';
import { RpError } from '../src/errors.js';
import { rotatedRefresh, sharedRefresh } from '../src/shared-refresh.js';
import type { Authentication } from '../src/session.js';
import { eventually } from '../../../test/support/eventually.js';

const auth = (refreshToken: string): Authentication => ({
  provider: 'op', user: { sub: 'alice', provider: 'op', claims: {} }, refreshToken, authTime: 0,
  accessToken: { value: `at-for-${refreshToken}`, tokenType: 'bearer' },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('five instances refreshing one token at once: one grant, one result for all', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  let grants = 0;
  const grant = async () => {
    grants += 1;
    await sleep(60);
    return auth('rt-2');
  };
  const results = await Promise.all(Array.from({ length: 5 }, () => sharedRefresh(coordination, 'k1', 'rt-1', 30_000, grant)));
  expect(grants).toBe(1);
  expect(results.map((r) => r.refreshToken)).toEqual(Array(5).fill('rt-2'));
  // a request still holding the old token a little later gets the same result, with no new grant
  expect((await sharedRefresh(coordination, 'k1', 'rt-1', 30_000, grant)).accessToken!.value).toBe('at-for-rt-2');
  expect(grants).toBe(1);
});

test('two refreshes of one token with other scopes (own result keys, the token\'s lock): the second waits, and finds the first one\'s rotation', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  let running = 0;
  let overlapped = false;
  const grant = (to: string) => async () => {
    overlapped ||= running > 0;
    running += 1;
    await sleep(60);
    running -= 1;
    return auth(to);
  };
  let seen: Authentication | undefined;
  const [plain, narrowed] = await Promise.all([
    sharedRefresh(coordination, 'k-plain', 'rt-1', 30_000, grant('rt-2'), undefined, 'k-plain'),
    sleep(10).then(() => sharedRefresh(coordination, 'k-openid', 'rt-1', 30_000, async () => {
      seen = await rotatedRefresh(coordination, 'k-plain', 'rt-1'); // what rp() goes on from instead of replaying rt-1
      return grant('rt-3')();
    }, undefined, 'k-plain')),
  ]);
  expect(overlapped).toBe(false); // before: keyed by scope, both grants ran at once with rt-1
  expect(seen?.refreshToken).toBe('rt-2');
  expect([plain.refreshToken, narrowed.refreshToken]).toEqual(['rt-2', 'rt-3']);
});

test('a failed grant releases the lock: the next request tries again', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  await expect(sharedRefresh(coordination, 'k2', 'rt-1', 30_000, async () => { throw new Error('OP down'); })).rejects.toThrow('OP down');
  expect((await sharedRefresh(coordination, 'k2', 'rt-1', 30_000, async () => auth('rt-3'))).refreshToken).toBe('rt-3');
});

test('the shared result opens only with the refresh token it replaces', async () => {
  const store = new session.MemoryStore();
  const coordination = sessionStoreCoordination(store);
  await sharedRefresh(coordination, 'k3', 'rt-1', 30_000, async () => auth('rt-4'));
  const stored = await coordination.get('refresh-result:k3');
  expect(stored).toBeDefined();
  expect(stored).not.toContain('rt-4'); // sealed, not readable in the store
  // another token under the same key (a forged lookup) cannot open it: the request fails instead of taking someone's tokens
  await expect(sharedRefresh(coordination, 'k3', 'rt-other', 30_000, async () => auth('never'))).rejects.toThrow();
});

test('a grant slower than the lock keeps it (renewed while it runs): an instance that comes later waits for its result, no second grant', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  let grants = 0;
  const slow = sharedRefresh(coordination, 'k4', 'rt-1', 30_000, async () => {
    grants += 1;
    await sleep(7_000); // longer than the lock's 6 s
    return auth('rt-5');
  });
  await sleep(6_500);
  const later = await sharedRefresh(coordination, 'k4', 'rt-1', 30_000, async () => {
    grants += 1;
    return auth('replayed');
  });
  expect(later.refreshToken).toBe('rt-5');
  expect((await slow).refreshToken).toBe('rt-5');
  expect(grants).toBe(1);
}, 60_000);

test('an instance that died holding the lock: the others answer 503 within about 4 s, and the lock is free within 6 s', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  await coordination.setIfAbsent('refresh-lock:k5', 'a-dead-instance', 6_000);
  const started = Date.now();
  await expect(sharedRefresh(coordination, 'k5', 'rt-1', 30_000, async () => auth('early'))).rejects.toMatchObject({ code: 'op_unavailable' });
  expect(Date.now() - started).toBeLessThan(4_500);
  await sleep(6_100 - (Date.now() - started));
  expect((await sharedRefresh(coordination, 'k5', 'rt-1', 30_000, async () => auth('rt-6'))).refreshToken).toBe('rt-6');
}, 60_000);

test('a grant that fails while the lock is being renewed releases it for good (the renewal does not write it back)', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  // the lock's renewal reads it slowly (a busy Redis): the grant fails while that read is under way
  const get = coordination.get.bind(coordination);
  coordination.get = async (key) => {
    const value = await get(key);
    if (key.startsWith('refresh-lock:')) await sleep(300);
    return value;
  };
  await expect(sharedRefresh(coordination, 'k6', 'rt-1', 30_000, async () => {
    await sleep(2_100); // the renewal ticks at 2 s
    throw new Error('OP timed out');
  })).rejects.toThrow('OP timed out');
  await sleep(400);
  // the next request gets the lock at once and grants, instead of waiting for a lock nobody holds
  const started = Date.now();
  expect((await sharedRefresh(coordination, 'k6', 'rt-1', 30_000, async () => auth('rt-7'))).refreshToken).toBe('rt-7');
  expect(Date.now() - started).toBeLessThan(1_500);
}, 60_000);

test('a grant lets its lock go once its result is shared: a refresh soon after, whose result is of no use any more (a non-rotating OP, the access token expired), grants at once instead of waiting out the lock (503)', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  let grants = 0;
  const grant = async () => {
    grants += 1;
    return auth('rt-1'); // the OP does not rotate
  };
  await sharedRefresh(coordination, 'k9', 'rt-1', 30_000, grant);
  expect(await coordination.get('refresh-lock:k9')).toBeUndefined();
  // a request that finds the shared result (another instance, right after): also lets the lock go
  await sharedRefresh(coordination, 'k9', 'rt-1', 30_000, grant);
  expect([grants, await coordination.get('refresh-lock:k9')]).toEqual([1, undefined]);
  const started = Date.now();
  await sharedRefresh(coordination, 'k9', 'rt-1', 30_000, grant, () => false);
  expect(grants).toBe(2);
  expect(Date.now() - started).toBeLessThan(1000);
});

test('the result of a grant that cannot be shared (the store failed at that write) is still the caller\'s, the others wait rather than replay the old token, and it is shared as soon as the store takes it', async () => {
  const inner = sessionStoreCoordination(new session.MemoryStore());
  let failures = 1;
  const coordination: Coordination = {
    ...inner,
    set: (key, value, ttlMs) => (key.startsWith('refresh-result:') && failures-- > 0
      ? Promise.reject(new RpError('store_unavailable', 'Redis failed: connection lost'))
      : inner.set(key, value, ttlMs)),
  };
  const fresh = await sharedRefresh(coordination, 'k10', 'rt-1', 30_000, async () => auth('rt-2'));
  expect(fresh.refreshToken).toBe('rt-2'); // the OP rotated: these are the only valid tokens now
  expect(await coordination.get('refresh-lock:k10')).toBeDefined();
  await sleep(800);
  let grants = 0;
  const later = await sharedRefresh(coordination, 'k10', 'rt-1', 30_000, async () => {
    grants += 1;
    return auth('replayed');
  });
  expect([later.refreshToken, grants]).toEqual(['rt-2', 0]);
  // (the grant's own write, once it took, lets the lock go a few store calls after the result is readable:
  // on a loaded machine the read above could come first)
  await eventually(async () => expect(await coordination.get('refresh-lock:k10')).toBeUndefined(), 2000);
});

test('an instance cut off from Redis after it sent the grant (its lock expires at 6 s): the others answer 503 and never replay the token, then get its result once it can share it; one grant (chaos soak)', async () => {
  const inner = sessionStoreCoordination(new session.MemoryStore());
  let cut = false;
  const refused = () => Promise.reject(new RpError('store_unavailable', 'Redis did not answer'));
  // instance A's view of the store: nothing gets through while it is cut off
  const a: Coordination = {
    ...inner,
    set: (...args) => (cut ? refused() : inner.set(...args)),
    get: (...args) => (cut ? refused() : inner.get(...args)),
    setIfAbsent: (...args) => (cut ? refused() : inner.setIfAbsent(...args)),
    deleteIfEquals: (...args) => (cut ? refused() : inner.deleteIfEquals(...args)),
    renewIfEquals: (...args) => (cut ? refused() : inner.renewIfEquals!(...args)),
  };
  let grants = 0;
  const fresh = await sharedRefresh(a, 'k11', 'rt-1', 30_000, async () => {
    grants += 1;
    cut = true; // the OP has rotated the token; A loses Redis before it can say so
    return auth('rt-2');
  });
  expect(fresh.refreshToken).toBe('rt-2');
  await sleep(6_500); // A's lock has expired
  const replay = async () => {
    grants += 1;
    return auth('replayed: the OP would revoke the grant');
  };
  // before: instance B took the expired lock and replayed rt-1
  await expect(sharedRefresh(inner, 'k11', 'rt-1', 30_000, replay)).rejects.toMatchObject({ code: 'op_unavailable' });
  expect(grants).toBe(1);
  cut = false; // A's next attempt to share (about 10 s after the grant) gets through
  await sleep(4_000);
  expect((await sharedRefresh(inner, 'k11', 'rt-1', 30_000, replay)).refreshToken).toBe('rt-2');
  expect(grants).toBe(1);
  expect(await inner.get('refresh-sent:k11')).toBeUndefined(); // said how it ended: a later refresh of the token may run
}, 60_000);

test('a grant the OP refused or could not answer clears its mark: the next request may try at once', async () => {
  const coordination = sessionStoreCoordination(new session.MemoryStore());
  await expect(sharedRefresh(coordination, 'k12', 'rt-1', 30_000, async () => { throw new Error('OP down'); })).rejects.toThrow('OP down');
  expect(await coordination.get('refresh-sent:k12')).toBeUndefined();
  expect((await sharedRefresh(coordination, 'k12', 'rt-1', 30_000, async () => auth('rt-3'))).refreshToken).toBe('rt-3');
});

test('a read of the shared result that fails beside the mark\'s write leaves no mark: the next request grants at once, not a minute of 503s (review)', async () => {
  const inner = sessionStoreCoordination(new session.MemoryStore());
  let failures = 1;
  const coordination: Coordination = {
    ...inner,
    get: (key) => (key.startsWith('refresh-result:') && failures-- > 0 ? Promise.reject(new RpError('store_unavailable', 'Redis did not answer within 2000 ms')) : inner.get(key)),
  };
  await expect(sharedRefresh(coordination, 'k13', 'rt-1', 30_000, async () => auth('never'))).rejects.toMatchObject({ code: 'store_unavailable' });
  expect(await inner.get('refresh-sent:k13')).toBeUndefined();
  expect((await sharedRefresh(coordination, 'k13', 'rt-1', 30_000, async () => auth('rt-4'))).refreshToken).toBe('rt-4');
});
