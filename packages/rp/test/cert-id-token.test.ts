/**
 * OpenID Connect RP certification (Basic / Config RP), the ID token and userinfo tests, against
 * the hand-written misbehaving OP (op-stub): a real oidc-provider cannot be made to sign a token
 * without `sub`, with a future `iat`, with HS256 over the client secret, and so on.
 * Each refusal also shows that no authenticated session is left behind.
 */
import { createSign, generateKeyPairSync, KeyObject } from 'node:crypto';
import type { Server } from 'node:http';
import request from 'supertest';
import { generateKeyPair, type JWK, type JWTPayload } from 'jose';
import type { StubOp } from './support/op-stub.js';
import { startStubRp, type StubRp } from './support/stub-rp.js';

const CLIENT_SECRET = 'stub-client-secret-0123456789-0123456789';
let t: StubRp;
let stub: StubOp;
let server: Server;
let defaultKeys: JWK[];

beforeAll(async () => {
  t = await startStubRp({ clientSecret: CLIENT_SECRET }, { jwksCooldown: 0 });
  ({ stub, server } = t);
  // discovery is cached by the RP: what the stub advertises is set before the first login
  stub.metadata = { id_token_signing_alg_values_supported: ['RS256', 'ES256'] };
  stub.userinfo = { sub: 'mallory', email: 'mallory@example.org' };
  defaultKeys = [...stub.keys];
});
afterAll(() => t.close());
beforeEach(() => {
  stub.idToken = (claims) => stub.sign(claims);
  stub.keys = [...defaultKeys];
  stub.userinfo = { sub: 'mallory', email: 'mallory@example.org' };
  stub.userinfoAnswer = undefined;
  stub.requests = [];
  stub.refreshToken = undefined;
  return t.clearStore();
});

const callback = (agent: request.Agent) => t.callback(agent);

async function expectLoggedIn(res: request.Response, agent: request.Agent): Promise<void> {
  expect(res.status).toBe(302);
  expect((await agent.get('/me')).body.sub).toBe('mallory');
}

/** A clear 4xx with a stable code, and neither this browser nor the store holds a login. */
async function expectRefused(res: request.Response, agent: request.Agent, code = 'invalid_id_token', pattern?: RegExp): Promise<void> {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.body.error).toBe(code);
  if (pattern) expect(res.body.error_description).toMatch(pattern);
  expect((await agent.get('/me')).status).toBe(401);
  expect(await t.loggedInSessions()).toEqual([]);
}

