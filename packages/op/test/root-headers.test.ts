/**
 * op() at the root of a host (`app.use(op({...}))`) sees every request of the app. A malformed Host,
 * X-Forwarded-Host or (an http issuer behind a trusted proxy) X-Forwarded-Proto is op()'s 400 on
 * every request op() answers itself, before oidc-provider builds a URL of it; every request op()
 * passes on reaches the app's routes after it as it came, as it does with op() mounted at /op.
 * Which is which is not listed here: each request is sent once with well-formed headers, and who
 * answered it (op(), or the app's catch-all) says what the malformed one must get.
 */
import type { Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op, password, type Authenticator } from '@openid-express/op';

const PORT = 42301;
const issuer = `http://127.0.0.1:${PORT}`;
const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
// an authenticator with a route of its own, as upstream() adds its callback
const pin: Authenticator = {
  id: 'pin', label: 'PIN', fields: () => '', throttleKey: () => undefined, verify: async () => ({ ok: false }),
  mount: ({ router }) => void router.get('/pin/callback', (_req, res) => void res.send('pin callback')),
};

let server: Server;
let ownRequests: Array<[string, string]>;
let appRequests: Array<[string, string]>;
// (PREFLIGHT: OPTIONS with a CORS preflight's headers, which oidc-provider answers where plain OPTIONS goes on)
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PREFLIGHT'];

const send = (method: string, path: string, headers: Record<string, string>) => {
  const preflight = method === 'PREFLIGHT' ? { origin: 'https://spa.example', 'access-control-request-method': 'POST' } : {};
  const req = request(server)[(method === 'PREFLIGHT' ? 'options' : method.toLowerCase()) as 'get'](path).set('accept', 'application/json').set(preflight);
  for (const [name, value] of Object.entries(headers)) req.set(name, value);
  return req;
};

beforeAll(async () => {
  const app = express();
  app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
  app.use(op({
    issuer, trustProxy: true, accounts, adapter: memoryAdapter(), ...generateKeys(), authenticators: [password(), pin],
    features: { registration: true, deviceFlow: true, clientCredentials: true },
    clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['https://app.example.com/cb'] }],
  }));
  // the app's own routes: whatever op() passes on, answered with the headers it came with
  app.use((req, res) => void res.set({
    'x-answered-by': 'app', 'x-seen-host': req.headers.host ?? '', 'x-seen-forwarded-host': req.headers['x-forwarded-host'] ?? '',
    'x-seen-proto': req.headers['x-forwarded-proto'] ?? '',
  }).json({ app: `${req.method} ${req.path}` }));
  server = await new Promise<Server>((resolve) => { const s = app.listen(PORT, '127.0.0.1', () => resolve(s)); });

  const doc = (await send('GET', '/.well-known/openid-configuration', {})).body as Record<string, unknown>;
  const endpoints = Object.entries(doc).filter(([name, value]) => (name.endsWith('_endpoint') || name === 'jwks_uri') && typeof value === 'string')
    .map(([, value]) => new URL(String(value)).pathname);
  expect(endpoints.length).toBeGreaterThan(8);
  const paths = [...new Set([
    ...endpoints, ...endpoints.map((path) => `${path}/some-id`), // /auth/:uid, /device/:uid, /reg/:clientId, /session/end/success ...
    '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/webfinger',
    '/device', '/device/some-id', '/interaction/some-uid', '/interaction/some-uid/login', '/interaction/some-uid/confirm', '/interaction/some-uid/abort',
    '/pin/callback', '/session/end/confirm', '/api/data', '/me/settings', '/ME', '/Token', '/interaction', '/',
  ])];
  ownRequests = [];
  appRequests = [];
  for (const path of paths) {
    for (const method of METHODS) {
      const res = await send(method, path, { 'x-forwarded-proto': 'http' });
      (res.headers['x-answered-by'] === 'app' ? appRequests : ownRequests).push([method, path]);
    }
  }
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => jest.restoreAllMocks());

test('the requests sent cover op()\'s endpoints, its interaction and authenticator routes, and the app\'s own', () => {
  for (const own of [['GET', '/.well-known/openid-configuration'], ['GET', '/.well-known/oauth-authorization-server'], ['GET', '/auth'],
    ['GET', '/auth/some-id'], ['POST', '/token'], ['OPTIONS', '/token'], ['GET', '/ME'], ['POST', '/reg'], ['GET', '/reg/some-id'], ['GET', '/device/some-id'],
    ['POST', '/session/end/confirm'], ['GET', '/interaction/some-uid'], ['POST', '/interaction/some-uid/login'], ['GET', '/pin/callback'],
    ['PREFLIGHT', '/token'], ['OPTIONS', '/auth'], ['OPTIONS', '/pin/callback']]) {
    expect(ownRequests).toContainEqual(own);
  }
  // (at the root, a method op() does not take at one of its paths goes on to the app, as any unknown request)
  for (const app of [['GET', '/api/data'], ['GET', '/me/settings'], ['POST', '/api/data'], ['GET', '/Token'], ['OPTIONS', '/auth/some-id'], ['GET', '/interaction'],
    ['DELETE', '/interaction/some-uid'], ['DELETE', '/pin/callback'], ['GET', '/']]) {
    expect(appRequests).toContainEqual(app);
  }
});

