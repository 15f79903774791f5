/**
 * DPoP (RFC 9449) with `oidc({ dpop: true })` against a real oidc-provider (features.dPoP): the
 * login's access token is bound to a per-login key kept in the session, `req.oidc.fetch()` sends a
 * proof (checked by oidc-provider's userinfo endpoint and by a resource route of the test that
 * verifies the proof with jose and the binding by introspection), refresh keeps the binding, a
 * proof by another key is refused, and the OP's / resource server's DPoP nonces are retried.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Express, Request } from 'express';
import { EmbeddedJWK, SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { OptionsError, RelyingParty, dpopThumbprint, oidc, requireAuth, type Authentication } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';
import { clearStore } from './support/expect.js';

const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

/** What the test resource server saw. */
interface Seen { authorization?: string; proof?: Record<string, unknown>; header?: Record<string, unknown>; refused?: string }

/**
 * A resource server route checking DPoP as RFC 9449 §7 says: `Authorization: DPoP`, a valid proof
 * (typ, signature by the embedded key, htm, htu, ath, fresh iat, unused jti, the nonce when
 * `nonce` is set) and the token bound to that key (`cnf.jkt` by introspection at the OP).
 */
function resource(t: () => TestRp, opts: { nonce?: string } = {}): { seen: Seen[]; check: (req: Request) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }> } {
  const seen: Seen[] = [];
  const jtis = new Set<string>();
  const check = async (req: Request): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> => {
    const s: Seen = { authorization: req.get('authorization') };
    seen.push(s);
    const refuse = (why: string, headers: Record<string, string> = {}): { status: number; body: unknown; headers: Record<string, string> } => {
      s.refused = why;
      return { status: 401, body: { error: why }, headers: { 'www-authenticate': `DPoP error="${why}", algs="ES256"`, ...headers } };
    };
    const [scheme, token] = (s.authorization ?? '').split(' ');
    if (scheme !== 'DPoP' || !token) return refuse('invalid_token');
    const proof = req.get('dpop');
    if (!proof) return refuse('invalid_dpop_proof');
    let payload: Record<string, unknown>;
    let header: Record<string, unknown>;
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'ES384', 'Ed25519'] }) as never);
    } catch {
      return refuse('invalid_dpop_proof');
    }
    s.proof = payload;
    s.header = header;
    const base = t().baseURL;
    if (payload.htm !== req.method || payload.htu !== `${base}${req.path}` || payload.ath !== sha256(token)) return refuse('invalid_dpop_proof');
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 60) return refuse('invalid_dpop_proof');
    if (typeof payload.jti !== 'string' || jtis.has(payload.jti)) return refuse('invalid_dpop_proof');
    jtis.add(payload.jti);
    if (opts.nonce && payload.nonce !== opts.nonce) return refuse('use_dpop_nonce', { 'dpop-nonce': opts.nonce });
    const info = await t().relyingParty.introspect('op', token);
    if (!info.active || (info.cnf as { jkt?: string } | undefined)?.jkt !== (await calculateJwkThumbprint(header.jwk as JWK))) return refuse('invalid_token');
    return { status: 200, body: { sub: info.sub, method: req.method, body: req.body ?? null } };
  };
  return { seen, check };
}

/** The login of `agent`'s session, as `req.oidc.authentication` reads it. */
async function authOf(agent: ReturnType<TestRp['agent']>): Promise<Authentication> {
  return (await agent.get('/authentication')).body as Authentication;
}

/** The login record as the session store keeps it (the only authenticated session). */
async function storedRecord(t: TestRp): Promise<Record<string, unknown>> {
  const [id] = await t.authenticatedSessions();
  return new Promise((resolve) => t.store.get(id, (_e, s) => resolve(s!.oidc!.auth! as unknown as Record<string, unknown>)));
}

function authenticationRoute(app: Express): void {
  app.get('/authentication', (req, res) => void res.json(req.oidc.authentication ?? null));
}

/** A DPoP proof for `url` signed by a key that is not the login's. */
async function foreignProof(method: string, url: string, token: string): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return new SignJWT({ htm: method, htu: url, ath: sha256(token), jti: randomBytes(8).toString('hex') })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) }).setIssuedAt().sign(privateKey);
}

