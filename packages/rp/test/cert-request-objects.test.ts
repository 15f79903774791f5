/**
 * OpenID Connect RP certification, request objects (OIDC Core 6, RFC 9101): rp-request_param-*
 * and rp-request_uri-*.
 *
 * Which OP plays which test:
 * - The real oidc-provider v9 (`features.requestObjects`, `encryption`) takes request objects BY
 *   VALUE only, and only signed ones: "none" is not in its request-object algorithm allow-list,
 *   and any `request_uri` that is not a PAR URN is answered `request_uri_not_supported`
 *   (discovery says `request_uri_parameter_supported: false`). So rp-request_param-sig, and a
 *   signed+encrypted request object by value, run end to end against it. Its client registers
 *   `jwks_uri: {baseURL}/auth/jwks`, `request_object_signing_alg: RS256` and
 *   `require_signed_request_object` (via the feature default), so it verifies each request
 *   object with the RP's published key and refuses a login without one.
 * - The unsigned and by-reference cases run end to end against `JarOp` below: a small OP that
 *   fetches `request_uri`, decrypts with its own encryption key, verifies the signature with the
 *   RP's JWKS (fetched from {baseURL}/auth/jwks) or accepts "none", checks iss/aud/client_id and
 *   uses only the request object's parameters (RFC 9101 §6.3), then issues a code (with PKCE) and
 *   an ID token carrying the request object's nonce. Each of those tests also checks the RP side
 *   directly: the test fetches the published request_uri itself and verifies it with jose.
 * - Two "why a stub" tests show that oidc-provider v9 refuses "none" and request_uri.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import {
  SignJWT, UnsecuredJWT, compactDecrypt, createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportJWK,
  generateKeyPair, jwtVerify, type CryptoKey, type JWK, type JWTPayload,
} from 'jose';
import { OptionsError, oidc, requireAuth, rp, type OidcProviderOptions, type ProviderConfig } from '@openid-express/rp';
import { startOp, type TestOp } from './support/oidc-provider.js';
import { CLIENT_ID, CLIENT_SECRET, close, listen } from './support/rp-app.js';
import { pendingLogins } from '../src/transactions.js';
import { privateJwk } from '../../../test/support/private-jwk.js';

// ---------------------------------------------------------------------------------------------
// JarOp: an OP that takes request objects by value and by reference, signed, unsigned, encrypted.

interface JarAuthorization {
  /** The query of the authorization request as received. */
  query: Record<string, string>;
  /** Where the OP fetched the request object from (by reference), with the answer's content type. */
  fetched?: { uri: string; contentType: string | null };
  jweHeader?: Record<string, unknown>;
  jwsHeader: Record<string, unknown>;
  claims: JWTPayload;
}

interface JarOp {
  issuer: string;
  /** The RP's JWKS the OP verifies signed request objects with. */
  clientJwksUri: string;
  /** The redirect_uri prefix the OP accepts (the RP's callbacks). */
  redirectPrefix: string;
  encPrivateKey: CryptoKey;
  encKid: string;
  /** Request objects the OP accepted, newest last. */
  accepted: JarAuthorization[];
  /** Refusals: the error the OP answered with. */
  refused: string[];
  close(): Promise<void>;
}