const malformed = (header: string, values: string[], seen: string) => async () => {
  const error = jest.spyOn(console, 'error');
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const named = header === 'x-forwarded-proto' ? 'X-Forwarded-Proto' : 'Host';
  const wrong: unknown[] = [];
  for (const value of values) {
    for (const [method, path] of appRequests) {
      const res = await send(method, path, { [header]: value });
      if (res.status !== 200 || res.headers['x-answered-by'] !== 'app' || res.headers[seen] !== value) wrong.push([value, method, path, res.status, res.text]);
    }
    for (const [method, path] of ownRequests) {
      const res = await send(method, path, { [header]: value });
      if (res.status !== 400 || (method !== 'HEAD' && !String(res.body.error_description).includes(named))) wrong.push([value, method, path, res.status, res.text]);
    }
  }
  expect(wrong).toEqual([]);
  expect(error).not.toHaveBeenCalled();
};

// before: op()'s 400 on every request of the app, on its own routes too
test('a malformed X-Forwarded-Proto is op()\'s 400 on each request op() answers (never javascript:// URLs, never a 500); the app\'s routes get it as sent',
  malformed('x-forwarded-proto', ['javascript', 'a b', 'ht<tp', ', https'], 'x-seen-proto'));

test('a malformed Host is op()\'s 400 on each request op() answers (never a 500); the app\'s routes get it as sent',
  malformed('host', ['a b', 'exa<mple.com', '127.0.0.1:99999', '[zz]'], 'x-seen-host'));

test('a malformed X-Forwarded-Host is op()\'s 400 on each request op() answers; the app\'s routes get it as sent',
  malformed('x-forwarded-host', ['a b', 'exa<mple.com:1'], 'x-seen-forwarded-host'));

test('well-formed headers reach the app\'s routes as before, and op()\'s answers use the issuer\'s scheme', async () => {
  jest.spyOn(console, 'warn').mockImplementation(() => undefined); // (X-Forwarded-Proto: https with an http issuer is warned about)
  const res = await send('GET', '/api/data', { 'x-forwarded-proto': 'https', host: 'api.example.com' });
  expect([res.status, res.headers['x-seen-proto'], res.headers['x-seen-host']]).toEqual([200, 'https', 'api.example.com']);
  const doc = await send('GET', '/.well-known/oauth-authorization-server', { 'x-forwarded-proto': 'http' });
  expect(doc.body.token_endpoint).toBe(`${issuer}/token`);
});

// (review-61: an OPTIONS request with an empty Access-Control-Request-Method is no preflight to oidc-provider)
test('an OPTIONS request with an empty Access-Control-Request-Method that op() passes on goes on to the app, malformed headers or not', async () => {
  const options = (proto: string) => send('OPTIONS', '/TOKEN', { 'x-forwarded-proto': proto, 'access-control-request-method': '' });
  const ok = await options('http');
  expect([ok.status, ok.headers['x-answered-by']]).toEqual([200, 'app']);
  const bad = await options('javascript');
  expect([bad.status, bad.headers['x-answered-by'], bad.headers['x-seen-proto']]).toEqual([200, 'app', 'javascript']);
});

// (review-61: `own` can be put before an authenticator's routes only, not before its router.use() layers)
test('an authenticator that answers through router.use(): every malformed request is refused at once, as under a path', async () => {
  const sso: Authenticator = {
    id: 'sso', label: 'SSO', fields: () => '', throttleKey: () => undefined, verify: async () => ({ ok: false }),
    mount: ({ router }) => void router.use('/sso/start', (req, res) => void res.redirect(`${req.protocol}://${req.get('host')}/sso/callback`)),
  };
  const app = express();
  app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
  app.use(op({
    issuer: 'http://127.0.0.1:42302', trustProxy: true, accounts, adapter: memoryAdapter(), ...generateKeys(), authenticators: [password(), sso],
    clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['https://app.example.com/cb'] }],
  }));
  app.use((_req, res) => void res.set('x-answered-by', 'app').json({}));
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const ok = await request(app).get('/sso/start').set('x-forwarded-proto', 'http');
  expect([ok.status, ok.headers.location]).toEqual([302, 'http://127.0.0.1:42302/sso/callback']);
  for (const path of ['/sso/start', '/api/data']) {
    const res = await request(app).get(path).set('x-forwarded-proto', 'javascript').set('accept', 'application/json');
    expect([path, res.status, res.headers.location, String(res.body.error_description)]).toEqual([path, 400, undefined, expect.stringContaining('X-Forwarded-Proto')]);
  }
});
