/**
 * The store failing after a token request consumed its code (authorization code, device code, a
 * refresh token rotated on use): the answer is a 503 "try again", and the retry gets the tokens,
 * not "already consumed" (which would also make oidc-provider revoke the grant). Memory and a real
 * Redis; the failure is injected into the store right after the consume, where a stall hits.
 */
import { createClient } from 'redis';
import { memoryAdapter, redisAdapter, type OpStore } from '@openid-express/op';
import { FormBrowser, signIn } from '../../../test/support/op-forms.js';
import { useRedis } from '../../../test/support/redis-server.js';
import { ALICE, accounts, startOp, type RunningOp } from './support/op-server.js';
import { storeFailingOnce } from './support/failing-store.js';
import { CONSUME } from '../src/adapters/redis-scripts.js';
import { aliceTokens, callbackOf, client, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

const redis = useRedis((url) => createClient({ url }));

const stores: Array<[string, () => OpStore]> = [
  ['memory', () => memoryAdapter()],
  ['Redis', () => redisAdapter(redis.client, { prefix: `undo-${Math.random().toString(36).slice(2)}:` })],
];

describe.each(stores)('a store failure after the code was consumed (%s store)', (_name, makeStore) => {
  let f: FlowFixture;
  let failing: ReturnType<typeof storeFailingOnce>;
  beforeAll(async () => {
    failing = storeFailingOnce(makeStore());
    f = await startFlowFixture(failing.store);
  }, 60_000);
  afterAll(() => f?.op.close());

  test('authorization code: 503 with Retry-After, then the same code exchange gets the tokens', async () => {
    const auth = await f.authorization(f.web);
    const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
    const exchange = () => client.authorizationCodeGrant(f.web, callbackOf(page), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    failing.state.failNext = 'AccessToken';
    expect(await refusal(exchange())).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    const tokens = await exchange();
    expect(tokens.claims()!.sub).toBe('alice');
    // used now: a third exchange is refused as a replay
    expect((await refusal(exchange())).error).toBe('invalid_grant');
  });

  test('a refresh token rotated on use (public client): 503, then the same refresh gets new tokens', async () => {
    const first = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
    failing.state.failNext = 'AccessToken';
    expect(await refusal(client.refreshTokenGrant(f.pub, first.refresh_token!))).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    const again = await client.refreshTokenGrant(f.pub, first.refresh_token!);
    expect(again.access_token).toEqual(expect.any(String));
    expect(again.refresh_token).not.toBe(first.refresh_token);
  });
});

describe.each(stores)('a store failure after the device code was consumed (%s store)', (_name, makeStore) => {
  let o: RunningOp;
  let failing: ReturnType<typeof storeFailingOnce>;
  let tv: client.Configuration;
  beforeAll(async () => {
    failing = storeFailingOnce(makeStore());
    o = await startOp(() => ({
      accounts, adapter: failing.store, features: { deviceFlow: true },
      clients: [{ client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE], response_types: [], redirect_uris: [] }],
    }));
    tv = await client.discovery(new URL(o.issuer), 'tv', { token_endpoint_auth_method: 'none' }, client.None(), { execute: [client.allowInsecureRequests] });
  }, 60_000);
  afterAll(() => o?.close());

  test('the poll after the user approved: 503, then the next poll gets the tokens', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const browser = new FormBrowser();
    const input = await browser.open(da.verification_uri);
    const login = await browser.submit(input, { has: 'user_code' }, { user_code: da.user_code });
    const signedIn = await browser.submit(await browser.submit(login, { has: 'user_code' }, { confirm: 'yes' }), { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    const done = signedIn.forms.some((form) => form.action.includes('/confirm')) ? await browser.submit(signedIn, { action: '/confirm' }) : signedIn;
    expect(done.status).toBe(200);
    const poll = () => client.genericGrantRequest(tv, DEVICE_CODE, { device_code: da.device_code });
    failing.state.failNext = 'AccessToken';
    expect(await refusal(poll())).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    const tokens = await poll();
    expect(tokens.access_token).toEqual(expect.any(String));
  });

  test('"Is this your device?" confirmed while the store fails (after the code was marked in flight): 503, then the code entered again goes on to the sign-in', async () => {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const browser = new FormBrowser();
    const enterCode = async () => browser.submit(await browser.open(da.verification_uri), { has: 'user_code' }, { user_code: da.user_code });
    const confirm = await enterCode();
    failing.state.failNext = 'Interaction'; // the sign-in's interaction, written after the in-flight mark
    const refused = await browser.submit(confirm, { has: 'user_code' }, { confirm: 'yes' });
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([503, '5']);
    // the same form again: its token went with the failed request, and the page says what to do
    const same = await browser.submit(confirm, { has: 'user_code' }, { confirm: 'yes' });
    expect(same.html).toContain('This page has expired. Enter the code your device shows again.');
    // not "already used": the same code, entered again, is confirmed and leads to the sign-in
    const again = await browser.submit(await enterCode(), { has: 'user_code' }, { confirm: 'yes' });
    expect(again.url).toContain('/interaction/');
    expect(again.forms.some((f) => 'password' in f.fields)).toBe(true);
  });
});

describe('Redis freezing just as the consume is sent (the deadline gives up before Redis runs it; it runs later)', () => {
  let f: FlowFixture;
  let freezeAtConsume = false;
  beforeAll(async () => {
    // the app's client, seen by the adapter; it freezes the real Redis right as a consume goes out
    const freezing = {
      isOpen: true,
      withTypeMapping: () => freezing, // a node-redis v5 client, as the adapter checks
      sendCommand: (args: string[], options?: unknown) => {
        if (freezeAtConsume && ((args[0] === 'EVALSHA' && args[1] === CONSUME.sha) || (args[0] === 'EVAL' && args[1] === CONSUME.source))) {
          freezeAtConsume = false;
          redis.server.pause();
          setTimeout(() => redis.server.resume(), 1200);
        }
        return redis.client.sendCommand(args, options as never);
      },
    };
    f = await startFlowFixture(redisAdapter(freezing as never, { prefix: `inflight-${Math.random().toString(36).slice(2)}:`, timeout: 400 }));
  }, 60_000);
  afterAll(async () => {
    redis.server.resume();
    await f?.op.close();
  });
  const untilRedisAnswers = async () => {
    for (let i = 0; i < 100 && !(await redis.client.ping().then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  };

  test('a refresh token rotated on use: 503, and once Redis has run that consume the same refresh gets new tokens (the 503 gave it back after it)', async () => {
    const first = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
    const warm = await client.refreshTokenGrant(f.pub, first.refresh_token!); // the scripts are loaded in Redis
    freezeAtConsume = true;
    expect(await refusal(client.refreshTokenGrant(f.pub, warm.refresh_token!))).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    await new Promise((r) => setTimeout(r, 1300));
    await untilRedisAnswers();
    const again = await client.refreshTokenGrant(f.pub, warm.refresh_token!);
    expect(again.refresh_token).not.toBe(warm.refresh_token);
    expect(await client.fetchUserInfo(f.pub, again.access_token, 'alice')).toMatchObject({ sub: 'alice' }); // the grant was not revoked
  });

  test.each([
    ['its scripts loaded', false],
    ['restarted without its scripts (the consume would have met NOSCRIPT and been sent again after the 503\'s give-back)', true],
  ])('an authorization code, Redis %s: 503, then the same code exchange gets the tokens', async (_label, flushed) => {
    const auth = await f.authorization(f.web);
    const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
    const exchange = () => client.authorizationCodeGrant(f.web, callbackOf(page), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    if (flushed) await redis.client.scriptFlush();
    freezeAtConsume = true;
    expect(await refusal(exchange())).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    await new Promise((r) => setTimeout(r, 1300));
    await untilRedisAnswers();
    expect((await exchange()).claims()!.sub).toBe('alice');
    expect((await refusal(exchange())).error).toBe('invalid_grant'); // used now
  });
});
