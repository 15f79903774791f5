import { defaultViews } from '@openid-express/op';
import { ALICE, aliceWith, browserOf, callbackOf, client, codeRequest, register, signIn, startCertOp, type FlowFixture } from './cert-support.js';

// Certification modules that depend on how the OP is configured (the app's views, PKCE policy)
describe('oidcc-ui-locales and oidcc-display-popup with the app\'s own views', () => {
  let f: FlowFixture;
  const seen: Array<{ view: string; uiLocales?: string[]; display?: string }> = [];
  beforeAll(async () => {
    f = await startCertOp({ views: {
      login: (p) => { seen.push({ view: 'login', uiLocales: p.uiLocales, display: p.display }); return (defaultViews.login as (x: typeof p) => string)(p); },
      consent: (p) => { seen.push({ view: 'consent', uiLocales: p.uiLocales, display: p.display }); return (defaultViews.consent as (x: typeof p) => string)(p); },
    } });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('the login and consent views are told the languages asked for, in order, and the display', async () => {
    const { tokens } = await aliceWith(f, { ui_locales: 'sv fr-CA en', display: 'popup' });
    expect(tokens.claims()!.sub).toBe('alice');
    expect(seen).toEqual([
      { view: 'login', uiLocales: ['sv', 'fr-CA', 'en'], display: 'popup' },
      { view: 'consent', uiLocales: ['sv', 'fr-CA', 'en'], display: 'popup' },
    ]);
  });
});

// PKCE policy (RFC 9700 2.1.1): required unless a confidential client sends a nonce; 'always' for everyone
describe('the PKCE policy', () => {
  let byDefault: FlowFixture;
  let always: FlowFixture;
  beforeAll(async () => {
    [byDefault, always] = await Promise.all([startCertOp(), startCertOp({ pkce: 'always' })]);
  });
  afterAll(async () => {
    await Promise.all([byDefault?.op.close(), always?.op.close()]);
  });
  const noPkce = { code_challenge: undefined, code_challenge_method: undefined };

  /** The answer at the client: the query of the redirect back. */
  async function answerTo(f: FlowFixture, url: string) {
    return callbackOf(await browserOf(f).open(url)).searchParams;
  }

  test('a confidential client with a nonce and no PKCE signs in (as the certification suite does)', async () => {
    const req = await codeRequest(byDefault, noPkce);
    const page = await signIn(browserOf(byDefault), req.url, { login: 'alice', password: ALICE.password });
    const tokens = await client.authorizationCodeGrant(byDefault.web, callbackOf(page), { expectedState: req.params.state, expectedNonce: req.params.nonce });
    expect(tokens.claims()!.sub).toBe('alice');
  });

  test('a confidential client without a nonce and without PKCE is refused, with a reason and no code', async () => {
    const answer = await answerTo(byDefault, (await codeRequest(byDefault, { ...noPkce, nonce: undefined })).url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/PKCE is required/);
    expect(answer.get('code')).toBeNull();
  });

  test('a pure OAuth 2.0 request (no openid scope, so no nonce) without PKCE is refused', async () => {
    const answer = await answerTo(byDefault, (await codeRequest(byDefault, { ...noPkce, scope: 'api:read', nonce: undefined })).url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/PKCE is required/);
    expect(answer.get('code')).toBeNull();
  });

  test('a public client without PKCE is refused even with a nonce', async () => {
    const pub = await register(byDefault, { token_endpoint_auth_method: 'none' }, client.None());
    const answer = await answerTo(byDefault, (await codeRequest(byDefault, noPkce, pub)).url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/PKCE is required/);
  });

  test('a public client with PKCE signs in', async () => {
    const pub = await register(byDefault, { token_endpoint_auth_method: 'none' }, client.None());
    const { tokens } = await aliceWith(byDefault, {}, browserOf(byDefault), pub);
    expect(tokens.claims()!.sub).toBe('alice');
  });

  test('code_challenge_method plain is refused', async () => {
    const answer = await answerTo(byDefault, (await codeRequest(byDefault, { code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' })).url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/code_challenge_method/);
  });

  test('a code_challenge that was sent is enforced: a wrong verifier at the token endpoint is refused', async () => {
    const req = await codeRequest(byDefault);
    const page = await signIn(browserOf(byDefault), req.url, { login: 'alice', password: ALICE.password });
    await expect(client.authorizationCodeGrant(byDefault.web, callbackOf(page), {
      pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: req.params.state, expectedNonce: req.params.nonce,
    })).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test("pkce: 'always' refuses the confidential client's nonce-only request", async () => {
    const answer = await answerTo(always, (await codeRequest(always, noPkce)).url);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/PKCE is required/);
  });
});

// 'public-only' (opt-in): oidc-provider's own default, for a certification run of the nonce-less module
describe("pkce: 'public-only'", () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startCertOp({ pkce: 'public-only' });
  });
  afterAll(async () => {
    await f?.op.close();
  });
  const noPkce = { code_challenge: undefined, code_challenge_method: undefined };

  test('oidcc-ensure-request-without-nonce-succeeds-for-code-flow as the suite sends it: a confidential client with neither nonce nor PKCE signs in', async () => {
    const req = await codeRequest(f, { ...noPkce, nonce: undefined });
    const page = await signIn(browserOf(f), req.url, { login: 'alice', password: ALICE.password });
    const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { expectedState: req.params.state });
    expect(tokens.claims()!.sub).toBe('alice');
    expect(tokens.claims()!.nonce).toBeUndefined();
  });

  test('a public client without PKCE is still refused, and a code_challenge that is sent is still enforced', async () => {
    const pub = await register(f, { token_endpoint_auth_method: 'none' }, client.None());
    const refused = callbackOf(await browserOf(f).open((await codeRequest(f, noPkce, pub)).url)).searchParams;
    expect(refused.get('error_description')).toMatch(/PKCE is required/);
    expect(refused.get('code')).toBeNull();
    const req = await codeRequest(f);
    const page = await signIn(browserOf(f), req.url, { login: 'alice', password: ALICE.password });
    await expect(client.authorizationCodeGrant(f.web, callbackOf(page), {
      pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: req.params.state, expectedNonce: req.params.nonce,
    })).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

// for clients that read only the ID token (Auth.js, passport-openidconnect by default): the documented switch
describe('provider: { conformIdTokenClaims: false }', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startCertOp({ provider: { conformIdTokenClaims: false } });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('puts the claims of the granted scopes in the code flow\'s ID token too', async () => {
    const { tokens } = await aliceWith(f, { scope: 'openid email' });
    expect(tokens.claims()).toMatchObject({ sub: 'alice', email: ALICE.claims.email });
  });
});
