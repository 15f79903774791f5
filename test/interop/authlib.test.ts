/**
 * Interop: Authlib, the most used Python OAuth / OpenID Connect library, as a relying party of our
 * OP. Authlib reads the discovery document (and checks it with its own model) and the JWKS, builds the
 * authorization URLs, exchanges codes (client_secret_basic, client_secret_post, a public client with
 * PKCE S256), checks ID tokens with its own code (signature, iss, aud, azp, exp, iat, nonce), calls userinfo,
 * refreshes, and gets a client_credentials token; it refuses ID tokens with another nonce, audience or
 * key, and the OP refuses what it must (a public client without PKCE, a replayed code or refresh token).
 * The browser part (login, consent) is walked by FormBrowser. Needs Debian's Python with Authlib:
 * `apt-get install -y python3-authlib python3-requests`; fails (never skips) without it.
 */
import { FormBrowser } from '../support/op-forms.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';
import { authlib, requireAuthlib, type DriverAnswer } from './support/python.js';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
type Client = { client_id: string; client_secret?: string; auth_method: 'client_secret_basic' | 'client_secret_post' | 'none' };

const CONFIDENTIAL: Client = { client_id: 'authlib', client_secret: 'authlib-client-secret-0123456789abcdef', auth_method: 'client_secret_basic' };
const POST: Client = { client_id: 'authlib-post', client_secret: 'authlib-post-client-secret-0123456789abcdef', auth_method: 'client_secret_post' };
const PUBLIC: Client = { client_id: 'authlib-public', auth_method: 'none' };
const OFFLINE: Client = { client_id: 'authlib-offline', client_secret: 'authlib-offline-client-secret-0123456789abcdef', auth_method: 'client_secret_basic' };
const SERVICE: Client = { client_id: 'authlib-service', client_secret: 'authlib-service-client-secret-0123456789abcdef', auth_method: 'client_secret_basic' };

/** How a token request the OP granted was made (oidc-provider accepts a secret in either place for both secret methods). */
interface TokenRequest { client: string; grant: string; basic: boolean; secretInBody: boolean; codeVerifier: boolean }

