/**
 * `retryBackchannelLogout`: how long it keeps trying (about 69 minutes by default), and giving up: the
 * message says how the last delivery failed, and what to look at — the app's log when it answered
 * (5xx, 429), the network when nothing answered.
 */
import { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type Provider from 'oidc-provider';
import { retryBackchannelLogout } from '../src/backchannel-retry.js';

/** A stand-in provider whose one client's back channel fails every time as `failure` says. */
function providerFailing(failure: () => Error) {
  const events = new EventEmitter();
  const client = {
    clientId: 'shop', backchannelLogoutUri: 'https://shop.example/auth/backchannel-logout/id',
    backchannelLogout: () => Promise.reject(failure()),
  };
  const provider = { on: events.on.bind(events), Client: { find: async () => client } } as unknown as Provider;
  return { provider, fail: () => events.emit('backchannel.error', {}, failure(), client, 'alice', 'sid-1') };
}

const answered = (status: number) => Object.assign(new Error(`expected 200 OK, got: ${status}`), { response: { status } });

let warn: jest.SpyInstance;
beforeEach(() => void (warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined)));
afterEach(() => warn.mockRestore());
const gaveUp = async (): Promise<string> => {
  for (let i = 0; i < 100 && warn.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return warn.mock.calls.flat().join('\n');
};

test('an app that kept answering 503 (its session store full or down): the message names the answer and sends the reader to the app, not the network', async () => {
  const { provider, fail } = providerFailing(() => answered(503));
  retryBackchannelLogout(provider, {} as never, [10, 10]);
  fail();
  expect(await gaveUp()).toMatch(/^op\(\): the back-channel logout to client "shop" \(https:\/\/shop\.example\/auth\/backchannel-logout\/id\) was not delivered: no success after 3 attempts over 0 s \(last: the app answered 503\)\. That app may still have the user signed in: look in its log for why it answered so .*session store was down or full/);
  expect(await gaveUp()).not.toContain('reachable'); // before: "check that it is reachable from the OP", which it was
});

test('an app that never answered: the message says so and sends the reader to the network', async () => {
  const { provider, fail } = providerFailing(() => new Error('connect ECONNREFUSED 10.0.0.7:443'));
  retryBackchannelLogout(provider, {} as never, [10, 10]);
  fail();
  expect(await gaveUp()).toMatch(/was not delivered: no success after 3 attempts over 0 s \(last: no answer \(connect ECONNREFUSED 10\.0\.0\.7:443\)\)\. .*check that it is reachable from the OP/);
});

describe('the default schedule (in this process, as with memoryAdapter())', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /**
   * A provider whose one client's back channel answers 503 until `upAt` (ms on the fake clock), then
   * 200; `attempts` counts the deliveries. `withSid`: its logout tokens carry the OP session's sid.
   */
  function appDownUntil(upAt: number, withSid = true) {
    const events = new EventEmitter();
    const attempts: number[] = [];
    const client = {
      clientId: 'shop', backchannelLogoutUri: 'https://shop.example/auth/backchannel-logout/id', backchannelLogoutSessionRequired: withSid,
      backchannelLogout: async () => {
        attempts.push(Date.now());
        if (Date.now() < upAt) throw answered(503);
      },
    };
    const provider = { on: events.on.bind(events), Client: { find: async () => client } } as unknown as Provider;
    return { provider, attempts, fail: () => events.emit('backchannel.error', {}, answered(503), client, 'alice', 'sid-1') };
  }

  test('an app down for 40 minutes (a deploy, a crash loop) still gets the logout (tokens with sid)', async () => {
    const start = Date.now();
    const { provider, attempts, fail } = appDownUntil(start + 40 * 60_000);
    retryBackchannelLogout(provider, {} as never);
    fail();
    await jest.advanceTimersByTimeAsync(70 * 60_000);
    expect(warn).not.toHaveBeenCalled(); // before: given up after 104 s
    expect(attempts.at(-1)! - start).toBeGreaterThanOrEqual(40 * 60_000);
    expect(attempts.length).toBe(10); // the ninth retry (39 min after the failure) met it down; the tenth (69 min) got through
  });

  test('a client whose tokens carry only sub: not past 104 s (a later one would end the logins made since the sign-out too)', async () => {
    const start = Date.now();
    const { provider, attempts, fail } = appDownUntil(start + 40 * 60_000, false);
    retryBackchannelLogout(provider, {} as never);
    fail();
    await jest.advanceTimersByTimeAsync(70 * 60_000);
    expect(attempts.length).toBe(5);
    expect(attempts.at(-1)! - start).toBeLessThanOrEqual(105_000);
    expect(warn.mock.calls.flat().join('\n')).toMatch(/was not delivered: no success after 6 attempts over 104 s \(last: the app answered 503\)/);
  });

  test('an app down for good: given up after about 69 minutes, and said so', async () => {
    const { provider, attempts, fail } = appDownUntil(Infinity);
    retryBackchannelLogout(provider, {} as never);
    fail();
    await jest.advanceTimersByTimeAsync(68 * 60_000);
    expect(warn).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(2 * 60_000);
    expect(attempts.length).toBe(10);
    expect(warn.mock.calls.flat().join('\n')).toMatch(/was not delivered: no success after 11 attempts over 69 min \(last: the app answered 503\)/);
  });
});