describe('rp-id_token-* (signature and claims of the ID token)', () => {
  test('rp-id_token-sig-rs256: an RS256 ID token logs in, and userinfo claims are merged (rp-scope-userinfo-claims)', async () => {
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    expect((await agent.get('/me')).body.email).toBe('mallory@example.org');
  });

  test('rp-id_token-sig-es256: an ES256 ID token logs in', async () => {
    const { privateKey, jwk } = await stub.newKey('ES256', 'ec-key');
    stub.keys = [...defaultKeys, jwk];
    stub.idToken = (claims) => stub.sign(claims, { alg: 'ES256', key: privateKey, kid: 'ec-key' });
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
  });

  test('rp-id_token-bad-sig-es256: an ES256 ID token signed by another key does not log in', async () => {
    const { jwk } = await stub.newKey('ES256', 'ec-key');
    const other = await stub.newKey('ES256');
    stub.keys = [...defaultKeys, jwk];
    stub.idToken = (claims) => stub.sign(claims, { alg: 'ES256', key: other.privateKey, kid: 'ec-key' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /signature/);
  });

  test('rp-id_token-bad-sig-rs256: an RS256 ID token signed by another key does not log in', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    stub.idToken = (claims) => stub.sign(claims, { key: privateKey });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /signature/);
  });

  test('rp-id_token-kid-absent-single-jwks: no kid, one key in the JWKS: that key is used', async () => {
    stub.keys = defaultKeys.map(({ kid: _kid, ...k }) => k);
    stub.idToken = (claims) => stub.sign(claims, { kid: null });
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
  });

  /**
   * An RP of its own, with a stub OP whose JWKS is `keys` from its first download on: a key set that
   * an earlier test left in the shared RP's cache (one key) cannot decide these tests.
   */
  async function kidAbsentMultiple(
    sign: (stub: StubOp) => (claims: JWTPayload) => Promise<string>, first?: JWK, downloads = 1,
  ): Promise<{ res: request.Response; agent: request.Agent; fresh: StubRp }> {
    const fresh = await startStubRp({ clientSecret: CLIENT_SECRET }, { jwksCooldown: 0 });
    fresh.stub.userinfo = { sub: 'mallory', email: 'mallory@example.org' };
    const other = first ?? (await fresh.stub.newKey('RS256')).jwk; // listed first: tried first, and it does not verify
    fresh.stub.keys = [other, ...fresh.stub.keys.map(({ kid: _kid, ...k }) => k)];
    fresh.stub.idToken = sign(fresh.stub);
    const agent = request.agent(fresh.server);
    const res = await fresh.callback(agent);
    expect(fresh.stub.jwksRequests).toBe(downloads); // both keys, as the RP saw them (a token none verifies: downloaded once more, in case the OP rotated)
    return { res, agent, fresh };
  }

  test('rp-id_token-kid-absent-multiple-jwks: no kid, several keys: the RP tries the candidates, and logs in with the one that verifies', async () => {
    const { res, agent, fresh } = await kidAbsentMultiple((op) => (claims) => op.sign(claims, { kid: null }));
    try {
      expect(res.status).toBe(302);
      expect((await agent.get('/me')).body.sub).toBe('mallory');
    } finally {
      await fresh.close();
    }
  });

  test('rp-id_token-kid-absent-multiple-jwks: a candidate jose will not use (an RSA key of 1024 bits, kept during a rotation) is passed over for the one that verifies', async () => {
    const weak = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' } as JWK;
    const { res, agent, fresh } = await kidAbsentMultiple((op) => (claims) => op.sign(claims, { kid: null }), weak);
    try {
      expect(res.status).toBe(302); // before: 401, "RS256 requires key modulusLength to be 2048 bits or larger"
      expect((await agent.get('/me')).body.sub).toBe('mallory');
    } finally {
      await fresh.close();
    }
  });

  test('rp-id_token-kid-absent-multiple-jwks (forged): no kid, several keys, none of which signed it: refused', async () => {
    const forger = await stub.newKey('RS256');
    const { res, agent, fresh } = await kidAbsentMultiple((op) => (claims) => op.sign(claims, { kid: null, key: forger.privateKey }), undefined, 2);
    try {
      expect([res.status, res.body.error]).toEqual([401, 'invalid_id_token']);
      expect(res.body.error_description).toMatch(/no key of the OP's JWKS .* verifies the token's signature \(it names no "kid"; 2 keys tried\)/);
      expect((await agent.get('/me')).status).toBe(401);
      expect(await fresh.loggedInSessions()).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  test('rp-id_token-sig-none: an unsigned ID token in the code flow does not log in', async () => {
    stub.idToken = async (claims) => `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent);
  });

  test('rp-id_token-issuer-mismatch: an ID token from another issuer does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iss: 'https://evil.example' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /iss/);
  });

  test('rp-id_token-sub: an ID token without sub does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, sub: undefined });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /sub/);
  });

  test('rp-id_token-aud: an ID token for another client does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: 'another-client' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /aud/);
  });

  test('rp-id_token-aud (missing, oidcc-client-test-missing-aud): an ID token without aud does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: undefined });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /aud/);
  });

  test('oidcc-client-test-ignores-unparseable-key-in-jwks: a JWKS entry the RP cannot read is skipped, the good key is used', async () => {
    stub.keys = [
      { kty: 'RSA', kid: 'broken', use: 'sig', alg: 'RS256', n: '!!not-base64url!!', e: 'AQAB' },
      { kty: 'unknown-type', kid: 'alien', x: 'y' } as JWK,
      { kid: 'no-kty' } as JWK,
      ...defaultKeys,
    ];
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
  });

  test('rp-id_token-iat: an ID token without iat does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iat: undefined });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /iat/);
  });

  test('an ID token of an OP whose clock is 45 s ahead does not log in, and the error says the clocks differ by about that much', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iat: (claims.iat as number) + 45, exp: (claims.exp as number) + 45 });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /it is 4[456] s ahead of this server's clock \(30 s are tolerated\), so the clocks of this server and the OP differ: keep both in time \(NTP/);
  });

  test('rp-nonce-invalid: an ID token carrying another nonce does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, nonce: 'not-the-nonce-we-sent' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /nonce/);
  });
});

describe('attacker-shaped ID tokens', () => {
  test('alg switch: HS256 "signed" with the client secret, when the OP signs with RS256, does not log in', async () => {
    stub.idToken = (claims) => stub.sign(claims, { alg: 'HS256', key: new TextEncoder().encode(CLIENT_SECRET) });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent);
  });

  test('an ID token in an alg the RP does not accept (an OP left on HS512, as LemonLDAP::NG is by default) is refused, naming the alg and what to set', async () => {
    stub.idToken = (claims) => stub.sign(claims, { alg: 'HS512', key: new TextEncoder().encode(CLIENT_SECRET) });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token',
      /signed with "alg" HS512, and tokens from this OP are accepted signed with RS256 or ES256: .*idTokenSignedResponseAlg: 'HS512'/);
  });

  test('a crit header naming an extension the RP does not understand does not log in', async () => {
    // jose refuses to sign with an unknown crit, so the token is put together by hand
    stub.idToken = async (claims) => {
      const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
      const input = `${b64({ alg: 'RS256', kid: stub.kid, crit: ['urn:example:ext'], 'urn:example:ext': 1 })}.${b64(claims)}`;
      return `${input}.${createSign('RSA-SHA256').update(input).sign(KeyObject.from(stub.key)).toString('base64url')}`;
    };
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /crit/);
  });

  test('an ID token signed with an RSA key under 2048 bits (a legacy OP, a lab\'s weak-key case): a refusal of the OP\'s token naming why, not the app\'s 500', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    stub.keys = [{ ...(weak.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak', alg: 'RS256', use: 'sig' }];
    // jose refuses to sign with such a key too, so the token is put together by hand
    stub.idToken = async (claims) => {
      const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
      const input = `${b64({ alg: 'RS256', kid: 'weak' })}.${b64(claims)}`;
      return `${input}.${createSign('RSA-SHA256').update(input).sign(weak.privateKey).toString('base64url')}`;
    };
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /2048 bits/);
  });

  test('a logout token (typ logout+jwt, no nonce) passed off as an ID token does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, nonce: undefined, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }, { typ: 'logout+jwt' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent);
  });

  test('an ID token issued in the future (iat an hour ahead, exp further still) does not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, iat: (claims.iat as number) + 3600, exp: (claims.iat as number) + 7200 });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /iat/);
  });

  test('several audiences without azp do not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: ['app', 'another-client'] });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /aud/);
  });

  test('several audiences with azp naming another client do not log in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: ['app', 'another-client'], azp: 'another-client' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /azp/);
  });

  test('one audience with azp naming another client does not log in (OIDC Core 3.1.3.7 step 5)', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: 'app', azp: 'another-client' });
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_id_token', /"azp".*"another-client".*client_id "app"/);
  });

  test('one audience with azp naming this client logs in', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: 'app', azp: 'app' });
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
  });

  test('several audiences with azp naming this client log in (OIDC Core 3.1.3.7 steps 3-5)', async () => {
    stub.idToken = (claims) => stub.sign({ ...claims, aud: ['app', 'another-client'], azp: 'app' });
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
  });
});

describe('rp-userinfo-* and rp-token_endpoint-*', () => {
  test('rp-userinfo-bearer-header: the access token goes in the Authorization header, never in the query', async () => {
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    const userinfo = stub.requests.filter((r) => r.path === '/userinfo');
    expect(userinfo).toHaveLength(1);
    expect(userinfo[0].headers.authorization).toBe('Bearer stub-access-token');
  });

  test('rp-userinfo-bad-sub-claim: userinfo for another sub than the ID token does not log in', async () => {
    stub.userinfo = { sub: 'someone-else', email: 'victim@example.org' };
    const agent = request.agent(server);
    await expectRefused(await callback(agent), agent, 'invalid_response', /sub/);
  });

  test.each([
    [429, { 'retry-after': '20' }, '20'],
    [503, {}, '5'],
  ])('the userinfo endpoint answering %i: 503 op_unavailable with Retry-After (the OP\'s own when it sent one), and no login', async (status, headers, retryAfter) => {
    stub.userinfoAnswer = { status, headers };
    const agent = request.agent(server).set('accept', 'application/json');
    const res = await callback(agent);
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'op_unavailable', retryAfter]);
    expect(res.body.error_description).toContain(`HTTP ${status}`);
    expect((await agent.get('/me')).status).toBe(401);
    expect(await t.loggedInSessions()).toEqual([]);
  });

  test('rp-token_endpoint-client_secret_basic: the default client authentication is HTTP Basic, secret not in the body', async () => {
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    const [token] = stub.requests.filter((r) => r.path === '/token');
    const basic = Buffer.from(String(token.headers.authorization).replace(/^Basic /, ''), 'base64').toString();
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64
    expect(basic.split(':').map(decodeURIComponent)).toEqual(['app', CLIENT_SECRET]);
    expect(token.body.client_secret).toBeUndefined();
    expect(token.body.code_verifier).toMatch(/^[\w-]{43,}$/);
  });
});

describe('refreshed ID tokens (OIDC Core 12.2)', () => {
  test('a refresh whose new ID token names another sub ends the login with 401 refresh_failed', async () => {
    stub.refreshToken = 'stub-refresh-token';
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    stub.idToken = (claims) => stub.sign({ ...claims, sub: 'someone-else' });
    const res = await agent.post('/auth/refresh').send({});
    expect(stub.requests.at(-1)?.body.grant_type).toBe('refresh_token');
    await expectRefused(res, agent, 'refresh_failed', /another subject/);
  });

  test.each([
    ['oidcc-client-test-refresh-token-invalid-issuer', { iss: 'https://elsewhere.example' }, /iss/],
    ['oidcc-client-test-refresh-token-invalid-aud', { aud: 'another-client' }, /aud/],
    ['oidcc-client-test-refresh-token-invalid-azp', { aud: ['app', 'other'], azp: 'other' }, /azp/],
    ['a refreshed ID token with one audience and another client\'s azp', { azp: 'other' }, /azp/],
  ])('%s: a refreshed ID token that fails its checks ends the login (refresh_failed)', async (_id, bad, pattern) => {
    stub.refreshToken = 'stub-refresh-token';
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    stub.idToken = (claims) => stub.sign({ ...claims, ...bad });
    const res = await agent.post('/auth/refresh').send({});
    expect(stub.requests.at(-1)?.body.grant_type).toBe('refresh_token');
    await expectRefused(res, agent, 'refresh_failed', pattern);
  });

  test('(control) a refresh whose new ID token names the same sub keeps the login', async () => {
    stub.refreshToken = 'stub-refresh-token';
    const agent = request.agent(server);
    await expectLoggedIn(await callback(agent), agent);
    const res = await agent.post('/auth/refresh').send({});
    expect(res.status).toBe(200);
    expect((await agent.get('/me')).body.sub).toBe('mallory');
  });
});