function routes(check: () => ReturnType<typeof resource>['check'], paths: { resource: string }) {
  return (app: Express): void => {
    authenticationRoute(app);
    app.all(paths.resource, async (req, res) => {
      const answer = await check()(req);
      res.status(answer.status).set(answer.headers ?? {}).json(answer.body);
    });
    app.get('/call/userinfo', requireAuth(), async (req, res, next) => {
      try {
        const response = await req.oidc.fetch(`${(req.app.locals as { opIssuer: string }).opIssuer}/me`);
        res.status(response.status).json(await response.json().catch(() => null));
      } catch (err) {
        next(err);
      }
    });
    app.get('/call/resource', requireAuth(), async (req, res, next) => {
      try {
        const method = String(req.query.method ?? 'GET');
        const response = await req.oidc.fetch(`${req.protocol}://${req.get('host')}${paths.resource}`, method === 'GET' ? {} : {
          method, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 1 }),
        });
        res.status(response.status).json(await response.json());
      } catch (err) {
        next(err);
      }
    });
    app.get('/call/fetch-user-info', requireAuth(), async (req, res, next) => {
      try {
        res.json(await req.oidc.fetchUserInfo());
      } catch (err) {
        next(err);
      }
    });
  };
}

describe('dpop: true — logins with DPoP-bound tokens', () => {
  let t: TestRp;
  const rs = resource(() => t);
  beforeAll(async () => {
    t = await startRp({
      provider: { dpop: true },
      op: { features: { dPoP: { enabled: true }, introspection: { enabled: true } } },
      routes: routes(() => rs.check, { resource: '/resource' }),
    });
    t.app.locals.opIssuer = t.op.issuer;
  });
  beforeEach(() => clearStore(t));
  afterAll(() => t.close());

  test('the login keeps one small private JWK; the access token is DPoP and bound to it (cnf.jkt at introspection)', async () => {
    const agent = t.agent();
    const res = await t.login(agent);
    expect(res.status).toBe(302);
    const auth = await authOf(agent);
    expect(auth.accessToken!.tokenType).toBe('dpop');
    expect(Object.keys(auth.dpop!).sort()).toEqual(['crv', 'd', 'kty', 'x', 'y']);
    expect(auth.dpop).toMatchObject({ kty: 'EC', crv: 'P-256' });
    // the session cost of DPoP: one P-256 JWK in the stored record
    const stored = await storedRecord(t);
    expect(stored.dpop).toEqual(auth.dpop);
    expect(JSON.stringify({ dpop: stored.dpop }).length).toBeLessThan(200);
    const jkt = await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: auth.dpop!.x, y: auth.dpop!.y });
    expect(await dpopThumbprint(auth.dpop!)).toBe(jkt);
    const info = await t.relyingParty.introspect('op', auth.accessToken!.value);
    expect(info).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt }, sub: 'alice' });
    // the login's claims came from the userinfo endpoint, which accepts the token only with a proof
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice', email: 'alice@example.org' });
  });

  test('two logins get two different keys', async () => {
    await t.login(t.agent());
    await t.login(t.agent());
    const ids = await t.authenticatedSessions();
    const keys = await Promise.all(ids.map((id) => new Promise<string>((resolve) => t.store.get(id, (_e, s) => resolve((s!.oidc!.auth! as { dpop: { x: string } }).dpop.x)))));
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('req.oidc.fetch() to oidc-provider\'s userinfo endpoint (which checks DPoP) succeeds; req.oidc.fetchUserInfo() too', async () => {
    const agent = t.agent();
    await t.login(agent);
    const res = await agent.get('/call/userinfo');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sub: 'alice' });
    expect((await agent.get('/call/fetch-user-info')).body).toMatchObject({ sub: 'alice', name: 'Alice Liddell' });
  });

  test('req.oidc.fetch() to a resource server that verifies the proof and the binding succeeds (GET and POST with a body)', async () => {
    const agent = t.agent();
    await t.login(agent);
    const auth = await authOf(agent);
    const get = await agent.get('/call/resource');
    expect(get.status).toBe(200);
    expect(get.body).toMatchObject({ sub: 'alice', method: 'GET' });
    const seen = rs.seen.at(-1)!;
    expect(seen.authorization).toBe(`DPoP ${auth.accessToken!.value}`);
    expect(seen.header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: auth.dpop!.x, y: auth.dpop!.y } });
    expect((seen.header!.jwk as JWK).d).toBeUndefined(); // never the private part
    expect(seen.proof).toMatchObject({ htm: 'GET', htu: `${t.baseURL}/resource`, ath: sha256(auth.accessToken!.value) });
    const post = await agent.get('/call/resource?method=POST');
    expect(post.status).toBe(200);
    expect(rs.seen.at(-1)!.proof).toMatchObject({ htm: 'POST' });
  });

  test('a proof signed by another key is refused, by the OP and by the resource server; the token alone (Bearer) too', async () => {
    const agent = t.agent();
    await t.login(agent);
    const token = (await authOf(agent)).accessToken!.value;
    const userinfo = `${t.op.issuer}/me`;
    const foreign = await fetch(userinfo, { headers: { authorization: `DPoP ${token}`, dpop: await foreignProof('GET', userinfo, token) } });
    expect(foreign.status).toBe(401);
    expect(foreign.headers.get('www-authenticate')).toMatch(/invalid_token|invalid_dpop_proof/);
    const bearer = await fetch(userinfo, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(401);
    const atResource = await fetch(`${t.baseURL}/resource`, { headers: { authorization: `DPoP ${token}`, dpop: await foreignProof('GET', `${t.baseURL}/resource`, token) } });
    expect(atResource.status).toBe(401);
    expect(rs.seen.at(-1)!.refused).toBe('invalid_token');
  });

  test('a refresh keeps the binding: the new access token is bound to the same key, and req.oidc.fetch() still works', async () => {
    const agent = t.agent();
    await t.login(agent);
    const before = await authOf(agent);
    const refreshed = await agent.post('/auth/refresh');
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.tokenType).toBe('dpop');
    const after = await authOf(agent);
    expect(after.accessToken!.value).not.toBe(before.accessToken!.value);
    expect(after.dpop).toEqual(before.dpop);
    const jkt = await dpopThumbprint(before.dpop!);
    expect(await t.relyingParty.introspect('op', after.accessToken!.value)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
    expect((await agent.get('/call/resource')).status).toBe(200);
    expect((await agent.get('/call/userinfo')).status).toBe(200);
  });
});