async function startJarOp(): Promise<JarOp> {
  const server: Server = createServer();
  const issuer = await listen(server);
  const sig = await generateKeyPair('RS256', { extractable: true });
  const enc = await generateKeyPair('RSA-OAEP', { extractable: true });
  const sigJwk: JWK = { ...(await exportJWK(sig.publicKey)), kid: 'jar-sig', use: 'sig', alg: 'RS256' };
  const encJwk: JWK = { ...(await exportJWK(enc.publicKey)), kid: 'jar-enc', use: 'enc', alg: 'RSA-OAEP' };
  const codes = new Map<string, { nonce?: string; challenge?: string; redirectUri: string; clientId: string }>();
  const op: JarOp = {
    issuer, clientJwksUri: '', redirectPrefix: '', encPrivateKey: enc.privateKey, encKid: encJwk.kid!, accepted: [], refused: [],
    close: () => close(server),
  };
  const app = express();
  app.get('/.well-known/openid-configuration', (_req, res) => void res.json({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    request_parameter_supported: true,
    request_uri_parameter_supported: true,
    require_request_uri_registration: false,
    request_object_signing_alg_values_supported: ['none', 'RS256'],
    request_object_encryption_alg_values_supported: ['RSA-OAEP'],
    request_object_encryption_enc_values_supported: ['A128CBC-HS256'],
    code_challenge_methods_supported: ['S256'],
  }));
  app.get('/jwks', (_req, res) => void res.json({ keys: [sigJwk, encJwk] }));
  app.get('/authorize', async (req, res) => {
    const query = req.query as Record<string, string>;
    try {
      if (query.request !== undefined && query.request_uri !== undefined) throw new Error('both request and request_uri');
      let jwt: string;
      let fetched: JarAuthorization['fetched'];
      if (query.request_uri !== undefined) {
        const answer = await fetch(query.request_uri, { redirect: 'error' });
        if (!answer.ok) throw new Error(`request_uri answered ${answer.status}`);
        fetched = { uri: query.request_uri, contentType: answer.headers.get('content-type') };
        jwt = await answer.text();
      } else if (query.request !== undefined) {
        jwt = query.request;
      } else {
        throw new Error('no request object');
      }
      let jweHeader: Record<string, unknown> | undefined;
      if (jwt.split('.').length === 5) {
        const { plaintext, protectedHeader } = await compactDecrypt(jwt, enc.privateKey, { keyManagementAlgorithms: ['RSA-OAEP'], contentEncryptionAlgorithms: ['A128CBC-HS256'] });
        jweHeader = protectedHeader as Record<string, unknown>;
        jwt = new TextDecoder().decode(plaintext);
      }
      const jwsHeader = decodeProtectedHeader(jwt) as Record<string, unknown>;
      const expect = { issuer: query.client_id, audience: issuer };
      const claims = jwsHeader.alg === 'none'
        ? UnsecuredJWT.decode(jwt, expect).payload
        : (await jwtVerify(jwt, createRemoteJWKSet(new URL(op.clientJwksUri)), { ...expect, algorithms: ['RS256'] })).payload;
      // OIDC Core 6.1: client_id and response_type travel outside too, and must match the request object's
      if (query.client_id !== CLIENT_ID || claims.client_id !== query.client_id) throw new Error('client_id mismatch');
      if (claims.response_type !== undefined && claims.response_type !== query.response_type) throw new Error('response_type mismatch');
      // RFC 9101 §6.3: only the request object's parameters count
      const redirectUri = String(claims.redirect_uri);
      if (!redirectUri.startsWith(op.redirectPrefix)) throw new Error('redirect_uri not registered');
      if (claims.code_challenge_method !== 'S256') throw new Error('PKCE S256 required');
      op.accepted.push({ query, fetched, jweHeader, jwsHeader, claims });
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { nonce: claims.nonce as string | undefined, challenge: claims.code_challenge as string, redirectUri, clientId: query.client_id });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      if (claims.state !== undefined) back.searchParams.set('state', String(claims.state));
      res.redirect(302, back.href);
    } catch (err) {
      op.refused.push((err as Error).message);
      res.status(400).json({ error: 'invalid_request_object', error_description: (err as Error).message });
    }
  });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    const body = req.body as Record<string, string>;
    const grant = codes.get(body.code);
    codes.delete(body.code);
    const verifierHash = createHash('sha256').update(body.code_verifier ?? '').digest('base64url');
    if (!grant || grant.redirectUri !== body.redirect_uri || verifierHash !== grant.challenge) return void res.status(400).json({ error: 'invalid_grant' });
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({ sub: 'alice', name: 'Alice Liddell', ...(grant.nonce ? { nonce: grant.nonce } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: sigJwk.kid })
      .setIssuer(issuer).setAudience(grant.clientId).setIssuedAt(now).setExpirationTime(now + 300)
      .sign(sig.privateKey);
    res.json({ access_token: 'jar-access-token', token_type: 'Bearer', expires_in: 300, id_token: idToken });
  });
  server.on('request', app);
  return op;
}