describe('an app that refuses a delivery (4xx): what it answered, read with limits', () => {
  const refusedWith = (body: BodyInit) => Object.assign(new Error('expected 200 OK, got: 400'), { response: new Response(body, { status: 400 }) });

  test('its JSON error is named in the warning', async () => {
    const { provider, fail } = providerFailing(() => refusedWith(JSON.stringify({ error: 'invalid_request', error_description: 'the logout token\'s iat is in the future' })));
    retryBackchannelLogout(provider, {} as never);
    fail();
    expect(await gaveUp()).toContain('was refused by the app: expected 200 OK, got: 400 (invalid_request: the logout token\'s iat is in the future)');
  });

  test('an answer of many "<" without ">" does not stall the OP (the tag stripping was quadratic: 40 KB held every request for 2 s)', async () => {
    const { provider, fail } = providerFailing(() => refusedWith(`Bad request ${'<'.repeat(60_000)}`));
    retryBackchannelLogout(provider, {} as never);
    const started = Date.now();
    fail();
    const said = await gaveUp();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(said).toContain('(Bad request <<<');
  });

  test('an answer that never ends is read no further than its start', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new TextEncoder().encode(`<p>Refused</p>${' '.repeat(1000)}`));
      },
    });
    const { provider, fail } = providerFailing(() => refusedWith(endless));
    retryBackchannelLogout(provider, {} as never);
    const started = Date.now();
    fail();
    expect(await gaveUp()).toContain('(Refused Refused');
    expect(Date.now() - started).toBeLessThan(1000); // not the 2 s limit: the start is enough
    expect(pulled).toBeLessThan(10);
  });
});

test('the shared queue is no longer polled for an op() the app dropped (it was, once a second, for the life of the process)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const takeDue = jest.fn(async () => [] as string[]);
  let dropped: WeakRef<object> | undefined;
  let held: object | undefined; // the app's reference, until the first poll (a GC meanwhile, under load, took it early)
  (() => {
    const { provider } = providerFailing(() => answered(503));
    retryBackchannelLogout(provider, { takeDue, schedule: async () => undefined } as never);
    dropped = new WeakRef(provider);
    held = provider;
  })();
  for (let i = 0; i < 60 && !takeDue.mock.calls.length; i++) await new Promise((r) => setTimeout(r, 50));
  expect(takeDue).toHaveBeenCalled();
  held = undefined; // the app drops it
  expect(held).toBeUndefined();
  await new Promise((r) => setImmediate(r));
  gc();
  expect(dropped!.deref()).toBeUndefined();
  const calls = takeDue.mock.calls.length;
  await new Promise((r) => setTimeout(r, 2100));
  expect(takeDue.mock.calls.length).toBe(calls);
});
