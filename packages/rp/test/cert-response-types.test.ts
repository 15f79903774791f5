/**
 * OpenID Connect RP certification, Implicit RP and Hybrid RP profiles (response types that carry
 * tokens in the front channel), the ID token hashes (at_hash, c_hash), nonce checks of those flows,
 * and the `claims` request parameter, against the REAL oidc-provider.
 *
 * The OP answers with its auto-submitting form_post page; the test posts those fields to the RP
 * callback as the browser would. Hash and nonce tests re-sign the OP's own ID token with the OP's
 * own key (`op.signingKey`) after changing one claim: a correctly signed ID token that differs from
 * the real one only in the claim under test (a control test shows that the re-signing alone does
 * not make the RP refuse). response_mode=fragment in a real browser: cert-response-types-browser.test.ts.
 */
import { createHash } from 'node:crypto';
import type { Express } from 'express';
import type request from 'supertest';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK, type JWTPayload } from 'jose';
import { OptionsError, oidc, requireAuth, rp, rpErrorHandler, type ProviderConfig } from '@openid-express/rp';
import { startRp, type TestRp } from './support/rp-app.js';
import { clearStore, expectNoLogin } from './support/expect.js';

type ResponseType = NonNullable<ProviderConfig['responseType']>;
type Fields = Record<string, string>;

const ALL_TYPES: ResponseType[] = ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token'];

/** What the app keeps of the login, and the userinfo the front-channel (or token endpoint) access token loads. */
function routes(app: Express): void {
  app.get('/session', requireAuth(), (req, res) => {
    res.json({ accessToken: req.oidc.accessToken?.value ?? null, idTokenClaims: req.oidc.idTokenClaims, claims: req.oidc.user?.claims });
  });
  app.get('/userinfo', requireAuth(), async (req, res) => void res.json(await req.oidc.fetchUserInfo()));
  app.use(rpErrorHandler());
}

interface Setup {
  responseMode?: 'form_post' | 'fragment';
  scope?: string;
  claims?: ProviderConfig['claims'];
  claimsParameter?: boolean;
}

/** One OP + RP per setup, started on first use and shared by the tests of this file. */
const instances = new Map<string, Promise<TestRp>>();
function rpFor(responseType: ResponseType, setup: Setup = {}): Promise<TestRp> {
  const key = JSON.stringify([responseType, setup]);
  let pending = instances.get(key);
  if (!pending) {
    const implicitOnly = !responseType.startsWith('code');
    pending = startRp({
      // oidc-provider allows implicit over http only for native clients on loopback
      client: {
        response_types: [responseType],
        grant_types: implicitOnly ? ['implicit'] : ['authorization_code', 'implicit'],
        application_type: 'native',
      },
      op: {
        config: { responseTypes: ALL_TYPES },
        ...(setup.claimsParameter ? { features: { claimsParameter: { enabled: true } } } : {}),
      },
      provider: {
        responseType,
        scope: setup.scope ?? 'openid profile email',
        ...(setup.responseMode ? { responseMode: setup.responseMode } : {}),
        ...(setup.claims ? { claims: setup.claims } : {}),
        ...(implicitOnly ? { clientSecret: undefined } : {}),
      },
      routes,
    });
    instances.set(key, pending);
  }
  return pending;
}

afterAll(async () => {
  for (const pending of instances.values()) await (await pending).close();
});
beforeEach(async () => {
  for (const pending of instances.values()) await clearStore(await pending);
});

/** Starts a login at the RP and walks the OP (as alice); returns the authorization URL and the OP's form_post fields. */
async function formPostLogin(t: TestRp, agent: request.Agent): Promise<{ start: URL; action: URL; fields: Fields }> {
  const login = await agent.get('/auth/login/op?returnTo=/me');
  expect(login.status).toBe(302);
  const start = new URL(login.headers.location);
  return { start, ...(await t.op.browser().formPost(start)) };
}

/** The OP's ID token with `change` applied to its claims, signed again with the OP's own key and header. */
async function resign(t: TestRp, idToken: string, change: (claims: JWTPayload) => JWTPayload): Promise<string> {
  const header = decodeProtectedHeader(idToken);
  const key = await importJWK(t.op.signingKey as JWK, header.alg);
  return new SignJWT(change({ ...decodeJwt(idToken) })).setProtectedHeader({ ...header, alg: header.alg! }).sign(key);
}

