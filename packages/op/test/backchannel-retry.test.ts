/**
 * `retryBackchannelLogout` giving up: the message says how the last delivery failed, and what to look
 * at — the app's log when it answered (5xx, 429), the network when nothing answered.
 */
import { EventEmitter } from 'node:events';
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
