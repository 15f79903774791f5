/**
 * OpenID Connect RP certification, the cryptographic tests: client authentication with a JWT
 * (client_secret_jwt, private_key_jwt), HS256 ID tokens, encrypted ID tokens, signed / encrypted
 * UserInfo, the access token in the UserInfo request body, and request objects encrypted to an OP
 * that rotates its encryption key.
 *
 * The OP is a REAL oidc-provider (support/oidc-provider.ts) registered for each test; what the OP
 * received and answered is recorded by a Koa middleware in front of its routes (`t.seen`; the
 * fixture composes the provider's middleware at once, so the recorder is added by a hook on
 * `Provider.prototype.callback` while the fixture builds the provider). What
 * oidc-provider cannot be made to do (sign UserInfo with a key that is not in its JWKS, encrypt
 * UserInfo without signing it) is done by a middleware that rewrites its answer (`tamper`); the
 * HS256 ID token signed with another secret comes from the hand-written stub OP.
 * A128KW-encrypted ID tokens (a key derived from the client secret) are not supported by the RP:
 * that test shows the refusal, not a login.
 * Every refusal checks its status and error code, and that no authenticated session is left.
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import * as jose from 'jose';
import Provider, { type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider';
import { OptionsError, oidc, readStoredLogin, requireAuth, rp, type Authentication, type OidcProviderOptions, type RpOptions } from '@openid-express/rp';
import { startOp, type TestOpOptions } from './support/oidc-provider.js';
import { CLIENT_ID, CLIENT_SECRET, close, listen, type ListableStore, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';
import { startStubRp } from './support/stub-rp.js';
import { PRIVATE_MEMBERS, keyPair } from './support/crypto-keys.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** One request the OP answered: what it received and what it sent back. */
interface OpRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, unknown>;
  /** The parsed form / JSON body (oidc-provider's `ctx.oidc.body`). */
  body: Record<string, unknown>;
  status: number;
  /** The answer's media type (`application/json`, `application/jwt` …). */
  type: string;
  /** The answer's body (an object for JSON, a string for a JWT). */
  answer: unknown;
}

interface CryptoRp extends TestRp {
  /** Requests the OP answered, oldest first. */
  seen: OpRequest[];
  /** GET {mountPath}/jwks requests the RP's server received (the OP fetching the client's jwks_uri). */
  jwksServed: number;
  /** Rebuilds the OP from its options (a `config.jwks` changed by the test is read again); the request log goes on. */
  restartOp(): Promise<void>;
}

interface Setup {
  /** Client metadata registered at the OP (over the defaults of client "app"), given the RP's base URL. */
  client?: (baseURL: string) => Partial<ClientMetadata>;
  /** The provider entry "op" (over issuer, clientId, clientSecret, scope, allowInsecureRequests). */
  provider?: Partial<OidcProviderOptions>;
  rp?: Partial<RpOptions>;
  op?: Partial<TestOpOptions>;
  /** Extra routes of the RP app, before rp() (e.g. a JWKS the client registers instead of the RP's). */
  routes?: (app: express.Express) => void;
  /** Rewrites an OP answer after oidc-provider produced it (what oidc-provider cannot be configured to do). */
  tamper?: (ctx: KoaContextWithOIDC) => Promise<void> | void;
}

/** Called with each oidc-provider instance just before its middleware is composed (see `start`). */
let onProviderCallback: ((provider: Provider) => void) | undefined;
const composeProvider = Provider.prototype.callback;
Provider.prototype.callback = function callback(this: Provider) {
  onProviderCallback?.(this);
  return composeProvider.call(this);
};
afterAll(() => {
  Provider.prototype.callback = composeProvider;
});

/**
 * Like support/rp-app.ts `startRp`, but the client's metadata may name the RP's own URLs (its
 * `jwks_uri` is `${baseURL}/auth/jwks`), and the OP's traffic is recorded.
 */
