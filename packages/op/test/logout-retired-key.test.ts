/**
 * RP-initiated logout with an `id_token_hint` signed with a key the OP no longer has: an ID token
 * issued before the OP's signing key was changed (and the old key removed), kept by an app whose user
 * has not refreshed since. Before, oidc-provider refused the sign-out (400 "could not validate
 * id_token_hint"), the user stayed signed in at the OP, and the next person at that browser was
 * signed in as them (probe9-rotate d3). Now the hint is left out and the user is asked to confirm.
 * Such a hint cannot be told from a forged one (the OIDF suite's oidcc-rp-initiated-logout-bad-id-token-hint):
 * nothing it came with is used, so the user is not sent to the post_logout_redirect_uri (certification probe F1).
 */
import * as jose from 'jose';
import { generateKeys, memoryAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

let f: FlowFixture;
let retiredKey: CryptoKey;
beforeAll(async () => {
  retiredKey = (await jose.generateKeyPair('RS256')).privateKey;
});

/** Alice signed in at the OP in `browser`, and her ID token's claims. */
async function signedIn() {
  const browser = f.browser();
  const auth = await f.authorization();
  const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
  const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), {
    pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
  });
  return { browser, tokens, claims: tokens.claims()! };
}

/** The same claims as an ID token the OP signed with a key it has since removed. */
const signedWithRetiredKey = (claims: jose.JWTPayload) =>
  new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'retired-2025' }).sign(retiredKey);

/** Alice's OP session is over: a silent authorization request answers login_required. */
async function signedOut(browser: ReturnType<FlowFixture['browser']>): Promise<boolean> {
  const silent = await f.authorization(f.web, { prompt: 'none' });
  return callbackOf(await browser.open(silent.url)).searchParams.get('error') === 'login_required';
}

describe.each([
  ['keys with a kid', () => ({})],
  // oidc-provider gives such a key its thumbprint as kid; before the review, every hint counted as retired
  ['a key without a kid', () => {
    const { jwks, cookieKeys } = generateKeys();
    return { jwks: { keys: jwks.keys.map(({ kid: _kid, ...key }) => key) }, cookieKeys };
  }],
])('an OP with %s', (_name, keys) => {
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), keys());
  });
  afterAll(() => f?.op.close());

  test('the user is asked to confirm and the OP session ends (before: 400, still signed in); the browser stays on the OP\'s "Signed out" page, not sent to the app\'s post_logout_redirect_uri', async () => {
    const { browser, claims } = await signedIn();
    const endUrl = client.buildEndSessionUrl(f.web, { id_token_hint: await signedWithRetiredKey(claims), post_logout_redirect_uri: `${f.op.origin}/bye`, state: 'st' });
    const confirm = await browser.open(endUrl.href);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Yes, sign me out');
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.stoppedAt).toBeUndefined(); // before: sent to /bye?state=st on a hint nobody could check
    expect(done.html).toContain('<h1>Signed out</h1>');
    expect(await signedOut(browser)).toBe(true);
  });

  test('a hint the OP never signed (the OIDF suite signs one with the client\'s key and a kid the OP never had), without client_id: no redirect to the post_logout_redirect_uri it names', async () => {
    const { browser, claims } = await signedIn();
    const { privateKey } = await jose.generateKeyPair('RS256');
    const forged = await new jose.SignJWT({ ...claims, sub: 'bob' }).setProtectedHeader({ alg: 'RS256', kid: 'client-key-1' }).sign(privateKey);
    const url = new URL(`${f.op.issuer}/session/end`);
    url.search = new URLSearchParams({ id_token_hint: forged, post_logout_redirect_uri: `${f.op.origin}/bye`, state: 'bad-hint' }).toString();
    const confirm = await browser.open(url.href);
    expect(confirm.status).toBe(200);
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.stoppedAt).toBeUndefined();
    expect(done.html).not.toContain('bad-hint');
  });

  test('still refused: a hint signed with the OP\'s own key but tampered with; a post_logout_redirect_uri the client did not register is never followed', async () => {
    const { browser, tokens, claims } = await signedIn();
    const elsewhere = client.buildEndSessionUrl(f.web, { id_token_hint: await signedWithRetiredKey(claims), post_logout_redirect_uri: 'https://evil.example/' });
    const asked = await browser.open(elsewhere.href);
    expect(asked.html).not.toContain('evil.example');
    const [header, , signature] = tokens.id_token!.split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'bob' })).toString('base64url')}.${signature}`;
    const tampered = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: forged, post_logout_redirect_uri: `${f.op.origin}/bye` }).href);
    expect(tampered.status).toBe(400);
    expect(tampered.html).toContain('could not validate id_token_hint');
    expect(await signedOut(browser)).toBe(false);
  });
});
