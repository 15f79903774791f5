import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import {
  ALICE, FRONT_CHANNEL_REDIRECT, MODES, browserOf, callbackOf, client, codeRequest, frontChannelBrowser, inMode, register, signIn,
  startCertOp, type CertFixture,
} from './cert-support.js';

// The OpenID Foundation's Implicit OP and Hybrid OP certification plans, on an OP with the defaults.
// op() offers every OpenID Connect response type; a client uses only those it registered (default
// `code`). The plans' variants: Implicit `id_token` and `id_token token`, Hybrid `code id_token`,
// `code token` and `code id_token token`.
//
// Implicit and hybrid clients are registered dynamically, with an https redirect_uri that is not
// localhost (oidc-provider refuses http ones for clients allowed the implicit grant); the browser
// stops there. In both modes the request carries state and nonce (both flows require the nonce); only
// the hybrid flow has a code, and so a PKCE question: the confidential client sends no PKCE (the nonce
// is there), the public client sends PKCE S256 and is refused without it.

const TOKEN_IN_FRONT_CHANNEL = ['id_token token', 'code token', 'code id_token token'];

/** The answer at the client: the fragment (or query) of the redirect back. */
function answerOf(url: URL): URLSearchParams {
  return new URLSearchParams(url.hash ? url.hash.slice(1) : url.search);
}

/** The answer to `url` for a browser without an OP session (errors and prompt=none come straight back). */
async function answerTo(url: string): Promise<URLSearchParams> {
  return answerOf(callbackOf(await frontChannelBrowser().open(url)));
}

/** OIDC Core 3.3.2.11 / 3.2.2.9: the left half of the SHA-256 of `value`, base64url. */
const halfHash = (value: string) => createHash('sha256').update(value).digest().subarray(0, 16).toString('base64url');

/**
 * The checks an RP makes on an ID token from the front channel (openid-client v6 has no `… token`
 * response types): signature against the OP's JWKS, iss, aud, nonce, and the hash of each artefact.
 */
async function frontIdToken(f: CertFixture, config: client.Configuration, answer: URLSearchParams, nonce: string) {
  const meta = config.serverMetadata();
  const { payload } = await jwtVerify(answer.get('id_token')!, createRemoteJWKSet(new URL(meta.jwks_uri!)), {
    issuer: f.op.issuer, audience: config.clientMetadata().client_id, algorithms: ['RS256'],
  });
  expect(payload.nonce).toBe(nonce);
  if (answer.get('access_token')) expect(payload.at_hash).toBe(halfHash(answer.get('access_token')!));
  if (answer.get('code')) expect(payload.c_hash).toBe(halfHash(answer.get('code')!));
  return payload;
}

describe('Implicit and Hybrid OP certification: what the defaults offer', () => {
  let f: CertFixture;
  beforeAll(async () => {
    f = inMode(await startCertOp(), MODES[0]!);
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('discovery lists every OpenID Connect response type, and the fragment and form_post modes', async () => {
    const meta = f.rp.serverMetadata();
    expect([...meta.response_types_supported!].sort())
      .toEqual(['code', 'code id_token', 'code id_token token', 'code token', 'id_token', 'id_token token', 'none']);
    expect(meta.response_modes_supported).toEqual(expect.arrayContaining(['fragment', 'form_post']));
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['none', 'client_secret_basic', 'client_secret_post']));
  });

  test.each(TOKEN_IN_FRONT_CHANNEL)('response_type=%s is refused for a client that did not register it, with no token in the answer', async (responseType) => {
    const hybrid = await register(f, { redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['code id_token'], grant_types: ['authorization_code', 'implicit'] });
    const req = await codeRequest(f, { response_type: responseType, redirect_uri: FRONT_CHANNEL_REDIRECT }, hybrid);
    const answer = await answerTo(req.url);
    expect([answer.get('error'), answer.get('error_description')]).toEqual(['invalid_request', 'requested response_type is not allowed for this client']);
    expect(answer.get('access_token')).toBeNull();
    expect(answer.get('id_token')).toBeNull();
    expect(answer.get('state')).toBe(req.params.state);
  });

  test('a client of the static configuration has only `code` unless it says otherwise', async () => {
    const req = await codeRequest(f, { response_type: 'id_token token' });
    const answer = answerOf(callbackOf(await browserOf(f).open(req.url)));
    expect([answer.get('error'), answer.get('error_description')]).toEqual(['invalid_request', 'requested response_type is not allowed for this client']);
    expect(answer.get('access_token')).toBeNull();
  });

  test('registering a `… token` response type gets the implicit grant with it (OIDC Registration §2)', async () => {
    const rp = await register(f, { redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['id_token token'], grant_types: ['authorization_code'] });
    expect(rp.clientMetadata().grant_types).toEqual(expect.arrayContaining(['implicit']));
  });
});