describe('DPoP nonces (RFC 9449 §8, §9) and client credentials', () => {
  let t: TestRp;
  const rs = resource(() => t, { nonce: 'rs-nonce-1' });
  const nonceErrors: string[] = [];
  beforeAll(async () => {
    t = await startRp({
      provider: { dpop: true },
      client: { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], scope: 'openid offline_access profile email api:read' },
      op: {
        features: {
          dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
          introspection: { enabled: true },
          clientCredentials: { enabled: true },
        },
        config: { scopes: ['openid', 'offline_access', 'api:read'] },
      },
      routes: routes(() => rs.check, { resource: '/resource' }),
    });
    t.app.locals.opIssuer = t.op.issuer;
    for (const event of ['grant.error', 'userinfo.error']) {
      (t.op.provider as unknown as NodeJS.EventEmitter).on(event, (_ctx: KoaContextWithOIDC, err: { error?: string }) => void (err.error === 'use_dpop_nonce' && nonceErrors.push(event)));
    }
  });
  beforeEach(() => clearStore(t));
  afterAll(() => t.close());

  test('an OP that requires DPoP nonces: openid-client retries the token and userinfo requests with the OP\'s nonce, the login succeeds', async () => {
    const agent = t.agent();
    const res = await t.login(agent);
    expect(res.status).toBe(302);
    expect(nonceErrors).toContain('grant.error'); // the first token request had no nonce and was answered use_dpop_nonce
    expect((await authOf(agent)).accessToken!.tokenType).toBe('dpop');
    expect((await agent.get('/call/userinfo')).status).toBe(200);
    const count = nonceErrors.length;
    expect((await agent.post('/auth/refresh')).status).toBe(200); // the handle kept the nonce: no second use_dpop_nonce
    expect(nonceErrors.length).toBe(count);
  });

  test('a resource server asking for a nonce (401 use_dpop_nonce + DPoP-Nonce) gets the request again with it, once', async () => {
    const agent = t.agent();
    await t.login(agent);
    const from = rs.seen.length;
    const res = await agent.get('/call/resource?method=POST');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sub: 'alice', method: 'POST' });
    const tries = rs.seen.slice(from);
    expect(tries.map((s) => s.refused ?? 'ok')).toEqual(['use_dpop_nonce', 'ok']);
    expect(tries[1].proof).toMatchObject({ nonce: 'rs-nonce-1' });
    expect(tries[0].proof!.jti).not.toBe(tries[1].proof!.jti);
    // the nonce is remembered: the next call needs one request
    const next = rs.seen.length;
    expect((await agent.get('/call/resource')).status).toBe(200);
    expect(rs.seen.length).toBe(next + 1);
  });

  test('clientCredentials() with dpop: a DPoP-bound app token and its key; fetchResource() calls the resource server with a proof', async () => {
    const tokens = await t.relyingParty.clientCredentials('op', { scope: 'api:read' });
    expect(tokens.accessToken.tokenType).toBe('dpop');
    expect(tokens.dpop).toMatchObject({ kty: 'EC', crv: 'P-256' });
    const info = await t.relyingParty.introspect('op', tokens.accessToken.value);
    expect(info).toMatchObject({ active: true, cnf: { jkt: await dpopThumbprint(tokens.dpop!) } });
    const response = await t.relyingParty.fetchResource(tokens, `${t.baseURL}/resource`);
    expect(response.status).toBe(200);
    // without the key, a bound token is not sent as Bearer
    await expect(t.relyingParty.fetchResource({ accessToken: tokens.accessToken }, `${t.baseURL}/resource`)).rejects.toMatchObject({ code: 'invalid_request' });
  });

  test('dpop: { alg: \'Ed25519\' }: an OKP key, accepted by the OP and the resource server', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { op: oidc({ issuer: t.op.issuer, clientId: 'app', clientSecret: 'app-secret-that-is-long-enough-0123456789', allowInsecureRequests: true, dpop: { alg: 'Ed25519' } }) },
    });
    const tokens = await rp.clientCredentials('op', { scope: 'api:read' });
    expect(tokens.dpop).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(tokens.dpop!.y).toBeUndefined();
    expect(await rp.introspect('op', tokens.accessToken.value)).toMatchObject({ cnf: { jkt: await dpopThumbprint(tokens.dpop!) } });
    expect((await rp.fetchResource(tokens, `${t.baseURL}/resource`)).status).toBe(200);
    expect(rs.seen.at(-1)!.header).toMatchObject({ alg: 'Ed25519', jwk: { kty: 'OKP', crv: 'Ed25519' } });
  });
});

