/** Behind a load balancer without `trustProxy`, the OP says so once: throttling would see one client. */
import express from 'express';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op, OpConfigError } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const base = { issuer: 'https://id.example.com/op', accounts, adapter: memoryAdapter(), ...generateKeys() };
const discovery = '/op/.well-known/openid-configuration';

describe('op() behind a proxy it does not trust', () => {
  afterEach(() => jest.restoreAllMocks());

  test('warns once, at the first request with X-Forwarded-For, saying what to set', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const app = express().use('/op', op(base));
    await request(app).get(discovery);
    expect(warn).not.toHaveBeenCalled();
    await request(app).get(discovery).set('x-forwarded-for', '203.0.113.9');
    await request(app).get(discovery).set('x-forwarded-for', '203.0.113.10');
    expect(warn).toHaveBeenCalledTimes(1);
    const message = String(warn.mock.calls[0]![0]);
    expect(message).toContain('X-Forwarded-For');
    expect(message).toContain('trustProxy: true');
    expect(message).toContain("app.set('trust proxy'");
    expect(message).toMatch(/lock everybody out/);
  });

  test('with trustProxy: true it stays quiet', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const app = express().use('/op', op({ ...base, trustProxy: true }));
    await request(app).get(discovery).set('x-forwarded-for', '203.0.113.9');
    expect(warn).not.toHaveBeenCalled();
  });

  test('an https issuer reached over http with X-Forwarded-Proto: https (a TLS proxy): warns once that its endpoints say http://, naming trustProxy', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const app = express().use('/op', op(base));
    const doc = (await request(app).get(discovery).set('x-forwarded-proto', 'https')).body;
    expect(doc.authorization_endpoint).toBe('http://id.example.com/op/auth'); // what the warning is about
    await request(app).get(discovery).set('x-forwarded-proto', 'https');
    expect(warn).toHaveBeenCalledTimes(1); // before: nothing (the proxy sent no X-Forwarded-For)
    expect(String(warn.mock.calls[0]![0])).toMatch(/X-Forwarded-Proto: https, but `trustProxy` is off.*http:\/\/ endpoints under its https issuer \(https:\/\/id\.example\.com\/op\).*`trustProxy: true`/);
    // with trustProxy they are https, and nothing is said
    warn.mockClear();
    const trusted = express().use('/op', op({ ...base, trustProxy: true }));
    expect((await request(trusted).get(discovery).set('x-forwarded-proto', 'https')).body.authorization_endpoint).toBe('https://id.example.com/op/auth');
    expect(warn).not.toHaveBeenCalled();
  });

  test('an http issuer (development), or no X-Forwarded-Proto: https, is not warned about', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const dev = express().use('/op', op({ ...base, issuer: 'http://127.0.0.1:3001/op' }));
    await request(dev).get(discovery).set('x-forwarded-proto', 'https');
    const app = express().use('/op', op(base));
    await request(app).get(discovery).set('x-forwarded-proto', 'http');
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('op() options of this round are validated at start-up', () => {
  test.each([
    ['a storeTimeout that is not a number', { storeTimeout: '3s' }, 'storeTimeout'],
    ['a storeTimeout of zero', { storeTimeout: 0 }, 'storeTimeout'],
    ['a session that is not a middleware', { session: { secret: 'x' } }, 'session'],
    ['allowPrivateHosts not an array', { allowPrivateHosts: '10.0.0.0/8' }, 'allowPrivateHosts'],
    ['a URL in allowPrivateHosts', { allowPrivateHosts: ['rp.internal', 'http://rp.internal'] }, 'allowPrivateHosts[1]'],
    ['a host with a port', { allowPrivateHosts: ['rp.internal:8080'] }, 'allowPrivateHosts[0]'],
    ['a bad CIDR prefix', { allowPrivateHosts: ['10.0.0.0/33'] }, 'allowPrivateHosts[0]'],
    ['a wildcard', { allowPrivateHosts: ['*.internal'] }, 'allowPrivateHosts[0]'],
  ])('%s', (_name, extra, option) => {
    let err: unknown;
    try {
      op({ ...base, ...(extra as object) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpConfigError);
    expect((err as OpConfigError).option).toBe(option);
  });
});
