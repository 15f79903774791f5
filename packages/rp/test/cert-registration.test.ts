/**
 * OpenID certification rp-registration-dynamic: dynamic client registration asks only for what the
 * OP's discovery document advertises (OpenID Connect Discovery 1.0 §3 defaults for absent fields),
 * keeps what the OP answers when it differs from what was asked (RFC 7591 §3.2.1), and uses it
 * (client authentication, no refresh without the refresh_token grant).
 *
 * REAL oidc-provider instances, configured per test (scopes, responseTypes, clientAuthMethods,
 * registration policies, issueRefreshToken); the assertions read the registration and token
 * requests as the OP parsed them. A tiny stub OP only for answers oidc-provider never gives
 * (registration answers without grant_types / token_endpoint_auth_method).
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { memoryRegistrationStore, oidc, readStoredLogin, type Authentication, type OidcSessionData, type DynamicOptions, type RegisteredClient } from '@openid-express/rp';
import { DynamicProviders, dynamicProviderName } from '../src/discovery/registration.js';
import { listen, type Listening } from './simulators/common.js';
import { pathOf, startSimApp, type SimApp } from './simulators/app.js';
import { privateJwk } from '../../../test/support/private-jwk.js';

interface Registration {
  /** The registration request, as the OP parsed it. */
  body: Record<string, unknown>;
  status: number;
  /** The OP's answer (what it registered). */
  answer: Record<string, unknown>;
}

interface TokenRequest {
  grantType: string;
  /** The client authenticated with HTTP Basic. */
  basic: boolean;
  /** The client_secret came in the request body. */
  secretInBody: boolean;
  status: number;
}

interface TestOp extends Listening {
  issuer: string;
  provider: Provider;
  registrations: Registration[];
  tokenRequests: TokenRequest[];
}

const ops: TestOp[] = [];
const apps: SimApp[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(ops.map((o) => o.close()));
});

function signingKey(): Record<string, unknown> {
  return { ...privateJwk(), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

/**
 * A real oidc-provider with open dynamic registration at /reg, `config` merged over the base
 * (`features` merged one level deep). `editDiscovery` changes its discovery document on the way out
 * (for fields oidc-provider always fills). Its user "alice" is signed in and consents at once.
 */
async function startOp(config: Configuration = {}, editDiscovery?: (doc: Record<string, unknown>) => void): Promise<TestOp> {
  const app = express();
  const op = { registrations: [], tokenRequests: [] } as unknown as TestOp;
  if (editDiscovery) {
    app.get('/.well-known/openid-configuration', (_req, res, next) => {
      const end = res.end.bind(res) as (body: string) => express.Response;
      res.end = ((body: string) => {
        const doc = JSON.parse(String(body)) as Record<string, unknown>;
        editDiscovery(doc);
        const edited = JSON.stringify(doc);
        res.setHeader('content-length', Buffer.byteLength(edited));
        return end(edited);
      }) as never;
      next();
    });
  }
  let provider: Provider | undefined;
  app.get('/interaction/:uid', (req, res, next) => void finishInteraction(provider!, req, res).catch(next));
  app.use((req, res) => provider!.callback()(req, res));
  const listening = await listen(app);
  provider = new Provider(listening.url, {
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    cookies: { keys: ['cert-registration-cookie-key'] },
    jwks: { keys: [signingKey() as never] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: 'Alice', email: 'alice@example.org', email_verified: true }) }),
    ...config,
    features: { devInteractions: { enabled: false }, ...config.features, registration: { enabled: true, ...config.features?.registration } },
  });
  // What reached the OP, as it parsed it (after its own handling).
  provider.use(async (ctx: KoaContextWithOIDC, next) => {
    await next();
    if (ctx.method !== 'POST') return;
    const body = (ctx.oidc?.body ?? {}) as Record<string, unknown>;
    if (ctx.path === '/reg') op.registrations.push({ body, status: ctx.status, answer: ctx.body as Record<string, unknown> });
    if (ctx.path === '/token') {
      op.tokenRequests.push({
        grantType: String(body.grant_type), basic: /^Basic /i.test(ctx.get('authorization')), secretInBody: typeof body.client_secret === 'string', status: ctx.status,
      });
    }
  });
  Object.assign(op, listening, { issuer: listening.url, provider });
  ops.push(op);
  return op;
}

