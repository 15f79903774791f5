/**
 * An OP instance that dies between consuming a code (or a refresh token rotated on use) and
 * answering: nobody received what it made, so the client's retry, on another instance, must get
 * the tokens, not "already consumed" (which also makes oidc-provider revoke the grant: for a
 * refresh, a logout). redisAdapter() keeps such a consume as a lease until its request has
 * answered; the lease of a dead instance runs out and the retry takes the code over. A live
 * instance's consume is never taken over: a copy waits for its answer and is refused as a replay.
 *
 * The death is played at the Redis client the adapter was given: the consume reaches Redis, and
 * from then on nothing of that request (its reply, its lease renewals, its undo) does, as when the
 * process is killed; the retry is served as by another instance. Killed processes behind a load balancer: test/cluster scenario 13.
 */
import { createClient } from 'redis';
import * as client from 'openid-client';
import { redisAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { ALICE } from './support/op-server.js';
import { CONSUME, LEASE_LEFT, RENEW, SETTLE } from '../src/adapters/redis-scripts.js';
import { consumedInRequest } from '../src/request-scope.js';
import { aliceTokens, callbackOf, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const scriptIs = (args: string[], script: { sha: string; source: string }) => (args[0] === 'EVALSHA' && args[1] === script.sha) || (args[0] === 'EVAL' && args[1] === script.source);
const isConsume = (args: string[]) => scriptIs(args, CONSUME);
/** The lease's own renewals and reads, which a slow request still sends on time. */
const isLeaseStep = (args: string[]) => [RENEW, SETTLE, LEASE_LEFT].some((s) => scriptIs(args, s)) || args[0] === 'HMGET';

let redis: RedisServer;
let redisClient: ReturnType<typeof createClient>;
let f: FlowFixture;
/**
 * 'die': the next consume reaches Redis, then this instance is gone. 'slow': the write after the next
 * consume waits `slowMs`; 'starve': the same, and that request's lease renewals never reach Redis (a
 * paused process). 'lose-settle': the next SETTLE fails as a dropped connection does. 'late-consume':
 * the next consume reaches Redis `slowMs` late (another request's consume may run first).
 */
const plan: { next: '' | 'die' | 'slow' | 'starve' | 'slowed' | 'lose-settle' | 'late-consume'; dead: boolean; slowMs: number; starved?: boolean } = { next: '', dead: false, slowMs: 0 };
/** The request that made the planned consume. */
let owner: object | undefined;
const never = new Promise<never>(() => undefined);
/** The request of the instance that "died": nothing it (or a timer it started) sends reaches Redis any more. */
let deadRequest: object | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
  redisClient = createClient({ url: redis.url });
  await redisClient.connect();
  const instance = {
    isOpen: true,
    withTypeMapping: () => instance, // a node-redis v5 client, as the adapter checks
    sendCommand: async (args: string[], options?: unknown) => {
      const request = consumedInRequest.getStore(); // which request (or its timers) sends this
      if (request && request === deadRequest) return never; // a killed process sends nothing more
      if (plan.next === 'die' && isConsume(args)) {
        plan.next = '';
        plan.dead = true;
        deadRequest = request;
        void redisClient.sendCommand(args, options as never); // it reaches Redis; the reply reaches nobody
        return never;
      }
      if ((plan.next === 'slow' || plan.next === 'starve') && isConsume(args)) {
        owner = request;
        plan.starved = plan.next === 'starve';
        plan.next = 'slowed'; // the write after the consume (its tokens) is the slow one
      } else if (plan.next === 'slowed' && request === owner && !isLeaseStep(args)) {
        plan.next = '';
        await new Promise((r) => setTimeout(r, plan.slowMs));
      }
      // a paused owner: its renewals do not reach Redis
      if (plan.starved && request === owner && scriptIs(args, RENEW)) return never;
      if (plan.next === 'late-consume' && isConsume(args)) {
        plan.next = '';
        await new Promise((r) => setTimeout(r, plan.slowMs));
      }
      if (plan.next === 'lose-settle' && scriptIs(args, SETTLE)) {
        plan.next = '';
        throw new Error('Socket closed unexpectedly'); // the connection dropped as SETTLE went out
      }
      return redisClient.sendCommand(args, options as never);
    },
  };
  f = await startFlowFixture(redisAdapter(instance as never, { prefix: `lease-${Math.random().toString(36).slice(2)}:`, timeout: 6000 }));
}, 60_000);
afterEach(() => Object.assign(plan, { next: '', dead: false, slowMs: 0, starved: false }));
afterAll(async () => {
  await f?.op.close();
  redisClient?.destroy();
  await redis?.stop();
});

/** A token request sent to the "instance" that dies, cut when it does (as a load balancer sees a killed process). */
async function sentToDyingInstance(call: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  plan.next = 'die';
  const cut = new AbortController();
  const watching = setInterval(() => plan.dead && cut.abort(), 10);
  try {
    await expect(call(cut.signal)).rejects.toThrow();
  } finally {
    clearInterval(watching);
  }
  expect(plan.dead).toBe(true);
  plan.dead = false; // the retry reaches another instance (the dead request stays cut off)
}

/** openid-client's requests, cut by `signal` when one is given. */
const fetchWith = (signal?: AbortSignal): client.CustomFetch => (url, init) => fetch(url, { ...(init as RequestInit), ...(signal ? { signal } : {}) });