/** The left half of the SHA-256 of `value`, base64url (at_hash / c_hash of an RS256 ID token). */
function halfHash(value: string): string {
  const digest = createHash('sha256').update(value, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** A clear 4xx with the given code and message, and no login in this browser nor in the store. */
async function expectRefused(t: TestRp, res: request.Response, agent: request.Agent, code: 'invalid_id_token' | 'invalid_request', pattern: RegExp): Promise<void> {
  expect([res.status, res.body.error]).toEqual([code === 'invalid_id_token' ? 401 : 400, code]);
  expect(res.body.error_description).toMatch(pattern);
  await expectNoLogin(t, agent);
}

const withToken = (rt: ResponseType): boolean => rt.split(' ').includes('token');
const withIdTokenInFront = (rt: ResponseType): boolean => rt.split(' ').includes('id_token');

describe('rp-response_type-* through form_post (the default response mode of non-code types)', () => {
  // rp-response_type-id_token: cert-form-post.test.ts (rp-nonce-unless-code-flow…); the types with tokens here
  test.each<[string, ResponseType]>([
    ['rp-response_type-id_token+token', 'id_token token'],
    ['rp-response_type-code+id_token', 'code id_token'],
    ['rp-response_type-code+token', 'code token'],
    ['rp-response_type-code+id_token+token', 'code id_token token'],
  ])('%s: the OP posts the response, the user is logged in, and the access token is kept', async (_id, responseType) => {
    const t = await rpFor(responseType);
    const agent = t.agent();
    const { start, action, fields } = await formPostLogin(t, agent);
    expect(start.searchParams.get('response_type')).toBe(responseType);
    expect(start.searchParams.get('response_mode')).toBe('form_post');
    expect(start.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
    // PKCE binds a code: sent exactly when the response has one
    expect(start.searchParams.get('code_challenge_method')).toBe(responseType.startsWith('code') ? 'S256' : null);
    expect(action.href).toBe(`${t.baseURL}/auth/callback/op`);
    expect('id_token' in fields).toBe(withIdTokenInFront(responseType));
    expect('access_token' in fields).toBe(withToken(responseType));
    expect('code' in fields).toBe(responseType.startsWith('code'));

    const codeGrants = t.op.counts.grants.authorization_code ?? 0;
    const res = await agent.post(action.pathname).type('form').send(fields);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/me');
    expect((await agent.get('/me')).body).toMatchObject({ sub: 'alice', email: 'alice@example.org', name: 'Alice Liddell' });
    // the code (when there is one) was redeemed once; implicit types never call the token endpoint
    expect((t.op.counts.grants.authorization_code ?? 0) - codeGrants).toBe(responseType.startsWith('code') ? 1 : 0);

    const session = (await agent.get('/session')).body;
    expect(session.idTokenClaims).toMatchObject({ sub: 'alice', iss: t.op.issuer, aud: 'app' });
    expect(session.accessToken).toEqual(expect.any(String));
    // implicit: the front-channel token itself; hybrid: the token endpoint's (the front one was only checked)
    if (responseType === 'id_token token') expect(session.accessToken).toBe(fields.access_token);
    // the kept access token is one the OP honours
    const userinfo = await agent.get('/userinfo');
    expect(userinfo.status).toBe(200);
    expect(userinfo.body).toMatchObject({ sub: 'alice', email: 'alice@example.org' });
  });

  test('id_token (no access token): requireAuth() lets the login through, and the token operations answer 400 no_access_token, not a 401 that would send a signed-in user to sign in again', async () => {
    const t = await rpFor('id_token');
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    expect((await agent.post(action.pathname).type('form').send(fields)).status).toBe(303);
    expect((await agent.get('/me')).status).toBe(200);
    const userinfo = await agent.get('/userinfo');
    // before: 401 not_authenticated ("no login"), with a WWW-Authenticate challenge
    expect([userinfo.status, userinfo.body.error]).toEqual([400, 'no_access_token']);
    expect(userinfo.body.error_description).toMatch(/provider "op" has no access token .*response_type "id_token".*use response_type "code"/);
    expect(userinfo.headers['www-authenticate']).toBeUndefined();
    expect((await agent.get('/me')).status).toBe(200); // the login is kept
  });

  test('rp-scope-userinfo-claims (id_token token): the profile claims come from userinfo, loaded with the front-channel access token', async () => {
    const t = await rpFor('id_token token');
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    // with an access token in the response, the OP leaves the scope's claims out of the ID token (OIDC Core 5.4)
    const front = decodeJwt(fields.id_token);
    expect(front.email).toBeUndefined();
    expect(front.name).toBeUndefined();
    expect(front.at_hash).toBe(halfHash(fields.access_token));
    expect((await agent.post(action.pathname).type('form').send(fields)).status).toBe(303);
    const session = (await agent.get('/session')).body;
    expect(session.claims).toMatchObject({ sub: 'alice', email: 'alice@example.org', email_verified: true, name: 'Alice Liddell', groups: ['staff', 'admin'] });
    expect(session.idTokenClaims.email).toBeUndefined();
    expect(session.accessToken).toBe(fields.access_token);
  });
});

describe('rp-id_token-*-at_hash and *-c_hash (a correctly signed ID token whose hash does not bind the front-channel token)', () => {
  test.each<ResponseType>(['id_token token', 'code id_token', 'code id_token token'])(
    'control (%s): the OP\'s ID token signed again with the OP\'s key, claims unchanged, logs in',
    async (responseType) => {
      const t = await rpFor(responseType);
      const agent = t.agent();
      const { action, fields } = await formPostLogin(t, agent);
      const res = await agent.post(action.pathname).type('form').send({ ...fields, id_token: await resign(t, fields.id_token, (c) => c) });
      expect(res.status).toBe(303);
      expect((await agent.get('/me')).body.sub).toBe('alice');
    },
  );

  const cases: Array<[string, ResponseType, 'at_hash' | 'c_hash', 'bad' | 'missing']> = [
    ['rp-id_token-bad-at_hash', 'id_token token', 'at_hash', 'bad'],
    ['rp-id_token-bad-at_hash', 'code id_token token', 'at_hash', 'bad'],
    ['rp-id_token-missing-at_hash', 'id_token token', 'at_hash', 'missing'],
    ['rp-id_token-missing-at_hash', 'code id_token token', 'at_hash', 'missing'],
    ['rp-id_token-bad-c_hash', 'code id_token', 'c_hash', 'bad'],
    ['rp-id_token-bad-c_hash', 'code id_token token', 'c_hash', 'bad'],
    ['rp-id_token-missing-c_hash', 'code id_token', 'c_hash', 'missing'],
    ['rp-id_token-missing-c_hash', 'code id_token token', 'c_hash', 'missing'],
  ];
  test.each(cases)('%s (%s): an ID token with a %s that is %s does not log in, and no code is redeemed', async (_id, responseType, claim, kind) => {
    const t = await rpFor(responseType);
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    const real = decodeJwt(fields.id_token);
    expect(real[claim]).toEqual(expect.any(String)); // the OP did send it: the forged token differs in this claim only
    const idToken = await resign(t, fields.id_token, (c) => {
      if (kind === 'missing') delete c[claim];
      else c[claim] = halfHash(claim === 'at_hash' ? 'some-other-access-token' : 'some-other-code');
      return c;
    });
    const codeGrants = t.op.counts.grants.authorization_code ?? 0;
    const res = await agent.post(action.pathname).type('form').send({ ...fields, id_token: idToken });
    await expectRefused(t, res, agent, 'invalid_id_token', new RegExp(claim));
    expect(t.op.counts.grants.authorization_code ?? 0).toBe(codeGrants);
  });

  test('rp-id_token-bad-at_hash (token substitution, id_token token): the access token of another login does not log in', async () => {
    const t = await rpFor('id_token token');
    const other = await formPostLogin(t, t.agent());
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    const res = await agent.post(action.pathname).type('form').send({ ...fields, access_token: other.fields.access_token });
    await expectRefused(t, res, agent, 'invalid_id_token', /at_hash/);
  });

  test.each<ResponseType>(['id_token token', 'code token', 'code id_token token'])('a %s response without its access_token does not log in, and no code is redeemed', async (responseType) => {
    const t = await rpFor(responseType);
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    const { access_token: _dropped, ...rest } = fields;
    const codeGrants = t.op.counts.grants.authorization_code ?? 0;
    const res = await agent.post(action.pathname).type('form').send(rest);
    expect([res.status, res.body.error]).toEqual([400, 'invalid_response']);
    expect(res.body.error_description).toMatch(/no access_token/);
    await expectNoLogin(t, agent);
    expect(t.op.counts.grants.authorization_code ?? 0).toBe(codeGrants);
  });

  test('rp-id_token-bad-c_hash (code substitution, code id_token): the code of another login does not log in', async () => {
    const t = await rpFor('code id_token');
    const other = await formPostLogin(t, t.agent());
    const agent = t.agent();
    const { action, fields } = await formPostLogin(t, agent);
    const codeGrants = t.op.counts.grants.authorization_code ?? 0;
    const res = await agent.post(action.pathname).type('form').send({ ...fields, code: other.fields.code });
    await expectRefused(t, res, agent, 'invalid_id_token', /c_hash/);
    expect(t.op.counts.grants.authorization_code ?? 0).toBe(codeGrants);
  });
});

describe('hybrid flow: the front-channel ID token and the token endpoint\'s name the same user (OIDC Core 3.3.3.6)', () => {
  test.each<ResponseType>(['code id_token', 'code id_token token'])(
    '(%s) a front-channel ID token for another sub (signed by the OP, c_hash and nonce intact) does not log in',
    async (responseType) => {
      const t = await rpFor(responseType);
      const agent = t.agent();
      const { action, fields } = await formPostLogin(t, agent);
      expect(decodeJwt(fields.id_token).sub).toBe('alice');
      const idToken = await resign(t, fields.id_token, (c) => ({ ...c, sub: 'bob' }));
      const res = await agent.post(action.pathname).type('form').send({ ...fields, id_token: idToken });
      await expectRefused(t, res, agent, 'invalid_id_token', /token endpoint's ID token has "sub" "alice", the one in the authorization response "bob": they must be identical \(OIDC Core 3\.3\.3\.6\)/);
    },
  );

  test('with the OP\'s userinfo down after the code is redeemed, the mismatch is refused at once: no answer is kept that a retry could sign in with', async () => {
    let userinfoDown = false;
    const t = await startRp({
      client: { response_types: ['code id_token'], grant_types: ['authorization_code', 'implicit'], application_type: 'native' },
      op: { config: { responseTypes: ALL_TYPES } },
      provider: {
        responseType: 'code id_token',
        scope: 'openid profile email',
        customFetch: async (url, init) => (userinfoDown && url.endsWith('/me')
          ? new Response('<html>503 Service Unavailable</html>', { status: 503, headers: { 'content-type': 'text/html' } })
          : fetch(url, init as RequestInit)),
      },
      routes,
    });
    try {
      const agent = t.agent();
      const { action, fields } = await formPostLogin(t, agent);
      const forged = { ...fields, id_token: await resign(t, fields.id_token, (c) => ({ ...c, sub: 'bob' })) };
      userinfoDown = true;
      await expectRefused(t, await agent.post(action.pathname).type('form').send(forged), agent, 'invalid_id_token', /"sub"/);
      userinfoDown = false;
      // the retry a 503 would ask for (oidc_resubmitted: as the RP's own re-post page sends it) finds no pending login
      const retried = await agent.post(action.pathname).type('form').send({ ...forged, oidc_resubmitted: '1' });
      expect([retried.status, retried.body.error]).toEqual([400, 'invalid_state']);
      await expectNoLogin(t, agent);
      expect(t.op.counts.grants.authorization_code).toBe(1); // redeemed once, its answer not kept
    } finally {
      await t.close();
    }
  });
});

describe('rp-nonce-invalid in the implicit and hybrid flows', () => {
  test.each<ResponseType>(['id_token token', 'code id_token', 'code id_token token'])(
    'rp-nonce-invalid (%s): a correctly signed ID token with another nonce does not log in',
    async (responseType) => {
      const t = await rpFor(responseType);
      const agent = t.agent();
      const { action, fields } = await formPostLogin(t, agent);
      const idToken = await resign(t, fields.id_token, (c) => ({ ...c, nonce: 'a-nonce-this-browser-never-sent' }));
      const codeGrants = t.op.counts.grants.authorization_code ?? 0;
      const res = await agent.post(action.pathname).type('form').send({ ...fields, id_token: idToken });
      await expectRefused(t, res, agent, 'invalid_id_token', /nonce/);
      expect(t.op.counts.grants.authorization_code ?? 0).toBe(codeGrants);
    },
  );
});

describe('rp-claims_request-* (the claims request parameter, OIDC Core 5.5)', () => {
  test('rp-claims_request-id_token: an essential email asked for in the ID token arrives there, with scope openid only', async () => {
    const claims = { id_token: { email: { essential: true } } };
    const t = await rpFor('code', { scope: 'openid', claims, claimsParameter: true });
    const agent = t.agent();
    const start = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    expect(start.searchParams.get('scope')).toBe('openid');
    expect(JSON.parse(start.searchParams.get('claims') ?? 'null')).toEqual(claims);
    const callback = await t.op.browser().authorize(start);
    expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
    const session = (await agent.get('/session')).body;
    expect(session.idTokenClaims).toMatchObject({ sub: 'alice', email: 'alice@example.org' });
    expect(session.idTokenClaims.name).toBeUndefined(); // only what was asked for
    expect((await agent.get('/me')).body.email).toBe('alice@example.org');
  });

  test('rp-claims_request-userinfo: a claim asked for at userinfo arrives in the user\'s claims, not in the ID token', async () => {
    const claims = { userinfo: { email: { essential: true }, name: null } };
    const t = await rpFor('code', { scope: 'openid', claims, claimsParameter: true });
    const agent = t.agent();
    const start = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    expect(JSON.parse(start.searchParams.get('claims') ?? 'null')).toEqual(claims);
    const callback = await t.op.browser().authorize(start);
    expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
    const session = (await agent.get('/session')).body;
    expect(session.idTokenClaims.email).toBeUndefined();
    expect(session.claims).toMatchObject({ sub: 'alice', email: 'alice@example.org', name: 'Alice Liddell' });
    expect(session.claims.groups).toBeUndefined(); // scope openid: nothing beyond the requested claims
  });

  test('control: without the claims parameter the same OP and scope give no email', async () => {
    const t = await rpFor('code', { scope: 'openid', claimsParameter: true });
    const agent = t.agent();
    const start = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    expect(start.searchParams.has('claims')).toBe(false);
    const callback = await t.op.browser().authorize(start);
    expect((await agent.get(callback.pathname + callback.search)).status).toBe(302);
    const session = (await agent.get('/session')).body;
    expect(session.idTokenClaims.sub).toBe('alice');
    expect(session.claims.email).toBeUndefined();
  });
});

describe('tokens never travel in a query string', () => {
  test('responseType "id_token token" with responseMode "query" is refused at start-up, naming the option', () => {
    const make = (responseMode: 'query' | 'form_post') => () => rp({
      baseURL: 'http://127.0.0.1:1',
      providers: { op: oidc({ issuer: 'http://127.0.0.1:2', allowInsecureRequests: true, clientId: 'app', responseType: 'id_token token', responseMode }) },
    });
    expect(make('form_post')).not.toThrow(); // control
    let thrown: unknown;
    try {
      make('query')();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OptionsError);
    expect((thrown as OptionsError).code).toBe('invalid_options');
    expect((thrown as OptionsError).message).toMatch(/"providers\.op\.responseMode"/);
    expect((thrown as OptionsError).message).toMatch(/query/);
  });

  test.each<[ResponseType, 'form_post' | 'fragment']>([
    ['id_token', 'form_post'],
    ['id_token token', 'form_post'],
    ['code id_token', 'form_post'],
    ['id_token token', 'fragment'],
  ])('a GET callback carrying the %s response (%s provider) in its query string is refused, without a session', async (responseType, responseMode) => {
    const t = await rpFor(responseType, { responseMode });
    const agent = t.agent();
    const login = new URL((await agent.get('/auth/login/op?returnTo=/me')).headers.location);
    // the genuine response of this very login, sent as a query string instead of posted / kept in the fragment
    const fields = responseMode === 'form_post'
      ? (await t.op.browser().formPost(login)).fields
      : Object.fromEntries(new URLSearchParams((await t.op.browser().authorize(login)).hash.slice(1)));
    expect(fields.id_token).toMatch(/^ey/);
    const res = await agent.get(`/auth/callback/op?${new URLSearchParams(fields)}`);
    await expectRefused(t, res, agent, 'invalid_request', /query/);
  });

  test('the fragment page: a GET without parameters answers a page whose only script is the hashed one, with the error message for an empty fragment', async () => {
    const t = await rpFor('id_token token', { responseMode: 'fragment' });
    const res = await t.agent().get('/auth/callback/op').set('accept', 'text/html');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['set-cookie']).toBeUndefined(); // no session for a page view
    const scripts = [...res.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0][1]).toBe(''); // inline, no src
    const hash = createHash('sha256').update(scripts[0][2]).digest('base64');
    const csp = String(res.headers['content-security-policy']);
    expect(csp.split(';').map((d) => d.trim())).toEqual(expect.arrayContaining([
      "default-src 'none'", `script-src 'sha256-${hash}'`, "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
    ]));
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|nonce-/);
    // the script posts the fragment to the callback itself, or says the response is empty
    expect(res.text).toMatch(/<form method="post" action="\/auth\/callback\/op">/);
    expect(scripts[0][2]).toMatch(/history\.replaceState/);
    expect(scripts[0][2]).toMatch(/empty or incomplete/);
    expect(res.text).not.toMatch(/<[^>]*\son\w+=/i); // no inline event handlers (they would need 'unsafe-inline' anyway)
    // without JavaScript it says why nothing happens (before: "Signing in…" for ever)
    expect(res.text).toMatch(/<noscript><p>This sign-in needs JavaScript/);
    expect(await t.authenticatedSessions()).toEqual([]);
  });
});
