/**
 * DPoP (RFC 9449) on the grants op() adds to oidc-provider's: the password grant and token exchange
 * issued Bearer tokens whatever the request carried, also to a client registered with
 * `dpop_bound_access_tokens: true` and sending no proof (probe14-tier2 F2), while oidc-provider's own
 * grants (client credentials here) bound them. Now they bind as those do.
 */
import { decodeJwt } from 'jose';
import { ALICE } from './support/op-server.js';
import { ACCESS_TOKEN_TYPE, API, BACKEND, client, oauthError, SECRET, startGrantOp, TOKEN_EXCHANGE, webClient, type GrantFixture } from './support/grant-fixture.js';

let f: GrantFixture;
let warn: jest.SpyInstance;
beforeAll(async () => {
  warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined); // (the password grant's start-up warning)
  f = await startGrantOp((origin) => ({
    features: {
      dPoP: true,
      passwordGrant: true,
      resourceIndicators: { resources: { [API]: { scope: 'read' }, [BACKEND]: { scope: 'read' } } },
      tokenExchange: { policy: () => true },
    },
    clients: [
      webClient(origin),
      { client_id: 'ropc', client_secret: SECRET, grant_types: ['password', 'refresh_token'], response_types: [] },
      { client_id: 'ropc-pub', token_endpoint_auth_method: 'none', grant_types: ['password', 'refresh_token'], response_types: [] },
      { client_id: 'ropc-dpop', client_secret: SECRET, grant_types: ['password'], response_types: [], dpop_bound_access_tokens: true },
      { client_id: 'gateway', client_secret: SECRET, grant_types: [TOKEN_EXCHANGE], response_types: [] },
      { client_id: 'gateway-dpop', client_secret: SECRET, grant_types: [TOKEN_EXCHANGE], response_types: [], dpop_bound_access_tokens: true },
    ],
  }));
}, 60_000);
afterAll(async () => {
  warn.mockRestore();
  await f?.op.close();
});

const password = (config: client.Configuration, options?: client.DPoPOptions, extra: Record<string, string> = {}) =>
  client.genericGrantRequest(config, 'password', { username: 'alice', password: ALICE.password, ...extra }, options);

test('the password grant with a proof: a DPoP token bound to the key (cnf.jkt), and userinfo wants the proof', async () => {
  const config = await f.config('ropc');
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
  const tokens = await password(config, { DPoP: dpop }, { scope: 'openid read', resource: API });
  expect(tokens.token_type).toBe('dpop'); // before: bearer
  expect(decodeJwt(tokens.access_token)).toMatchObject({ cnf: { jkt: expect.any(String) } });
  const plain = await password(config, undefined, { scope: 'openid' });
  expect(plain.token_type).toBe('bearer');
  const bound = await password(config, { DPoP: dpop }, { scope: 'openid' });
  await expect(client.fetchUserInfo(config, bound.access_token, 'alice', { DPoP: dpop })).resolves.toMatchObject({ sub: 'alice' });
  expect(await oauthError(client.fetchUserInfo(config, bound.access_token, 'alice'))).toMatchObject({ status: 401 });
});

test('a public client\'s refresh token from the password grant is bound to the key too: refreshing without the proof is refused', async () => {
  const config = await f.config('ropc-pub', 'none');
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
  const tokens = await password(config, { DPoP: dpop }, { scope: 'openid offline_access' });
  expect(tokens.refresh_token).toEqual(expect.any(String));
  expect(await oauthError(client.refreshTokenGrant(config, tokens.refresh_token!))).toMatchObject({ status: 400, error: 'invalid_grant' });
  expect((await client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: dpop })).token_type).toBe('dpop');
});

test('a client registered with dpop_bound_access_tokens and no proof is refused, by both grants (RFC 9449 §5)', async () => {
  expect(await oauthError(password(await f.config('ropc-dpop')))).toMatchObject({ status: 400, error: 'invalid_grant' }); // before: a Bearer token
  const subject = (await password(await f.config('ropc'), undefined, { scope: 'read', resource: API })).access_token;
  const exchange = (config: client.Configuration, options?: client.DPoPOptions) => client.genericGrantRequest(config, TOKEN_EXCHANGE, {
    subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, resource: BACKEND,
  }, options);
  expect(await oauthError(exchange(await f.config('gateway-dpop')))).toMatchObject({ error: 'invalid_grant' }); // before: a Bearer token
  const gateway = await f.config('gateway');
  const dpop = client.getDPoPHandle(gateway, await client.randomDPoPKeyPair());
  const exchanged = await exchange(gateway, { DPoP: dpop });
  expect(exchanged.token_type).toBe('dpop');
  expect(decodeJwt(exchanged.access_token)).toMatchObject({ aud: BACKEND, cnf: { jkt: expect.any(String) } });
});