async function start(s: Setup = {}): Promise<CryptoRp> {
  const server = createServer();
  const baseURL = await listen(server);
  const opOptions: TestOpOptions = {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${baseURL}/auth/callback/op`],
      grant_types: ['authorization_code', 'refresh_token'],
      ...s.client?.(baseURL),
    }],
    ...s.op,
  };
  const seen: OpRequest[] = [];
  const watch = (provider: Provider): void => {
    provider.use(async (ctx, next) => {
      await next();
      const oidcCtx = (ctx as unknown as { oidc?: { body?: Record<string, unknown> } }).oidc;
      if (s.tamper) await s.tamper(ctx as KoaContextWithOIDC);
      seen.push({
        method: ctx.method, path: ctx.path, headers: { ...ctx.headers }, query: { ...ctx.query }, body: { ...oidcCtx?.body },
        status: ctx.status, type: ctx.type, answer: ctx.body,
      });
    });
  };
  /** Runs `build` (which makes and composes a provider) with the recorder added to that provider. */
  const watching = async <T>(build: () => T): Promise<Awaited<T>> => {
    onProviderCallback = watch;
    try {
      return await build();
    } finally {
      onProviderCallback = undefined;
    }
  };
  const op = await watching(() => startOp(opOptions));
  const store = new session.MemoryStore() as ListableStore;
  const app = express();
  app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store, name: 'sid' }));
  s.routes?.(app);
  const router = rp({
    baseURL,
    providers: {
      op: oidc({ issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email', allowInsecureRequests: true, ...s.provider }),
    },
    ...s.rp,
  });
  app.use(router);
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  server.on('request', app);

  const t: CryptoRp = {
    baseURL, op, app, server, store, seen, jwksServed: 0,
    relyingParty: router.relyingParty,
    agent: () => request.agent(server),
    async startLogin(agent, o = {}) {
      const started = await agent.get(`/auth/login/op?returnTo=${encodeURIComponent(o.returnTo ?? '/me')}`);
      if (started.status !== 302) throw new Error(`login start answered ${started.status}: ${started.text}`);
      return (o.browser ?? op.browser()).authorize(started.headers.location, { account: o.account, deny: o.deny });
    },
    async login(agent, o = {}) {
      const callback = await t.startLogin(agent, o);
      return agent.get(callback.pathname + callback.search);
    },
    async authenticatedSessions() {
      const all = await new Promise<Record<string, session.SessionData>>((resolve, reject) => store.all((err, v) => (err ? reject(err) : resolve((v ?? {}) as never))));
      return Object.entries(all).filter(([, v]) => v?.oidc?.auth).map(([id]) => id);
    },
    restartOp: () => watching(() => op.rotateKeys()),
    async close() {
      await close(server);
      await op.close();
    },
  };
  server.prependListener('request', (req) => {
    if (req.url?.split('?')[0] === '/auth/jwks') t.jwksServed += 1;
  });
  return t;
}

let t: CryptoRp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** The one login the store holds. */
async function storedAuth(rpApp: CryptoRp): Promise<Authentication> {
  const all = await new Promise<Record<string, session.SessionData>>((resolve) => rpApp.store.all((_e, v) => resolve((v ?? {}) as never)));
  const auths = Object.values(all).flatMap((v) => (v.oidc?.auth ? [readStoredLogin(v.oidc.auth)] : [])) satisfies Authentication[];
  expect(auths).toHaveLength(1);
  return auths[0];
}

/** A whole login as alice that succeeds: 302 from the callback, /me answers her profile. */
async function expectLogin(rpApp: CryptoRp, agent = rpApp.agent()): Promise<Record<string, unknown>> {
  const res = await rpApp.login(agent);
  expect({ status: res.status, body: res.body }).toEqual({ status: 302, body: expect.anything() });
  const me = await agent.get('/me');
  expect(me.status).toBe(200);
  expect(me.body.sub).toBe('alice');
  return me.body;
}

/** A whole login that the RP refuses with `status` / `code`; nothing of it is left logged in. */
async function expectRefusedLogin(rpApp: CryptoRp, status: number, code: string, description?: RegExp): Promise<request.Response> {
  const agent = rpApp.agent();
  const res = await rpApp.login(agent);
  expect({ status: res.status, error: res.body.error }).toEqual({ status, error: code });
  if (description) expect(res.body.error_description).toMatch(description);
  await expectNoLogin(rpApp, agent);
  return res;
}

const requestsTo = (rpApp: CryptoRp, path: string): OpRequest[] => rpApp.seen.filter((r) => r.path === path);
/** The token endpoint's answer (JSON) of the last code grant. */
const lastTokenAnswer = (rpApp: CryptoRp): Record<string, unknown> => requestsTo(rpApp, '/token').at(-1)!.answer as Record<string, unknown>;
const parts = (jwt: unknown): number => String(jwt).split('.').length;

describe('rp-token_endpoint-* (client authentication with a JWT)', () => {
  test('rp-token_endpoint-client_secret_jwt: the token request carries an HS256 jwt-bearer assertion over the secret, no secret in Basic or the body; the login works', async () => {
    t = await start({ client: () => ({ token_endpoint_auth_method: 'client_secret_jwt' }), provider: { tokenEndpointAuthMethod: 'client_secret_jwt' } });
    await expectLogin(t);
    const [token] = requestsTo(t, '/token');
    expect(token.status).toBe(200);
    expect(token.headers.authorization).toBeUndefined();
    expect(token.body.client_secret).toBeUndefined();
    expect(token.body.client_assertion_type).toBe(JWT_BEARER);
    const assertion = String(token.body.client_assertion);
    expect(jose.decodeProtectedHeader(assertion).alg).toBe('HS256');
    const { payload } = await jose.jwtVerify(assertion, new TextEncoder().encode(CLIENT_SECRET), { algorithms: ['HS256'], issuer: CLIENT_ID, subject: CLIENT_ID });
    expect([payload.aud].flat()).toContain(t.op.issuer);
    expect(payload.jti).toEqual(expect.any(String));
    expect(t.op.counts.grants.authorization_code).toBe(1);
  });

  test('rp-token_endpoint-client_secret_jwt (wrong secret): the OP refuses the assertion, the login is refused with 500 client_auth_failed (invalid_client, naming what to check), no session', async () => {
    t = await start({
      client: () => ({ token_endpoint_auth_method: 'client_secret_jwt' }),
      provider: { tokenEndpointAuthMethod: 'client_secret_jwt', clientSecret: 'not-the-registered-secret-0123456789-abcdef' },
    });
    const res = await expectRefusedLogin(t, 500, 'client_auth_failed', /refused the client's credentials \(invalid_client\)\. Check providers\.op\.clientId \("app"\), clientSecret and tokenEndpointAuthMethod/);
    expect(res.body.op_error).toBe('invalid_client');
    // a signed assertion is also refused by clocks that differ by more than the OP tolerates: said too (clock probe)
    expect(res.body.error_description).toMatch(/or the clocks of this server and the OP differ by more than the OP tolerates for the client's signed assertion \(oidc-provider: 15 s\)/);
    const [token] = requestsTo(t, '/token');
    expect(token.status).toBe(401);
    expect(token.body.client_assertion_type).toBe(JWT_BEARER);
    expect(jose.decodeProtectedHeader(String(token.body.client_assertion)).alg).toBe('HS256');
    expect(t.op.counts.grants.authorization_code).toBeUndefined();
  });

  test('rp-token_endpoint-private_key_jwt: the assertion is signed with the RP key, whose public half the OP fetched from the RP\'s /auth/jwks (jwks_uri); the login works', async () => {
    const sig = await keyPair('RS256', 'rp-sig-1');
    t = await start({
      client: (base) => ({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${base}/auth/jwks`, client_secret: undefined }),
      provider: { tokenEndpointAuthMethod: 'private_key_jwt', clientSecret: undefined },
      rp: { keys: [sig.privateJwk] },
    });
    expect(t.jwksServed).toBe(0);
    await expectLogin(t);
    expect(t.jwksServed).toBeGreaterThanOrEqual(1);
    const [token] = requestsTo(t, '/token');
    expect(token.status).toBe(200);
    expect(token.headers.authorization).toBeUndefined();
    expect(token.body.client_secret).toBeUndefined();
    expect(token.body.client_assertion_type).toBe(JWT_BEARER);
    const assertion = String(token.body.client_assertion);
    expect(jose.decodeProtectedHeader(assertion)).toMatchObject({ alg: 'RS256', kid: 'rp-sig-1' });
    const { payload } = await jose.jwtVerify(assertion, await jose.importJWK(sig.publicJwk, 'RS256'), { issuer: CLIENT_ID, subject: CLIENT_ID });
    expect([payload.aud].flat()).toContain(t.op.issuer);
  });

  test('rp-token_endpoint-private_key_jwt (OP knows another public key): the login is refused with 500 client_auth_failed (invalid_client), no session', async () => {
    const sig = await keyPair('RS256', 'rp-sig-1');
    const other = await keyPair('RS256', 'rp-sig-1'); // same kid, other key: the signature itself must fail
    t = await start({
      // registered by URL: oidc-provider refuses inline `jwks` objects made in the test's realm under jest
      client: (base) => ({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${base}/test/other-jwks`, client_secret: undefined }),
      routes: (app) => app.get('/test/other-jwks', (_req, res) => void res.json({ keys: [other.publicJwk] })),
      provider: { tokenEndpointAuthMethod: 'private_key_jwt', clientSecret: undefined },
      rp: { keys: [sig.privateJwk] },
    });
    const res = await expectRefusedLogin(t, 500, 'client_auth_failed', /refused the client's credentials \(invalid_client\)\. Check providers\.op\.clientId \("app"\), clientSecret and tokenEndpointAuthMethod/);
    expect(res.body.op_error).toBe('invalid_client');
    const [token] = requestsTo(t, '/token');
    expect(token.status).toBe(401);
    expect(jose.decodeProtectedHeader(String(token.body.client_assertion))).toMatchObject({ alg: 'RS256', kid: 'rp-sig-1' });
    expect(t.op.counts.grants.authorization_code).toBeUndefined();
  });

  test('rp-token_endpoint-private_key_jwt (RP JWKS): GET /auth/jwks serves the public halves only, with their kids', async () => {
    const sig = await keyPair('RS256', 'rp-sig-1');
    const enc = await keyPair('RSA-OAEP', 'rp-enc-1');
    const ec = await keyPair('ECDH-ES', 'rp-ec-1');
    t = await start({ rp: { keys: [sig.privateJwk, enc.privateJwk, ec.privateJwk] } });
    for (const k of [sig, enc, ec]) expect(k.privateJwk.d).toEqual(expect.any(String)); // the keys given were private
    const res = await request(t.server).get('/auth/jwks');
    expect(res.status).toBe(200);
    const keys = res.body.keys as Array<Record<string, unknown>>;
    expect(keys.map((k) => k.kid)).toEqual(['rp-sig-1', 'rp-enc-1', 'rp-ec-1']);
    for (const key of keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    expect(keys).toEqual([sig.publicJwk, enc.publicJwk, ec.publicJwk]);
  });

  test('rp-token_endpoint-private_key_jwt (start-up): without keys, or with a public JWK as key, rp() throws an OptionsError naming the option', async () => {
    const entry = (extra: Partial<OidcProviderOptions> = {}) =>
      oidc({ issuer: 'https://id.example.com', clientId: 'app', tokenEndpointAuthMethod: 'private_key_jwt', ...extra });
    const thrown = (options: RpOptions): Error => {
      try {
        rp(options);
      } catch (err) {
        return err as Error;
      }
      throw new Error('rp() accepted the options');
    };
    const noKeys = thrown({ baseURL: 'https://app.example.com', providers: { corp: entry() } });
    expect(noKeys).toBeInstanceOf(OptionsError);
    expect(noKeys.message).toContain('"providers.corp.tokenEndpointAuthMethod"');
    const emptyKeys = thrown({ baseURL: 'https://app.example.com', providers: { corp: entry() }, keys: [] });
    expect(emptyKeys).toBeInstanceOf(OptionsError);
    expect(emptyKeys.message).toContain('"providers.corp.tokenEndpointAuthMethod"');
    const { publicJwk } = await keyPair('RS256', 'rp-sig-1');
    const publicKey = thrown({ baseURL: 'https://app.example.com', providers: { corp: entry() }, keys: [publicJwk] });
    expect(publicKey).toBeInstanceOf(OptionsError);
    expect(publicKey.message).toContain('"keys[0]"');
    expect(publicKey.message).toMatch(/PRIVATE/);
  });
});

describe('rp-id_token-sig-hs256 / rp-id_token-bad-sig-hs256', () => {
  const hs256Op: Partial<TestOpOptions> = { config: { enabledJWA: { idTokenSigningAlgValues: ['RS256', 'HS256'] } } as TestOpOptions['config'] };

  test('rp-id_token-sig-hs256: the client registered HS256 and the entry names it: the OP signs the ID token with the secret and the login works', async () => {
    t = await start({ op: hs256Op, client: () => ({ id_token_signed_response_alg: 'HS256' }), provider: { idTokenSignedResponseAlg: 'HS256' } });
    await expectLogin(t);
    const { idToken, idTokenClaims } = await storedAuth(t);
    expect(jose.decodeProtectedHeader(idToken!).alg).toBe('HS256');
    await jose.jwtVerify(idToken!, new TextEncoder().encode(CLIENT_SECRET), { algorithms: ['HS256'] });
    expect(idTokenClaims?.sub).toBe('alice');
  });

  test('rp-id_token-sig-hs256 (alg switch): without idTokenSignedResponseAlg, the same HS256 ID token from the real OP is refused with 401 invalid_id_token, no session', async () => {
    t = await start({ op: hs256Op, client: () => ({ id_token_signed_response_alg: 'HS256' }) });
    await expectRefusedLogin(t, 401, 'invalid_id_token', /alg/);
    expect(jose.decodeProtectedHeader(String(lastTokenAnswer(t).id_token)).alg).toBe('HS256'); // the OP did sign it (with the right secret)
  });

  test('rp-id_token-bad-sig-hs256: an HS256 ID token signed with another secret (stub OP) is refused with 401 invalid_id_token, no session; the right secret logs in', async () => {
    const secret = 'stub-client-secret-0123456789-0123456789';
    const s = await startStubRp({ clientSecret: secret, idTokenSignedResponseAlg: 'HS256' }, { jwksCooldown: 0 });
    try {
      s.stub.metadata = { id_token_signing_alg_values_supported: ['RS256', 'HS256'] };
      s.stub.userinfo = { sub: 'mallory' };
      s.stub.idToken = (claims) => s.stub.sign(claims, { alg: 'HS256', key: new TextEncoder().encode('another-secret-0123456789-0123456789-xyz'), kid: null });
      const agent = request.agent(s.server);
      const res = await s.callback(agent);
      expect({ status: res.status, error: res.body.error }).toEqual({ status: 401, error: 'invalid_id_token' });
      expect(res.body.error_description).toMatch(/signature/);
      expect((await agent.get('/me')).status).toBe(401);
      expect(await s.loggedInSessions()).toEqual([]);
      // control: the same token signed with the registered secret logs in
      s.stub.idToken = (claims) => s.stub.sign(claims, { alg: 'HS256', key: new TextEncoder().encode(secret), kid: null });
      const good = request.agent(s.server);
      expect((await s.callback(good)).status).toBe(302);
      expect((await good.get('/me')).body.sub).toBe('mallory');
    } finally {
      await s.close();
    }
  });
});

describe('rp-id_token-sig+enc (encrypted ID tokens)', () => {
  const encryption: Partial<TestOpOptions> = { features: { encryption: { enabled: true } } };

  for (const [alg, kid] of [['RSA-OAEP', 'rp-enc-rsa'], ['ECDH-ES', 'rp-enc-ec']] as const) {
    test(`rp-id_token-sig+enc: an ID token signed (RS256) then encrypted with ${alg} to the RP's key from /auth/jwks logs in`, async () => {
      const enc = await keyPair(alg, kid);
      t = await start({
        op: encryption,
        client: (base) => ({ id_token_encrypted_response_alg: alg, id_token_encrypted_response_enc: 'A128CBC-HS256', jwks_uri: `${base}/auth/jwks` }),
        provider: { idTokenEncryptedResponseAlg: alg, idTokenEncryptedResponseEnc: 'A128CBC-HS256' },
        rp: { keys: [enc.privateJwk] },
      });
      await expectLogin(t);
      expect(t.jwksServed).toBeGreaterThanOrEqual(1);
      const sent = String(lastTokenAnswer(t).id_token);
      expect(parts(sent)).toBe(5);
      expect(jose.decodeProtectedHeader(sent)).toMatchObject({ alg, enc: 'A128CBC-HS256', kid });
      const { plaintext } = await jose.compactDecrypt(sent, await jose.importJWK(enc.privateJwk, alg));
      const inner = new TextDecoder().decode(plaintext);
      expect(jose.decodeProtectedHeader(inner).alg).toBe('RS256');
      const { idTokenClaims } = await storedAuth(t);
      expect(idTokenClaims).toMatchObject({ sub: 'alice', iss: t.op.issuer, aud: CLIENT_ID });
    });
  }

  test('rp-id_token-sig+enc-a128kw: an ID token encrypted with A128KW (the key derived from the client secret, OIDC Core 10.2) logs in, without rp({ keys })', async () => {
    t = await start({
      op: encryption,
      client: () => ({ id_token_encrypted_response_alg: 'A128KW', id_token_encrypted_response_enc: 'A128CBC-HS256' }),
      provider: { idTokenEncryptedResponseAlg: 'A128KW' },
    });
    await expectLogin(t);
    const sent = String(lastTokenAnswer(t).id_token);
    expect(parts(sent)).toBe(5);
    expect(jose.decodeProtectedHeader(sent)).toMatchObject({ alg: 'A128KW', enc: 'A128CBC-HS256' }); // oidc-provider did encrypt
    expect((await storedAuth(t)).idTokenClaims).toMatchObject({ sub: 'alice', aud: CLIENT_ID });
  });

  test('rp-id_token-sig+enc (OP does not encrypt): the entry requires RSA-OAEP, the OP sends a plain signed ID token: 401 invalid_id_token, no session', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    t = await start({ op: encryption, provider: { idTokenEncryptedResponseAlg: 'RSA-OAEP' }, rp: { keys: [enc.privateJwk] } });
    await expectRefusedLogin(t, 401, 'invalid_id_token', /not encrypted/);
    expect(parts(lastTokenAnswer(t).id_token)).toBe(3);
  });

  test('rp-id_token-sig+enc (key the RP does not have): encrypted to another key under the RP\'s kid: 401 invalid_id_token, no session', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    const other = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    t = await start({
      op: encryption,
      client: (base) => ({ id_token_encrypted_response_alg: 'RSA-OAEP', jwks_uri: `${base}/test/other-jwks` }),
      routes: (app) => app.get('/test/other-jwks', (_req, res) => void res.json({ keys: [other.publicJwk] })),
      provider: { idTokenEncryptedResponseAlg: 'RSA-OAEP' },
      rp: { keys: [enc.privateJwk] },
    });
    await expectRefusedLogin(t, 401, 'invalid_id_token', /decryption/);
    expect(jose.decodeProtectedHeader(String(lastTokenAnswer(t).id_token))).toMatchObject({ alg: 'RSA-OAEP', kid: 'rp-enc-rsa' });
  });

  test('rp-id_token-sig+enc (encryption not expected): the entry names no idTokenEncryptedResponseAlg, the OP encrypts anyway: 401 invalid_id_token, no session', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    t = await start({
      op: encryption,
      client: (base) => ({ id_token_encrypted_response_alg: 'RSA-OAEP', jwks_uri: `${base}/auth/jwks` }),
      rp: { keys: [enc.privateJwk] }, // the RP could decrypt it: it must still refuse what it did not ask for
    });
    await expectRefusedLogin(t, 401, 'invalid_id_token', /JWE/);
    expect(parts(lastTokenAnswer(t).id_token)).toBe(5);
  });
});

