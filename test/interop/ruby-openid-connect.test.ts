/**
 * Interop: nov's `openid_connect` Ruby gem, an OpenID-certified RP library nobody here wrote, against
 * our OP: it discovers the OP, builds the authorization request (state + nonce, or PKCE S256), and
 * after the browser walk exchanges the code as a confidential client (client_secret_basic), checks
 * the ID token's signature with the OP's JWKS and its claims, fetches userinfo, refreshes, and logs
 * out at the OP's end_session_endpoint. It refuses an ID token with another nonce or audience, and
 * the OP refuses a replayed code. The gem runs in test/interop/support/ruby-openid-connect.rb.
 * Needs `apt-get install -y ruby-openid-connect`; fails (never skips) without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FormBrowser } from '../support/op-forms.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';
import { startRuby, type RubyAnswer, type RubyDriver } from './support/ruby.js';

const CLIENT_ID = 'ruby';
const CLIENT_SECRET = 'ruby-client-secret-0123456789abcdef';
// never served: the browser stops at the client's URIs and hands what the OP sent to the test
const RP = 'http://127.0.0.1:9';
const REDIRECT_URI = `${RP}/callback`;
const AFTER_LOGOUT = `${RP}/bye`;

const random = () => randomBytes(16).toString('base64url');
const browserForRp = () => new FormBrowser({ stopAt: (url) => url.origin === RP });

describe("nov's openid_connect gem (Ruby) against op()", () => {
  let opServer: InteropOp;
  let driver: RubyDriver;

  beforeAll(async () => {
    driver = startRuby();
    opServer = await startInteropOp(() => [{
      client_id: CLIENT_ID, client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI],
      post_logout_redirect_uris: [AFTER_LOGOUT],
    }]);
  });

  afterAll(async () => {
    await driver?.stop();
    await opServer?.close();
  });

  /** One driver command as this client; `ok` throws when the gem raised. */
  const rb = (cmd: string, more: Record<string, unknown> = {}) => driver.run({
    cmd, issuer: opServer.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uri: REDIRECT_URI, ...more,
  });
  async function ok(cmd: string, more: Record<string, unknown> = {}): Promise<RubyAnswer> {
    const answer = await rb(cmd, more);
    if (answer.error) throw new Error(`the gem raised on "${cmd}": ${answer.error}: ${answer.message}`);
    return answer;
  }

  /**
   * The gem builds the authorization URL (with `params`: nonce, scope, prompt, extra); the browser
   * signs in as Alice and consents. Returns the code, after checking the state came back.
   */
  async function signIn(browser: FormBrowser, params: Record<string, unknown>) {
    const state = random();
    const { url } = await ok('authorize', { state, scope: 'openid profile email', ...params });
    let page = await browser.open(url as string);
    expectAt(page, '/op/interaction/', "our OP's login page");
    const sent = opServer.authRequests.at(-1)!;
    page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    expectAt(page, '/op/interaction/', 'the consent page');
    page = await browser.submit(page, { action: '/confirm' });
    if (!page.stoppedAt) expectAt(page, REDIRECT_URI, "the redirect to the client's redirect_uri");
    const back = new URL(page.stoppedAt!);
    expect([`${back.origin}${back.pathname}`, back.searchParams.get('state')]).toEqual([REDIRECT_URI, state]);
    return { url: url as string, code: back.searchParams.get('code')!, sent };
  }

  it("discovers the OP from its issuer with the gem's discovery", async () => {
    const config = await ok('discover');
    expect(config).toMatchObject({
      issuer: opServer.issuer,
      authorization_endpoint: `${opServer.issuer}/auth`,
      token_endpoint: `${opServer.issuer}/token`,
      end_session_endpoint: expect.stringMatching(`^${opServer.issuer}/`),
      jwks_uri: expect.stringMatching(`^${opServer.issuer}/`),
    });
    expect(config.token_endpoint_auth_methods_supported).toContain('client_secret_basic');
  }, 60_000);

  it('signs in with state + nonce (no PKCE), verifies the signed ID token and fetches userinfo', async () => {
    const nonce = random();
    const { code, sent } = await signIn(browserForRp(), { nonce });
    // what the gem really sent, so the test is the case its name says
    expect(sent).toMatchObject({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, nonce, scope: 'openid profile email' });
    expect(sent.code_challenge).toBeUndefined();

    const tokens = await ok('exchange', { code, nonce });
    expect(tokens.id_token_claims).toMatchObject({ iss: opServer.issuer, aud: CLIENT_ID, sub: ALICE.id, nonce });
    expect(tokens.userinfo).toMatchObject({ sub: ALICE.id, email: ALICE.claims.email, name: ALICE.claims.name });
    expect(tokens.refresh_token).toBeNull();

    // the gem checked the signature: the same token with another subject is refused
    const [header, payload, signature] = (tokens.id_token as string).split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
    expect(await rb('verify', { id_token: `${header}.${forged}.${signature}`, nonce })).toMatchObject({ error: 'JSON::JWS::VerificationFailed' });
  }, 30_000);

  it('signs in with PKCE S256 and no nonce; the OP refuses the code without the right code_verifier', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const { code, sent } = await signIn(browserForRp(), { extra: { code_challenge: challenge, code_challenge_method: 'S256' } });
    expect(sent).toMatchObject({ client_id: CLIENT_ID, code_challenge: challenge, code_challenge_method: 'S256' });
    expect(sent.nonce).toBeUndefined();

    expect(await rb('exchange', { code, code_verifier: randomBytes(32).toString('base64url') }))
      .toMatchObject({ error: 'Rack::OAuth2::Client::Error', status: 400, message: expect.stringMatching(/^invalid_grant/) });
    const tokens = await ok('exchange', { code, code_verifier: verifier });
    expect(tokens.id_token_claims).toMatchObject({ sub: ALICE.id, aud: CLIENT_ID });
    expect(tokens.id_token_claims).not.toHaveProperty('nonce');
    expect(tokens.userinfo).toMatchObject({ sub: ALICE.id, email: ALICE.claims.email });
  }, 30_000);

  it('gets a refresh token with offline_access + prompt=consent and refreshes, and again with the same one (a confidential client\'s is not rotated)', async () => {
    const nonce = random();
    const { code, sent } = await signIn(browserForRp(), { nonce, scope: 'openid email offline_access', prompt: 'consent' });
    expect(sent).toMatchObject({ scope: 'openid email offline_access', prompt: 'consent' });
    const first = await ok('exchange', { code, nonce });
    expect([first.scope, first.refresh_token]).toEqual(['openid email offline_access', expect.any(String)]);

    const renewed = await ok('refresh', { refresh_token: first.refresh_token, nonce });
    expect(renewed.id_token_claims).toMatchObject({ sub: ALICE.id, aud: CLIENT_ID });
    expect(renewed.userinfo).toMatchObject({ sub: ALICE.id, email: ALICE.claims.email });
    expect(renewed.access_token).not.toBe(first.access_token);
    // bound to the client's authentication (RFC 9700 §4.14.2): the same token, usable again (a retry after a lost answer)
    expect(renewed.refresh_token).toBe(first.refresh_token);
    const again = await ok('refresh', { refresh_token: first.refresh_token, nonce });
    expect(again.userinfo).toMatchObject({ sub: ALICE.id });
  }, 30_000);

  it("logs out at the OP's end_session_endpoint with id_token_hint, back at the post-logout URI; the OP asks for login again", async () => {
    const browser = browserForRp();
    const nonce = random();
    const { url, code } = await signIn(browser, { nonce });
    const { id_token: idToken } = await ok('exchange', { code, nonce });

    // while the OP session lives, the same request comes straight back with a code
    const again = await browser.open(url);
    expect(again.stoppedAt).toMatch(`${REDIRECT_URI}?code=`);

    const state = random();
    const logout = new URL((await ok('logout_url', { id_token: idToken, post_logout_redirect_uri: AFTER_LOGOUT, state })).url as string);
    // what the browser takes to the OP: the discovered end_session_endpoint with the ID token as hint
    expect(`${logout.origin}${logout.pathname}`).toBe((await ok('discover')).end_session_endpoint);
    expect(Object.fromEntries(logout.searchParams)).toEqual({ id_token_hint: idToken, post_logout_redirect_uri: AFTER_LOGOUT, state });
    const confirm = await browser.open(logout.href);
    expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.stoppedAt).toBe(`${AFTER_LOGOUT}?state=${state}`);

    const relogin = await browser.open(url);
    expectAt(relogin, '/op/interaction/', "our OP's login page again");
    expect(browser.form(relogin, { value: ['authenticator', 'password'] })).toBeDefined();
  }, 30_000);

  it('refuses an ID token with another nonce or for another client; the OP refuses a replayed code', async () => {
    const nonce = random();
    const { code } = await signIn(browserForRp(), { nonce });
    const { id_token: idToken } = await ok('exchange', { code, nonce });

    expect(await rb('verify', { id_token: idToken, nonce: random() }))
      .toMatchObject({ error: 'OpenIDConnect::ResponseObject::IdToken::InvalidNonce' });
    expect(await rb('verify', { id_token: idToken, nonce, client_id: 'someone-else' }))
      .toMatchObject({ error: 'OpenIDConnect::ResponseObject::IdToken::InvalidAudience' });
    expect(await rb('exchange', { code, nonce }))
      .toMatchObject({ error: 'Rack::OAuth2::Client::Error', status: 400, message: expect.stringMatching(/^invalid_grant/) });
  }, 30_000);
});
