import { createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { ALICE } from './support/op-server.js';
import { API, client, oauthError, SECRET, startGrantOp, webClient, type GrantFixture } from './support/grant-fixture.js';

const REPORTS = 'https://reports.example.com';
const isJwt = (token: string) => token.split('.').length === 3;

// RFC 8707 resource indicators with RFC 9068 JWT access tokens: client credentials and the code flow
describe('features.resourceIndicators', () => {
  let f: GrantFixture;
  let service: client.Configuration;
  let web: client.Configuration;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({
      scopes: ['read', 'write'], // known scopes, so that a client's `scope` metadata may name them
      features: {
        clientCredentials: true,
        resourceIndicators: {
          resources: {
            [API]: { scope: 'read write', claimsByScope: { read: ['email'], write: ['name'] } },
            [REPORTS]: { scope: 'read', accessTokenFormat: 'opaque', audience: 'reports', accessTokenTTL: 120 },
          },
          defaultResource: API,
        },
      },
      clients: [
        webClient(origin),
        { client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], scope: 'read' },
      ],
    }));
    [service, web] = await Promise.all([f.config('service'), f.config('web')]);
    jwks = createRemoteJWKSet(new URL(web.serverMetadata().jwks_uri!));
  });
  afterAll(async () => {
    await f?.op.close();
  });

  /** Verifies an RFC 9068 access token with the OP's published keys. */
  const verify = (token: string, audience: string) => jwtVerify(token, jwks, { issuer: f.op.issuer, audience, typ: 'at+jwt' });

  test('client credentials for a resource: an RFC 9068 JWT (at+jwt, aud, client_id, sub, scope) that verifies with the OP\'s JWKS', async () => {
    const tokens = await client.clientCredentialsGrant(service, { resource: API, scope: 'read' });
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'RS256', kid: expect.any(String) });
    const { payload } = await verify(tokens.access_token, API);
    expect(payload).toMatchObject({ iss: f.op.issuer, aud: API, client_id: 'service', sub: 'service', scope: 'read', jti: expect.any(String) });
    expect(payload.exp! - payload.iat!).toBe(600); // ttl.ClientCredentials
    expect(payload.email).toBeUndefined(); // claims by scope are account claims: a client has none
    expect(tokens.scope).toBe('read');
  });

  test('a client with `scope` metadata gets only those scopes: asking for more is invalid_scope', async () => {
    expect(await oauthError(client.clientCredentialsGrant(service, { resource: API, scope: 'read write' })))
      .toMatchObject({ error: 'invalid_scope', error_description: 'requested scope is not allowed' });
  });

  test('no resource named and no openid scope: the token is for defaultResource', async () => {
    const tokens = await client.clientCredentialsGrant(service, { scope: 'read' });
    expect((await verify(tokens.access_token, API)).payload.aud).toBe(API);
  });

  test('an opaque-format resource: not a JWT; introspection tells its audience, scope and lifetime', async () => {
    const tokens = await client.clientCredentialsGrant(service, { resource: REPORTS, scope: 'read' });
    expect(isJwt(tokens.access_token)).toBe(false);
    expect(tokens.expires_in).toBe(120); // the resource's accessTokenTTL
    const info = await client.tokenIntrospection(service, tokens.access_token);
    // sub: the client, as in the JWT form (RFC 9068 §2.2: no resource owner, the client is the subject)
    expect(info).toMatchObject({ active: true, aud: 'reports', scope: 'read', client_id: 'service', sub: 'service' });
  });

  test('an unknown resource, or one that is not an absolute URI, is invalid_target', async () => {
    expect(await oauthError(client.clientCredentialsGrant(service, { resource: 'https://elsewhere.example.com', scope: 'read' })))
      .toMatchObject({ error: 'invalid_target' });
    expect(await oauthError(client.clientCredentialsGrant(service, { resource: 'not-a-uri', scope: 'read' })))
      .toMatchObject({ error: 'invalid_target' });
  });

  test('a JWT signed by another key does not verify with the OP\'s JWKS (what an API relies on)', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ client_id: 'service', scope: 'read write' }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'x' })
      .setIssuer(f.op.issuer).setAudience(API).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    await expect(verify(forged, API)).rejects.toThrow();
  });

  test('code flow with a resource: consent names the API; the access token is a JWT for it with the claims of the granted scopes', async () => {
    const tokens = await f.codeFlow(web, { scope: 'openid read', resource: API });
    expect(tokens.claims()!.sub).toBe('alice'); // the ID token is still there
    const { payload } = await verify(tokens.access_token, API);
    expect(payload).toMatchObject({ sub: 'alice', client_id: 'web', aud: API, scope: 'read', email: ALICE.claims.email });
    expect(payload.name).toBeUndefined(); // `write` was not asked for
    expect(payload.exp! - payload.iat!).toBe(3600); // ttl.AccessToken
  });

  test('the consent screen lists the resource\'s scopes', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: f.redirectUri, scope: 'openid read write', resource: API, state: client.randomState(), nonce: client.randomNonce(),
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const browser = f.browser();
    const login = await browser.open(url.href);
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(consent.html).toContain(`Use the &quot;read&quot; permission at ${API}`);
    expect(consent.html).toContain(`Use the &quot;write&quot; permission at ${API}`);
    expect(consent.html.match(/&quot;read&quot;/g)).toHaveLength(1); // listed once, for the API (not again as a plain scope)
  });

  test('refreshing keeps the granted resource (useGrantedResource); an OpenID Connect sign-in without one gets an opaque userinfo token', async () => {
    const withResource = await f.codeFlow(web, { scope: 'openid offline_access write', resource: API, prompt: 'consent' });
    expect(withResource.refresh_token).toEqual(expect.any(String));
    const refreshed = await client.refreshTokenGrant(web, withResource.refresh_token!);
    const { payload } = await verify(refreshed.access_token, API);
    expect(payload).toMatchObject({ sub: 'alice', aud: API, scope: 'write', name: ALICE.claims.name });

    const plain = await f.codeFlow(web, { scope: 'openid email' });
    expect(isJwt(plain.access_token)).toBe(false); // defaultResource is not applied to openid requests
    expect(await client.fetchUserInfo(web, plain.access_token, 'alice')).toMatchObject({ sub: 'alice', email: ALICE.claims.email });
  });
});