/** Alice signed in at the OP: her code, and its exchange (tokens' `sub`, or what refused it). */
async function signedInCode() {
  const auth = await f.authorization(f.web);
  const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
  const checks = { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce };
  const exchange = () => client.authorizationCodeGrant(f.web, callbackOf(page), checks).then((t) => ({ sub: t.claims()!.sub }), (e) => refusal(Promise.reject(e)));
  return { page, checks, exchange };
}

test('an authorization code: the instance dies after its consume; the retry gets the tokens after the lease runs out, and a third use is refused', async () => {
  const { page, checks } = await signedInCode();
  await sentToDyingInstance((signal) => {
    f.web[client.customFetch] = fetchWith(signal);
    return client.authorizationCodeGrant(f.web, callbackOf(page), checks);
  });
  f.web[client.customFetch] = fetchWith();
  const started = Date.now();
  const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), checks);
  expect(tokens.claims()!.sub).toBe('alice');
  expect(Date.now() - started).toBeLessThan(4500); // the dead consume's lease (3 s), not a hang
  expect(await client.fetchUserInfo(f.web, tokens.access_token, 'alice')).toMatchObject({ sub: 'alice' });
  expect((await refusal(client.authorizationCodeGrant(f.web, callbackOf(page), checks))).error).toBe('invalid_grant'); // used now
}, 60_000);

test('a refresh token rotated on use (public client): the instance dies after rotating it; the retry gets new tokens and the user stays signed in', async () => {
  const first = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
  await sentToDyingInstance((signal) => {
    f.pub[client.customFetch] = fetchWith(signal);
    return client.refreshTokenGrant(f.pub, first.refresh_token!);
  });
  f.pub[client.customFetch] = fetchWith();
  const again = await client.refreshTokenGrant(f.pub, first.refresh_token!);
  expect(again.refresh_token).not.toBe(first.refresh_token);
  expect(await client.fetchUserInfo(f.pub, again.access_token, 'alice')).toMatchObject({ sub: 'alice' }); // not revoked
  const third = await client.refreshTokenGrant(f.pub, again.refresh_token!);
  expect(third.access_token).toEqual(expect.any(String));
}, 60_000);

test('a live, slow instance is never taken over: the same code sent meanwhile waits for its answer, then is refused as a replay', async () => {
  const { page, checks } = await signedInCode();
  Object.assign(plan, { next: 'slow', slowMs: 3500 }); // longer than a lease: it is renewed meanwhile
  const owner = client.authorizationCodeGrant(f.web, callbackOf(page), checks).then(() => 'tokens', (e) => `refused ${(e as { error?: string }).error}`);
  await new Promise((r) => setTimeout(r, 300)); // the owner has consumed by now
  const copyStarted = Date.now();
  const copy = await refusal(client.authorizationCodeGrant(f.web, callbackOf(page), checks));
  const copyTook = Date.now() - copyStarted;
  expect(await owner).toBe('tokens');
  expect(copy).toMatchObject({ status: 400, error: 'invalid_grant' });
  expect(copyTook).toBeGreaterThan(2500); // it waited for the owner's answer, not for a lease to run out
}, 60_000);

test('a live instance slower than a copy will wait: the copy gets 503 store_unavailable with Retry-After, never the code', async () => {
  const { page, checks } = await signedInCode();
  Object.assign(plan, { next: 'slow', slowMs: 5000 });
  const owner = client.authorizationCodeGrant(f.web, callbackOf(page), checks).then((t) => t.claims()!.sub, (e) => `refused ${(e as { error?: string }).error}`);
  await new Promise((r) => setTimeout(r, 300));
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    const copy = await refusal(client.authorizationCodeGrant(f.web, callbackOf(page), checks));
    expect(copy).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
    // Redis answered all along: no line telling its operators of a store failure (fix30-op: there was one)
    expect(warn.mock.calls.flat().join('\n')).not.toContain('[@openid-express/op]');
  } finally {
    warn.mockRestore();
  }
  expect(await owner).toBe('alice');
}, 60_000);

test('the consume cannot be made final before the answer (SETTLE lost with a dropped connection): 503, never tokens that the same code could get again once the lease runs out', async () => {
  const { exchange } = await signedInCode();
  plan.next = 'lose-settle';
  const first = await exchange();
  await new Promise((r) => setTimeout(r, 3200)); // past any lease
  const second = await exchange();
  // before: both got tokens (the first answer went out, its lease ran out unsettled, and the code was redeemed again)
  expect(first).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
  expect(second).toEqual({ sub: 'alice' }); // the 503 gave the code back: the retry gets the tokens
  expect(await exchange()).toMatchObject({ error: 'invalid_grant' });
}, 60_000);

test('an owner paused past its lease (renewals lost) while a copy took the code over: the owner answers 503, only the copy gets tokens', async () => {
  const { exchange } = await signedInCode();
  Object.assign(plan, { next: 'starve', slowMs: 4500 });
  const owner = exchange();
  await new Promise((r) => setTimeout(r, 300));
  const copy = await exchange(); // waits for the lease to run out, then takes the code over
  // before: both got tokens for one code
  expect(copy).toEqual({ sub: 'alice' });
  expect(await owner).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
}, 60_000);

test('two exchanges of one code at once, both past the read before either consumed: one gets the tokens, the other invalid_grant (not a 503 from a lease it never held)', async () => {
  const { exchange } = await signedInCode();
  Object.assign(plan, { next: 'late-consume', slowMs: 400 }); // the first one's consume reaches Redis after the second's
  const first = exchange();
  await new Promise((r) => setTimeout(r, 150));
  const second = await exchange();
  expect(second).toEqual({ sub: 'alice' });
  expect(await first).toMatchObject({ status: 400, error: 'invalid_grant' });
}, 60_000);
