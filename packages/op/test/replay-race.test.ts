/**
 * A code or refresh token presented twice revokes its grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2),
 * also when both requests found it unspent at the same moment (two instances, one code): the store
 * refuses the later consume, and the grant the earlier one redeemed is revoked as oidc-provider
 * revokes a replay that comes a moment later. Before, the winner's tokens stayed valid in about 40 %
 * of such races on two instances (probe9-attack d3).
 *
 * The race is played by holding one request's consume back until the other's has run: both have read
 * the record unspent by then, as two instances answering at the same instant do.
 */
import { createClient } from 'redis';
import type { Adapter } from 'oidc-provider';
import { memoryAdapter, redisAdapter, type OpStore } from '@openid-express/op';
import { useRedis } from '../../../test/support/redis-server.js';
import { aliceTokens, callbackOf, client, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';

/**
 * `store`, with a race to arm: after `race.arm(model)`, the first consume of a `model` record waits
 * until a second one has run (at most 2 s), so both requests have read the record unspent.
 */
function withRace(store: OpStore): { store: OpStore; race: { arm(model: string): void } } {
  let armed: { model: string; waiting?: Promise<void>; release?: () => void } | undefined;
  const wrapped: OpStore = {
    kind: store.kind,
    adapterFor(model) {
      const adapter = store.adapterFor(model);
      const consume = adapter.consume.bind(adapter);
      const out: Adapter = {
        upsert: adapter.upsert.bind(adapter),
        find: adapter.find.bind(adapter),
        findByUid: adapter.findByUid.bind(adapter),
        findByUserCode: adapter.findByUserCode.bind(adapter),
        destroy: adapter.destroy.bind(adapter),
        revokeByGrantId: adapter.revokeByGrantId.bind(adapter),
        consume: async (id: string) => {
          const race = armed?.model === model ? armed : undefined;
          if (race && !race.waiting) {
            race.waiting = new Promise<void>((resolve) => {
              race.release = resolve;
              setTimeout(resolve, 2000);
            });
            await race.waiting;
            return consume(id);
          }
          if (race) {
            armed = undefined;
            try {
              return await consume(id);
            } finally {
              race.release!();
            }
          }
          return consume(id);
        },
      };
      return out;
    },
    increment: store.increment.bind(store),
    count: store.count.bind(store),
    reset: store.reset.bind(store),
  };
  return { store: wrapped, race: { arm: (model) => void (armed = { model }) } };
}

const redis = useRedis((url) => createClient({ url }));

describe.each([
  ['memoryAdapter()', () => memoryAdapter()],
  ['redisAdapter()', () => redisAdapter(redis.client, { prefix: `replay-${Math.random().toString(36).slice(2)}:` })],
])('two requests redeeming one code or refresh token at once (%s)', (_name, makeStore) => {
  let f: FlowFixture;
  let race: { arm(model: string): void };
  beforeAll(async () => {
    const made = withRace(makeStore());
    race = made.race;
    f = await startFlowFixture(made.store);
  }, 60_000);
  afterAll(() => f?.op.close());

  /**
   * `call` twice at once, both past the read before either consumed. One is refused (invalid_grant).
   * The other got tokens (that must not work), or, with a store that holds its consume until it
   * answers (redisAdapter), is refused too: the grant went while it answered, so its consume could
   * not be made final, and no retry could redeem it (before: 503 "Nothing was lost; try again",
   * whose retry was refused). Returns the tokens it got, if any.
   */
  async function atOnce(model: string, call: () => Promise<client.TokenEndpointResponse>): Promise<client.TokenEndpointResponse | undefined> {
    race.arm(model);
    const outcomes = await Promise.all([call(), call()].map((p) => p.then((tokens) => ({ tokens }), (e) => ({ refused: e }))));
    const won = outcomes.flatMap((o) => ('tokens' in o ? [o.tokens] : []));
    const refused = await Promise.all(outcomes.flatMap((o) => ('refused' in o ? [refusal(Promise.reject(o.refused))] : [])));
    expect(refused.map((r) => [r.status, r.error])).toEqual(refused.map(() => [400, 'invalid_grant']));
    expect(won.length).toBeLessThanOrEqual(1);
    return won[0];
  }

  test('an authorization code: one is refused (invalid_grant) and the grant is revoked: the other\'s tokens do not work (or, its consume held, it answers 503 and its retry is refused)', async () => {
    const auth = await f.authorization(f.web);
    const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
    const checks = { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce };
    const tokens = await atOnce('AuthorizationCode', () => client.authorizationCodeGrant(f.web, callbackOf(page), checks));
    // before: the winner's access token still served userinfo
    if (tokens) expect(await refusal(client.fetchUserInfo(f.web, tokens.access_token, 'alice'))).toMatchObject({ status: 401 });
  }, 60_000);

  test('a refresh token rotated on use: one is refused (invalid_grant) and the grant is revoked: no token of it works', async () => {
    const signedIn = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
    const rotated = await atOnce('RefreshToken', () => client.refreshTokenGrant(f.pub, signedIn.refresh_token!));
    if (rotated) {
      expect(await refusal(client.fetchUserInfo(f.pub, rotated.access_token, 'alice'))).toMatchObject({ status: 401 });
      expect(await refusal(client.refreshTokenGrant(f.pub, rotated.refresh_token!))).toMatchObject({ status: 400, error: 'invalid_grant' });
    }
    // the grant is gone: the access token the sign-in gave stops working as well
    expect(await refusal(client.fetchUserInfo(f.pub, signedIn.access_token, 'alice'))).toMatchObject({ status: 401 });
  }, 60_000);

  test('no race, no revocation: a code redeemed once, and a refresh token used once, keep working', async () => {
    const signedIn = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
    expect(await client.fetchUserInfo(f.pub, signedIn.access_token, 'alice')).toMatchObject({ sub: 'alice' });
    const rotated = await client.refreshTokenGrant(f.pub, signedIn.refresh_token!);
    expect(await client.fetchUserInfo(f.pub, rotated.access_token, 'alice')).toMatchObject({ sub: 'alice' });
  }, 60_000);
});