describe('Authlib (python3-authlib) against op()', () => {
  let opServer: InteropOp;
  const tokenRequests: TokenRequest[] = [];

  beforeAll(async () => {
    requireAuthlib();
    const registered = (c: Client, more: object = {}) => ({
      client_id: c.client_id, ...(c.client_secret ? { client_secret: c.client_secret } : {}),
      token_endpoint_auth_method: c.auth_method, redirect_uris: [REDIRECT_URI], ...more,
    });
    opServer = await startInteropOp(() => [
      registered(CONFIDENTIAL), registered(POST), registered(PUBLIC),
      registered(OFFLINE, { grant_types: ['authorization_code', 'refresh_token'] }),
      registered(SERVICE, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }),
    ], { features: { clientCredentials: true } });
    opServer.provider.on('grant.success', (ctx) => {
      const { params } = ctx.oidc;
      tokenRequests.push({
        client: ctx.oidc.client!.clientId, grant: String(params!.grant_type),
        basic: /^basic /i.test(ctx.headers.authorization ?? ''),
        secretInBody: typeof params!.client_secret === 'string', codeVerifier: typeof params!.code_verifier === 'string',
      });
    });
  });

  afterAll(async () => {
    await opServer?.close();
  });

  /** Fails with the driver's own error when it answered one. */
  function ok(answer: DriverAnswer): DriverAnswer {
    if (answer.error) throw new Error(`Authlib raised ${answer.error}: ${answer.message}`);
    return answer;
  }

  /** Authlib builds the authorization URL; a browser signs alice in and consents; returns where the OP sent it back. */
  async function authorize(client: Client, more: { pkce?: boolean; scope?: string; prompt?: string } = {}) {
    const request = ok(await authlib({
      cmd: 'authorize', issuer: opServer.issuer, ...client, redirect_uri: REDIRECT_URI, scope: more.scope ?? 'openid email', ...more,
    })) as { url: string; state: string; nonce: string; code_verifier: string | null };
    const browser = new FormBrowser({ stopAt: (url) => url.href.startsWith(REDIRECT_URI) });
    let page = await browser.open(request.url);
    const sent = opServer.authRequests.at(-1)!;
    expectAt(page, '/op/interaction/', "our OP's login page");
    page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    expectAt(page, '/op/interaction/', 'the consent page');
    page = await browser.submit(page, { action: '/confirm' });
    if (!page.stoppedAt) throw new Error(`expected a redirect to ${REDIRECT_URI}, got ${page.status} at ${page.url}`);
    return { request, sent, callback: page.stoppedAt };
  }

  /** The driver command with which Authlib exchanges the code, checks the ID token and calls userinfo. */
  function exchangeCommand(client: Client, { request, callback }: Awaited<ReturnType<typeof authorize>>) {
    return { cmd: 'exchange', issuer: opServer.issuer, ...client, redirect_uri: REDIRECT_URI, ...request, callback };
  }

  /** A whole code flow: authorize, then the exchange. */
  async function codeFlow(client: Client, more: { pkce?: boolean; scope?: string; prompt?: string } = {}) {
    const authorized = await authorize(client, more);
    const exchange = exchangeCommand(client, authorized);
    return { ...authorized, exchange, answer: await authlib(exchange) };
  }

  function expectAlice(answer: DriverAnswer, clientId: string, nonce: string): void {
    ok(answer);
    expect(answer.claims).toMatchObject({ iss: opServer.issuer, sub: ALICE.id, aud: clientId, nonce });
    // with an access token issued, the scope's claims come from userinfo (OIDC Core §5.4), not the ID token
    expect(answer.userinfo).toEqual({ sub: ALICE.id, email: ALICE.claims.email, email_verified: true });
    // verified by the OP's published key: the one its JWKS names by the token's kid
    const header = answer.header as { alg: string; kid: string };
    expect(header.alg).toBe('RS256');
    expect(answer.jwks_kids).toContain(header.kid);
  }

  it('discovers the OP: its metadata passes Authlib\'s OpenID Connect Discovery checks, and Authlib reads the JWKS', async () => {
    const { metadata, objections, jwks } = ok(await authlib({ cmd: 'discover', issuer: opServer.issuer })) as {
      metadata: Record<string, unknown>; objections: string[]; jwks: { keys: Array<Record<string, unknown>> };
    };
    // Authlib 1.2.0 takes the spec's "SHOULD support none and RS256" for request objects as a MUST
    // (authlib/authlib#731, fixed in #732); the OP rightly refuses unsigned request objects
    expect(objections).toEqual(['"request_object_signing_alg_values_supported" SHOULD support none and RS256']);
    expect(metadata.request_object_signing_alg_values_supported).not.toContain('none');
    expect(metadata).toMatchObject({
      issuer: opServer.issuer, jwks_uri: expect.stringContaining(opServer.issuer),
      authorization_endpoint: expect.any(String), token_endpoint: expect.any(String), userinfo_endpoint: expect.any(String),
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'none']),
    });
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: 'RSA', alg: 'RS256', kid: expect.any(String) })]);
    expect(jwks.keys[0]).not.toHaveProperty('d');
  }, 60_000);

  it('code flow, confidential client (client_secret_basic), state + nonce, no PKCE: Authlib checks the ID token, reads userinfo', async () => {
    const { request, sent, answer } = await codeFlow(CONFIDENTIAL);
    // what Authlib really sent, so the test is the case its name says
    expect(sent).toMatchObject({ client_id: CONFIDENTIAL.client_id, response_type: 'code', state: request.state, nonce: request.nonce });
    expect(sent.code_challenge).toBeUndefined();
    expectAlice(answer, CONFIDENTIAL.client_id, request.nonce);
    expect(answer).toMatchObject({ token_type: 'Bearer', refresh_token: null });
    expect(tokenRequests.at(-1)).toEqual({ client: CONFIDENTIAL.client_id, grant: 'authorization_code', basic: true, secretInBody: false, codeVerifier: false });
  }, 60_000);

  it('code flow with PKCE S256, confidential client', async () => {
    const { request, sent, answer } = await codeFlow(CONFIDENTIAL, { pkce: true });
    expect(sent).toMatchObject({ client_id: CONFIDENTIAL.client_id, code_challenge_method: 'S256', code_challenge: expect.any(String) });
    expectAlice(answer, CONFIDENTIAL.client_id, request.nonce);
    expect(tokenRequests.at(-1)).toEqual({ client: CONFIDENTIAL.client_id, grant: 'authorization_code', basic: true, secretInBody: false, codeVerifier: true });
  }, 60_000);

  it('code flow with PKCE S256, public client (token_endpoint_auth_method none)', async () => {
    const { request, sent, answer } = await codeFlow(PUBLIC, { pkce: true });
    expect(sent).toMatchObject({ client_id: PUBLIC.client_id, code_challenge_method: 'S256', code_challenge: expect.any(String) });
    expectAlice(answer, PUBLIC.client_id, request.nonce);
    expect(tokenRequests.at(-1)).toEqual({ client: PUBLIC.client_id, grant: 'authorization_code', basic: false, secretInBody: false, codeVerifier: true });
  }, 60_000);

  it('the OP refuses a public client that sends no PKCE', async () => {
    const request = ok(await authlib({ cmd: 'authorize', issuer: opServer.issuer, ...PUBLIC, redirect_uri: REDIRECT_URI, scope: 'openid email' }));
    const page = await new FormBrowser({ stopAt: (url) => url.href.startsWith(REDIRECT_URI) }).open(request.url as string);
    expect(opServer.authRequests.at(-1)).toMatchObject({ client_id: PUBLIC.client_id, nonce: request.nonce });
    expect(opServer.authRequests.at(-1)!.code_challenge).toBeUndefined();
    // sent back to the client with the error, before any login
    expect(page.stoppedAt).toEqual(expect.stringContaining(REDIRECT_URI));
    expect(Object.fromEntries(new URL(page.stoppedAt!).searchParams)).toMatchObject({
      error: 'invalid_request', error_description: expect.stringContaining('PKCE'), state: request.state,
    });
  }, 60_000);

  it('code flow with client_secret_post', async () => {
    const { request, answer } = await codeFlow(POST);
    expectAlice(answer, POST.client_id, request.nonce);
    expect(tokenRequests.at(-1)).toEqual({ client: POST.client_id, grant: 'authorization_code', basic: false, secretInBody: true, codeVerifier: false });
  }, 60_000);

  it('client_credentials: a service client gets an access token and nothing else', async () => {
    const { token } = ok(await authlib({ cmd: 'client_credentials', issuer: opServer.issuer, ...SERVICE })) as { token: Record<string, unknown> };
    expect(token).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), expires_in: expect.any(Number) });
    expect(token).not.toHaveProperty('refresh_token');
    expect(token).not.toHaveProperty('id_token');
    // the OP really issued it, to that client
    const issued = await opServer.provider.ClientCredentials.find(token.access_token as string);
    expect(issued?.clientId).toBe(SERVICE.client_id);
    expect(tokenRequests.at(-1)).toMatchObject({ client: SERVICE.client_id, grant: 'client_credentials', basic: true });
  }, 60_000);

  it('refresh: offline_access with prompt=consent gives a refresh token; Authlib refreshes, and again with the same one (a confidential client\'s is not rotated)', async () => {
    const { request, sent, answer } = await codeFlow(OFFLINE, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(sent).toMatchObject({ scope: 'openid email offline_access', prompt: 'consent' });
    expectAlice(answer, OFFLINE.client_id, request.nonce);
    const first = answer.refresh_token as string;
    expect(first).toEqual(expect.any(String));

    const refresh = { cmd: 'refresh', issuer: opServer.issuer, ...OFFLINE, refresh_token: first };
    const refreshed = ok(await authlib(refresh));
    expect(refreshed).toMatchObject({ access_token: expect.any(String), refresh_token: expect.any(String), userinfo: { sub: ALICE.id } });
    expect(tokenRequests.at(-1)).toMatchObject({ client: OFFLINE.client_id, grant: 'refresh_token', basic: true });
    // bound to the client's authentication (RFC 9700 §4.14.2): the same token, usable again (a retry after a lost answer)
    expect(refreshed.refresh_token).toBe(first);
    expect(ok(await authlib(refresh))).toMatchObject({ access_token: expect.any(String), userinfo: { sub: ALICE.id } });
  }, 60_000);

  it('negatives: Authlib refuses an ID token with another nonce, for another client, or under another key; the OP refuses a replayed code', async () => {
    const { request, exchange, answer } = await codeFlow(CONFIDENTIAL);
    expectAlice(answer, CONFIDENTIAL.client_id, request.nonce);
    const check = { cmd: 'validate', issuer: opServer.issuer, id_token: answer.id_token, nonce: request.nonce, client_id: CONFIDENTIAL.client_id };
    expect(ok(await authlib(check)).claims).toMatchObject({ sub: ALICE.id });

    expect(await authlib({ ...check, nonce: `${request.nonce}x` })).toMatchObject({ error: 'InvalidClaimError', message: expect.stringContaining('"nonce"') });
    expect(await authlib({ ...check, client_id: POST.client_id })).toMatchObject({ error: 'InvalidClaimError', message: expect.stringContaining('"aud"') });
    // a fresh RSA key published under the token's kid: found, and the signature does not verify
    const { kid } = answer.header as { kid: string };
    expect(await authlib({ ...check, other_key_kid: kid })).toMatchObject({ error: 'BadSignatureError' });

    expect(await authlib(exchange)).toMatchObject({ error: 'OAuthError', code: 'invalid_grant' });
  }, 60_000);
});