/** Test-only: "alice" is signed in and consents to whatever is asked. */
async function finishInteraction(provider: Provider, req: express.Request, res: express.Response): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: 'alice' } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? (await provider.Grant.find(details.grantId))!
    : new provider.Grant({ accountId: 'alice', clientId: details.params.client_id as string });
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}

/** A browser at the OP: follows its redirects (with its cookies) until it is sent back to `back`. */
async function walkOp(start: string, back: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  for (let hops = 0; hops < 10; hops++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`the OP answered ${res.status} at ${url.pathname}: ${(await res.text()).slice(0, 200)}`);
    url = new URL(location, url);
    if (url.href.startsWith(back)) return url;
  }
  throw new Error('too many redirects at the OP');
}

/** An app with `dynamic` registration (development opt-ins for loopback http) that starts a login at `op`. */
async function startLogin(op: TestOp, dynamic: Partial<DynamicOptions> = {}) {
  const store = memoryRegistrationStore();
  // rp() wants a configured provider unless WebFinger is on: one that is never used.
  const app = await startSimApp(() => ({ unused: oidc({ issuer: 'https://unused.example', clientId: 'x', clientSecret: 'y' }) }), {
    rp: { dynamic: { registration: true, allowPrivateNetwork: true, allowInsecureRequests: true, store, ...dynamic } },
  });
  apps.push(app);
  const agent = app.agent();
  const start = await agent.get(`/auth/login?identifier=${encodeURIComponent(op.issuer)}&returnTo=/me`).set('accept', 'application/json');
  const name = dynamicProviderName(op.issuer);
  return { app, agent, start, name, store, redirectUri: `${app.baseURL}/auth/callback/${name}` };
}

/** Starts and finishes a login at `op`; returns the app, the provider name and the login kept in the session. */
async function login(op: TestOp, dynamic: Partial<DynamicOptions> = {}) {
  const started = await startLogin(op, dynamic);
  expect(started.start.status).toBe(302);
  const callback = await started.agent.get(pathOf(await walkOp(started.start.headers.location, started.app.baseURL)));
  expect(callback.status).toBe(302);
  expect(callback.headers.location).toBe('/me');
  expect((await started.agent.get('/me')).body).toMatchObject({ sub: 'alice', provider: started.name });
  return { ...started, auth: await authOf(started.app) };
}

/** The one login held in the app's session store. */
async function authOf(app: SimApp): Promise<Authentication> {
  const all = await new Promise<Record<string, { oidc?: OidcSessionData }>>((resolve, reject) =>
    app.store.all((err, s) => (err ? reject(err) : resolve((s ?? {}) as never))),
  );
  const logins = Object.values(all).flatMap((s) => (s.oidc?.auth ? [readStoredLogin(s.oidc.auth)] : []));
  expect(logins).toHaveLength(1);
  return logins[0];
}

