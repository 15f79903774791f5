/**
 * Several providers at once, each with its own callback URL.
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import { startOp, type TestOp } from './support/oidc-provider.js';
import { close, listen } from './support/rp-app.js';

const server = createServer();
let baseURL: string;
let one: TestOp;
let two: TestOp;

beforeAll(async () => {
  baseURL = await listen(server);
  const client = (name: string) => ({
    client_id: `app-${name}`, client_secret: `secret-${name}-0123456789012345678901234567`,
    redirect_uris: [`${baseURL}/auth/callback/${name}`], grant_types: ['authorization_code'],
  });
  one = await startOp({ clients: [client('one')] });
  two = await startOp({ clients: [client('two')], accounts: { carol: { name: 'Carol' } } });
  const app = express();
  app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
  const entry = (name: string, op: TestOp) =>
    oidc({ issuer: op.issuer, clientId: `app-${name}`, clientSecret: `secret-${name}-0123456789012345678901234567`, allowInsecureRequests: true, label: `OP ${name}` });
  app.use(rp({ baseURL, providers: { one: entry('one', one), two: entry('two', two) } }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  server.on('request', app);
});
afterAll(async () => {
  await close(server);
  await one.close();
  await two.close();
});

describe('several providers', () => {
  test('each provider logs in through its own callback URL', async () => {
    const a = request.agent(server);
    const startOne = new URL((await a.get('/auth/login/one')).headers.location);
    expect(startOne.origin).toBe(one.issuer);
    expect(startOne.searchParams.get('redirect_uri')).toBe(`${baseURL}/auth/callback/one`);
    const cbOne = await one.authorize(startOne);
    expect(cbOne.pathname).toBe('/auth/callback/one');
    await a.get(cbOne.pathname + cbOne.search).expect(302);
    expect((await a.get('/me')).body).toMatchObject({ sub: 'alice', provider: 'one' });

    const b = request.agent(server);
    const startTwo = new URL((await b.get('/auth/login/two')).headers.location);
    expect(startTwo.origin).toBe(two.issuer);
    const cbTwo = await two.authorize(startTwo, { account: 'carol' });
    expect(cbTwo.pathname).toBe('/auth/callback/two');
    await b.get(cbTwo.pathname + cbTwo.search).expect(302);
    expect((await b.get('/me')).body).toMatchObject({ sub: 'carol', provider: 'two' });
  });

  test('a response from one OP delivered to the other provider\'s callback is refused (mix-up)', async () => {
    const agent = request.agent(server);
    const start = new URL((await agent.get('/auth/login/one')).headers.location);
    const callback = await one.authorize(start);
    const res = await agent.get(`/auth/callback/two${callback.search}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_state');
    expect((await agent.get('/me')).status).toBe(401);
  });

  test('GET /auth/providers lists both', async () => {
    const res = await request(server).get('/auth/providers');
    expect(res.body).toEqual([
      { name: 'one', label: 'OP one', type: 'oidc' },
      { name: 'two', label: 'OP two', type: 'oidc' },
    ]);
  });
});

describe('two rp() routers on one request (one per OP, as a customers\' and a staff login might be tried)', () => {
  const twoServer = createServer();
  let twoBase: string;
  beforeAll(async () => {
    twoBase = await listen(twoServer);
    const entry = (op: TestOp, name: string) => oidc({ issuer: op.issuer, clientId: `app-${name}`, clientSecret: `secret-${name}-0123456789012345678901234567`, allowInsecureRequests: true });
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    app.use(rp({ baseURL: twoBase, providers: { corp: entry(one, 'one') } }));
    app.use(rp({ baseURL: twoBase, mountPath: '/admin/auth', providers: { corp: entry(two, 'two') } }));
    app.get('/admin', requireAuth({ provider: 'corp' }), (req, res) => void res.json({ staff: req.oidc.user }));
    twoServer.on('request', app);
  });
  afterAll(() => close(twoServer));

  test('are refused with a 500 that says why and what to do, before any login could count for both', async () => {
    const res = await request(twoServer).get('/admin').set('accept', 'application/json');
    expect(res.status).toBe(500);
    expect(res.body.error).toBe('invalid_options');
    expect(res.body.error_description).toContain('two rp() routers handle GET /admin: they would share the one login in req.session');
    expect(res.body.error_description).toContain('Use one rp() with several providers');
    // every route behind both is: the app's pages, and the second router's own
    expect((await request(twoServer).get('/admin/auth/login/corp')).status).toBe(500);
  });
});
