import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op } from '@openid-express/op';
import { FormBrowser, signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { aliceTokens, client, insecure, SECRET, signInThenOutChecked, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

describe('an app that parses bodies itself before op()', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { features: { clientCredentials: true, registration: true } }, {
      beforeOp: (app) => {
        app.use(express.json());
        app.use(express.urlencoded({ extended: true }));
      },
    });
  });
  afterAll(() => f.op.close());

  test('still signs alice in through the forms and exchanges and refreshes her tokens', async () => {
    const tokens = await aliceTokens(f, f.web, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(tokens.claims()!.sub).toBe('alice');
    const refreshed = await client.refreshTokenGrant(f.web, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));
  });

  test('still takes JSON at the registration endpoint and forms at the token endpoint', async () => {
    const registered = await client.dynamicClientRegistration(new URL(f.op.issuer),
      { redirect_uris: [`${f.op.origin}/cb`], grant_types: ['client_credentials'], response_types: [] }, undefined, insecure);
    const tokens = await client.clientCredentialsGrant(registered, {});
    expect(tokens.access_token).toEqual(expect.any(String));
  });
});

describe.each([
  ['express.raw', () => express.raw({ type: '*/*' })],
  ['express.text', () => express.text({ type: '*/*' })],
])('an app with a catch-all body parser before op() (%s, type "*/*", as kept for webhook signatures)', (_name, parser) => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), {}, { beforeOp: (app) => app.use(parser()) });
  });
  afterAll(() => f.op.close());

  test('signs alice in through the forms (before: 403 "this form has expired" on every sign-in) and signs her out', async () => {
    const tokens = await aliceTokens(f, f.web, { scope: 'openid email' });
    expect(tokens.claims()!.sub).toBe('alice');
    await signInThenOutChecked(f);
  });
});

describe('an app-wide cors() before op()', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { features: { clientCredentials: true } }, {
      // what app.use(cors()) of the `cors` package does with its defaults: every origin, preflights answered
      beforeOp: (app) => app.use((req, res, next) => {
        res.setHeader('Access-Control-Allow-Origin', '*');
        if (req.method === 'OPTIONS') return void res.status(204).end();
        next();
      }),
    });
  });
  afterAll(() => f.op.close());

  test("does not open op()'s answers to every site: userinfo and the token endpoint follow the client's origins", async () => {
    const tokens = await aliceTokens(f, f.web, { scope: 'openid email' });
    const userinfo = await fetch(`${f.op.issuer}/me`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${tokens.access_token}` } });
    await userinfo.arrayBuffer();
    // before: 200 with *, Alice's claims readable from any site
    expect([userinfo.status, userinfo.headers.get('access-control-allow-origin')]).toEqual([400, null]);
    const token = await fetch(`${f.op.issuer}/token`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('service:' + encodeURIComponent(SECRET)).toString('base64')}` },
      body: 'grant_type=client_credentials&scope=api%3Aread',
    });
    await token.arrayBuffer();
    expect([token.status, token.headers.get('access-control-allow-origin')]).toEqual([400, null]);
    // the client's own origin still may read userinfo
    const own = await fetch(`${f.op.issuer}/me`, { headers: { origin: f.op.origin, authorization: `Bearer ${tokens.access_token}` } });
    await own.arrayBuffer();
    expect(own.headers.get('access-control-allow-origin')).toBe(f.op.origin);
  });
});

describe('trustProxy', () => {
  const interactionCookie = async (f: FlowFixture) => {
    const auth = await f.authorization();
    const res = await fetch(auth.url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    return res.headers.getSetCookie().find((c) => c.startsWith('_interaction='))!;
  };

  test('on: an https issuer behind a TLS proxy sets its cookies Secure (its scheme is pinned, whatever X-Forwarded-Proto says)', async () => {
    const app = express().use('/op', op({
      issuer: 'https://id.example.com/op', trustProxy: true, accounts: memoryAccounts([ALICE]), adapter: memoryAdapter(), ...generateKeys(),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: ['https://app.example.com/cb'] }],
    }));
    const auth = '/op/auth?client_id=web&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb'
      + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256';
    for (const proto of ['https', 'http', undefined]) {
      const res = await (proto ? request(app).get(auth).set('x-forwarded-proto', proto) : request(app).get(auth));
      const cookie = (res.headers['set-cookie'] as unknown as string[] | undefined)?.find((c) => c.startsWith('_interaction='));
      expect([proto, res.status, cookie]).toEqual([proto, 303, expect.stringMatching(/;\s*secure/i)]);
    }
  });

  test('on: X-Forwarded-Proto https from the proxy makes an http issuer\'s cookies Secure (a TLS proxy in front; op() warns to make the issuer https)', async () => {
    const f = await startFlowFixture(memoryAdapter(), { trustProxy: true });
    try {
      expect(await interactionCookie(f)).toMatch(/;\s*secure/i);
    } finally {
      await f.op.close();
    }
  });

  test('on: a client\'s X-Forwarded-Host, or a Host without its port (nginx\'s $host), changes none of the OP\'s URLs: they are the issuer\'s', async () => {
    const f = await startFlowFixture(memoryAdapter(), { trustProxy: true });
    try {
      const issuer = new URL(f.op.issuer);
      /** GET `path` of the OP with these headers (`Host` included, which fetch does not let one set). */
      const get = (path: string, headers: Record<string, string>) => new Promise<{ status: number; location?: string; body: string }>((resolve, reject) => {
        const req = http.get({ host: issuer.hostname, port: issuer.port, path, headers }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, body }));
        });
        req.on('error', reject);
      });
      const discovery = `${issuer.pathname}/.well-known/openid-configuration`;
      // (the last: an absolute-form request target, which Koa takes over Host)
      const variants: Array<[Record<string, string>, string]> = [[{ 'x-forwarded-host': 'evil.example' }, ''], [{ host: issuer.hostname }, ''], [{}, 'http://evil.example']];
      for (const [headers, origin] of variants) {
        const answer = await get(`${origin}${discovery}`, headers);
        expect(answer.status).toBe(200);
        const metadata = JSON.parse(answer.body) as Record<string, unknown>;
        const urls = Object.entries(metadata).filter(([name, value]) => name.endsWith('_endpoint') || name === 'jwks_uri' ? typeof value === 'string' : false);
        expect(urls.length).toBeGreaterThan(3);
        // before: https://evil.example/op/token and the rest, or the issuer's host without its port
        for (const [, url] of urls) expect(String(url).startsWith(`${f.op.issuer}/`)).toBe(true);
        const auth = await f.authorization();
        const login = await get(origin + new URL(auth.url).pathname + new URL(auth.url).search, headers);
        expect(login.status).toBe(303);
        expect(new URL(login.location!, f.op.issuer).host).toBe(issuer.host);
      }
    } finally {
      await f.op.close();
    }
  });

  test('off (default): the header is ignored', async () => {
    const f = await startFlowFixture(memoryAdapter());
    try {
      expect(await interactionCookie(f)).not.toMatch(/;\s*secure/i);
    } finally {
      await f.op.close();
    }
  });
});

