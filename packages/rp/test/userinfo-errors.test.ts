/**
 * The RP's own UserInfo call (`fetchUserInfo`, used for signed or encrypted UserInfo and for the
 * access token sent in the body): an OP that is rate limiting (429) or down (5xx) is transient, with
 * the OP's own `Retry-After` passed on; other statuses are refused answers.
 */
import { fetchUserInfo } from '../src/userinfo.js';
import { KeySets } from '../src/id-token.js';
import type { ProviderConfig } from '../src/options.js';

const call = (answer: Response) => {
  const p = { type: 'oidc', userinfoTokenMethod: 'body', customFetch: async () => answer } as unknown as ProviderConfig;
  const expect = { issuer: 'https://op.example', audience: 'app', algorithms: ['RS256'], jwksUri: 'https://op.example/jwks' };
  return fetchUserInfo(p, { endpoint: 'https://op.example/userinfo', accessToken: 'at', expectedSub: 'alice', expect, keySets: new KeySets(0), own: {} as never });
};

test.each([
  [429, { 'retry-after': '25' }, 25],
  [503, {}, 5],
  [502, { 'retry-after': '3' }, 3],
])('HTTP %i (headers %o): op_unavailable, Retry-After %i', async (status, headers, retryAfter) => {
  await expect(call(new Response('busy', { status, headers }))).rejects.toMatchObject({ code: 'op_unavailable', status: 503, retryAfter });
});

test('HTTP 401: a refused answer (invalid_response), not transient', async () => {
  const refused = await call(new Response('{"error":"invalid_token"}', { status: 401 })).catch((err: unknown) => err);
  expect(refused).toMatchObject({ code: 'invalid_response' });
  expect((refused as { retryAfter?: number }).retryAfter).toBeUndefined();
});

test('(control) HTTP 200 with the user\'s claims: the claims', async () => {
  await expect(call(new Response(JSON.stringify({ sub: 'alice', email: 'a@example.org' }), { status: 200, headers: { 'content-type': 'application/json' } })))
    .resolves.toMatchObject({ sub: 'alice', email: 'a@example.org' });
});
