/**
 * Two OPs (tenants) whose stores share one namespace: one Redis with the default prefix, or one
 * memoryAdapter() handed to both. Each finds only its own records: a token, code or refresh token of
 * tenant A is not active at tenant B (same client id, same secret, same account ids), and the shared
 * namespace is warned about, naming the fix.
 */
import { EventEmitter } from 'node:events';
import type Provider from 'oidc-provider';
import { createClient } from 'redis';
import { memoryAdapter, redisAdapter, type OpStore } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { retryBackchannelLogout } from '../src/backchannel-retry.js';
import { ISSUER_TAG } from '../src/issuer-scope.js';
import { ALICE } from './support/op-server.js';
import { aliceTokens, client, insecure, refusal, startFlowFixture, SECRET, type FlowFixture } from './support/flow-suite.js';

let redis: RedisServer;
let redisClient: ReturnType<typeof createClient>;
beforeAll(async () => {
  redis = await startRedisServer();
  redisClient = createClient({ url: redis.url });
  await redisClient.connect();
});
afterAll(async () => {
  redisClient?.destroy();
  await redis?.stop();
});

describe.each([
  ['one memoryAdapter()', async () => memoryAdapter()],
  ['one Redis, both with the default prefix', async () => redisAdapter(redisClient)],
])('two tenants on %s', (_name, makeStore: () => Promise<OpStore>) => {
  let a: FlowFixture;
  let b: FlowFixture;
  let warn: jest.SpyInstance;
  beforeAll(async () => {
    const store = await makeStore();
    [a, b] = await Promise.all([startFlowFixture(store), startFlowFixture(store)]);
  });
  afterAll(async () => {
    await a?.op.close();
    await b?.op.close();
  });
  beforeEach(() => void (warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined)));
  afterEach(() => warn.mockRestore());

  test('A\'s access token is not active at B (userinfo, introspection), and A\'s refresh token is refused there; A still takes both', async () => {
    expect(a.op.issuer).not.toBe(b.op.issuer);
    const tokens = await aliceTokens(a, a.web, { scope: 'openid offline_access', prompt: 'consent' });
    const sub = tokens.claims()!.sub;
    // at B: the same client id and secret, the same account "alice"
    expect(await refusal(client.fetchUserInfo(b.web, tokens.access_token, sub))).toMatchObject({ status: 401 });
    expect(await client.tokenIntrospection(b.web, tokens.access_token)).toMatchObject({ active: false });
    expect(await refusal(client.refreshTokenGrant(b.web, tokens.refresh_token!))).toMatchObject({ status: 400, error: 'invalid_grant' });
    // said once an hour, naming both issuers and the fix
    const said = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('store namespace'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`the OP at ${b.op.issuer} was asked for a record (AccessToken) of the OP at "${a.op.issuer}"`);
    expect(said[0]).toContain('redisAdapter(redis, { prefix: \'tenant-a:\' })');
    // A's own are untouched by B's refusals
    expect(await client.fetchUserInfo(a.web, tokens.access_token, sub)).toMatchObject({ sub });
    expect(await client.tokenIntrospection(a.web, tokens.access_token)).toMatchObject({ active: true, iss: a.op.issuer });
    const refreshed = await client.refreshTokenGrant(a.web, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
  });

  test('A\'s code is refused at B, and that leaves it good at A (B\'s refusal revokes nothing of A\'s)', async () => {
    const auth = await a.authorization();
    const page = await signIn(a.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
    const callback = new URL(page.stoppedAt!);
    const code = callback.searchParams.get('code')!;
    // B's token endpoint with A's code, as B's own client of the same id would send it
    const atB = await fetch(`${b.op.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: a.redirectUri, code_verifier: auth.verifier }),
    });
    expect(atB.status).toBe(400);
    expect(await atB.json()).toMatchObject({ error: 'invalid_grant' });
    const tokens = await client.authorizationCodeGrant(a.web, callback, { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });
    expect(tokens.claims()!.iss).toBe(a.op.issuer);
  });
});

test('records are written with their issuer, and a record written before the tag existed is still taken', async () => {
  const store = memoryAdapter();
  const f = await startFlowFixture(store);
  try {
    const tokens = await aliceTokens(f);
    const jti = tokens.access_token; // (opaque: its value is its id)
    const raw = await store.adapterFor('AccessToken').find(jti);
    expect(raw).toMatchObject({ [ISSUER_TAG]: f.op.issuer });
    // as an earlier version wrote it: no tag
    const { [ISSUER_TAG]: _tag, ...untagged } = raw as Record<string, unknown>;
    await store.adapterFor('AccessToken').upsert(jti, untagged as never, 60);
    expect(await client.fetchUserInfo(f.web, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ sub: tokens.claims()!.sub });
  } finally {
    await f.op.close();
  }
});

test('the back-channel retry queue of one Redis prefix: each OP delivers only its own retries (B never sends A\'s logout to its client of the same id)', async () => {
  const store = redisAdapter(redisClient, { prefix: `q-${Date.now()}:` });
  const tenant = (issuer: string, downFor: number) => {
    const events = new EventEmitter();
    const delivered: string[] = [];
    let failures = downFor;
    const shop = {
      clientId: 'shop', backchannelLogoutUri: `${issuer}/shop/backchannel`, backchannelLogoutSessionRequired: true,
      backchannelLogout: async (sub: string) => {
        if (failures-- > 0) throw Object.assign(new Error('expected 200 OK, got: 503'), { response: { status: 503 } });
        delivered.push(sub);
      },
    };
    const provider = { issuer, on: events.on.bind(events), Client: { find: async () => shop } } as unknown as Provider;
    return { provider, delivered, fail: () => events.emit('backchannel.error', {}, new Error('503'), shop, 'alice-at-a', 'sid-1') };
  };
  const a = tenant('https://a.example/op', 1);
  const b = tenant('https://b.example/op', 0);
  // B polls first, a moment before A, each second
  retryBackchannelLogout(b.provider, store, [10, 10, 10]);
  await new Promise((r) => setTimeout(r, 100));
  retryBackchannelLogout(a.provider, store, [10, 10, 10]);
  a.fail(); // A's first delivery failed: its retry goes to the shared queue, which both OPs poll every second
  for (let i = 0; i < 100 && a.delivered.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(a.delivered).toEqual(['alice-at-a']);
  expect(b.delivered).toEqual([]);
});

test('a retry of an OP that no longer runs (a tenant removed, its issuer changed) is given back a while, then dropped with a warning; not offered every second for ever', async () => {
  const prefix = `orphan-${Date.now()}:`;
  const store = redisAdapter(redisClient, { prefix });
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    await store.schedule!('backchannel-logout', JSON.stringify({ id: 'x1', clientId: 'shop', sub: 'alice', sid: 's1', attempt: 0, iss: 'https://gone.example/op' }), Date.now());
    const events = new EventEmitter();
    const delivered: string[] = [];
    const shop = { clientId: 'shop', backchannelLogoutUri: 'https://b.example/shop/backchannel', backchannelLogout: async (sub: string) => void delivered.push(sub) };
    const b = { issuer: 'https://b.example/op', on: events.on.bind(events), Client: { find: async () => shop } } as unknown as Provider;
    retryBackchannelLogout(b, store, [10, 10, 10]); // retries last 30 ms here: so long is an orphan given back
    for (let i = 0; i < 80 && !warn.mock.calls.some((c) => String(c[0]).includes('gone.example')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(warn.mock.calls.map((c) => String(c[0])).find((l) => l.includes('gone.example'))).toMatch(
      /^op\(\): back-channel logout retries of the OP at "https:\/\/gone\.example\/op" \(client "shop" among them\) were dropped from the shared queue: no OP of that issuer took them/);
    expect(await redisClient.zCard(`${prefix}queue:backchannel-logout`)).toBe(0); // before: given back, due at once, every second
    expect(delivered).toEqual([]);
  } finally {
    warn.mockRestore();
  }
});