describe('introspection by another client (RFC 7662 §4: who may learn about a token)', () => {
  let f: GrantFixture;
  let service: client.Configuration;
  let web: client.Configuration;
  beforeAll(async () => {
    f = await startGrantOp((origin) => ({
      scopes: ['read'],
      features: {
        clientCredentials: true,
        resourceIndicators: { resources: { [REPORTS]: { scope: 'read', accessTokenFormat: 'opaque', audience: 'reports' } } },
      },
      clients: [
        webClient(origin),
        // a resource server (an API checking tokens, as mod_oauth2 does) that is a confidential client
        { client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], scope: 'read' },
      ],
    }));
    [service, web] = await Promise.all([f.config('service'), f.config('web')]);
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('a sign-in\'s own access token and its refresh token: active for their client, inactive for any other (it learns neither whose they are nor their scopes)', async () => {
    const tokens = await f.codeFlow(web, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(await client.tokenIntrospection(web, tokens.access_token)).toMatchObject({ active: true, sub: 'alice' });
    expect(await client.tokenIntrospection(web, tokens.refresh_token!)).toMatchObject({ active: true, sub: 'alice' });
    expect(await client.tokenIntrospection(service, tokens.access_token)).toEqual({ active: false });
    expect(await client.tokenIntrospection(service, tokens.refresh_token!)).toEqual({ active: false });
  });

  test('token answers, tokens or an error, carry Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)', async () => {
    const basic = `Basic ${Buffer.from(`service:${SECRET}`).toString('base64')}`;
    const ask = (body: Record<string, string>) => fetch(service.serverMetadata().token_endpoint!, {
      method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body),
    });
    for (const res of [await ask({ grant_type: 'client_credentials', scope: 'read', resource: REPORTS }), await ask({ grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: 'https://x.example/cb' })]) {
      expect([res.status, res.headers.get('cache-control'), res.headers.get('pragma')]).toEqual([res.ok ? 200 : 400, 'no-store', 'no-cache']);
    }
  });

  test('revocation answers 200 with a JSON {} (clients that parse every answer as JSON threw on its empty text)', async () => {
    const { access_token: token } = await client.clientCredentialsGrant(service, { scope: 'read', resource: REPORTS });
    const res = await fetch(service.serverMetadata().revocation_endpoint!, {
      method: 'POST', body: new URLSearchParams({ token }),
      headers: { authorization: `Basic ${Buffer.from(`service:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect([res.status, res.headers.get('content-type'), await res.json()]).toEqual([200, 'application/json; charset=utf-8', {}]);
    expect(await client.tokenIntrospection(service, token)).toEqual({ active: false });
  });

  test('a token issued for an API (a resource) is what a resource server introspects: active for it, with the user', async () => {
    const tokens = await f.codeFlow(web, { scope: 'openid read', resource: REPORTS });
    expect(isJwt(tokens.access_token)).toBe(false);
    expect(await client.tokenIntrospection(service, tokens.access_token)).toMatchObject({ active: true, sub: 'alice', aud: 'reports', client_id: 'web', scope: 'read' });
  });
});

describe('without features.resourceIndicators', () => {
  let f: GrantFixture;
  beforeAll(async () => {
    f = await startGrantOp(() => ({
      scopes: ['read'],
      features: { clientCredentials: true },
      clients: [{ client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [] }],
    }));
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('a resource parameter is invalid_target; without one the token is opaque', async () => {
    const service = await f.config('service');
    expect(await oauthError(client.clientCredentialsGrant(service, { resource: API, scope: 'read' }))).toMatchObject({ error: 'invalid_target' });
    expect(isJwt((await client.clientCredentialsGrant(service, { scope: 'read' })).access_token)).toBe(false);
  });

  test('introspecting a client-credentials token names the client as its sub (resource servers such as mod_oauth2 name the caller by it)', async () => {
    const service = await f.config('service');
    const { access_token: token } = await client.clientCredentialsGrant(service, { scope: 'read' });
    expect(await client.tokenIntrospection(service, token)).toMatchObject({ active: true, client_id: 'service', sub: 'service', scope: 'read', token_type: 'Bearer' });
  });
});
