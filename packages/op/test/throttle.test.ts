/**
 * The sign-in throttle's counting against a store: an attempt refused for its address never counts
 * against the account (review-55 F1: counting both in one round trip let one address hold an account
 * busy for its owner), and no check is left counted.
 */
import { throttle } from '../src/throttle.js';
import type { OpStore } from '../src/adapters/types.js';

/** A store of counters whose every call takes `delayMs`, recording how many calls were in flight at once. */
function countingStore(withDecrement: boolean, delayMs = 5) {
  const counters = new Map<string, number>();
  let inFlight = 0;
  const batches: number[] = [];
  const call = async <T>(fn: () => T): Promise<T> => {
    inFlight += 1;
    if (inFlight === 1) batches.push(0);
    batches[batches.length - 1]! += 1;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    inFlight -= 1;
    return fn();
  };
  const store = {
    name: 'counting',
    adapterFor: () => { throw new Error('not used'); },
    increment: (key: string) => call(() => { counters.set(key, (counters.get(key) ?? 0) + 1); return counters.get(key)!; }),
    count: (key: string) => call(() => counters.get(key) ?? 0),
    reset: (key: string) => call(() => void counters.delete(key)),
    ...(withDecrement ? { decrement: (key: string) => call(() => void counters.set(key, Math.max(0, (counters.get(key) ?? 0) - 1))) } : {}),
  } as unknown as OpStore;
  /** The counters whose key names `kind` (check, login-check, ip, login), summed. */
  const sum = (kind: string) => [...counters].filter(([k]) => k.split(':').at(-2) === kind).reduce((n, [, v]) => n + v, 0);
  return { store, batches, sum, counters };
}

const limits = { maxFailures: 3, maxAccountFailures: 5, windowSeconds: 60 };

test('an attempt an address is refused for adds nothing to the account\'s checks: a stream from one address cannot make the account busy for its owner (review-55 F1)', async () => {
  const { store } = countingStore(true, 5);
  const t = throttle(store, limits);
  // the attacker's address: 12 streams of attempts for 300 ms, at most maxFailures of them ever checked (none ends)
  const until = Date.now() + 300;
  const stream = async () => {
    while (Date.now() < until) await t.attempt('alice', '203.0.113.7');
  };
  const attacker = Promise.all(Array.from({ length: 12 }, stream));
  const owner: string[] = [];
  for (let i = 0; i < 5; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    const verdict = await t.attempt('alice', `198.51.100.${i + 1}`);
    owner.push(verdict);
    if (verdict === 'ok') await t.succeed('alice', `198.51.100.${i + 1}`);
  }
  await attacker;
  expect(owner).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']); // before (one round trip): account-busy while the refused attempts were counted
});

test('an address at its limit is refused, and the account\'s check counted beside it is ended too (no check left counted)', async () => {
  const { store, sum } = countingStore(true);
  const t = throttle(store, limits);
  for (let i = 0; i < 3; i += 1) {
    expect(await t.attempt(`user${i}`, '203.0.113.7')).toBe('ok');
    await t.failed(`user${i}`, '203.0.113.7');
  }
  expect(await t.attempt('alice', '203.0.113.7')).toBe('locked');
  expect([sum('check'), sum('login-check')]).toEqual([0, 0]);
  expect(await t.attempt('alice', '198.51.100.1')).toBe('ok'); // the account itself is not held by that address
});

test('without decrement (attempts counted up front), an attempt an address is refused for does not count against the account', async () => {
  const { store, sum } = countingStore(false);
  const t = throttle(store, limits);
  for (let i = 0; i < 3; i += 1) {
    await t.attempt(`user${i}`, '203.0.113.7');
    await t.failed(`user${i}`, '203.0.113.7');
  }
  for (let i = 0; i < 10; i += 1) expect(await t.attempt('alice', '203.0.113.7')).toBe('locked');
  expect(sum('login')).toBe(3); // user0..2 once each; none of alice's refused attempts
  expect(await t.attempt('alice', '198.51.100.1')).toBe('ok');
});
