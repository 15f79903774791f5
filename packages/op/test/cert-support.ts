import { exportJWK, generateKeyPair } from 'jose';
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

/**
 * How the RP talks to the OP in a certification test. Every module test runs in both modes against an
 * OP with the default PKCE policy (`pkce: 'unless-nonce'`):
 * - `confidential`: the static `web` client (client_secret_basic) sends `state` and `nonce` and NO PKCE,
 *   as the OpenID Foundation's conformance suite does;
 * - `public`: the static `pub` client (`token_endpoint_auth_method: 'none'`) sends PKCE S256, `state`
 *   and `nonce`; clients a test registers in this mode are public too.
 */
export interface ClientMode {
  name: 'confidential' | 'public';
  /** For test titles. */
  label: string;
  /** Whether the authorization requests of this mode carry a code_challenge. */
  pkce: boolean;
}

export const MODES: readonly ClientMode[] = [
  { name: 'confidential', label: 'confidential client, state + nonce, no PKCE', pkce: false },
  { name: 'public', label: 'public client, PKCE S256 + state + nonce', pkce: true },
];

/** A flow fixture seen from one client mode: `rp` is the mode's static client. */
export type CertFixture = FlowFixture & { mode: ClientMode; rp: client.Configuration };

/** `f` driven in `mode`. */
export function inMode(f: FlowFixture, mode: ClientMode): CertFixture {
  return { ...f, mode, rp: mode.name === 'public' ? f.pub : f.web };
}

/** `f` in its mode, but with PKCE on every authorization request. */
export const withPkce = (f: CertFixture): CertFixture => ({ ...f, mode: { ...f.mode, pkce: true } });

const modeOf = (f: FlowFixture): ClientMode | undefined => (f as Partial<CertFixture>).mode;
/** The client a test talks as: the mode's client, or `web` outside the modes. */
export const rpOf = (f: FlowFixture): client.Configuration => (f as Partial<CertFixture>).rp ?? f.web;
/** The client_id of the mode's client. */
export const rpId = (f: FlowFixture): string => rpOf(f).clientMetadata().client_id;

/** An authorization URL with exactly these parameters (undefined ones left out), e.g. without a nonce. */
export function authUrl(f: FlowFixture, params: Record<string, string | undefined>, config = rpOf(f)): string {
  const url = new URL(config.serverMetadata().authorization_endpoint!);
  url.searchParams.set('client_id', config.clientMetadata().client_id);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
}

/**
 * state + nonce + redirect_uri + response_type=code, and PKCE S256 unless the fixture's mode sends none
 * (outside the modes: always PKCE), overridable (undefined drops one).
 */
export async function codeRequest(f: FlowFixture, extra: Record<string, string | undefined> = {}, config = rpOf(f)) {
  const verifier = (modeOf(f)?.pkce ?? true) ? client.randomPKCECodeVerifier() : undefined;
  const params: Record<string, string | undefined> = {
    response_type: 'code', redirect_uri: f.redirectUri, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(),
    ...(verifier ? { code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } : {}),
    ...extra,
  };
  return { url: authUrl(f, params, config), verifier, params };
}

/** Exchanges the code the walk stopped at, checking state and nonce as sent (and the PKCE verifier, if any). */
export function exchange(config: client.Configuration, page: BrowserPage, req: Awaited<ReturnType<typeof codeRequest>>) {
  return client.authorizationCodeGrant(config, callbackOf(page), {
    pkceCodeVerifier: req.verifier, expectedState: req.params.state, expectedNonce: req.params.nonce,
  });
}

/** A browser with its own client IP that stops at the fixture's client pages. */
export const browserOf = (f: FlowFixture): FormBrowser => f.browser(nextIp());

/** Signs alice in with `extra` authorization parameters and returns the token response and the browser. */
export async function aliceWith(f: FlowFixture, extra: Record<string, string | undefined> = {}, browser = browserOf(f), config = rpOf(f)) {
  const req = await codeRequest(f, extra, config);
  const page = await signIn(browser, req.url, { login: 'alice', password: ALICE.password });
  return { tokens: await exchange(config, page, req), browser, page };
}

/**
 * Registers a client dynamically (the fixture wants its initial access token). Without `auth`, the
 * client is of the fixture's mode: public (`none`) in the public mode, client_secret_basic otherwise.
 */
export function register(f: FlowFixture, metadata: Record<string, unknown>, auth?: client.ClientAuth) {
  const pub = !auth && modeOf(f)?.name === 'public';
  return client.dynamicClientRegistration(new URL(f.op.issuer), {
    redirect_uris: [f.redirectUri], ...(pub ? { token_endpoint_auth_method: 'none' } : {}), ...metadata,
  }, auth ?? (pub ? client.None() : client.ClientSecretBasic()), { ...insecure, initialAccessToken: REGISTRATION_TOKEN });
}

/** Registers a client of the fixture's mode that must sign its request objects (JAR) with the returned key. */
export async function registerJar(f: FlowFixture, metadata: Record<string, unknown> = {}) {
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), alg: 'ES256', use: 'sig' };
  const config = await register(f, { jwks: { keys: [jwk] }, request_object_signing_alg: 'ES256', require_signed_request_object: true, ...metadata });
  return { config, key: keys.privateKey };
}

/** An authorization URL of `config` carrying `req`'s parameters only inside a signed request object. */
export async function jarUrl(config: client.Configuration, req: Awaited<ReturnType<typeof codeRequest>>, key: Parameters<typeof client.buildAuthorizationUrlWithJAR>[2]) {
  const params = Object.fromEntries(Object.entries(req.params).filter((e): e is [string, string] => e[1] !== undefined));
  return (await client.buildAuthorizationUrlWithJAR(config, params, key)).href;
}

/** Where implicit and hybrid clients are registered: oidc-provider wants https (not localhost) for them. */
export const FRONT_CHANNEL_REDIRECT = 'https://rp.example/cb';

/** A browser (own client IP) that stops at {@link FRONT_CHANNEL_REDIRECT}'s origin. */
export const frontChannelBrowser = (): FormBrowser => new FormBrowser({
  headers: { 'x-forwarded-for': nextIp() }, stopAt: (u: URL) => u.origin === new URL(FRONT_CHANNEL_REDIRECT).origin,
});

/** The visible text of a page (tags and styles removed), for "the page says" checks. */
export const textOf = (page: BrowserPage) => page.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

export { ALICE, callbackOf, client, signIn, type FlowFixture };
