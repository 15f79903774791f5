import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, rp, OptionsError, type RpOptions } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';
import { startStubOp, type StubOp } from './support/op-stub.js';

const good = (): RpOptions => ({
  baseURL: 'https://app.example.com',
  providers: { corp: oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's' }) },
});

describe('rp() options are checked at start-up', () => {
  test.each<[string, (o: RpOptions) => unknown, RegExp]>([
    ['no baseURL', (o) => ({ ...o, baseURL: undefined }), /option "baseURL" is required/],
    ['a relative baseURL', (o) => ({ ...o, baseURL: '/app' }), /option "baseURL" must be an absolute URL/],
    ['a mountPath without /', (o) => ({ ...o, mountPath: 'auth' }), /option "mountPath" must be a path starting with "\/"/],
    ['a mountPath ending with /', (o) => ({ ...o, mountPath: '/auth/' }), /option "mountPath"/],
    ['no providers', (o) => ({ ...o, providers: undefined }), /option "providers" is required/],
    ['an empty providers', (o) => ({ ...o, providers: {} }), /option "providers" must name at least one provider/],
    ['providers as an array (plain JavaScript: the provider was silently named "0")', (o) => ({ ...o, providers: [o.providers.corp] }), /option "providers" must be an object that names each provider, not an array: providers: \{ corp: oidc/],
    ['a provider name with a slash', (o) => ({ ...o, providers: { 'a/b': o.providers.corp } }), /option "providers.a\/b" has a name that is not URL-safe/],
    ['a provider without clientId', (o) => ({ ...o, providers: { corp: { ...o.providers.corp, clientId: '' } } }), /option "providers.corp.clientId" is required/],
    ['an OIDC scope without openid', (o) => ({ ...o, providers: { corp: { ...o.providers.corp, scope: 'email' } } }), /option "providers.corp.scope" must include "openid"/],
    ['neither issuer nor providerInfo', (o) => ({ ...o, providers: { corp: { ...o.providers.corp, issuer: undefined } } }), /needs "issuer" \(for discovery\) or "providerInfo"/],
    ['a client_secret_post without secret', (o) => ({ ...o, providers: { corp: { ...o.providers.corp, clientSecret: undefined, tokenEndpointAuthMethod: 'client_secret_post' } } }), /option "providers.corp.clientSecret" is required/],
    ['an unknown defaultProvider', (o) => ({ ...o, defaultProvider: 'nope' }), /option "defaultProvider" must be one of the providers \(corp\)/],
    ['a negative transactionTtl', (o) => ({ ...o, transactionTtl: -1 }), /option "transactionTtl" must be a number of seconds/],
    ['an onError that is not a function', (o) => ({ ...o, onError: 'page.html' }), /option "onError" must be a function/],
  ])('%s', (_name, change, message) => {
    const build = (): unknown => rp(change(good()) as RpOptions);
    expect(build).toThrow(OptionsError);
    expect(build).toThrow(message);
  });

  test('good options build a router', () => {
    expect(typeof rp(good())).toBe('function');
  });
});

describe('without express-session', () => {
  test('every RP route answers 500 with what to add', async () => {
    const app = express();
    app.use(rp(good()));
    for (const path of ['/auth/login/corp', '/auth/callback/corp?code=a&state=b', '/auth/logout']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(500);
      expect(res.body.error).toBe('session_missing');
      expect(res.body.error_description).toContain('app.use(session({ secret, resave: false, saveUninitialized: false }))');
    }
  });

  test('mounted, with a cookie path that leaves out the RP\'s routes: the answer names the cookie path, not only "mount it"', async () => {
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false, cookie: { path: '/app' } }));
    app.use(rp(good()));
    const res = await request(app).get('/auth/login/corp?returnTo=/app');
    expect([res.status, res.body.error]).toEqual([500, 'session_missing']);
    expect(res.body.error_description).toContain('at "/auth/login/corp"');
    expect(res.body.error_description).toContain('cookie: { path }');
    expect(res.body.error_description).toContain('give path "/"');
  });
});

describe('GET /auth/providers', () => {
  test('lists the providers for login buttons', async () => {
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    app.use(rp({ ...good(), providers: { ...good().providers, legacy: oidc({ label: 'Legacy SSO', clientId: 'x', providerInfo: { authorization_endpoint: 'https://old.example.com/auth' } }) } }));
    const res = await request(app).get('/auth/providers');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { name: 'corp', label: 'id.example.com', type: 'oidc' },
      { name: 'legacy', label: 'Legacy SSO', type: 'oidc' },
    ]);
  });

  test('follows mountPath', async () => {
    const app = express();
    app.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    app.use(rp({ ...good(), mountPath: '/sso' }));
    expect((await request(app).get('/sso/providers')).status).toBe(200);
    expect((await request(app).get('/auth/providers')).status).toBe(404);
  });
});

