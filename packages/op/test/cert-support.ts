import { memoryAccounts, memoryAdapter, type OpOptions } from '@openid-express/op';
import { FormBrowser, signIn, type BrowserPage } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { callbackOf, client, insecure, REGISTRATION_TOKEN, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

/** Alice with every standard claim, so each scope of the certification profile has something to release. */
export const FULL_ALICE = {
  ...ALICE,
  claims: {
    ...ALICE.claims, given_name: 'Alice', family_name: 'Liddell', preferred_username: 'alice', locale: 'en-GB',
    address: { street_address: '1 Rabbit Hole', locality: 'Oxford', country: 'GB' }, phone_number_verified: false,
  },
};

let ipCounter = 0;
/** A fresh client IP per walk, so the per-IP login throttle of one test does not spill into the next. */
export const nextIp = () => `203.0.113.${(ipCounter += 1) % 250}`;

/** An OP like the certification lab talks to: memory store, trustProxy (fresh IPs per test), alice with all claims. */
export async function startCertOp(extra: Partial<OpOptions> = {}, setup: Parameters<typeof startFlowFixture>[2] = {}): Promise<FlowFixture> {
  return startFlowFixture(memoryAdapter(), { trustProxy: true, accounts: memoryAccounts([FULL_ALICE]), ...extra }, setup);
}

/** An authorization URL with exactly these parameters (undefined ones left out), e.g. without a nonce. */
export function authUrl(f: FlowFixture, params: Record<string, string | undefined>, config = f.web): string {
  const url = new URL(config.serverMetadata().authorization_endpoint!);
  url.searchParams.set('client_id', config.clientMetadata().client_id);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
}

/** PKCE + state + nonce + redirect_uri + response_type=code, overridable (undefined drops one). */
export async function codeRequest(f: FlowFixture, extra: Record<string, string | undefined> = {}, config = f.web) {
  const verifier = client.randomPKCECodeVerifier();
  const params: Record<string, string | undefined> = {
    response_type: 'code', redirect_uri: f.redirectUri, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  };
  return { url: authUrl(f, params, config), verifier, params };
}

/** Exchanges the code the walk stopped at, checking state and nonce as sent. */
export function exchange(config: client.Configuration, page: BrowserPage, req: Awaited<ReturnType<typeof codeRequest>>) {
  return client.authorizationCodeGrant(config, callbackOf(page), {
    pkceCodeVerifier: req.verifier, expectedState: req.params.state, expectedNonce: req.params.nonce,
  });
}

/** A browser with its own client IP that stops at the fixture's client pages. */
export const browserOf = (f: FlowFixture): FormBrowser => f.browser(nextIp());

/** Signs alice in with `extra` authorization parameters and returns the token response and the browser. */
export async function aliceWith(f: FlowFixture, extra: Record<string, string | undefined> = {}, browser = browserOf(f), config = f.web) {
  const req = await codeRequest(f, extra, config);
  const page = await signIn(browser, req.url, { login: 'alice', password: ALICE.password });
  return { tokens: await exchange(config, page, req), browser, page };
}

/** Registers a client dynamically (the fixture wants its initial access token). */
export function register(f: FlowFixture, metadata: Record<string, unknown>, auth = client.ClientSecretBasic()) {
  return client.dynamicClientRegistration(new URL(f.op.issuer), { redirect_uris: [f.redirectUri], ...metadata }, auth,
    { ...insecure, initialAccessToken: REGISTRATION_TOKEN });
}

/** The visible text of a page (tags and styles removed), for "the page says" checks. */
export const textOf = (page: BrowserPage) => page.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

export { ALICE, callbackOf, client, signIn, type FlowFixture };
