/**
 * Tier-2 token operations of `RelyingParty` against a real oidc-provider: client credentials
 * (RFC 6749 §4.4, with resource indicators), token exchange (RFC 8693, a small grant registered on
 * the test OP with `registerGrantType`), revocation (RFC 7009) and introspection (RFC 7662).
 */
import { decodeJwt } from 'jose';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { RelyingParty, RpError, TOKEN_EXCHANGE_GRANT, oidc, type Authentication } from '@openid-express/rp';
import { CLIENT_ID, CLIENT_SECRET, startRp, type TestRp } from './support/rp-app.js';

const API = 'https://api.example.com/';

/**
 * A minimal RFC 8693 grant for the test OP: an access token of this OP (subject_token) becomes a
 * new access token for the same user and client, with the asked (narrower) scope and `audience`
 * kept as `aud`; anything else is refused as RFC 8693 §2.2.2 says.
 */
function registerTokenExchange(t: TestRp): { requests: Array<Record<string, unknown>> } {
  const requests: Array<Record<string, unknown>> = [];
  const params = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope'];
  t.op.provider.registerGrantType(TOKEN_EXCHANGE_GRANT, async (ctx: KoaContextWithOIDC) => {
    const p = ctx.oidc.params as Record<string, string | undefined>;
    requests.push({ ...p });
    if (p.subject_token_type !== 'urn:ietf:params:oauth:token-type:access_token') throw new errors.InvalidRequest('unsupported subject_token_type');
    const subject = await ctx.oidc.provider.AccessToken.find(p.subject_token!);
    if (!subject || subject.clientId !== ctx.oidc.client!.clientId) throw new errors.InvalidGrant('subject_token is invalid or expired');
    const asked = (p.scope ?? subject.scope ?? '').split(' ').filter(Boolean);
    const held = new Set((subject.scope ?? '').split(' '));
    if (asked.some((s) => !held.has(s))) throw new errors.InvalidScope('the exchanged token cannot have more scope than the subject token', p.scope!);
    const token = new ctx.oidc.provider.AccessToken({
      accountId: subject.accountId, client: ctx.oidc.client!, grantId: subject.grantId, scope: asked.join(' '), gty: 'token_exchange',
      extra: { ...(p.audience ? { aud: p.audience } : {}), act: { sub: ctx.oidc.client!.clientId } },
    } as never);
    ctx.body = {
      access_token: await token.save(),
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, params);
  return { requests };
}

let t: TestRp;
let exchange: { requests: Array<Record<string, unknown>> };
beforeAll(async () => {
  t = await startRp({
    client: {
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE_GRANT],
      scope: 'openid offline_access profile email api:read api:write',
    },
    op: {
      features: {
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined as unknown as string,
          useGrantedResource: () => false,
          getResourceServerInfo: (_ctx, resource) => {
            if (resource !== API) throw new errors.InvalidTarget();
            return { scope: 'api:read api:write', audience: API, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
          },
        },
      },
      config: { scopes: ['openid', 'offline_access', 'api:read', 'api:write'] },
    },
    routes: (app) => void app.get('/authentication', (req, res) => void res.json(req.oidc.authentication ?? null)),
  });
  exchange = registerTokenExchange(t);
});
afterAll(() => t.close());

/** A user's login through the browser flow, as `req.oidc.authentication` reads it. */
async function login(agent = t.agent()): Promise<Authentication> {
  await t.login(agent);
  return (await agent.get('/authentication')).body as Authentication;
}

describe('a login whose authorization request names a resource (RFC 8707)', () => {
  test('finishes with the ID token\'s claims: its access token is for the API, so it is not sent to userinfo (which refuses it)', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { op: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid api:read', allowInsecureRequests: true }) },
    });
    const userinfo = t.op.counts.userinfo ?? 0;
    const request = await rp.authorizationRequest('op', { returnTo: '/', params: { resource: API } });
    expect(request.transaction.forResource).toBe(true);
    const callback = await t.op.authorize(request.url);
    const auth = await rp.finalize(request.transaction, request.state, callback.searchParams); // before: op_error invalid_token from userinfo
    expect(auth.user.sub).toBe('alice');
    expect(auth.accessToken?.value).toEqual(expect.any(String));
    expect(t.op.counts.userinfo ?? 0).toBe(userinfo);
  });
});

