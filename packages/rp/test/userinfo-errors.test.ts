/**
 * The RP's own UserInfo call (`fetchUserInfo`, used for signed or encrypted UserInfo and for the
 * access token sent in the body): an OP that is rate limiting (429) or down (5xx) is transient, with
 * the OP's own `Retry-After` passed on; other statuses are refused answers. Through `RelyingParty`
 * (openid-client's call, against the stub OP), every failure names the provider, its issuer and the
 * userinfo endpoint, and says what to do.
 */
import { RelyingParty, oidc, type Authentication } from '@openid-express/rp';
import { fetchUserInfo } from '../src/userinfo.js';
import { startStubOp, type StubOp } from './support/op-stub.js';
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

describe('relyingParty.userInfo() names the provider and its userinfo endpoint', () => {
  let stub: StubOp;
  let relyingParty: RelyingParty;
  const auth = { provider: 'corp', user: { sub: 'mallory' }, accessToken: { value: 'stub-access-token', tokenType: 'bearer' }, authTime: 0 } as unknown as Authentication;
  const at = () => `provider "corp" (issuer ${stub.issuer}), userinfo endpoint ${stub.issuer}/userinfo: `;
  beforeAll(async () => {
    stub = await startStubOp('app');
    stub.userinfo = { sub: 'mallory' };
    relyingParty = new RelyingParty({ baseURL: 'https://app.example.com', providers: { corp: oidc({ issuer: stub.issuer, clientId: 'app', clientSecret: 's', allowInsecureRequests: true }) } });
  });
  afterAll(() => stub.close());
  beforeEach(() => {
    stub.userinfo = { sub: 'mallory' };
    stub.userinfoAnswer = undefined;
  });

  test('(control) the user\'s claims', async () => {
    await expect(relyingParty.userInfo(auth)).resolves.toEqual({ sub: 'mallory' });
  });

  test('HTTP 503: op_unavailable with the OP\'s Retry-After, at the userinfo endpoint', async () => {
    stub.userinfoAnswer = { status: 503, body: 'down', headers: { 'retry-after': '7' } };
    const err = await relyingParty.userInfo(auth).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'op_unavailable', status: 503, retryAfter: 7 });
    expect((err as Error).message).toBe(`${at()}the OpenID Provider is temporarily unavailable (HTTP 503); try again shortly`);
  });

  test('the access token refused (401 invalid_token): op_error, saying to sign in again', async () => {
    stub.userinfoAnswer = { status: 401, body: '', headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };
    const err = await relyingParty.userInfo(auth).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'op_error', opError: 'invalid_token' });
    expect((err as Error).message).toBe(`${at()}the OpenID Provider answered "invalid_token". The OP refused the access token (revoked, expired, or for another audience): sign in again`);
  });

  test('claims about another user: invalid_response, naming the endpoint and what it means', async () => {
    stub.userinfo = { sub: 'someone-else' };
    const err = await relyingParty.userInfo(auth).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_response' });
    expect((err as Error).message.startsWith(at())).toBe(true);
    expect((err as Error).message).toMatch(/"sub".*\. The OP answered about another user than the ID token's: sign in again/);
  });

  test('an HTML page instead of JSON: invalid_response, saying to check the URL', async () => {
    stub.userinfoAnswer = { status: 200, body: '<html>Sign in</html>', headers: { 'content-type': 'text/html' } };
    const err = await relyingParty.userInfo(auth).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_response' });
    expect((err as Error).message).toBe(`${at()}the OpenID Provider's response was refused: unexpected response content-type. `
      + 'Check that this URL is the OP\'s endpoint: a proxy or a login page in front of the OP answers so');
  });
});