// ---------------------------------------------------------------------------------------------
// One app: the RP (with its own signing key) over the real oidc-provider and over JarOp.

/** The real OP's encryption key (RSA-OAEP), in its JWKS next to its signing key. */
function rsaJwk(kid: string, use: 'sig' | 'enc', alg: string): JWK {
  return { ...(privateJwk() as JWK), kid, use, alg };
}

const RP_KEY = rsaJwk('rp-sig-1', 'sig', 'RS256');
/** Provider names → request object settings. `oidc-*` use the real oidc-provider, the others JarOp. */
const REAL: Record<string, OidcProviderOptions['requestObject'] | undefined> = {
  'oidc-sig': { by: 'value' },
  'oidc-sigenc': { by: 'value', encryptionAlg: 'RSA-OAEP', encryptionEnc: 'A128CBC-HS256' },
  'oidc-plain': undefined,
  'oidc-none': { by: 'value', signingAlg: 'none' },
  'oidc-ref': { by: 'reference' },
};
const JAR: Record<string, OidcProviderOptions['requestObject']> = {
  'value-none': { by: 'value', signingAlg: 'none' },
  'ref-none': { by: 'reference', signingAlg: 'none' },
  'value-sig': { by: 'value' },
  'ref-sig': { by: 'reference' },
  'ref-enc': { by: 'reference', signingAlg: 'none', encryptionAlg: 'RSA-OAEP' },
  'ref-sigenc': { by: 'reference', signingAlg: 'RS256', encryptionAlg: 'RSA-OAEP', encryptionEnc: 'A128CBC-HS256' },
};

let server: Server;
let baseURL: string;
let op: TestOp;
let jar: JarOp;
let store: session.MemoryStore;
/** GET {baseURL}/auth/jwks by someone other than this test (the OPs). */
let opJwksHits = 0;

beforeAll(async () => {
  server = createServer();
  baseURL = await listen(server);
  op = await startOp({
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: Object.keys(REAL).map((name) => `${baseURL}/auth/callback/${name}`),
      grant_types: ['authorization_code'],
      jwks_uri: `${baseURL}/auth/jwks`,
      request_object_signing_alg: 'RS256',
    }],
    features: { requestObjects: { enabled: true, requireSignedRequestObject: true }, encryption: { enabled: true } },
    config: { jwks: { keys: [rsaJwk('op-sig', 'sig', 'RS256'), rsaJwk('op-enc', 'enc', 'RSA-OAEP')] as never[] } },
  });
  jar = await startJarOp();
  jar.clientJwksUri = `${baseURL}/auth/jwks`;
  jar.redirectPrefix = `${baseURL}/auth/callback/`;
  store = new session.MemoryStore();
  const providers: Record<string, ProviderConfig> = {};
  for (const [name, requestObject] of Object.entries(REAL)) {
    providers[name] = oidc({ issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true, ...(requestObject ? { requestObject } : {}) });
  }
  for (const [name, requestObject] of Object.entries(JAR)) {
    providers[name] = oidc({ issuer: jar.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowInsecureRequests: true, requestObject });
  }
  const app = express();
  app.use((req, _res, next) => {
    if (req.path === '/auth/jwks' && req.get('x-test') === undefined) opJwksHits += 1;
    next();
  });
  app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store, name: 'sid' }));
  app.use(rp({ baseURL, keys: [RP_KEY], providers }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  server.on('request', app);
});
afterAll(async () => {
  await close(server);
  await op?.close();
  await jar?.close();
});
beforeEach(() => new Promise<void>((resolve) => store.clear(() => resolve())));

const agent = (): request.Agent => request.agent(server);

async function allSessions(): Promise<Record<string, session.SessionData>> {
  return new Promise((resolve) => store.all((_e, s) => resolve((s ?? {}) as Record<string, session.SessionData>)));
}

/** The pending transaction of `state` in the store (what the callback will check). */
async function transactionOf(state: unknown) {
  for (const s of Object.values(await allSessions())) {
    const t = pendingLogins(s.oidc).find((p) => p.state === String(state));
    if (t) return t;
  }
  throw new Error(`no transaction for state ${String(state)}`);
}

const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