describe('a public client: the OP binds the refresh token too', () => {
  let t: TestRp;
  beforeAll(async () => {
    t = await startRp({
      provider: { dpop: true, clientSecret: undefined, tokenEndpointAuthMethod: 'none' },
      client: { token_endpoint_auth_method: 'none', client_secret: undefined },
      op: { features: { dPoP: { enabled: true } } },
      routes: authenticationRoute,
    });
  });
  afterAll(() => t.close());

  test('refresh with the login\'s key succeeds; the same refresh token without it is refused (refresh_failed)', async () => {
    const agent = t.agent();
    expect((await t.login(agent)).status).toBe(302);
    const auth = await authOf(agent);
    expect(auth.accessToken!.tokenType).toBe('dpop');
    const { dpop: _key, ...unbound } = auth;
    await expect(t.relyingParty.refresh(unbound as Authentication)).rejects.toMatchObject({ code: 'refresh_failed', opError: 'invalid_grant' });
    const refreshed = await t.relyingParty.refresh(auth);
    expect(refreshed.accessToken!.tokenType).toBe('dpop');
    expect(refreshed.dpop).toEqual(auth.dpop);
  });
});

describe('dpop options', () => {
  const base = { issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's' };
  const make = (p: Parameters<typeof oidc>[0]): RelyingParty => new RelyingParty({ baseURL: 'https://app.example.com', providers: { corp: oidc(p) } });

  test('true, false and { alg } are accepted; anything else names the option', () => {
    expect(() => make({ ...base, dpop: true })).not.toThrow();
    expect(() => make({ ...base, dpop: { alg: 'Ed25519' } })).not.toThrow();
    expect(() => make({ ...base, dpop: 'yes' as never })).toThrow(OptionsError);
    expect(() => make({ ...base, dpop: { alg: 'RS256' as never } })).toThrow(/providers\.corp\.dpop\.alg.*ES256, ES384, ES512, Ed25519/);
    expect(() => make({ ...base, dpop: { algorithm: 'ES256' } as never })).toThrow(/providers\.corp\.dpop\.algorithm" is not an option \(the options are: alg\)/);
  });

  test('combinations where the token cannot carry a proof are refused at start-up', () => {
    expect(() => make({ ...base, dpop: true, userinfoTokenMethod: 'body' })).toThrow(/providers\.corp\.dpop.*userinfoTokenMethod "body"/);
    expect(() => make({ ...base, dpop: true, responseType: 'id_token' })).toThrow(/providers\.corp\.dpop.*no token endpoint/);
    expect(() => make({ ...base, dpop: true, fetchUser: async () => ({}) })).toThrow(/providers\.corp\.dpop.*fetchUser/);
  });

  test('an alg the OP does not list in dpop_signing_alg_values_supported is an invalid_options naming the one to use', async () => {
    const rp = make({
      clientId: 'app', clientSecret: 's', allowInsecureRequests: true, dpop: { alg: 'ES384' },
      providerInfo: { issuer: 'http://127.0.0.1:9', authorization_endpoint: 'http://127.0.0.1:9/a', token_endpoint: 'http://127.0.0.1:9/t', dpop_signing_alg_values_supported: ['ES256', 'EdDSA'] },
    });
    await expect(rp.clientCredentials('corp')).rejects.toMatchObject({ code: 'invalid_options', message: expect.stringMatching(/providers\.corp\.dpop.*ES384.*dpop: \{ alg: 'ES256' \}/) });
  });
});
