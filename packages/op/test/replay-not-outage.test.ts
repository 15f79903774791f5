/**
 * A code or refresh token sent twice at the same moment is a replay, not a store outage. With
 * redisAdapter(), the copy that finds the code held by the other request (its consume lease) waits for
 * that request's answer. Before, when that took longer than the wait (4 s: an account store slow to give
 * the claims of the ID token), the copy answered 503 store_unavailable "try again" and op() said a store
 * failure in the log ("another request is still using this AuthorizationCode … Requests that need the
 * store answer 503 store_unavailable while it lasts"), with Redis answering at once. Now the copy finds
 * the code consumed, as it is, and is refused as a replay (400 invalid_grant, the grant revoked); a Redis
 * that really stalls is still a 503 with Retry-After and its log line.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { createClient } from 'redis';
import { memoryAccounts, redisAdapter, type AccountStore } from '@openid-express/op';
import { launch, stopProcess } from '../../../test/support/redis-server.js';
import { aliceTokens, callbackOf, client, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE, BOB } from './support/op-server.js';

const REDIS_PORT = 42100;
const OP_PORT = 42101;

/** The lines op() said with console.warn. */
const opLines = (warn: jest.SpyInstance): string[] => warn.mock.calls.map((args) => args.map(String).join(' ')).filter((line) => line.startsWith('[@openid-express/op]'));

/** The test accounts, whose next claims lookup (the ID token's, after the code is consumed) takes `slow.ms` once armed. */
const slow = { ms: 0 };
const base = memoryAccounts([ALICE, BOB]);
const accounts: AccountStore = {
  findByLogin: (login) => base.findByLogin(login),
  findById: (id) => base.findById(id),
  verifyPassword: (login, password) => base.verifyPassword(login, password),
  claims: async (id, scope) => {
    const ms = slow.ms;
    slow.ms = 0;
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
    return base.claims(id, scope);
  },
};

let redis: ChildProcess;
let redisClient: ReturnType<typeof createClient>;
let f: FlowFixture;
let warn: jest.SpyInstance;
beforeAll(async () => {
  redis = await launch(process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server', REDIS_PORT, []);
  redisClient = createClient({ url: `redis://127.0.0.1:${REDIS_PORT}` }).on('error', () => undefined);
  await redisClient.connect();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(OP_PORT, '127.0.0.1', resolve));
  f = await startFlowFixture(redisAdapter(redisClient, { timeout: 500 }), { accounts, storeTimeout: 10_000 }, { server });
}, 20_000);
beforeEach(() => void (warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined)));
afterEach(() => {
  redis.kill('SIGCONT');
  slow.ms = 0;
  jest.restoreAllMocks();
});
afterAll(async () => {
  await f?.op.close();
  redisClient?.destroy();
  if (redis) await stopProcess(redis, 'SIGTERM');
});

/** What a token request ended with: `tokens`, or its status and error (and Retry-After). */
const outcome = (call: Promise<unknown>) => call.then(() => 'tokens', (e: unknown) => refusal(Promise.reject(e)));

/** Alice signed in with the `web` client: a code exchange of it, as many times as called. */
async function aliceCode(): Promise<() => Promise<unknown>> {
  const auth = await f.authorization(f.web);
  const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
  const checks = { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce };
  return () => outcome(client.authorizationCodeGrant(f.web, callbackOf(page), checks));
}

/**
 * `exchange` twice at the same moment, the first one's work after its consume taking `ms` (its account's claims),
 * the copy sent once the first has consumed (300 ms later) when `ms`, else at once.
 */
async function twiceAtOnce(exchange: () => Promise<unknown>, ms: number): Promise<unknown[]> {
  slow.ms = ms;
  return Promise.all([exchange(), new Promise((resolve) => setTimeout(resolve, ms ? 300 : 0)).then(exchange)]);
}

test('an authorization code sent twice at the same moment, the first exchange slow: the copy is refused as a replay (invalid_grant), and nothing is said as a store failure', async () => {
  const exchange = await aliceCode();
  const [first, copy] = await twiceAtOnce(exchange, 5000);
  // before: the copy got 503 store_unavailable with Retry-After 5, and the log a store failure
  expect(copy).toEqual({ status: 400, error: 'invalid_grant' });
  // the replay revoked the grant: the first exchange's answer is refused too, never tokens of a revoked grant
  expect(first).toEqual({ status: 400, error: 'invalid_grant' });
  expect(opLines(warn)).toEqual([]);
}, 20_000);

test('a refresh token rotated on use, sent twice at the same moment, the first refresh slow: both refused (invalid_grant), the grant revoked, nothing said as a store failure', async () => {
  const signedIn = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
  const refresh = () => outcome(client.refreshTokenGrant(f.pub, signedIn.refresh_token!));
  const [first, copy] = await twiceAtOnce(refresh, 5000);
  expect(copy).toEqual({ status: 400, error: 'invalid_grant' });
  expect(first).toEqual({ status: 400, error: 'invalid_grant' });
  expect(await refusal(client.fetchUserInfo(f.pub, signedIn.access_token, 'alice'))).toMatchObject({ status: 401 });
  expect(opLines(warn)).toEqual([]);
}, 20_000);

test('the same code sent twice at the same moment, neither slow: one gets the tokens or both are refused, never a 503, nothing said', async () => {
  for (let i = 0; i < 5; i++) {
    const outcomes = await twiceAtOnce(await aliceCode(), 0);
    expect(outcomes.filter((o) => o !== 'tokens')).toEqual(expect.arrayContaining([{ status: 400, error: 'invalid_grant' }]));
    expect(outcomes.filter((o) => o !== 'tokens' && (o as { status?: number }).status !== 400)).toEqual([]);
  }
  expect(opLines(warn)).toEqual([]);
}, 30_000);

test('a Redis that stalls (SIGSTOP) is still a store failure: 503 with Retry-After, and the log line', async () => {
  const exchange = await aliceCode();
  redis.kill('SIGSTOP');
  expect(await exchange()).toEqual({ status: 503, error: 'store_unavailable', retryAfter: '5' });
  expect(opLines(warn)).toEqual([expect.stringMatching(/^\[@openid-express\/op\] Redis did not answer AuthorizationCode\.\w+ within 500 ms: .*503 store_unavailable while it lasts/)]);
}, 20_000);