/** The RP's public JWKS, as the OP gets it. */
async function rpJwks() {
  const res = await request(server).get('/auth/jwks').set('x-test', '1');
  expect(res.status).toBe(200);
  return res.body as { keys: JWK[] };
}

/** Starts a login at provider `name`: the authorization URL. */
async function start(a: request.Agent, name: string): Promise<URL> {
  const res = await a.get(`/auth/login/${name}?returnTo=/me`);
  expect(res.status).toBe(302);
  return new URL(res.headers.location);
}

/** The authorization URL carries exactly these parameters in the clear. */
function expectOnlyParams(url: URL, by: 'request' | 'request_uri'): void {
  expect([...url.searchParams.keys()].sort()).toEqual(['client_id', by, 'response_type', 'scope'].sort());
  expect(url.searchParams.get('client_id')).toBe(CLIENT_ID);
  expect(url.searchParams.get('response_type')).toBe('code');
  expect(url.searchParams.get('scope')!.split(' ')).toContain('openid');
}

/** The request object's claims match the login's transaction, client and OP. */
async function expectClaims(claims: JWTPayload, name: string, issuer: string): Promise<void> {
  const transaction = await transactionOf(claims.state);
  expect(transaction.provider).toBe(name);
  expect(claims).toMatchObject({
    iss: CLIENT_ID,
    client_id: CLIENT_ID,
    aud: issuer,
    response_type: 'code',
    redirect_uri: `${baseURL}/auth/callback/${name}`,
    nonce: transaction.nonce,
    code_challenge: s256(transaction.codeVerifier!),
    code_challenge_method: 'S256',
  });
  expect(String(claims.scope).split(' ')).toContain('openid');
  expect(typeof claims.jti).toBe('string');
  expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
  expect(claims.exp!).toBeGreaterThan(Math.floor(Date.now() / 1000));
}

/** Fetches a published request_uri as an OP would (no cookies): must be the RP's own route, served as a JWT. */
async function fetchRequestUri(url: URL): Promise<string> {
  const uri = new URL(url.searchParams.get('request_uri')!);
  expect(uri.origin).toBe(baseURL);
  expect(uri.pathname).toMatch(/^\/auth\/request\/[\w-]{32}$/);
  const res = await request(server).get(uri.pathname);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/oauth-authz-req\+jwt/);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.text;
}

/** Follows JarOp's answer back to the RP; returns the RP's /me. */
async function finishAtJar(a: request.Agent, url: URL): Promise<request.Response> {
  const answer = await fetch(url, { redirect: 'manual' });
  expect(answer.status).toBe(302);
  const callback = new URL(answer.headers.get('location')!);
  const res = await a.get(callback.pathname + callback.search);
  expect(res.status).toBe(302);
  expect(res.headers.location).toBe('/me');
  return a.get('/me');
}

/** Walks the real oidc-provider as alice; returns the RP's /me. */
async function finishAtOp(a: request.Agent, url: URL): Promise<request.Response> {
  const callback = await op.authorize(url);
  expect(callback.origin + callback.pathname).toMatch(new RegExp(`^${baseURL}/auth/callback/`));
  expect(callback.searchParams.get('error_description') ?? callback.searchParams.get('error')).toBeNull();
  const res = await a.get(callback.pathname + callback.search);
  expect(res.status).toBe(302);
  expect(res.headers.location).toBe('/me');
  return a.get('/me');
}

async function expectLoggedIn(me: request.Response): Promise<void> {
  expect(me.status).toBe(200);
  expect(me.body.sub).toBe('alice');
  expect(Object.values(await allSessions()).filter((s) => s.oidc?.auth)).toHaveLength(1);
}

async function decryptForJar(jwe: string): Promise<{ header: Record<string, unknown>; inner: string }> {
  expect(jwe.split('.')).toHaveLength(5);
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, jar.encPrivateKey);
  return { header: protectedHeader as Record<string, unknown>, inner: new TextDecoder().decode(plaintext) };
}