describe('providerInfo (an OP without discovery)', () => {
  test('static metadata logs in without fetching the discovery document', async () => {
    const t = await startRp();
    try {
      const metadata = await (await fetch(`${t.op.issuer}/.well-known/openid-configuration`)).json();
      const discoveries = t.op.counts.discovery;
      t.relyingParty.addProvider('op', { ...t.relyingParty.provider('op'), issuer: undefined, providerInfo: metadata });
      const agent = t.agent();
      expect((await t.login(agent)).status).toBe(302);
      expect((await agent.get('/me')).body.sub).toBe('alice');
      expect(t.op.counts.discovery).toBe(discoveries);
    } finally {
      await t.close();
    }
  });

  test('(control) with an issuer, the RP does fetch the discovery document', async () => {
    const t = await startRp();
    try {
      expect((await t.login(t.agent())).status).toBe(302);
      expect(t.op.counts.discovery).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('allowIssuerMismatch', () => {
  let stub: StubOp;
  beforeAll(async () => {
    stub = await startStubOp('app');
    stub.metadata = { issuer: 'https://issuer.example.com' };
  });
  afterAll(() => stub.close());

  const app = (allowIssuerMismatch: boolean): express.Express => {
    const a = express();
    a.use(session({ secret: 's', resave: false, saveUninitialized: false }));
    a.use(rp({ baseURL: 'http://127.0.0.1', providers: { stub: oidc({ issuer: stub.issuer, clientId: 'app', allowInsecureRequests: true, allowIssuerMismatch }) } }));
    return a;
  };

  test('a discovery document for another issuer is refused by default', async () => {
    const res = await request(app(false)).get('/auth/login/stub');
    expect(res.status).toBe(502);
    expect(res.body.error).toBe('discovery_failed');
    expect(res.body.error_description).toMatch(/discovery of provider "stub" at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration failed: .*Check providers\.stub\.issuer/);
  });

  test('is accepted with allowIssuerMismatch (IdPyOIDC: allow.issuer_mismatch)', async () => {
    const res = await request(app(true)).get('/auth/login/stub');
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(new RegExp(`^${stub.issuer}/authorize\\?`));
  });
});

describe('option names from other libraries or with typos get "did you mean"', () => {
  const base = { baseURL: 'https://app.example.com' };
  const entry = { issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's' };
  test.each([
    [{ ...base, providers: { corp: oidc({ ...entry, clientID: 'app' } as never) } }, /option "providers\.corp\.clientID" is not an option: did you mean "clientId"\?/],
    [{ ...base, providers: { corp: oidc({ ...entry, issuerBaseURL: 'https://x' } as never) } }, /"providers\.corp\.issuerBaseURL" is not an option: did you mean "issuer"\?/],
    [{ ...base, providers: { corp: oidc({ ...entry, clientSecert: 's' } as never) } }, /did you mean "clientSecret"\?/],
    [{ ...base, providers: { corp: oidc(entry) }, issuerBaseURL: 'https://x' }, /option "issuerBaseURL" is not an option: did you mean "issuer" in a provider entry/],
    [{ ...base, providers: { corp: oidc(entry) }, baseUrl: 'https://x' }, /did you mean "baseURL"\?/],
    [{ ...base, providers: { corp: oidc(entry) }, mountpath: '/x' }, /did you mean "mountPath"\?/],
    [{ ...base, providers: { corp: oidc(entry) }, wholly: 1 }, /"wholly" is not an option \(the options are: baseURL, mountPath/],
  ])('%#', (options, message) => {
    expect(() => rp(options as never)).toThrow(message);
  });

  test('an http issuer without the development opt-in is refused at start-up, saying how to opt in', () => {
    expect(() => rp({ ...base, providers: { corp: oidc({ ...entry, issuer: 'http://id.example.com' }) } }))
      .toThrow(/"providers\.corp\.issuer" is an http:\/\/ URL .*add allowInsecureRequests: true to this provider entry/);
    expect(() => rp({ ...base, providers: { corp: oidc({ ...entry, issuer: 'http://127.0.0.1:9/op', allowInsecureRequests: true }) } })).not.toThrow();
  });
});