describe('one DPoP proof sent twice at the same moment (probe27-dpop F1: the replay check read, then wrote)', () => {
  /** A proof for GET `url` with access token `token`, signed with `key`. */
  async function proof(key: CryptoKeyPair, url: string, token: string): Promise<string> {
    const { exportJWK, SignJWT } = await import('jose');
    const { createHash, randomUUID } = await import('node:crypto');
    const jwk = await exportJWK(key.publicKey);
    return new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(key.privateKey);
  }

  test('two op() instances on one Redis (requests dealt round-robin): one proof sent three times at once, to both, is taken once', async () => {
    const express = (await import('express')).default;
    const { startRedisServer } = await import('../../../test/support/redis-server.js');
    const { createClient } = await import('redis');
    const { generateKeys, op, redisAdapter } = await import('@openid-express/op');
    const { accounts, listen, originOf } = await import('./support/op-server.js');
    const redis = await startRedisServer();
    const clients = [createClient({ url: redis.url }), createClient({ url: redis.url })];
    await Promise.all(clients.map((c) => c.connect()));
    const server = await listen();
    const issuer = `${originOf(server)}/op`;
    const keys = generateKeys();
    // each instance its own oidc-provider and Redis connection, as two processes have
    const instances = clients.map((c) => express().use('/op', op({
      issuer, accounts, adapter: redisAdapter(c), ...keys,
      features: { dPoP: true, passwordGrant: true },
      clients: [{ client_id: 'ropc', client_secret: SECRET, grant_types: ['password'], response_types: [] }],
    })));
    let next = 0;
    server.on('request', (req, res) => instances[(next += 1) % 2]!(req, res));
    try {
      const config = await client.discovery(new URL(issuer), 'ropc', SECRET, client.ClientSecretBasic(), { execute: [client.allowInsecureRequests] });
      const key = await client.randomDPoPKeyPair();
      const tokens = await password(config, { DPoP: client.getDPoPHandle(config, key) }, { scope: 'openid' });
      const userinfo = `${issuer}/me`;
      for (let round = 0; round < 5; round += 1) {
        const sent = await proof(key, userinfo, tokens.access_token);
        const answers = await Promise.all([0, 1, 2].map(() => fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: sent } })));
        expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401]);
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(clients.map((c) => c.quit()));
      await redis.stop();
    }
  }, 30_000);

  test.each([['memoryAdapter()', false], ['redisAdapter() on a real Redis', true]])('%s: is taken once, whichever comes first; the other is refused', async (_name, onRedis) => {
    const { startRedisServer } = await import('../../../test/support/redis-server.js');
    const { createClient } = await import('redis');
    const { redisAdapter } = await import('@openid-express/op');
    const redis = onRedis ? await startRedisServer() : undefined;
    const redisClient = redis ? createClient({ url: redis.url }) : undefined;
    await redisClient?.connect();
    const g = await startGrantOp(() => ({
      ...(redisClient ? { adapter: redisAdapter(redisClient) } : {}),
      features: { dPoP: true, passwordGrant: true },
      clients: [{ client_id: 'ropc', client_secret: SECRET, grant_types: ['password'], response_types: [] }],
    }));
    try {
      const config = await g.config('ropc');
      const key = await client.randomDPoPKeyPair();
      const tokens = await password(config, { DPoP: client.getDPoPHandle(config, key) }, { scope: 'openid' });
      expect(tokens.token_type).toBe('dpop');
      const userinfo = `${g.op.issuer}/me`;
      for (let round = 0; round < 5; round += 1) {
        const sent = await proof(key, userinfo, tokens.access_token);
        const answers = await Promise.all([0, 1, 2].map(() => fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: sent } })));
        // before: two or three 200s for one proof in most rounds
        expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401]);
      }
    } finally {
      await g.op.close();
      await redisClient?.quit();
      await redis?.stop();
    }
  }, 30_000);
});