async function verifyWithRpKeys(jwt: string, audience: string): Promise<{ claims: JWTPayload; header: Record<string, unknown> }> {
  const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(await rpJwks()), { issuer: CLIENT_ID, audience, algorithms: ['RS256'] });
  return { claims: payload, header: protectedHeader as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------

describe('request objects by value (request=)', () => {
  test('rp-request_param-unsigned: an unsigned (alg none) request object by value logs in (JarOp)', async () => {
    const a = agent();
    const url = await start(a, 'value-none');
    expect(url.origin).toBe(jar.issuer);
    expectOnlyParams(url, 'request');
    const jwt = url.searchParams.get('request')!;
    expect(jwt.split('.')).toHaveLength(3);
    expect(jwt.endsWith('.')).toBe(true); // no signature
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'none' });
    await expectClaims(UnsecuredJWT.decode(jwt, { issuer: CLIENT_ID, audience: jar.issuer }).payload, 'value-none', jar.issuer);

    await expectLoggedIn(await finishAtJar(a, url));
    expect(jar.accepted.at(-1)!.jwsHeader.alg).toBe('none');
    expect(jar.accepted.at(-1)!.fetched).toBeUndefined();
  });

  test('rp-request_param-sig: an RS256 request object by value, verified by the real oidc-provider with the RP\'s JWKS (jwks_uri), logs in', async () => {
    const a = agent();
    const hitsBefore = opJwksHits;
    const url = await start(a, 'oidc-sig');
    expect(url.origin).toBe(op.issuer);
    expectOnlyParams(url, 'request');
    const jwt = url.searchParams.get('request')!;
    const { claims, header } = await verifyWithRpKeys(jwt, op.issuer);
    expect(header).toMatchObject({ alg: 'RS256', kid: RP_KEY.kid, typ: 'oauth-authz-req+jwt' });
    await expectClaims(claims, 'oidc-sig', op.issuer);

    await expectLoggedIn(await finishAtOp(a, url));
    // oidc-provider downloaded the RP's keys from its jwks_uri (this is its first request object)
    expect(opJwksHits).toBeGreaterThan(hitsBefore);
  });

  test('the same RS256 request object by value to JarOp, which verifies it with the RP\'s JWKS, logs in', async () => {
    const a = agent();
    const url = await start(a, 'value-sig');
    expectOnlyParams(url, 'request');
    await expectClaims((await verifyWithRpKeys(url.searchParams.get('request')!, jar.issuer)).claims, 'value-sig', jar.issuer);
    await expectLoggedIn(await finishAtJar(a, url));
    expect(jar.accepted.at(-1)!.jwsHeader).toMatchObject({ alg: 'RS256', kid: RP_KEY.kid });
  });

  test('signed then encrypted to the real oidc-provider\'s RSA-OAEP key, by value: it decrypts, verifies and logs in', async () => {
    const a = agent();
    const url = await start(a, 'oidc-sigenc');
    expectOnlyParams(url, 'request');
    const jwe = url.searchParams.get('request')!;
    expect(jwe.split('.')).toHaveLength(5);
    const opEnc = ((await (await fetch(`${op.issuer}/jwks`)).json()) as { keys: JWK[] }).keys.find((k) => k.use === 'enc')!;
    expect(decodeProtectedHeader(jwe)).toMatchObject({ alg: 'RSA-OAEP', enc: 'A128CBC-HS256', cty: 'JWT', kid: opEnc.kid });
    await expectLoggedIn(await finishAtOp(a, url));
  });

  test('the real oidc-provider checks the signature: a request object changed after signing is refused, nothing is logged in', async () => {
    const a = agent();
    const url = await start(a, 'oidc-sig');
    const [h, p, s] = url.searchParams.get('request')!.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    url.searchParams.set('request', `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'openid profile email offline_access' })).toString('base64url')}.${s}`);
    const answer = await fetch(url, { redirect: 'manual' });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/invalid_request_object/);
    expect(Object.values(await allSessions()).filter((x) => x.oidc?.auth)).toHaveLength(0);
  });

  test('(control) the real oidc-provider requires a request object from this client: a plain authorization request is refused', async () => {
    const a = agent();
    const url = await start(a, 'oidc-plain');
    expect(url.searchParams.get('state')).not.toBeNull(); // the plain request: parameters in the clear
    const answer = await fetch(url, { redirect: 'manual' });
    const back = new URL(answer.headers.get('location')!, op.issuer);
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toMatch(/Request Object must be used/);
  });
});

