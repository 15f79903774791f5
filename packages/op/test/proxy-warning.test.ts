/** Behind a load balancer without `trustProxy`, the OP says so once: throttling would see one client. */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
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

describe('op() behind a proxy it trusts: X-Forwarded-Proto', () => {
  afterEach(() => jest.restoreAllMocks());
  const endpoints = (doc: Record<string, unknown>) => Object.entries(doc)
    .filter(([name, value]) => (name.endsWith('_endpoint') || name === 'jwks_uri') && typeof value === 'string').map(([, value]) => String(value));

  test('an https issuer\'s endpoints stay https whatever a client sends (before: http://, javascript://, or a 500 for "a b")', async () => {
    const error = jest.spyOn(console, 'error');
    const app = express().use('/op', op({ ...base, trustProxy: true }));
    for (const proto of ['http', 'javascript', 'a b', 'ht<tp', 'http, https']) {
      const res = await request(app).get(discovery).set('x-forwarded-proto', proto);
      expect([proto, res.status]).toEqual([proto, 200]);
      expect(endpoints(res.body).length).toBeGreaterThan(3);
      for (const url of endpoints(res.body)) expect([proto, url.startsWith('https://id.example.com/op/')]).toEqual([proto, true]);
    }
    expect(error).not.toHaveBeenCalled();
  });

  test('an http issuer (a development proxy): a first entry other than http or https is a 400 naming the header, never a 500', async () => {
    const error = jest.spyOn(console, 'error');
    jest.spyOn(console, 'warn').mockImplementation(() => undefined); // X-Forwarded-Proto: https is warned about (below)
    const app = express().use('/op', op({ ...base, issuer: 'http://127.0.0.1:3001/op', trustProxy: true }));
    for (const proto of ['a b', 'ht<tp', 'javascript', ', https']) {
      const res = await request(app).get(discovery).set('x-forwarded-proto', proto).set('accept', 'application/json');
      expect([proto, res.status, res.body.error]).toEqual([proto, 400, 'invalid_request']);
      expect(res.body.error_description).toContain('X-Forwarded-Proto');
    }
    const page = await request(app).get('/op/auth?client_id=x').set('x-forwarded-proto', 'a b').set('accept', 'text/html');
    expect([page.status, page.headers['content-type']]).toEqual([400, expect.stringMatching(/text\/html/)]);
    expect(page.text).toContain('X-Forwarded-Proto');
    // what a TLS proxy in front of it sends is taken as before
    for (const [proto, scheme] of [['https', 'https:'], ['HTTP, https', 'http:']]) {
      const res = await request(app).get(discovery).set('x-forwarded-proto', proto!);
      expect([proto, res.status, new URL(res.body.token_endpoint).protocol]).toEqual([proto, 200, scheme]);
    }
    expect(error).not.toHaveBeenCalled();
  });

  // before (37d853b pinned an http issuer's scheme too): no Secure cookie, the app's own session not saved, and nothing said
  test('an http issuer behind a TLS proxy: the app\'s Secure session cookie is still set on op()\'s routes, and op() says once to make the issuer https', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const issuer = 'http://127.0.0.1:7453/op';
    const app = express();
    app.set('trust proxy', 1);
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, proxy: true, cookie: { secure: true } }));
    // the app keeps something in the session on every request (a visit counter, a CSRF token, a flash message)
    app.use((req, _res, next) => void ((req.session as unknown as { seen?: number }).seen = Date.now(), next()));
    app.use('/op', op({ ...base, issuer, trustProxy: true }));
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(7453, '127.0.0.1', resolve));
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${issuer}/session/end`, { headers: { 'x-forwarded-proto': 'https', accept: 'text/html' } });
        await res.text();
        expect([res.status, res.headers.getSetCookie().find((c) => c.startsWith('connect.sid='))]).toEqual([200, expect.stringMatching(/;\s*Secure/i)]);
      }
      const doc = await (await fetch(`${issuer}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'https' } })).json() as Record<string, string>;
      expect([doc.issuer, doc.token_endpoint]).toEqual([issuer, 'https://127.0.0.1:7453/op/token']);
      expect(warn.mock.calls.map((args) => String(args[0]))).toEqual([
        'op(): the issuer is http://127.0.0.1:7453/op but requests arrive over https (X-Forwarded-Proto): set issuer to https://127.0.0.1:7453/op '
        + '— discovery and tokens name the issuer as configured, while the endpoints it publishes follow the request (https://). (Said at most once an hour.)',
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('op() at the root of a host gives the app\'s own routes the X-Forwarded-Proto that came', async () => {
    const app = express().use(op({ ...base, issuer: 'https://id.example.com', trustProxy: true }));
    app.get('/api/data', (req, res) => void res.json({ proto: req.headers['x-forwarded-proto'] ?? null }));
    expect((await request(app).get('/api/data').set('x-forwarded-proto', 'http')).body).toEqual({ proto: 'http' });
    expect((await request(app).get('/api/data')).body).toEqual({ proto: null });
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