describe.each(MODES)('Implicit OP certification (response_type=id_token token), $label', (mode) => {
  let f: CertFixture;
  let rp: client.Configuration;
  beforeAll(async () => {
    f = inMode(await startCertOp(), mode);
    rp = await register(f, { redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['id_token token'], grant_types: ['implicit'] });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  const request = (extra: Record<string, string | undefined> = {}) => codeRequest(f, {
    response_type: 'id_token token', redirect_uri: FRONT_CHANNEL_REDIRECT, code_challenge: undefined, code_challenge_method: undefined, ...extra,
  }, rp);

  test('oidcc-server: ID token (with at_hash) and access token in the fragment; userinfo answers the same alice', async () => {
    const req = await request({ scope: 'openid email' });
    const back = callbackOf(await signIn(frontChannelBrowser(), req.url, { login: 'alice', password: ALICE.password }));
    expect(back.search).toBe('');
    const answer = answerOf(back);
    expect(answer.get('state')).toBe(req.params.state);
    expect(answer.get('code')).toBeNull();
    expect(answer.get('token_type')).toMatch(/^bearer$/i);
    const claims = await frontIdToken(f, rp, answer, req.params.nonce!);
    expect(claims.at_hash).toEqual(expect.any(String));
    expect(claims.sub).toBe('alice');
    expect((await client.fetchUserInfo(rp, answer.get('access_token')!, 'alice')).email).toBe(ALICE.claims.email);
  });

  test('oidcc-ensure-request-without-nonce-fails: refused in the fragment, no token', async () => {
    const req = await request({ nonce: undefined });
    const answer = await answerTo(req.url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/nonce/);
    expect(answer.get('access_token')).toBeNull();
  });
});

describe.each(MODES)('Hybrid OP certification (response_type=code token and code id_token token), $label', (mode) => {
  let f: CertFixture;
  let rp: client.Configuration;
  beforeAll(async () => {
    f = inMode(await startCertOp(), mode);
    rp = await register(f, {
      redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['code token', 'code id_token token'], grant_types: ['authorization_code', 'implicit'],
    });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  /** The code from the fragment, exchanged as a code-flow client would (code, state and iss moved to the query). */
  const exchangeCode = (answer: URLSearchParams, req: Awaited<ReturnType<typeof codeRequest>>, iss = answer.get('iss')!) => {
    const back = new URL(FRONT_CHANNEL_REDIRECT);
    for (const k of ['code', 'state']) back.searchParams.set(k, answer.get(k)!);
    back.searchParams.set('iss', iss); // RFC 9207 §2.4: with an ID token in the answer, its iss stands for the parameter
    return client.authorizationCodeGrant(rp, back, { pkceCodeVerifier: req.verifier, expectedState: req.params.state, expectedNonce: req.params.nonce });
  };

  test.each(['code token', 'code id_token token'])('oidcc-server (%s): code and access token in the fragment, the code exchanged for the same alice', async (responseType) => {
    const req = await codeRequest(f, { response_type: responseType, redirect_uri: FRONT_CHANNEL_REDIRECT, scope: 'openid email' }, rp);
    expect(req.params.code_challenge === undefined).toBe(!mode.pkce);
    const back = callbackOf(await signIn(frontChannelBrowser(), req.url, { login: 'alice', password: ALICE.password }));
    expect(back.search).toBe('');
    const answer = answerOf(back);
    expect(answer.get('code')).toEqual(expect.any(String));
    expect(answer.get('access_token')).toEqual(expect.any(String));
    expect(answer.get('id_token') === null).toBe(responseType === 'code token');
    let iss = answer.get('iss')!;
    if (responseType === 'code id_token token') {
      const claims = await frontIdToken(f, rp, answer, req.params.nonce!);
      expect([claims.sub, typeof claims.c_hash, typeof claims.at_hash]).toEqual(['alice', 'string', 'string']);
      iss = claims.iss!;
    } else {
      expect(iss).toBe(f.op.issuer); // RFC 9207: no ID token in the answer, so the iss parameter is there
    }
    expect((await client.fetchUserInfo(rp, answer.get('access_token')!, 'alice')).email).toBe(ALICE.claims.email);
    const tokens = await exchangeCode(answer, req, iss);
    expect(tokens.claims()).toMatchObject({ iss: f.op.issuer, aud: rp.clientMetadata().client_id, sub: 'alice', nonce: req.params.nonce });
    await expect(exchangeCode(answer, req, iss)).rejects.toMatchObject({ error: 'invalid_grant' }); // oidcc-codereuse
  });

  if (mode.name === 'public') {
    test('a public client\'s code token request without PKCE is refused, with no token in the answer', async () => {
      const req = await codeRequest(f, { response_type: 'code token', redirect_uri: FRONT_CHANNEL_REDIRECT, code_challenge: undefined, code_challenge_method: undefined }, rp);
      const answer = await answerTo(req.url);
      expect(answer.get('error_description')).toMatch(/PKCE is required/);
      expect(answer.get('access_token')).toBeNull();
    });
  }

  test('oidcc-ensure-request-without-nonce-fails (code id_token token): refused in the fragment, no token', async () => {
    const req = await codeRequest(f, { response_type: 'code id_token token', redirect_uri: FRONT_CHANNEL_REDIRECT, nonce: undefined }, rp);
    const answer = await answerTo(req.url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('access_token')).toBeNull();
    expect(answer.get('code')).toBeNull();
  });
});

describe.each(MODES)('Implicit OP certification (response_type=id_token), $label', (mode) => {
  let f: CertFixture;
  let rp: client.Configuration;
  beforeAll(async () => {
    f = inMode(await startCertOp(), mode);
    rp = await register(f, { redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['id_token'], grant_types: ['implicit'] });
    client.useIdTokenResponseType(rp);
  });
  afterAll(async () => {
    await f?.op.close();
  });

  /** An `id_token` request: state + nonce, no PKCE (there is no code). */
  const idTokenRequest = (extra: Record<string, string | undefined> = {}) => codeRequest(f, {
    response_type: 'id_token', redirect_uri: FRONT_CHANNEL_REDIRECT, code_challenge: undefined, code_challenge_method: undefined, ...extra,
  }, rp);

  test('oidcc-server: the ID token comes in the fragment, signed, with the nonce and state, and nothing else', async () => {
    const req = await idTokenRequest({ scope: 'openid email' });
    const back = callbackOf(await signIn(frontChannelBrowser(), req.url, { login: 'alice', password: ALICE.password }));
    expect(back.search).toBe('');
    const answer = answerOf(back);
    expect(answer.get('code')).toBeNull();
    expect(answer.get('access_token')).toBeNull();
    const claims = await client.implicitAuthentication(rp, back, req.params.nonce!, { expectedState: req.params.state });
    expect(claims).toMatchObject({ iss: f.op.issuer, aud: rp.clientMetadata().client_id, sub: 'alice', nonce: req.params.nonce });
    // no access token was issued, so the user's claims ride in the ID token
    expect(claims.email).toBe(ALICE.claims.email);
  });

  test('oidcc-ensure-request-without-nonce-fails: an id_token request without nonce is refused, in the fragment', async () => {
    const req = await idTokenRequest({ nonce: undefined });
    const answer = await answerTo(req.url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/nonce/);
    expect(answer.get('state')).toBe(req.params.state);
    expect(answer.get('id_token')).toBeNull();
  });

  test('oidcc-prompt-none-not-logged-in: login_required goes back in the fragment with the state', async () => {
    const req = await idTokenRequest({ prompt: 'none' });
    const answer = await answerTo(req.url);
    expect(answer.get('error')).toBe('login_required');
    expect(answer.get('state')).toBe(req.params.state);
  });
});

describe.each(MODES)('Hybrid OP certification (response_type=code id_token), $label', (mode) => {
  let f: CertFixture;
  let rp: client.Configuration;
  beforeAll(async () => {
    f = inMode(await startCertOp(), mode);
    rp = await register(f, {
      redirect_uris: [FRONT_CHANNEL_REDIRECT], response_types: ['code id_token'], grant_types: ['authorization_code', 'implicit', 'refresh_token'],
    });
    client.useCodeIdTokenResponseType(rp);
  });
  afterAll(async () => {
    await f?.op.close();
  });

  /** A `code id_token` request: state + nonce, and PKCE as the mode says. */
  const hybridRequest = (extra: Record<string, string | undefined> = {}) => codeRequest(f, {
    response_type: 'code id_token', redirect_uri: FRONT_CHANNEL_REDIRECT, ...extra,
  }, rp);
  type HybridRequest = Awaited<ReturnType<typeof hybridRequest>>;
  /** Validates the front-channel ID token (c_hash, nonce, state) and exchanges the code. */
  const exchangeHybrid = (back: URL, req: HybridRequest) => client.authorizationCodeGrant(rp, back, {
    pkceCodeVerifier: req.verifier, expectedNonce: req.params.nonce, expectedState: req.params.state,
  });

  test('oidcc-server: code and ID token in the fragment, the code exchanged for tokens of the same alice, userinfo agrees', async () => {
    const req = await hybridRequest({ scope: 'openid email' });
    expect(req.params.code_challenge === undefined).toBe(!mode.pkce);
    const back = callbackOf(await signIn(frontChannelBrowser(), req.url, { login: 'alice', password: ALICE.password }));
    expect(back.search).toBe('');
    const answer = answerOf(back);
    expect(answer.get('code')).toEqual(expect.any(String));
    expect(answer.get('id_token')).toEqual(expect.any(String));
    expect(answer.get('access_token')).toBeNull();
    const front = JSON.parse(Buffer.from(answer.get('id_token')!.split('.')[1]!, 'base64url').toString());
    expect(front.c_hash).toEqual(expect.any(String));
    const tokens = await exchangeHybrid(back, req);
    expect(tokens.claims()).toMatchObject({ iss: f.op.issuer, aud: rp.clientMetadata().client_id, sub: front.sub, nonce: req.params.nonce });
    expect((await client.fetchUserInfo(rp, tokens.access_token, 'alice')).email).toBe(ALICE.claims.email);
  });

  if (mode.name === 'public') {
    test('a public client\'s hybrid request without PKCE is refused (PKCE is always required of public clients)', async () => {
      const req = await hybridRequest({ code_challenge: undefined, code_challenge_method: undefined });
      const answer = await answerTo(req.url);
      expect(answer.get('error')).toBe('invalid_request');
      expect(answer.get('error_description')).toMatch(/PKCE is required/);
      expect(answer.get('code')).toBeNull();
    });
  }

  test('oidcc-ensure-request-without-nonce-fails: a code id_token request without nonce is refused, in the fragment', async () => {
    const req = await hybridRequest({ nonce: undefined });
    const answer = await answerTo(req.url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/nonce/);
    expect(answer.get('state')).toBe(req.params.state);
    expect(answer.get('code')).toBeNull();
  });

  test('oidcc-codereuse: a hybrid code works once; its reuse is refused and revokes what it gave', async () => {
    const req = await hybridRequest({ scope: 'openid offline_access', prompt: 'consent' });
    const back = callbackOf(await signIn(frontChannelBrowser(), req.url, { login: 'alice', password: ALICE.password }));
    const tokens = await exchangeHybrid(back, req);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    await expect(exchangeHybrid(back, req)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.fetchUserInfo(rp, tokens.access_token, 'alice')).rejects.toMatchObject({ status: 401 });
  });

  test('oidcc-form-post-basic (code id_token): the code and ID token are posted back, and the code exchanges', async () => {
    const req = await hybridRequest({ response_mode: 'form_post' });
    const browser = frontChannelBrowser();
    const login = await browser.open(req.url);
    let page = await browser.submit(login, { has: 'login' }, { login: 'alice', password: ALICE.password });
    if (page.url.includes('/interaction/')) page = await browser.submit(page, { action: '/confirm' });
    expect(page.stoppedAt).toBeUndefined();
    expect(page.headers.get('cache-control')).toContain('no-store');
    const form = browser.form(page, { has: 'code' });
    expect(form.method).toBe('post');
    expect(form.action).toBe(FRONT_CHANNEL_REDIRECT);
    expect(form.fields).toMatchObject({ state: req.params.state, id_token: expect.any(String) });
    const back = new URL(FRONT_CHANNEL_REDIRECT);
    back.hash = new URLSearchParams(form.fields).toString(); // what openid-client does with a posted hybrid response
    expect((await exchangeHybrid(back, req)).claims()!.sub).toBe('alice');
  });
});