describe('request objects by reference (request_uri=, served by the RP at /auth/request/:id)', () => {
  test('rp-request_uri-unsigned: an unsigned request object by reference is fetched by the OP and logs in (JarOp)', async () => {
    const a = agent();
    const url = await start(a, 'ref-none');
    expectOnlyParams(url, 'request_uri');
    const jwt = await fetchRequestUri(url);
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'none' });
    await expectClaims(UnsecuredJWT.decode(jwt, { issuer: CLIENT_ID, audience: jar.issuer }).payload, 'ref-none', jar.issuer);

    await expectLoggedIn(await finishAtJar(a, url));
    const seen = jar.accepted.at(-1)!;
    expect(seen.fetched).toMatchObject({ uri: url.searchParams.get('request_uri'), contentType: expect.stringMatching(/^application\/oauth-authz-req\+jwt/) });
    expect(seen.jwsHeader.alg).toBe('none');
  });

  test('rp-request_uri-sig: an RS256 request object by reference, verified with the RP\'s JWKS, logs in (JarOp)', async () => {
    const a = agent();
    const url = await start(a, 'ref-sig');
    expectOnlyParams(url, 'request_uri');
    const { claims, header } = await verifyWithRpKeys(await fetchRequestUri(url), jar.issuer);
    expect(header).toMatchObject({ alg: 'RS256', kid: RP_KEY.kid, typ: 'oauth-authz-req+jwt' });
    await expectClaims(claims, 'ref-sig', jar.issuer);

    await expectLoggedIn(await finishAtJar(a, url));
    expect(jar.accepted.at(-1)!.fetched?.uri).toBe(url.searchParams.get('request_uri'));
    expect(jar.accepted.at(-1)!.jwsHeader).toMatchObject({ alg: 'RS256', kid: RP_KEY.kid });
  });

  test('rp-request_uri-enc: an unsigned request object encrypted to the OP\'s key (RSA-OAEP), by reference, logs in (JarOp)', async () => {
    const a = agent();
    const url = await start(a, 'ref-enc');
    expectOnlyParams(url, 'request_uri');
    const { header, inner } = await decryptForJar(await fetchRequestUri(url));
    expect(header).toMatchObject({ alg: 'RSA-OAEP', enc: 'A128CBC-HS256', cty: 'JWT', kid: jar.encKid });
    expect(decodeProtectedHeader(inner)).toEqual({ alg: 'none' });
    await expectClaims(UnsecuredJWT.decode(inner, { issuer: CLIENT_ID, audience: jar.issuer }).payload, 'ref-enc', jar.issuer);

    await expectLoggedIn(await finishAtJar(a, url));
    expect(jar.accepted.at(-1)!.jweHeader).toMatchObject({ alg: 'RSA-OAEP', kid: jar.encKid });
  });

  test('rp-request_uri-sig+enc: an RS256 request object encrypted to the OP\'s key, by reference, logs in (JarOp)', async () => {
    const a = agent();
    const url = await start(a, 'ref-sigenc');
    expectOnlyParams(url, 'request_uri');
    const { header, inner } = await decryptForJar(await fetchRequestUri(url));
    expect(header).toMatchObject({ alg: 'RSA-OAEP', enc: 'A128CBC-HS256', cty: 'JWT', kid: jar.encKid });
    const verified = await verifyWithRpKeys(inner, jar.issuer);
    expect(verified.header).toMatchObject({ alg: 'RS256', kid: RP_KEY.kid });
    await expectClaims(verified.claims, 'ref-sigenc', jar.issuer);

    await expectLoggedIn(await finishAtJar(a, url));
    expect(jar.accepted.at(-1)!.jweHeader).toMatchObject({ alg: 'RSA-OAEP' });
    expect(jar.accepted.at(-1)!.jwsHeader).toMatchObject({ alg: 'RS256' });
  });

  test('each login publishes its own request object (distinct ids, jti and state)', async () => {
    const a = agent();
    const one = await start(a, 'ref-sig');
    const two = await start(a, 'ref-sig');
    expect(one.searchParams.get('request_uri')).not.toBe(two.searchParams.get('request_uri'));
    const c1 = decodeJwt(await fetchRequestUri(one));
    const c2 = decodeJwt(await fetchRequestUri(two));
    expect(c1.jti).not.toBe(c2.jti);
    expect(c1.state).not.toBe(c2.state);
  });

  test('GET /auth/request/<unknown id> answers 404 not_found, and leaves nothing in the store', async () => {
    const res = await request(server).get(`/auth/request/${randomBytes(24).toString('base64url')}`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
    expect(Object.keys(await allSessions())).toEqual([]);
  });

  test.each([
    ['too short', 'abc'],
    ['too long', randomBytes(30).toString('base64url')],
    ['other characters', `${'a'.repeat(31)}.`],
    ['an encoded path', '..%2Fjwks'],
  ])('a malformed request object id (%s) answers 404 not_found', async (_what, id) => {
    const res = await request(server).get(`/auth/request/${id}`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
    expect(Object.keys(await allSessions())).toEqual([]);
  });

  test('a request object is no longer served after its 5 minutes', async () => {
    const url = await start(agent(), 'ref-sig');
    const path = new URL(url.searchParams.get('request_uri')!).pathname;
    expect((await request(server).get(path)).status).toBe(200);
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now + 301_000);
    try {
      const res = await request(server).get(path);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('not_found');
    } finally {
      clock.mockRestore();
    }
  });
});

