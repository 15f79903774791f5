import { createRemoteJWKSet, decodeJwt, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import type { TokenExchangeRequest } from '@openid-express/op';
import { ALICE } from './support/op-server.js';
import {
  ACCESS_TOKEN_TYPE, API, BACKEND, client, oauthError, SECRET, startGrantOp, TOKEN_EXCHANGE, webClient, type GrantFixture,
} from './support/grant-fixture.js';

const VAULT = 'https://vault.example.com';
const SHORT = 'https://short.example.com';
const OPAQUE = 'https://opaque.example.com';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// RFC 8693 token exchange: a resource server ("gateway") trades the user's token for one for the backend
describe('features.tokenExchange', () => {
  let f: GrantFixture;
  let web: client.Configuration;
  let gateway: client.Configuration;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  const asked: TokenExchangeRequest[] = [];
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({
      features: {
        resourceIndicators: {
          resources: {
            [API]: { scope: 'read write' },
            [BACKEND]: { scope: 'read write', audience: 'backend', claimsByScope: { read: ['email'] } },
            [VAULT]: { scope: 'read' },
            [SHORT]: { scope: 'read', accessTokenTTL: 1 },
            [OPAQUE]: { scope: 'read', accessTokenFormat: 'opaque' },
          },
        },
        tokenExchange: {
          policy: async (request) => {
            asked.push(request);
            return request.client.clientId === 'gateway' && request.resource !== VAULT;
          },
        },
      },
      clients: [
        webClient(origin),
        { client_id: 'gateway', client_secret: SECRET, grant_types: [TOKEN_EXCHANGE], response_types: [] },
      ],
    }));
    [web, gateway] = await Promise.all([f.config('web'), f.config('gateway')]);
    jwks = createRemoteJWKSet(new URL(web.serverMetadata().jwks_uri!));
  });
  afterAll(async () => {
    await f?.op.close();
  });

  const exchange = (subjectToken: string, params: Record<string, string> = {}, config = gateway) => client.genericGrantRequest(config, TOKEN_EXCHANGE, {
    subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, ...params,
  });
  /** alice's access token for `resource` (code flow through the web client). */
  const aliceToken = async (resource: string, scope = 'read write') => (await f.codeFlow(web, { scope: `openid ${scope}`, resource })).access_token;

  test('the grant type is advertised', () => {
    expect(web.serverMetadata().grant_types_supported).toContain(TOKEN_EXCHANGE);
  });

  test('a JWT for the API becomes a JWT for the backend: same sub, the new aud, fewer scopes, act naming the client', async () => {
    const subject = await aliceToken(API);
    asked.length = 0;
    const answer = await exchange(subject, { audience: 'backend', scope: 'read' });
    expect(answer).toMatchObject({ issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'bearer', scope: 'read', expires_in: expect.any(Number) });
    expect(answer.refresh_token).toBeUndefined();
    const { payload } = await jwtVerify(answer.access_token, jwks, { issuer: f.op.issuer, audience: 'backend', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: 'alice', client_id: 'gateway', scope: 'read', act: { sub: 'gateway' }, email: ALICE.claims.email });
    expect(payload.exp!).toBeLessThanOrEqual(decodeJwt(subject).exp!); // never outlives the subject token
    expect(asked).toEqual([{
      client: { clientId: 'gateway', metadata: expect.objectContaining({ client_id: 'gateway' }) },
      subject: { sub: 'alice', clientId: 'web', scope: ['read', 'write'], audience: API, format: 'jwt' },
      resource: BACKEND, audience: 'backend', scope: ['read'],
    }]);
    expect(asked[0]!.client.metadata.client_secret).toBeUndefined(); // the policy is not handed the client's secret
  });

  test('without scope the new token gets the subject\'s scopes the resource knows; exchanged again, act nests', async () => {
    const first = await exchange(await aliceToken(API), { resource: BACKEND });
    expect(first.scope).toBe('read write');
    const second = await exchange(first.access_token, { resource: API, scope: 'write' });
    expect(decodeJwt(second.access_token)).toMatchObject({ aud: API, sub: 'alice', scope: 'write', act: { sub: 'gateway', act: { sub: 'gateway' } } });
  });

  test('an opaque subject token (found in the store) is exchanged too', async () => {
    const subject = await aliceToken(OPAQUE, 'read');
    expect(subject.split('.')).toHaveLength(1);
    const answer = await exchange(subject, { resource: BACKEND });
    expect(decodeJwt(answer.access_token)).toMatchObject({ aud: 'backend', sub: 'alice', scope: 'read', act: { sub: 'gateway' } });
    expect(asked.at(-1)!.subject).toMatchObject({ format: 'opaque', clientId: 'web', audience: OPAQUE });
  });

  test('the policy refuses: access_denied, and no token', async () => {
    const subject = await aliceToken(API, 'read');
    expect(await oauthError(exchange(subject, { resource: VAULT }))).toMatchObject({ error: 'access_denied', status: 400 });
  });

  test('a foreign subject token (another key, or unknown to the store) is invalid_grant', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ client_id: 'web', scope: 'read write' }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' })
      .setIssuer(f.op.issuer).setAudience(API).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    expect(await oauthError(exchange(forged, { resource: BACKEND }))).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('subject_token') });
    expect(await oauthError(exchange('not-a-token-of-this-op', { resource: BACKEND }))).toMatchObject({ error: 'invalid_grant' });
  });

  test('an expired subject token is invalid_grant', async () => {
    const subject = await aliceToken(SHORT, 'read');
    await sleep(2100);
    expect(await oauthError(exchange(subject, { resource: BACKEND }))).toMatchObject({ error: 'invalid_grant' });
  });

  test('a revoked subject token is invalid_grant', async () => {
    const subject = await aliceToken(OPAQUE, 'read');
    await client.tokenRevocation(web, subject);
    expect(await oauthError(exchange(subject, { resource: BACKEND }))).toMatchObject({ error: 'invalid_grant' });
  });

  test('a scope wider than the subject token\'s is invalid_scope', async () => {
    const subject = await aliceToken(API, 'read');
    expect(await oauthError(exchange(subject, { resource: BACKEND, scope: 'read write' })))
      .toMatchObject({ error: 'invalid_scope', error_description: 'the requested scope exceeds the subject token\'s' });
  });

  test('malformed requests: invalid_request; unknown or several targets: invalid_target', async () => {
    const subject = await aliceToken(API, 'read');
    const raw = (params: Record<string, string>) => client.genericGrantRequest(gateway, TOKEN_EXCHANGE, { subject_token: subject, ...params });
    expect(await oauthError(raw({ resource: BACKEND }))).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('subject_token_type') });
    expect(await oauthError(raw({ resource: BACKEND, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }))).toMatchObject({ error: 'invalid_request' });
    expect(await oauthError(exchange(subject, { resource: BACKEND, actor_token: subject, actor_token_type: ACCESS_TOKEN_TYPE }))).toMatchObject({ error: 'invalid_request' });
    expect(await oauthError(exchange(subject, { resource: BACKEND, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }))).toMatchObject({ error: 'invalid_request' });
    expect(await oauthError(exchange(subject, { resource: 'https://unknown.example.com' }))).toMatchObject({ error: 'invalid_target' });
    expect(await oauthError(exchange(subject, { audience: 'nobody' }))).toMatchObject({ error: 'invalid_target' });
    expect(await oauthError(exchange(subject))).toMatchObject({ error: 'invalid_target' });
    expect(await oauthError(exchange(subject, { resource: BACKEND, audience: API }))).toMatchObject({ error: 'invalid_target' });
  });

  test('a client without the grant type in grant_types is refused', async () => {
    const subject = await aliceToken(API, 'read');
    expect(await oauthError(exchange(subject, { resource: BACKEND }, web))).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('not allowed for this client') });
  });
});

describe('token exchange when features.tokenExchange is off', () => {
  let f: GrantFixture;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({ features: { resourceIndicators: { resources: { [API]: { scope: 'read' } } } }, clients: [webClient(origin)] }));
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('is unsupported_grant_type and not advertised', async () => {
    const web = await f.config('web');
    expect(web.serverMetadata().grant_types_supported).not.toContain(TOKEN_EXCHANGE);
    const subject = (await f.codeFlow(web, { scope: 'openid read', resource: API })).access_token;
    expect(await oauthError(client.genericGrantRequest(web, TOKEN_EXCHANGE, { subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, resource: API })))
      .toMatchObject({ error: 'unsupported_grant_type' });
  });
});
