/**
 * A method an endpoint does not take is 405 with `Allow` (RFC 9110 §15.5.6), not "There is no GET
 * /op/token here", which sent people looking for a wrong address. The table of methods in
 * router.ts is checked here against oidc-provider itself: every method it lists is routed (never
 * 404 / 405 from op()), every other one is not.
 */
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { generateKeys, memoryAccounts, memoryAdapter, op } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const issuer = 'https://id.example.com/op';
const app = express().use('/op', op({
  issuer, accounts, adapter: memoryAdapter(), ...generateKeys(),
  features: { registration: true, deviceFlow: true, clientCredentials: true },
  clients: [{ client_id: 'app', client_secret: 'app-secret-that-is-long-enough-0123456789', redirect_uris: ['https://app.example.com/cb'] }],
}));

const ENDPOINTS: Array<[string, string[]]> = [
  ['/.well-known/openid-configuration', ['GET']], ['/jwks', ['GET']], ['/auth', ['GET', 'POST']], ['/me', ['GET', 'POST']],
  ['/token', ['POST']], ['/token/introspection', ['POST']], ['/token/revocation', ['POST']], ['/reg', ['POST']],
  ['/request', ['POST']], ['/device/auth', ['POST']], ['/device', ['GET', 'POST']],
  ['/session/end', ['GET', 'POST']], ['/session/end/confirm', ['POST']], ['/session/end/success', ['GET']],
];
const METHODS = ['get', 'post', 'put', 'delete', 'patch'] as const;

const send = (method: (typeof METHODS)[number] | 'options', path: string, accept = 'application/json') =>
  request(app)[method](`/op${path}`).set('host', 'id.example.com').set('accept', accept);

describe('methods an endpoint does not take', () => {
  test('the endpoints the test covers are the ones discovery lists', async () => {
    const doc = (await send('get', '/.well-known/openid-configuration')).body;
    for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint', 'introspection_endpoint',
      'revocation_endpoint', 'end_session_endpoint', 'pushed_authorization_request_endpoint', 'device_authorization_endpoint']) {
      expect(ENDPOINTS.map(([p]) => `/op${p}`)).toContain(new URL(doc[key]).pathname);
    }
  });

  test.each(ENDPOINTS)('%s takes %j and answers every other method 405 with Allow', async (path, takes) => {
    const allow = [...takes, ...(takes.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
    for (const method of METHODS) {
      // GET /device/<anything> is oidc-provider's device page with a user code in its URL
      if (path === '/device/auth' && method === 'get') continue;
      const res = await send(method, path);
      if (takes.includes(method.toUpperCase())) {
        expect([method, path, res.status]).not.toEqual([method, path, 405]);
        expect([method, path, res.body.error]).not.toEqual([method, path, 'not_found']);
      } else {
        expect([method, path, res.status, res.headers.allow]).toEqual([method, path, 405, allow]);
        expect(res.body.error).toBe('method_not_allowed');
        expect(res.body.error_description).toBe(`/op${path} does not take ${method.toUpperCase()} requests: it takes ${allow.replace(', OPTIONS', '')}.`);
        expect(res.headers['cache-control']).toBe('no-store');
      }
    }
  });

  test('a browser gets the error page; the path in another letter case too', async () => {
    const res = await send('get', '/TOKEN', 'text/html');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST, OPTIONS');
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('does not take GET requests');
  });

  test('OPTIONS is 204 with Allow; a CORS preflight is still oidc-provider\'s', async () => {
    const res = await send('options', '/token');
    expect([res.status, res.headers.allow]).toEqual([204, 'POST, OPTIONS']);
    const preflight = await send('options', '/token').set('origin', 'https://spa.example').set('access-control-request-method', 'POST');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-methods']).toContain('POST');
  });

  test('a path nobody routes is still 404', async () => {
    const res = await send('delete', '/tokens');
    expect([res.status, res.body.error, res.headers.allow]).toEqual([404, 'not_found', undefined]);
  });
});

describe('methods the interaction routes (login, consent, abort) do not take', () => {
  const ROUTES: Array<[string, string]> = [
    ['/interaction/abc', 'GET, HEAD, OPTIONS'], ['/interaction/abc/login', 'GET, POST, HEAD, OPTIONS'],
    ['/interaction/abc/confirm', 'POST, OPTIONS'], ['/interaction/abc/abort', 'POST, OPTIONS'],
  ];

  test.each(ROUTES)('%s answers another method 405 with Allow: %s (before: 404 "There is no PUT … here")', async (path, allow) => {
    for (const method of ['put', 'delete', 'patch', ...(allow.startsWith('GET') ? [] : ['get'])] as const) {
      const res = await send(method as (typeof METHODS)[number], path);
      expect([method, path, res.status, res.headers.allow]).toEqual([method, path, 405, allow]);
      expect(res.body.error).toBe('method_not_allowed');
      expect(res.body.error_description).toBe(`/op${path} does not take ${method.toUpperCase()} requests: it takes ${allow.replace(', OPTIONS', '')}.`);
    }
    // the methods it takes still reach it (an unknown interaction: its own answer, never 405)
    const taken = await send(allow.startsWith('GET') ? 'get' : 'post', path, 'text/html');
    expect(taken.status).not.toBe(405);
  });

  test.each(ROUTES)('OPTIONS %s is 204 with Allow (before: Express\'s 200)', async (path, allow) => {
    const res = await send('options', path);
    expect([res.status, res.headers.allow]).toEqual([204, allow]);
  });

  test('a browser gets the error page', async () => {
    const res = await send('delete', '/interaction/abc/login', 'text/html');
    expect([res.status, res.headers.allow]).toEqual([405, 'GET, POST, HEAD, OPTIONS']);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('does not take DELETE requests');
  });
});

test('an authenticator\'s own routes under /interaction (a form_post return, another method of a path op() has) still reach it: the 405s come after them (review-56)', async () => {
  const custom = {
    id: 'saml', label: 'SAML', fields: () => '', throttleKey: () => undefined,
    async verify() { return { ok: false as const }; },
    mount(ctx: { router: express.Router }) {
      ctx.router.post('/interaction/saml-acs', (_req, res) => void res.status(200).send('acs reached'));
      ctx.router.delete('/interaction/:uid/login', (_req, res) => void res.status(200).send('delete reached'));
    },
  };
  const withCustom = express().use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false })).use('/op', op({
    issuer, accounts, adapter: memoryAdapter(), ...generateKeys(), clients: [],
    authenticators: [custom as unknown as Parameters<typeof op>[0]['authenticators'] extends (infer A)[] | undefined ? A : never],
  }));
  const acs = await request(withCustom).post('/op/interaction/saml-acs').set('host', 'id.example.com').type('form').send('SAMLResponse=x');
  const del = await request(withCustom).delete('/op/interaction/abc/login').set('host', 'id.example.com');
  // before: 405 "takes GET, HEAD" and 405 "takes GET, POST"
  expect([acs.status, acs.text, del.status, del.text]).toEqual([200, 'acs reached', 200, 'delete reached']);
  // op()'s own paths still answer a method nobody takes 405
  expect((await request(withCustom).put('/op/interaction/abc/login').set('host', 'id.example.com')).status).toBe(405);
});
