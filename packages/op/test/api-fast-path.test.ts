/**
 * The endpoints machines call go from op()'s request checks straight to oidc-provider, without
 * Express running op()'s own app (bench/RESULTS.md: about 13 % of a userinfo call). Everything
 * else, and every check, stays as it was.
 */
import express from 'express';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op } from '@openid-express/op';
import { clientIp } from '../src/client-ip.js';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const base = {
  issuer: 'https://id.example.com/op', accounts, adapter: memoryAdapter(), ...generateKeys(),
  clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['https://app.example.com/cb'] }],
};

function mounted(extra: object = {}) {
  const opApp = op({ ...base, ...extra });
  const app = express().use('/op', opApp);
  // op()'s own app routes a request through its router: count those
  const routed = jest.spyOn((opApp as unknown as { router: { handle: () => void } }).router, 'handle');
  return { app, routed };
}

describe('which requests skip op()\'s own Express app', () => {
  test.each([
    ['discovery', 'get', '/op/.well-known/openid-configuration', 200],
    ['keys', 'get', '/op/jwks', 200],
    ['userinfo', 'get', '/op/me', 401],
    ['token', 'post', '/op/token', 400],
    ['introspection', 'post', '/op/token/introspection', 400],
    ['revocation', 'post', '/op/token/revocation', 400],
    ['PAR', 'post', '/op/request', 400],
    ['the authorization GET', 'get', '/op/auth?client_id=app', 400],
  ] as const)('%s goes straight to oidc-provider and still answers', async (_what, method, path, status) => {
    const { app, routed } = mounted();
    const res = await request(app)[method](path).set('accept', 'application/json');
    expect(res.status).toBe(status);
    expect(routed).not.toHaveBeenCalled();
  });

  test.each([
    ['an interaction page', 'get', '/op/interaction/nope'],
    ['the end-session page (it uses the browser session)', 'get', '/op/session/end'],
    ['a POST to the authorization endpoint (turned into a GET)', 'post', '/op/auth'],
    ['a path in another letter case', 'get', '/op/JWKS'],
    ['a path with a trailing slash', 'get', '/op/jwks/'],
  ] as const)('%s takes op()\'s app as before', async (_what, method, path) => {
    const { app, routed } = mounted();
    await request(app)[method](path);
    expect(routed).toHaveBeenCalledTimes(1);
  });

  test('the request checks still run first: a malformed Host on the token endpoint is a 400, not a 500', async () => {
    const { app, routed } = mounted();
    const res = await request(app).post('/op/token').set('host', '127.0.0.1:99999').set('accept', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(routed).not.toHaveBeenCalled();
  });

  test('the mount-path case check still runs first: /OP/jwks is a 404 naming the right path', async () => {
    const { app } = mounted();
    const res = await request(app).get('/OP/jwks').set('accept', 'application/json');
    expect(res.status).toBe(404);
    expect(res.body.error_description).toContain('/op/jwks');
  });

  test('op() as the whole server (http.createServer(op(...))) still serves the same endpoints', async () => {
    const opApp = op({ ...base, issuer: 'https://id.example.com' });
    const res = await request(opApp).get('/jwks');
    expect(res.status).toBe(200);
    expect(res.body.keys).toHaveLength(1);
  });
});

describe('clientIp: whose address login throttling counts, on every route', () => {
  async function ipSeen(trustProxy: boolean, outerTrust: number | false, forwardedFor?: string) {
    const app = express();
    if (outerTrust !== false) app.set('trust proxy', outerTrust);
    app.get('/', (req, res) => void res.send(clientIp(req, trustProxy)));
    const r = request(app).get('/');
    return (await (forwardedFor ? r.set('x-forwarded-for', forwardedFor) : r)).text;
  }

  test('trustProxy: the address the one trusted hop saw (the last X-Forwarded-For entry), whatever the app trusts', async () => {
    expect(await ipSeen(true, false, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(await ipSeen(true, 2, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
  });

  test('without trustProxy: a client cannot pick its address by sending X-Forwarded-For', async () => {
    expect(await ipSeen(false, false, '203.0.113.7')).toMatch(/127\.0\.0\.1|::1/);
  });

  test('without trustProxy, behind an app that trusts its proxy: that app\'s req.ip, as op()\'s own app inherits it', async () => {
    expect(await ipSeen(false, 1, '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
  });
});
