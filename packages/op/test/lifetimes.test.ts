/**
 * How long what op() issues lives, against what it lives under: a refresh token never outlives the
 * Grant that oidc-provider checks at every refresh (lifetimes probe).
 */
import { memoryAdapter } from '@openid-express/op';
import { aliceTokens, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

let f: FlowFixture;
beforeAll(async () => {
  f = await startFlowFixture(memoryAdapter());
});
afterAll(() => f?.op.close());
afterEach(() => jest.restoreAllMocks());

const DAY = 24 * 3600;

test('a refresh token rotated on day 10.5 expires with its grant on day 14 (before: it said day 24.5, and was refused on day 14 as "grant request is invalid")', async () => {
  const start = Math.floor(Date.now() / 1000);
  const tokens = await aliceTokens(f, f.web, { scope: 'openid offline_access', prompt: 'consent' });
  const first = await client.tokenIntrospection(f.web, tokens.refresh_token!);
  expect(first.exp).toBeLessThanOrEqual(start + 14 * DAY + 5);
  const real = Date.now.bind(Date);
  jest.spyOn(Date, 'now').mockImplementation(() => real() + 10.5 * DAY * 1000);
  const refreshed = await client.refreshTokenGrant(f.web, tokens.refresh_token!);
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token); // past 70 % of its life: rotated
  const rotated = await client.tokenIntrospection(f.web, refreshed.refresh_token!);
  expect(rotated.active).toBe(true);
  expect(rotated.exp).toBeLessThanOrEqual(start + 14 * DAY + 5);
  expect(rotated.exp).toBeGreaterThan(start + 13.9 * DAY);
});