describe('clientCredentials()', () => {
  test('gets an app token with the asked scope; the OP introspects it as active, for this client, without a user', async () => {
    const tokens = await t.relyingParty.clientCredentials('op', { scope: 'api:read' });
    expect(tokens).toEqual({ accessToken: { value: expect.any(String), tokenType: 'bearer', scope: 'api:read', expiresAt: expect.any(Number) } });
    expect(t.op.counts.grants.client_credentials).toBeGreaterThanOrEqual(1);
    const info = await t.relyingParty.introspect('op', tokens.accessToken.value);
    expect(info).toMatchObject({ active: true, client_id: CLIENT_ID, scope: 'api:read' });
    expect(info.sub).toBeUndefined();
  });

  test('with a resource indicator (RFC 8707): a JWT access token whose aud is the API', async () => {
    const tokens = await t.relyingParty.clientCredentials('op', { scope: 'api:write', resource: API });
    const claims = decodeJwt(tokens.accessToken.value);
    expect(claims).toMatchObject({ aud: API, client_id: CLIENT_ID, scope: 'api:write', iss: t.op.issuer });
  });

  test('a resource the OP does not know is refused: op_error invalid_target', async () => {
    const err = await t.relyingParty.clientCredentials('op', { resource: 'https://elsewhere.example.com/' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpError);
    expect(err).toMatchObject({ code: 'op_error', opError: 'invalid_target', status: 400 });
    // which provider and endpoint said so (before: only "the OpenID Provider answered …")
    expect((err as Error).message).toMatch(new RegExp(`^provider "op": ${t.op.issuer.replace(/[.]/g, '\\.')}/token: the OpenID Provider answered "invalid_target"`));
  });

  test('a wrong client secret is client_auth_failed naming the options to check (OP: invalid_client)', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { bad: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: 'not-the-secret', allowInsecureRequests: true }) },
    });
    const err = (await rp.clientCredentials('bad', { scope: 'api:read' }).catch((e: unknown) => e)) as RpError;
    expect(err).toBeInstanceOf(RpError);
    expect(err).toMatchObject({ code: 'client_auth_failed', opError: 'invalid_client', status: 500 });
    expect(err.message).toContain('providers.bad.clientId');
    expect(err.message).toContain(`${t.op.issuer}/token`);
    expect(err.message).not.toContain('not-the-secret');
  });

  test('an unknown provider is unknown_provider; an OP that is down is op_unreachable', async () => {
    await expect(t.relyingParty.clientCredentials('nope')).rejects.toMatchObject({ code: 'unknown_provider' });
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { down: oidc({ clientId: 'x', clientSecret: 's', allowInsecureRequests: true, providerInfo: { issuer: 'http://127.0.0.1:9', authorization_endpoint: 'http://127.0.0.1:9/auth', token_endpoint: 'http://127.0.0.1:9/token' } }) },
    });
    await expect(rp.clientCredentials('down')).rejects.toMatchObject({ code: 'op_unreachable', retryAfter: 5 });
  });
});

