/**
 * What a stranger who never signs in leaves in the shared store. oidc-provider saves an OP session
 * for the logout page's `xsrf` and for `/device`; with the OP session's 14-day life, each anonymous
 * GET kept ≈ 640 B in Redis for two weeks (probe14-dos F1): a modest flood filled a `noeviction`
 * Redis, and sign-ins failed (503) until the records expired. Such a session now lives as long as a
 * sign-in under way (`ttl.Interaction`), and a session someone signs in with keeps `ttl.Session`.
 */
import { createClient } from 'redis';
import { redisAdapter } from '@openid-express/op';
import { useRedis } from '../../../test/support/redis-server.js';
import { aliceTokens, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const redis = useRedis((url) => createClient({ url }));
const prefix = `anon-${Math.random().toString(36).slice(2)}:`;
let f: FlowFixture;
beforeAll(async () => {
  f = await startFlowFixture(redisAdapter(redis.client, { prefix }), { features: { clientCredentials: true, deviceFlow: true } });
}, 60_000);
afterAll(() => f?.op.close());

/** The seconds to live of every OP session record (and its uid look-up) in Redis. */
async function sessionTtls(): Promise<number[]> {
  const keys = (await redis.client.keys(`${prefix}*`)).filter((k) => k.includes('Session:'));
  return Promise.all(keys.map((k) => redis.client.ttl(k)));
}

test('the logout page and /device opened by a stranger keep their OP session no longer than a sign-in under way (1 h), not 14 days', async () => {
  for (const path of ['/session/end', '/device']) {
    const res = await fetch(`${f.op.issuer}${path}`, { headers: { accept: 'text/html' } });
    expect([path, res.status]).toEqual([path, 200]);
    await res.arrayBuffer();
  }
  const ttls = await sessionTtls();
  expect(ttls.length).toBeGreaterThanOrEqual(2); // (both pages saved one: what this test is about)
  expect(ttls.filter((ttl) => ttl <= 0 || ttl > 3600)).toEqual([]); // before: 1 209 600 s each
});

test('(control) a session someone signs in with keeps the full 14 days', async () => {
  await redis.client.flushAll();
  await aliceTokens(f);
  const ttls = await sessionTtls();
  expect(ttls.length).toBeGreaterThan(0);
  expect(Math.max(...ttls)).toBeGreaterThan(13 * 24 * 3600);
});