async function discoveryOf(op: TestOp): Promise<Record<string, unknown>> {
  return (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json() as Promise<Record<string, unknown>>;
}

describe('rp-registration-dynamic: the request asks only for what the OP advertises', () => {
  test('an OP advertising grant_types_supported ["authorization_code"]: registered without refresh_token, login completes, no refresh', async () => {
    const op = await startOp({ scopes: ['openid'], responseTypes: ['code'] });
    expect((await discoveryOf(op)).grant_types_supported).toEqual(['authorization_code']);
    // The issue: this OP refuses a request for refresh_token (what was always asked before).
    const refused = await fetch(`${op.issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://rp.example/cb'], response_types: ['code'], grant_types: ['authorization_code', 'refresh_token'] }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_client_metadata');
    op.registrations.length = 0;

    const { app, name, store, redirectUri, auth } = await login(op);
    expect(op.registrations).toHaveLength(1);
    const [{ body, status }] = op.registrations;
    expect(status).toBe(201);
    expect(body.grant_types).toEqual(['authorization_code']);
    expect(body).toMatchObject({
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', application_type: 'web', redirect_uris: [redirectUri],
    });

    const provider = app.router.relyingParty.provider(name);
    expect(provider.grantTypes).toEqual(['authorization_code']);
    expect(provider.grantTypes).not.toContain('refresh_token');
    expect((await store.get(name))?.grantTypes).toEqual(['authorization_code']);
    expect(auth.refreshToken).toBeUndefined();
    await expect(app.router.relyingParty.refresh(auth)).rejects.toMatchObject({ code: 'no_refresh_token' });
    expect(op.tokenRequests.map((t) => t.grantType)).toEqual(['authorization_code']);
  });

  test('an OP advertising only client_secret_post: registered and used with client_secret_post (the secret in the token request body)', async () => {
    const op = await startOp({ clientAuthMethods: ['client_secret_post'] });
    expect((await discoveryOf(op)).token_endpoint_auth_methods_supported).toEqual(['client_secret_post']);
    const { app, name } = await login(op);
    expect(op.registrations.map((r) => r.body.token_endpoint_auth_method)).toEqual(['client_secret_post']);
    expect(op.registrations[0].body.grant_types).toEqual(['authorization_code', 'refresh_token']); // advertised here
    expect(app.router.relyingParty.provider(name)).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['authorization_code', 'refresh_token'] });
    expect(op.tokenRequests).toEqual([{ grantType: 'authorization_code', basic: false, secretInBody: true, status: 200 }]);
  });

  test('discovery without grant_types_supported / token_endpoint_auth_methods_supported: the Discovery defaults apply', async () => {
    // The OP itself offers refresh_token and client_secret_post first, but its discovery document does not say so.
    const op = await startOp({ clientAuthMethods: ['client_secret_post', 'client_secret_basic'] }, (doc) => {
      delete doc.grant_types_supported;
      delete doc.token_endpoint_auth_methods_supported;
    });
    const discovery = await discoveryOf(op);
    expect(discovery).not.toHaveProperty('grant_types_supported');
    expect(discovery).not.toHaveProperty('token_endpoint_auth_methods_supported');
    const extras = { client_name: 'Cert App', redirect_uris: ['https://evil.example/cb'] };
    const { app, name, redirectUri } = await login(op, { clientMetadata: extras });
    expect(op.registrations).toHaveLength(1);
    const { body } = op.registrations[0];
    expect(body.grant_types).toEqual(['authorization_code']);
    expect(body.token_endpoint_auth_method).toBe('client_secret_basic');
    // the app's extras are sent, but cannot replace the redirect URI
    expect(body).toMatchObject({ client_name: 'Cert App', redirect_uris: [redirectUri] });
    expect(app.router.relyingParty.provider(name)).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['authorization_code'] });
    expect(op.tokenRequests).toEqual([{ grantType: 'authorization_code', basic: true, secretInBody: false, status: 200 }]);
  });
});

describe('rp-registration-dynamic: the OP answers with other metadata than asked (RFC 7591 §3.2.1)', () => {
  /**
   * An OP advertising refresh_token and client_secret_basic whose registration policy drops
   * refresh_token and registers client_secret_post instead (policies need an initial access
   * token), and that issues refresh tokens regardless of the registered grant types.
   */
  async function changingOp(): Promise<{ op: TestOp; initialAccessToken: string }> {
    const op = await startOp({
      features: {
        registration: {
          enabled: true,
          initialAccessToken: true,
          policies: {
            'no-refresh-post-only': (_ctx, properties) => {
              properties.grant_types = ['authorization_code'];
              properties.token_endpoint_auth_method = 'client_secret_post';
            },
          },
        },
      },
      issueRefreshToken: async () => true,
    });
    const initialAccessToken = await new op.provider.InitialAccessToken({ policies: ['no-refresh-post-only'] }).save();
    return { op, initialAccessToken };
  }

  test('the RP uses what was answered: grant_types without refresh_token, client_secret_post', async () => {
    const { op, initialAccessToken } = await changingOp();
    const discovery = await discoveryOf(op);
    expect(discovery.grant_types_supported).toContain('refresh_token');
    expect((discovery.token_endpoint_auth_methods_supported as string[])[0]).toBe('client_secret_basic');
    const { app, name, store } = await login(op, { initialAccessToken });
    expect(op.registrations).toHaveLength(1);
    const [{ body, answer }] = op.registrations;
    expect(body).toMatchObject({ grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic' });
    expect(answer).toMatchObject({ grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_post' });
    expect(answer.id_token_signed_response_alg).toBe('RS256');
    expect(app.router.relyingParty.provider(name)).toMatchObject({
      tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['authorization_code'], idTokenSignedResponseAlg: 'RS256',
    });
    expect(await store.get(name)).toMatchObject({
      tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['authorization_code'], idTokenSignedResponseAlg: answer.id_token_signed_response_alg,
    });
    // oidc-provider refuses any other client authentication than the registered one: the login went through with post
    expect(op.tokenRequests).toEqual([{ grantType: 'authorization_code', basic: false, secretInBody: true, status: 200 }]);
  });

  test('a refresh token the OP issues anyway is never used: refresh is refused (no_refresh_token) without a request to the OP', async () => {
    const { op, initialAccessToken } = await changingOp();
    const { app, auth } = await login(op, { initialAccessToken });
    expect(auth.refreshToken).toEqual(expect.any(String));
    await expect(app.router.relyingParty.refresh(auth)).rejects.toMatchObject({ code: 'no_refresh_token' });
    expect(op.tokenRequests.map((t) => t.grantType)).toEqual(['authorization_code']);
  });

  test('an answered token_endpoint_auth_method the RP cannot use is a clear registration_failed (502), nothing kept', async () => {
    const op = await startOp({
      features: {
        registration: {
          enabled: true,
          initialAccessToken: true,
          policies: { jwt: (_ctx, properties) => void (properties.token_endpoint_auth_method = 'client_secret_jwt') },
        },
      },
    });
    const initialAccessToken = await new op.provider.InitialAccessToken({ policies: ['jwt'] }).save();
    const { app, agent, start, name, store } = await startLogin(op, { initialAccessToken });
    expect(op.registrations.map((r) => r.answer.token_endpoint_auth_method)).toEqual(['client_secret_jwt']);
    expect(start.status).toBe(502);
    expect(start.body.error).toBe('registration_failed');
    expect(start.body.error_description).toContain(op.issuer);
    expect(start.body.error_description).toContain('token_endpoint_auth_method "client_secret_jwt", which openid-express cannot use');
    expect(await store.get(name)).toBeUndefined();
    expect((await agent.get('/me')).status).toBe(401);
    expect(await app.authenticatedSessions()).toEqual([]);
  });
});

describe('rp-registration-dynamic: OPs the RP cannot register at', () => {
  test('an OP offering neither client_secret_basic nor client_secret_post: registration_failed (502) naming the issuer, nothing left behind', async () => {
    const op = await startOp({ clientAuthMethods: ['private_key_jwt'] });
    const { app, agent, start, name, store } = await startLogin(op);
    expect(start.status).toBe(502);
    expect(start.body.error).toBe('registration_failed');
    expect(start.body.error_description).toContain(op.issuer);
    expect(start.body.error_description).toContain('["private_key_jwt"]');
    expect(start.body.error_description).toMatch(/registers clients with a secret/);
    expect(op.registrations).toEqual([]); // refused before asking
    expect(await store.get(name)).toBeUndefined();
    expect(() => app.router.relyingParty.provider(name)).toThrow(expect.objectContaining({ code: 'unknown_provider' }));
    expect((await agent.get('/me')).status).toBe(401);
    const sessions = await new Promise<Record<string, unknown>>((resolve, reject) =>
      app.store.all((err, s) => (err ? reject(err) : resolve((s ?? {}) as Record<string, unknown>))),
    );
    expect(sessions).toEqual({});
  });

  test('an OP without the code flow (response_types_supported ["id_token"]): registration_failed saying what it offers', async () => {
    const op = await startOp({ responseTypes: ['id_token'] });
    const { start, name, store } = await startLogin(op);
    expect(start.status).toBe(502);
    expect(start.body).toMatchObject({ error: 'registration_failed' });
    expect(start.body.error_description).toContain(op.issuer);
    expect(start.body.error_description).toContain('response_types_supported: ["id_token"]');
    expect(op.registrations).toEqual([]);
    expect(await store.get(name)).toBeUndefined();
  });
});

describe('registration answers a real oidc-provider never gives (stub OP)', () => {
  /** Discovery + a registration endpoint answering `answer` (what it received is kept). */
  async function stubOp(answer: Record<string, unknown>) {
    const app = express();
    const received: Array<Record<string, unknown>> = [];
    let issuer = '';
    app.get('/.well-known/openid-configuration', (_req, res) => void res.json({
      issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
      registration_endpoint: `${issuer}/reg`, response_types_supported: ['code'], subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'], grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
    }));
    app.post('/reg', express.json(), (req, res) => {
      received.push(req.body as Record<string, unknown>);
      res.status(201).json(answer);
    });
    const listening = await listen(app);
    issuer = listening.url;
    ops.push({ ...listening, issuer, registrations: [], tokenRequests: [] } as unknown as TestOp);
    return { issuer, received };
  }
  const dev = { registration: true, allowPrivateNetwork: true, allowInsecureRequests: true };
  const redirectUriFor = (name: string) => `http://localhost:3000/auth/callback/${name}`;

  test('an answer without grant_types / token_endpoint_auth_method: the RFC 7591 default grant (no refresh), the method asked', async () => {
    const { issuer, received } = await stubOp({ client_id: 'c1', client_secret: 's1', client_secret_expires_at: 0 });
    const { config } = await new DynamicProviders(dev, redirectUriFor).resolve(issuer);
    expect(received).toEqual([expect.objectContaining({ grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_post' })]);
    expect(config).toMatchObject({ clientId: 'c1', clientSecret: 's1', tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['authorization_code'] });
  });

  test('an answered secret-based method without a client_secret is a registration_failed', async () => {
    const { issuer } = await stubOp({ client_id: 'c2', token_endpoint_auth_method: 'client_secret_post' });
    await expect(new DynamicProviders(dev, redirectUriFor).resolve(issuer)).rejects.toMatchObject({
      code: 'registration_failed', status: 502, message: expect.stringMatching(/token_endpoint_auth_method "client_secret_post", but gave no client_secret/),
    });
  });

  test('a registration stored before grant types were kept still works, refresh allowed as before (grantTypes unknown)', async () => {
    const { issuer, received } = await stubOp({ client_id: 'never' });
    const name = dynamicProviderName(issuer);
    const store = memoryRegistrationStore();
    const old: RegisteredClient = { issuer, clientId: 'old', clientSecret: 'old-secret', tokenEndpointAuthMethod: 'client_secret_basic', redirectUri: redirectUriFor(name) };
    await store.set(name, old);
    const { config } = await new DynamicProviders({ ...dev, store }, redirectUriFor).resolve(issuer);
    expect(config).toMatchObject({ clientId: 'old', tokenEndpointAuthMethod: 'client_secret_basic' });
    expect(config.grantTypes).toBeUndefined();
    expect(received).toEqual([]);
  });
});
