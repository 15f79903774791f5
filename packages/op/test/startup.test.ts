import express from 'express';
import request from 'supertest';
import session from 'express-session';
import { generateKeys, memoryAccounts, memoryAdapter, op, OpConfigError, type OpOptions } from '@openid-express/op';

const accounts = memoryAccounts([{ id: 'alice', username: 'alice', password: 'pw-pw-pw' }]);
const issuer = 'https://id.example.com/op';
const base = { issuer, accounts, adapter: memoryAdapter(), ...generateKeys() };

function startupError(options: unknown): OpConfigError {
  try {
    op(options as OpOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(OpConfigError);
    return err as OpConfigError;
  }
  throw new Error('op() accepted bad options');
}

describe('op() refuses options that cannot work, naming the option', () => {
  test.each([
    ['no options at all', undefined, 'options'],
    ['no issuer', { ...base, issuer: undefined }, 'issuer'],
    ['an issuer that is not a URL', { ...base, issuer: 'id.example.com' }, 'issuer'],
    ['an issuer ending with a slash', { ...base, issuer: 'https://id.example.com/op/' }, 'issuer'],
    ['an issuer with a query', { ...base, issuer: 'https://id.example.com/op?x=1' }, 'issuer'],
    ['no accounts', { ...base, accounts: undefined }, 'accounts'],
    ['a client without client_id', { ...base, clients: [{ client_secret: 'x' }] }, 'clients[0].client_id'],
    ['a client_id listed twice', { ...base, clients: [{ client_id: 'a' }, { client_id: 'a' }] }, 'clients'],
    ['an unknown view', { ...base, views: { signin: () => '' } }, 'views.signin'],
    ['a view that is neither function nor name', { ...base, views: { login: 42 } }, 'views.login'],
    ['an unknown feature', { ...base, features: { implicit: true } }, 'features.implicit'],
    ['a negative lifetime', { ...base, ttl: { AccessToken: -1 } }, 'ttl.AccessToken'],
    ['an unknown lifetime', { ...base, ttl: { Forever: 1 } }, 'ttl.Forever'],
    ['a zero failure limit', { ...base, throttle: { maxFailures: 0 } }, 'throttle.maxFailures'],
    ['an empty authenticator list', { ...base, authenticators: [] }, 'authenticators'],
    ['an authenticator without verify', { ...base, authenticators: [{ id: 'x', fields: () => '' }] }, 'authenticators[0]'],
    ['public keys as jwks', { ...base, jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] } }, 'jwks'],
    ['short cookie keys', { ...base, cookieKeys: ['short'] }, 'cookieKeys'],
    ['a scope with a space', { ...base, scopes: ['api read'] }, 'scopes'],
    ['a non-boolean trustProxy', { ...base, trustProxy: 'yes' }, 'trustProxy'],
    ['something that is not an adapter', { ...base, adapter: {} }, 'adapter'],
  ])('%s', (_name, options, option) => {
    const err = startupError(options);
    expect(err.option).toBe(option);
    expect(err.code).toBe('op_config_invalid');
    expect(err.message).toContain(option);
  });
});

describe('op() in production', () => {
  const env = process.env.NODE_ENV;
  afterEach(() => {
    process.env.NODE_ENV = env;
    jest.restoreAllMocks();
  });

  test('refuses to start without keys and says how to make them', () => {
    process.env.NODE_ENV = 'production';
    const err = startupError({ issuer, accounts, adapter: memoryAdapter() });
    expect(err.option).toBe('jwks');
    expect(err.message).toContain('generateKeys');
    const noCookieKeys = startupError({ issuer, accounts, adapter: memoryAdapter(), jwks: generateKeys().jwks });
    expect(noCookieKeys.option).toBe('cookieKeys');
  });

  test('starts with keys, and warns loudly when records would live in memory', () => {
    process.env.NODE_ENV = 'production';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(() => op({ issuer, accounts, ...generateKeys() })).not.toThrow();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/NODE_ENV=production but no `adapter`/);
    warn.mockClear();
    op({ issuer, accounts, ...generateKeys(), adapter: memoryAdapter() });
    expect(warn).not.toHaveBeenCalled();
  });

  test('in development, missing keys are generated with a warning', () => {
    process.env.NODE_ENV = 'development';
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(() => op({ issuer, accounts, adapter: memoryAdapter() })).not.toThrow();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/generated throwaway keys/);
  });
});

describe('op() mounted where the issuer does not say', () => {
  test('app.use at another path is a start-up error naming both paths', () => {
    const app = express();
    let err: unknown;
    try {
      app.use('/id', op(base));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpConfigError);
    expect((err as Error).message).toContain('"/op"');
    expect((err as Error).message).toContain('"/id"');
  });

  test('mounted at the right path, it starts', () => {
    expect(() => express().use('/op', op(base))).not.toThrow();
  });

  test('behind a router at another path, requests get a 500 that says so (JSON for APIs)', async () => {
    const app = express();
    const router = express.Router();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    router.use('/elsewhere', op(base));
    app.use(router);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await request(app).get('/elsewhere/.well-known/openid-configuration').set('accept', 'application/json');
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('mount_mismatch');
    expect(res.body.error_description).toContain("app.use('/op'");
    expect(error).toHaveBeenCalled();
    error.mockRestore();
  });
});

describe('op() without express-session before it', () => {
  test('answers 500 saying what to add, as a page for browsers and JSON for APIs', async () => {
    const app = express();
    app.use('/op', op(base));
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const page = await request(app).get('/op/auth?client_id=x').set('accept', 'text/html');
    expect(page.status).toBe(500);
    expect(page.text).toContain('app.use(session(');
    expect(page.text).toContain('session_missing');
    const api = await request(app).post('/op/token').set('accept', 'application/json').send('grant_type=client_credentials');
    expect(api.status).toBe(500);
    expect(api.body).toMatchObject({ error: 'server_error', code: 'session_missing' });
    error.mockRestore();
  });
});

describe('op() at the root of a host', () => {
  test('an issuer without a path mounts at the root and serves discovery there', async () => {
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use(op({ ...base, issuer: 'https://id.example.com' }));
    const res = await request(app).get('/.well-known/openid-configuration');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe('https://id.example.com');
  });
});