describe('tokenExchange()', () => {
  test('exchanges a user\'s access token for a narrower one for another audience; the OP sees RFC 8693 parameters', async () => {
    const accessToken = (await login()).accessToken!.value;
    const result = await t.relyingParty.tokenExchange('op', { subjectToken: accessToken, audience: 'billing', scope: 'openid' });
    expect(result).toEqual({
      accessToken: { value: expect.any(String), tokenType: 'bearer', scope: 'openid', expiresAt: expect.any(Number) },
      issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    });
    expect(result.accessToken.value).not.toBe(accessToken);
    expect(exchange.requests.at(-1)).toMatchObject({
      subject_token: accessToken, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: 'billing', scope: 'openid',
    });
    const info = await t.relyingParty.introspect('op', result.accessToken.value);
    expect(info).toMatchObject({ active: true, sub: 'alice', scope: 'openid', client_id: CLIENT_ID });
  });

  test('an invalid subject token is invalid_grant (the OP\'s invalid_grant); more scope than held is op_error invalid_scope', async () => {
    await expect(t.relyingParty.tokenExchange('op', { subjectToken: 'not-a-token' })).rejects.toMatchObject({ code: 'invalid_grant', opError: 'invalid_grant' });
    const accessToken = (await login()).accessToken!.value;
    await expect(t.relyingParty.tokenExchange('op', { subjectToken: accessToken, scope: 'api:write' })).rejects.toMatchObject({ code: 'op_error', opError: 'invalid_scope' });
  });

  test('refuses to send an actor token without its type, and a missing subject token, before any request', async () => {
    const before = exchange.requests.length;
    await expect(t.relyingParty.tokenExchange('op', { subjectToken: 'x', actorToken: 'y' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(t.relyingParty.tokenExchange('op', { subjectToken: '' })).rejects.toMatchObject({ code: 'invalid_request' });
    expect(exchange.requests.length).toBe(before);
  });
});

describe('revoke() and introspect()', () => {
  test('a revoked access token introspects as inactive', async () => {
    const accessToken = (await login()).accessToken!.value;
    expect((await t.relyingParty.introspect('op', accessToken, { tokenTypeHint: 'access_token' })).active).toBe(true);
    await t.relyingParty.revoke('op', accessToken, { tokenTypeHint: 'access_token' });
    expect(await t.relyingParty.introspect('op', accessToken)).toEqual({ active: false });
  });

  test('a revoked refresh token introspects as inactive and a refresh with it is refused (refresh_failed / invalid_grant)', async () => {
    const agent = t.agent();
    const auth = await login(agent);
    expect(await t.relyingParty.introspect('op', auth.refreshToken!, { tokenTypeHint: 'refresh_token' })).toMatchObject({ active: true, sub: 'alice' });
    await t.relyingParty.revoke('op', auth.refreshToken!, { tokenTypeHint: 'refresh_token' });
    expect(await t.relyingParty.introspect('op', auth.refreshToken!)).toEqual({ active: false });
    await expect(t.relyingParty.refresh(auth)).rejects.toMatchObject({ code: 'refresh_failed', opError: 'invalid_grant' });
    // through the browser route too: the login ends
    const res = await agent.post('/auth/refresh');
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'refresh_failed', op_error: 'invalid_grant' });
  });

  test('revoking an unknown token is not an error (RFC 7009 §2.2); introspecting it says inactive', async () => {
    await expect(t.relyingParty.revoke('op', 'no-such-token')).resolves.toBeUndefined();
    await expect(t.relyingParty.introspect('op', 'no-such-token')).resolves.toEqual({ active: false });
  });

  test('wrong client credentials at the introspection and revocation endpoints are client_auth_failed naming that endpoint', async () => {
    const rp = new RelyingParty({
      baseURL: t.baseURL,
      providers: { bad: oidc({ issuer: t.op.issuer, clientId: CLIENT_ID, clientSecret: 'wrong', allowInsecureRequests: true }) },
    });
    const err = (await rp.introspect('bad', 'x').catch((e: unknown) => e)) as RpError;
    expect(err).toMatchObject({ code: 'client_auth_failed', opError: 'invalid_client' });
    expect(err.message).toContain(`${t.op.issuer}/token/introspection`);
    await expect(rp.revoke('bad', 'x')).rejects.toMatchObject({ code: 'client_auth_failed' });
  });

  test('an OP without a revocation endpoint: invalid_request naming what is missing; an OP answering 503 is op_unavailable, with its Retry-After', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' }).end('{"error":"temporarily_unavailable"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
    try {
      const rp = new RelyingParty({
        baseURL: t.baseURL,
        providers: { small: oidc({ clientId: 'x', clientSecret: 's', allowInsecureRequests: true, providerInfo: {
          issuer: base, authorization_endpoint: `${base}/auth`, token_endpoint: `${base}/token`, introspection_endpoint: `${base}/introspect`,
        } }) },
      });
      const err = (await rp.revoke('small', 'x').catch((e: unknown) => e)) as RpError;
      expect(err).toMatchObject({ code: 'invalid_request' });
      expect(err.message).toContain('revocation_endpoint');
      await expect(rp.introspect('small', 'x')).rejects.toMatchObject({ code: 'op_unavailable', status: 503, retryAfter: 7 }) // the OP's own Retry-After;
      await expect(rp.clientCredentials('small')).rejects.toMatchObject({ code: 'op_unavailable' });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