describe('rp-userinfo-* (signed / encrypted UserInfo, bearer token placement)', () => {
  const jwtUserinfo: Partial<TestOpOptions> = { features: { jwtUserinfo: { enabled: true }, encryption: { enabled: true } } };

  /** The claims that reach /me come from UserInfo: the code-flow ID token carries none of them. */
  async function expectUserinfoClaims(rpApp: CryptoRp): Promise<void> {
    const me = await expectLogin(rpApp);
    expect(me).toMatchObject({ email: 'alice@example.org', name: 'Alice Liddell' });
    expect((me.claims as Record<string, unknown>).groups).toEqual(['staff', 'admin']);
    const { idTokenClaims } = await storedAuth(rpApp);
    expect(idTokenClaims).not.toHaveProperty('email');
    expect(idTokenClaims).not.toHaveProperty('groups');
  }

  test('rp-userinfo-sig: a UserInfo response signed RS256 by the OP is verified and its claims reach /me', async () => {
    t = await start({ op: jwtUserinfo, client: () => ({ userinfo_signed_response_alg: 'RS256' }), provider: { userinfoSignedResponseAlg: 'RS256' } });
    await expectUserinfoClaims(t);
    const [userinfo] = requestsTo(t, '/me');
    expect(userinfo).toMatchObject({ status: 200, type: 'application/jwt' });
    expect(parts(userinfo.answer)).toBe(3);
    expect(jose.decodeProtectedHeader(String(userinfo.answer)).alg).toBe('RS256');
  });

  test('rp-userinfo-enc: a UserInfo response encrypted (RSA-OAEP, not signed) to the RP\'s key is decrypted and its claims reach /me', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    // oidc-provider always signs a JWT UserInfo: the encrypt-only answer is made from its JSON answer
    t = await start({
      op: jwtUserinfo,
      provider: { userinfoEncryptedResponseAlg: 'RSA-OAEP' },
      rp: { keys: [enc.privateJwk] },
      tamper: async (ctx) => {
        if (ctx.path !== '/me' || ctx.status !== 200) return;
        ctx.body = await new jose.CompactEncrypt(new TextEncoder().encode(JSON.stringify(ctx.body)))
          .setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A128CBC-HS256', kid: enc.publicJwk.kid })
          .encrypt(await jose.importJWK(enc.publicJwk, 'RSA-OAEP'));
        ctx.type = 'application/jwt';
      },
    });
    await expectUserinfoClaims(t);
    const [userinfo] = requestsTo(t, '/me');
    expect(userinfo).toMatchObject({ status: 200, type: 'application/jwt' });
    expect(parts(userinfo.answer)).toBe(5);
  });

  test('rp-userinfo-sig+enc: a UserInfo response signed (RS256) then encrypted (RSA-OAEP) by the OP is decrypted, verified, and its claims reach /me', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    t = await start({
      op: jwtUserinfo,
      client: (base) => ({
        userinfo_signed_response_alg: 'RS256', userinfo_encrypted_response_alg: 'RSA-OAEP', userinfo_encrypted_response_enc: 'A128CBC-HS256', jwks_uri: `${base}/auth/jwks`,
      }),
      provider: { userinfoSignedResponseAlg: 'RS256', userinfoEncryptedResponseAlg: 'RSA-OAEP' },
      rp: { keys: [enc.privateJwk] },
    });
    await expectUserinfoClaims(t);
    const [userinfo] = requestsTo(t, '/me');
    expect(userinfo).toMatchObject({ status: 200, type: 'application/jwt' });
    expect(jose.decodeProtectedHeader(String(userinfo.answer))).toMatchObject({ alg: 'RSA-OAEP', kid: 'rp-enc-rsa' });
    const { plaintext } = await jose.compactDecrypt(String(userinfo.answer), await jose.importJWK(enc.privateJwk, 'RSA-OAEP'));
    expect(jose.decodeProtectedHeader(new TextDecoder().decode(plaintext)).alg).toBe('RS256');
  });

  test('rp-userinfo-sig (bad signature): a UserInfo JWT signed with a key not in the OP\'s JWKS (under its kid) is refused with 400 invalid_response, no session', async () => {
    const forger = await keyPair('RS256', 'forger');
    t = await start({
      op: jwtUserinfo,
      client: () => ({ userinfo_signed_response_alg: 'RS256' }),
      provider: { userinfoSignedResponseAlg: 'RS256' },
      tamper: async (ctx) => {
        if (ctx.path !== '/me' || ctx.status !== 200) return;
        ctx.body = await new jose.SignJWT(jose.decodeJwt(String(ctx.body)))
          .setProtectedHeader({ alg: 'RS256', kid: String(t!.op.signingKey.kid) })
          .sign(await jose.importJWK(forger.privateJwk, 'RS256'));
      },
    });
    await expectRefusedLogin(t, 400, 'invalid_response', /signature/);
    const [userinfo] = requestsTo(t, '/me');
    expect(userinfo).toMatchObject({ status: 200, type: 'application/jwt' });
    expect(jose.decodeProtectedHeader(String(userinfo.answer)).kid).toBe(t.op.signingKey.kid);
  });

  test('rp-userinfo-sig (plain JSON): signing registered in the entry, the OP answers plain JSON: 400 invalid_response, no session', async () => {
    t = await start({ op: jwtUserinfo, provider: { userinfoSignedResponseAlg: 'RS256' } });
    await expectRefusedLogin(t, 400, 'invalid_response', /plain JSON/);
    const [userinfo] = requestsTo(t, '/me');
    expect(userinfo).toMatchObject({ status: 200, type: 'application/json' });
  });

  test('rp-userinfo-sig+enc (not encrypted): encryption registered in the entry, the OP answers a signed JWT only: 400 invalid_response, no session', async () => {
    const enc = await keyPair('RSA-OAEP', 'rp-enc-rsa');
    t = await start({
      op: jwtUserinfo,
      client: () => ({ userinfo_signed_response_alg: 'RS256' }),
      provider: { userinfoSignedResponseAlg: 'RS256', userinfoEncryptedResponseAlg: 'RSA-OAEP' },
      rp: { keys: [enc.privateJwk] },
    });
    await expectRefusedLogin(t, 400, 'invalid_response', /not encrypted/);
    expect(parts(requestsTo(t, '/me')[0].answer)).toBe(3);
  });

  test('rp-userinfo-bearer-body: with userinfoTokenMethod "body" the OP receives the access token in a POST form body, no Authorization header', async () => {
    t = await start({ provider: { userinfoTokenMethod: 'body' } });
    await expectUserinfoClaims(t);
    const userinfo = requestsTo(t, '/me');
    expect(userinfo).toHaveLength(1);
    expect(userinfo[0]).toMatchObject({ method: 'POST', status: 200 });
    expect(userinfo[0].headers.authorization).toBeUndefined();
    expect(String(userinfo[0].headers['content-type'])).toMatch(/^application\/x-www-form-urlencoded/);
    expect(userinfo[0].query).not.toHaveProperty('access_token');
    const { accessToken } = await storedAuth(t);
    expect(userinfo[0].body.access_token).toBe(accessToken!.value);
  });

  test('rp-userinfo-bearer-header: by default the OP receives the access token in the Authorization header of a GET, not in a body or the query', async () => {
    t = await start();
    await expectUserinfoClaims(t);
    const userinfo = requestsTo(t, '/me');
    expect(userinfo).toHaveLength(1);
    expect(userinfo[0]).toMatchObject({ method: 'GET', status: 200 });
    const { accessToken } = await storedAuth(t);
    expect(userinfo[0].headers.authorization).toBe(`Bearer ${accessToken!.value}`);
    expect(userinfo[0].body).not.toHaveProperty('access_token');
    expect(userinfo[0].query).not.toHaveProperty('access_token');
  });
});

