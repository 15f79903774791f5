/**
 * The in-process layer of a refresh: one run per key, its result shared for a grace period, and kept
 * longer on demand (a session whose save failed still holds the old refresh token).
 */
import { SingleFlight } from '../src/single-flight.js';

afterEach(() => jest.useRealTimers());

test('concurrent and recent callers share one run; after the grace period a new run starts', async () => {
  jest.useFakeTimers();
  const flights = new SingleFlight<number>(30_000);
  let runs = 0;
  const op = async () => ++runs;
  expect(await Promise.all([flights.run('k', op), flights.run('k', op)])).toEqual([1, 1]);
  jest.advanceTimersByTime(29_000);
  expect(await flights.run('k', op)).toBe(1);
  jest.advanceTimersByTime(1_001);
  expect(await flights.run('k', op)).toBe(2);
});

test('keep() holds a result longer than the grace period; a failure is never kept', async () => {
  jest.useFakeTimers();
  const flights = new SingleFlight<number>(30_000);
  let runs = 0;
  await flights.run('k', async () => ++runs);
  flights.keep('k', 24 * 3600 * 1000);
  jest.advanceTimersByTime(3600 * 1000);
  expect(await flights.run('k', async () => ++runs)).toBe(1);
  await expect(flights.run('f', async () => { throw new Error('OP down'); })).rejects.toThrow('OP down');
  flights.keep('f', 60_000); // nothing to keep
  expect(await flights.run('f', async () => 7)).toBe(7);
});

test('a settled result that is no longer usable (its tokens expired since) is not given out: a new run starts', async () => {
  const flights = new SingleFlight<{ n: number; expired: boolean }>(30_000);
  let runs = 0;
  const op = async () => ({ n: ++runs, expired: false });
  const first = await flights.run('k', op, (v) => !v.expired);
  expect(first.n).toBe(1);
  first.expired = true;
  expect((await flights.run('k', op, (v) => !v.expired)).n).toBe(2);
  expect((await flights.run('k', op, (v) => !v.expired)).n).toBe(2);
});

test('keep() holds at most maxKept results longer than the grace period (a store refusing writes for hours must not grow the heap without bound)', async () => {
  jest.useFakeTimers();
  const flights = new SingleFlight<number>(30_000, 2);
  for (const k of ['a', 'b', 'c']) await flights.run(k, async () => 1);
  expect([flights.keep('a', 3600_000), flights.keep('b', 3600_000), flights.keep('c', 3600_000)]).toEqual([true, true, false]);
  expect(flights.keep('a', 7200_000)).toBe(true); // one already kept may be kept longer
  jest.advanceTimersByTime(31_000);
  let runs = 0;
  expect(await flights.run('a', async () => 100 + ++runs)).toBe(1); // still the kept result
  expect(await flights.run('c', async () => 100 + ++runs)).toBe(101); // not kept: run again
  expect(runs).toBe(1);
  // a kept result that ran out frees its place
  jest.advanceTimersByTime(7200_000);
  await flights.run('d', async () => 1);
  expect(flights.keep('d', 3600_000)).toBe(true);
});