describe('why the stub OP: what oidc-provider v9 refuses', () => {
  test('alg "none" is not accepted for request objects (not in its allow-list)', async () => {
    const url = await start(agent(), 'oidc-none');
    expect(decodeProtectedHeader(url.searchParams.get('request')!).alg).toBe('none');
    // an unverifiable request object cannot be trusted for its redirect_uri: an error page at the OP, no redirect
    const answer = await fetch(url, { redirect: 'manual' });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/invalid_request_object[\s\S]*unsupported signed request alg/);
  });

  test('by reference at an OP that takes no request_uri outside PAR (request_uri_parameter_supported: false): sent by value, said once, and the login works (before: the OP\'s request_uri_not_supported, every login)', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const a = agent();
      const url = await start(a, 'oidc-ref');
      expectOnlyParams(url, 'request');
      await expectLoggedIn(await finishAtOp(a, url));
      await start(agent(), 'oidc-ref');
      const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('providers.oidc-ref.requestObject.by is "reference"'));
      expect(said).toEqual([expect.stringContaining('takes no request_uri (request_uri_parameter_supported is false): sent by value instead')]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('start-up checks', () => {
  const base = { issuer: 'https://op.example', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };

  test('a signed request object without rp({ keys }) is an OptionsError naming providers.<name>.requestObject', () => {
    for (const requestObject of [{ by: 'value' as const }, { by: 'reference' as const, signingAlg: 'RS256' }, { by: 'value' as const, signingAlg: 'ES256' }]) {
      let error: unknown;
      try {
        rp({ baseURL: 'https://app.example', providers: { corp: oidc({ ...base, requestObject }) } });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(OptionsError);
      expect((error as OptionsError).code).toBe('invalid_options');
      expect((error as Error).message).toMatch(/"providers\.corp\.requestObject"/);
      expect((error as Error).message).toMatch(/keys/);
    }
  });

  test('an HS256 request object without a clientSecret is an OptionsError naming providers.<name>.clientSecret (not a failure at each login)', () => {
    const { clientSecret: _omitted, ...noSecret } = base;
    expect(() => rp({ baseURL: 'https://app.example', providers: { corp: oidc({ ...noSecret, requestObject: { signingAlg: 'HS256' } }) } }))
      .toThrow(/"providers\.corp\.clientSecret" is required to sign HS256 request objects/);
  });

  test('(control) unsigned or HS256 request objects need no keys', () => {
    expect(() => rp({ baseURL: 'https://app.example', providers: { corp: oidc({ ...base, requestObject: { signingAlg: 'none' } }) } })).not.toThrow();
    expect(() => rp({ baseURL: 'https://app.example', providers: { corp: oidc({ ...base, requestObject: { signingAlg: 'HS256' } }) } })).not.toThrow();
  });
});