describe('rp-key-rotation-op-enc-key', () => {
  test('rp-key-rotation-op-enc-key: request objects are encrypted to the OP\'s current encryption key; after the OP rotates it, the next login uses the new key and succeeds', async () => {
    const rpSig = await keyPair('RS256', 'rp-sig-1');
    const opSig = await keyPair('RS256', 'op-sig-1');
    const opEnc1 = await keyPair('RSA-OAEP', 'op-enc-1');
    const opEnc2 = await keyPair('RSA-OAEP', 'op-enc-2');
    const jwks = { keys: [opSig.privateJwk, opEnc1.privateJwk] };
    t = await start({
      op: { features: { encryption: { enabled: true }, requestObjects: { enabled: true } }, config: { jwks } as TestOpOptions['config'] },
      client: (base) => ({
        jwks_uri: `${base}/auth/jwks`,
        request_object_signing_alg: 'RS256', request_object_encryption_alg: 'RSA-OAEP', request_object_encryption_enc: 'A128CBC-HS256',
      }),
      provider: { requestObject: { by: 'value', encryptionAlg: 'RSA-OAEP', encryptionEnc: 'A128CBC-HS256' } },
      rp: { keys: [rpSig.privateJwk] },
    });
    const opPublishes = async (): Promise<string[]> => ((await (await fetch(`${t!.op.issuer}/jwks`)).json()) as { keys: jose.JWK[] }).keys.map((k) => k.kid!);
    /** The request object of the last authorization request the OP answered: its JWE header, and what is inside. */
    const lastRequestObject = async (key: jose.JWK): Promise<{ header: jose.CompactJWEHeaderParameters; claims: jose.JWTPayload; query: Record<string, unknown> }> => {
      const auth = requestsTo(t!, '/auth').at(-1)!;
      const jwe = String(auth.query.request);
      expect(parts(jwe)).toBe(5);
      const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, await jose.importJWK(key, 'RSA-OAEP'));
      const { payload } = await jose.jwtVerify(new TextDecoder().decode(plaintext), await jose.importJWK(rpSig.publicJwk, 'RS256'), { issuer: CLIENT_ID, audience: t!.op.issuer });
      return { header: protectedHeader, claims: payload, query: auth.query };
    };

    expect(await opPublishes()).toEqual(['op-sig-1', 'op-enc-1']);
    await expectLogin(t);
    const first = await lastRequestObject(opEnc1.privateJwk);
    expect(first.header).toMatchObject({ alg: 'RSA-OAEP', enc: 'A128CBC-HS256', kid: 'op-enc-1' });
    // state, nonce and redirect_uri travel only inside the encrypted request object: the login shows the OP decrypted it
    expect(first.claims).toMatchObject({ redirect_uri: `${t.baseURL}/auth/callback/op`, state: expect.any(String), nonce: expect.any(String) });
    expect(first.query).not.toHaveProperty('state');
    expect(first.query).not.toHaveProperty('redirect_uri');
    const firstUrl = `${t.op.issuer}/auth?${new URLSearchParams(first.query as Record<string, string>)}`;

    // the OP rotates: op-enc-2 replaces op-enc-1
    jwks.keys = [opSig.privateJwk, opEnc2.privateJwk];
    await t.restartOp();
    expect(await opPublishes()).toEqual(['op-sig-1', 'op-enc-2']);
    // (control) a request object encrypted to the old key is refused by the OP now
    const stale = await fetch(firstUrl, { redirect: 'manual' });
    const staleAnswer = `${stale.status} ${stale.headers.get('location') ?? ''} ${await stale.text()}`;
    expect(staleAnswer).toMatch(/invalid_request_object|could not decrypt/);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the RP reads the OP's keys again after 1 s

    await clearStore(t); // storedAuth() reads the one login in the store
    await expectLogin(t);
    const second = await lastRequestObject(opEnc2.privateJwk);
    expect(second.header).toMatchObject({ alg: 'RSA-OAEP', kid: 'op-enc-2' });
    expect(second.claims.state).not.toBe(first.claims.state);
  });
});
