import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import * as client from 'openid-client';
import { createClient } from 'redis';
import { useRedis } from '../../../test/support/redis-server.js';
import { memoryAdapter } from '../src/adapters/memory.js';
import { redisAdapter } from '../src/adapters/redis.js';
import type { OpStore } from '../src/adapters/types.js';

// The stores under a real oidc-provider, driven by a real openid-client: what "atomic consume"
// buys is that racing redemptions of one code or one refresh token cannot all get tokens.

const REDIRECT_URI = 'https://app.example/callback';
const CONCURRENCY = 8;

const redis = useRedis((url) => createClient({ url }));

interface Running {
  provider: Provider;
  config: client.Configuration;
  close(): void;
}

async function startProvider(store: OpStore): Promise<Running> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    adapter: (name: string) => store.adapterFor(name),
    clients: [{
      client_id: 'app',
      client_secret: 'a-long-enough-client-secret',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
    }],
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    rotateRefreshToken: true,
    features: { devInteractions: { enabled: false } },
  });
  server.on('request', provider.callback());
  const config = await client.discovery(new URL(issuer), 'app', 'a-long-enough-client-secret', undefined, {
    execute: [client.allowInsecureRequests],
  });
  return { provider, config, close: () => (server.closeAllConnections(), server.close()) };
}

async function newGrant(provider: Provider): Promise<string> {
  const grant = new provider.Grant({ accountId: 'alice', clientId: 'app' });
  grant.addOIDCScope('openid offline_access');
  return grant.save();
}

/** Fires the same grant request CONCURRENCY times at once; returns [successes, OAuth error codes]. */
async function race(request: () => Promise<unknown>): Promise<[number, string[]]> {
  const outcomes = await Promise.allSettled(Array.from({ length: CONCURRENCY }, request));
  const errors = outcomes
    .filter((o): o is PromiseRejectedResult => o.status === 'rejected')
    .map((o) => (o.reason as { error?: string }).error ?? String(o.reason));
  return [outcomes.length - errors.length, errors];
}

describe.each([
  ['memory', (): OpStore => memoryAdapter()],
  ['redis', (): OpStore => redisAdapter(redis.client, { prefix: `t-${randomUUID()}:` })],
])('oidc-provider over the %s store', (_kind, makeStore) => {
  let running: Running;
  beforeEach(async () => {
    running = await startProvider(makeStore());
  });
  afterEach(() => running.close());

  it('an authorization code redeemed by racing requests yields tokens once', async () => {
    const { provider, config } = running;
    const verifier = randomBytes(32).toString('base64url');
    const code = await new provider.AuthorizationCode({
      accountId: 'alice',
      client: (await provider.Client.find('app'))!,
      grantId: await newGrant(provider),
      scope: 'openid',
      gty: 'authorization_code',
      redirectUri: REDIRECT_URI,
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      codeChallengeMethod: 'S256',
    }).save();

    const [won, lost] = await race(() =>
      client.genericGrantRequest(config, 'authorization_code', {
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      }),
    );

    expect(won).toBe(1);
    expect(lost).toEqual(Array(CONCURRENCY - 1).fill('invalid_grant'));
  });

  it('a rotating refresh token used by racing requests is rotated once', async () => {
    const { provider, config } = running;
    const refreshToken = await new provider.RefreshToken({
      accountId: 'alice',
      client: (await provider.Client.find('app'))!,
      grantId: await newGrant(provider),
      scope: 'openid offline_access',
      gty: 'authorization_code',
    }).save();

    const [won, lost] = await race(() => client.refreshTokenGrant(config, refreshToken));

    expect(won).toBe(1);
    expect(lost).toEqual(Array(CONCURRENCY - 1).fill('invalid_grant'));
  });
});