describe('the raw oidc-provider escape hatch and odd requests', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { provider: { routes: { userinfo: '/userinfo' }, ttl: { ClientCredentials: 120 } } });
  });
  afterAll(() => f.op.close());

  test('`provider` is merged last, over our own configuration', async () => {
    expect(f.web.serverMetadata().userinfo_endpoint).toBe(`${f.op.issuer}/userinfo`);
    const tokens = await client.clientCredentialsGrant(f.service, { scope: 'api:read' });
    expect(tokens.expires_in).toBe(120);
  });

  test('an oversized login form gets a 413 page, and the OP keeps serving', async () => {
    const browser = f.browser();
    const login = await browser.open((await f.authorization()).url);
    const huge = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'a'.repeat(64 * 1024), password: 'x' });
    expect(huge.status).toBe(413);
    expect(huge.html).toContain('invalid_request');
    expect((await browser.open(login.url)).status).toBe(200);
  });

  test('logout without a redirect back shows our "signed out" page', async () => {
    const browser = f.browser();
    const auth = await f.authorization();
    const cb = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
    expect(cb.stoppedAt).toBeDefined();
    const confirm = await browser.open(`${f.op.issuer}/session/end`);
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.status).toBe(200);
    expect(done.html).toContain('<h1>Signed out</h1>');
    expect(done.html).toContain('name="viewport"');
  });
});

describe('two op() on one host name (/op1 and /op2)', () => {
  test('with their own cookie names (the README\'s provider: { cookies: { names } }), signing in at one leaves the other\'s sign-in alone', async () => {
    const { memoryAccounts, op, generateKeys } = await import('@openid-express/op');
    const session = (await import('express-session')).default;
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
    const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: ALICE.password }]);
    const app = express();
    const names = { session: 'op2_session', interaction: 'op2_interaction', resume: 'op2_interaction_resume', state: 'op2_state' };
    for (const [path, provider] of [['/op1', {}], ['/op2', { cookies: { names } }]] as const) {
      app.use(path, op({
        issuer: `${origin}${path}`, accounts, adapter: memoryAdapter(), ...generateKeys(), provider,
        clients: [{ client_id: 'app', client_secret: 'app-secret-app-secret', redirect_uris: [`${origin}/cb`], firstParty: true }],
        session: session({ name: `${path.slice(1)}.sid`, secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }),
      }));
    }
    app.get('/cb', (_req, res) => void res.send('client'));
    server.on('request', app);
    try {
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb' });
      const auth = (path: string, extra: Record<string, string> = {}) => `${origin}${path}/auth?${new URLSearchParams({
        client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: `${origin}/cb`, nonce: 'n', state: 's', ...extra,
      })}`;
      const codeOf = (page: { stoppedAt?: string }) => new URL(page.stoppedAt!).searchParams;
      expect(codeOf(await signIn(browser, auth('/op1'), { login: 'alice', password: ALICE.password })).get('code')).toEqual(expect.any(String));
      expect(codeOf(await signIn(browser, auth('/op2'), { login: 'alice', password: ALICE.password })).get('code')).toEqual(expect.any(String));
      // op1's sign-in is still there: no password asked (without the names: login_required)
      expect(codeOf(await browser.open(auth('/op1', { prompt: 'none' }))).get('code')).toEqual(expect.any(String));
      expect(codeOf(await browser.open(auth('/op2', { prompt: 'none' }))).get('code')).toEqual(expect.any(String));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
