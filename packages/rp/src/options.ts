/**
 * Options of `rp()` and the shape every provider entry (preset) returns.
 *
 * Single source of truth for option names, defaults and their documentation (the README's option
 * table is generated from / checked against this file). Validation with messages that say what to
 * fix lives here too.
 */
import type * as client from 'openid-client';
import type { Request, RequestHandler, Response, NextFunction } from 'express';
import type { Coordination } from './coordination.js';
import { OptionsError, type RpError } from './errors.js';
import type { DynamicOptions } from './discovery/registration.js';
import type { JWK } from 'jose';
import { checkKeys } from './keys.js';
import { didYouMean } from './did-you-mean.js';
import { DPOP_ALGS, type DPoPAlg } from './dpop.js';
import { CLOCKS_DIFFER } from './id-token.js';

/** The user as the app sees it on `req.oidc.user`, whatever the provider. */
export interface NormalizedUser {
  sub: string;
  provider: string;
  name?: string;
  email?: string;
  emailVerified?: boolean;
  picture?: string;
  /** The person's claims, merged from the ID token and the user info / user endpoint (the ID token's protocol claims — iss, aud, exp, nonce … — are in `idTokenClaims`). */
  claims: Record<string, unknown>;
}

/** Static provider metadata for an OP without discovery (IdPyOIDC's `provider_info`). */
export interface ProviderInfo {
  issuer?: string;
  authorization_endpoint: string;
  token_endpoint?: string;
  userinfo_endpoint?: string;
  jwks_uri?: string;
  end_session_endpoint?: string;
  [key: string]: unknown;
}

/**
 * What one entry of `rp({ providers })` holds: plain configuration returned by `oidc()`,
 * `google()`, `microsoft()`, `github()`, `oauth2()`.
 */
export interface ProviderConfig {
  /** 'oidc': ID token, discovery or providerInfo. 'oauth2': no ID token, user from `fetchUser`. */
  type: 'oidc' | 'oauth2';
  /** Human label for login buttons (GET {mountPath}/providers). */
  label?: string | undefined;
  clientId: string;
  clientSecret?: string | undefined;
  /**
   * Token endpoint client authentication. Default: client_secret_basic with a secret, none without.
   * `client_secret_jwt` signs an assertion with the secret (HS256); `private_key_jwt` with a private key of `rp({ keys })`.
   */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt' | 'none' | undefined;
  /** For `private_key_jwt`: the `alg` of the client assertion, which picks the signing key of `rp({ keys })` (default: the first signing key). `client_secret_jwt` is HS256. */
  tokenEndpointAuthSigningAlg?: string | undefined;
  /** Grant types this client may use (the OP's answer to a dynamic registration). Without "refresh_token", no refresh is attempted. Default: all. */
  grantTypes?: string[] | undefined;
  /** Issuer identifier; discovery runs against it unless `providerInfo` is given. */
  issuer?: string | undefined;
  /** Static metadata (IdPyOIDC's `provider_info`), used instead of discovery. */
  providerInfo?: ProviderInfo | undefined;
  /** Accept a discovery document whose `issuer` differs from the URL asked (IdPyOIDC: allow.issuer_mismatch). */
  allowIssuerMismatch?: boolean | undefined;
  /**
   * Space-separated scopes requested at login. Required only in an entry written by hand: `oidc()`
   * defaults it to "openid profile email" (the presets: see each).
   */
  scope: string;
  /**
   * 'code' (default), 'id_token' (all claims in the ID token, no token endpoint), or an implicit / hybrid type:
   * 'id_token token', 'code id_token', 'code token', 'code id_token token' (the ID token's `at_hash` / `c_hash` are checked;
   * in a hybrid type, an `iss` or `sub` of the front-channel ID token other than the token endpoint's is refused).
   */
  responseType?: ResponseType | undefined;
  /** 'query' (default for code), 'form_post' (default for the others), or 'fragment' (a small same-origin page posts it back). */
  responseMode?: 'query' | 'form_post' | 'fragment' | undefined;
  /** The `claims` request parameter (OIDC Core 5.5), e.g. `{ id_token: { email: { essential: true } }, userinfo: { picture: null } }`. */
  claims?: { id_token?: Record<string, unknown>; userinfo?: Record<string, unknown> } | undefined;
  /** The ID token `alg` registered for this client (`id_token_signed_response_alg`). "HS256"/"HS384"/"HS512" verify with the client secret and are accepted only when named here. */
  idTokenSignedResponseAlg?: string | undefined;
  /** Encrypted ID tokens (`id_token_encrypted_response_alg`): "RSA-OAEP", "ECDH-ES" … decrypted with `rp({ keys })`; "A128KW", "dir" … with a key derived from the client secret. */
  idTokenEncryptedResponseAlg?: string | undefined;
  /** Content encryption of ID tokens (`id_token_encrypted_response_enc`). Default "A128CBC-HS256". */
  idTokenEncryptedResponseEnc?: string | undefined;
  /** Signed UserInfo responses (`userinfo_signed_response_alg`, e.g. "RS256"); the signature is checked with the OP's JWKS. */
  userinfoSignedResponseAlg?: string | undefined;
  /** Encrypted UserInfo responses (`userinfo_encrypted_response_alg`); decrypted as for ID tokens. */
  userinfoEncryptedResponseAlg?: string | undefined;
  /** Content encryption of UserInfo responses (`userinfo_encrypted_response_enc`). Default "A128CBC-HS256". */
  userinfoEncryptedResponseEnc?: string | undefined;
  /** How the access token reaches the userinfo endpoint: 'header' (default, RFC 6750 §2.1) or 'body' (a POST form, §2.2). */
  userinfoTokenMethod?: 'header' | 'body' | undefined;
  /**
   * Send the authorization request as a request object (OIDC Core 6): `by` 'value' (`request=`) or 'reference'
   * (`request_uri=`, served by the RP at {mountPath}/request/:id; by value, with a warning, at an OP that takes no `request_uri`
   * or only registered ones, as op() does); `signingAlg` (default "RS256"; "none" for unsigned);
   * `encryptionAlg` / `encryptionEnc` to encrypt it to the OP's key (from its JWKS).
   */
  requestObject?: { by?: 'value' | 'reference'; signingAlg?: string; encryptionAlg?: string; encryptionEnc?: string } | undefined;
  /** Extra parameters on every authorization request (e.g. `access_type`, `prompt`, `hd`). */
  authorizationParams?: Record<string, string> | undefined;
  /** PKCE S256 (default true). */
  pkce?: boolean | undefined;
  /**
   * The issuer an ID token must carry, given its unverified claims and the metadata issuer
   * (e.g. a `{tenantid}` template filled from `tid`). Throw to refuse. Default: the metadata issuer.
   */
  expectedIssuer?: ((unverifiedClaims: Record<string, unknown>, metadataIssuer: string) => string) | undefined;
  /** Extra checks on the verified ID token claims; throw an Error to refuse the login. */
  validateIdToken?: ((claims: Record<string, unknown>) => void) | undefined;
  /** For `type: 'oauth2'`: load the user's claims with the access token. */
  fetchUser?: ((accessToken: string, fetchImpl: typeof fetch) => Promise<Record<string, unknown>>) | undefined;
  /** Map the provider's claims to the normalized user (sub, name, email, ...). */
  profile?: ((claims: Record<string, unknown>) => Partial<Omit<NormalizedUser, 'provider' | 'claims'>>) | undefined;
  /** HTTP wrapper for the provider's wire quirks, passed to openid-client as `customFetch`. */
  customFetch?: client.CustomFetch | undefined;
  /** Allow http:// endpoints (development and tests against loopback only). */
  allowInsecureRequests?: boolean | undefined;
  /**
   * For 'oidc': load claims from the userinfo endpoint after login. Default: when the OP has one and it can add to the
   * ID token — skipped only when the OP publishes `claims_supported`, every granted scope is a standard one (OIDC Core
   * 5.4), the ID token carries at least one claim of each of them and every claim listed there that those scopes can
   * release (and the `claims` parameter asks for no userinfo claims), and for a login whose authorization request names a
   * `resource` (RFC 8707: its access token is for that API, which userinfo refuses). `true`: always (when the OP has one);
   * `false`: never.
   */
  fetchUserInfo?: boolean | undefined;
  /** Back-channel logout tokens accepted from this OP at POST {mountPath}/backchannel-logout/:name (default true for 'oidc'). */
  backchannelLogout?: boolean | undefined;
  /**
   * Front-channel logout requests accepted from this OP at GET {mountPath}/frontchannel-logout/:name (default true for 'oidc';
   * `iss` and `sid` required). `'sid'`: a request with `sid` alone is accepted too, as Microsoft Entra ID sends it (`microsoft()`
   * sets this); the `sid` still has to be one of this provider's logins.
   */
  frontchannelLogout?: boolean | 'sid' | undefined;
  /**
   * Pushed Authorization Requests (RFC 9126; IdPyOIDC: the `pushed_authorization` add-on): logins POST their parameters (or their request object) to the OP's
   * pushed_authorization_request_endpoint and the browser carries only a `request_uri`. Default: on when the OP's
   * metadata says `require_pushed_authorization_requests`; `true`: always; `false`: never.
   */
  pushedAuthorizationRequests?: boolean | undefined;
  /**
   * DPoP (RFC 9449; IdPyOIDC: the `dpop` add-on): sender-constrained access tokens. Each login gets a key pair of its own (`alg` "ES256" by default,
   * "ES384", "ES512", "Ed25519"); the token and refresh grants carry its proof, the OP binds the access token to it, and
   * `req.oidc.fetch()` signs a proof per request. The private key is kept with the login in the session (one JWK).
   */
  dpop?: boolean | { alg?: DPoPAlg } | undefined;
}

/** The response types the RP handles (OIDC Core 3.1–3.3). */
export type ResponseType = 'code' | 'id_token' | 'id_token token' | 'code id_token' | 'code token' | 'code id_token token';
export const RESPONSE_TYPES: readonly ResponseType[] = ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token'];

/** Options of `rp()`. */
export interface RpOptions {
  /** External origin of the app (e.g. `https://app.example.com`); callback URLs derive from it. An app mounted under a path says it here too (`https://example.com/admin` with `app.use('/admin', router)` holding express-session and rp()): the routes are then at `/admin/auth/…`. */
  baseURL: string;
  /** Where the RP routes are mounted. Default `/auth`. */
  mountPath?: string | undefined;
  /** One entry per OP, keyed by the name used in URLs (`/login/:name`, `/callback/:name`). */
  providers: Record<string, ProviderConfig>;
  /** Provider `requireAuth()` sends users to when it names none. Default: the first one. */
  defaultProvider?: string | undefined;
  /** Unknown OPs found on the fly (WebFinger, dynamic registration). */
  dynamic?: DynamicOptions | undefined;
  /** Seconds a started login may take before its callback is refused. Default 600. A session that holds nothing but started logins is kept twice this long. */
  transactionTtl?: number | undefined;
  /**
   * Least seconds between two downloads of one OP's JWKS. A token with an unknown `kid` (the OP rotated its key)
   * triggers a download at once, or after this gap; concurrent ones share one download. Default 1.
   */
  jwksCooldown?: number | undefined;
  /** Your own error page: called instead of the default HTML/JSON answer. */
  onError?: ((err: RpError, req: Request, res: Response, next: NextFunction) => void) | undefined;
  /**
   * Your `express-session` middleware, run by `rp()` (instead of `app.use(session(...))` before it) so that a session
   * store that fails or stalls answers 503 `store_unavailable` with `Retry-After` instead of a 500 or a hang.
   */
  session?: RequestHandler | undefined;
  /**
   * Cross-instance coordination (one refresh grant per refresh token, one code exchange per login callback, atomic back-channel-logout index and
   * logout-token replay check). Needed with several instances: `redisCoordination(redisClient)`. Default: over the
   * session store, serialized within this process (exact for one instance); with express-session's `MemoryStore`,
   * in this process's memory (not among the store's sessions), unless its `get`, `set`, `touch` or `destroy` was replaced
   * on the instance (a library writing it through to a shared store): then among the sessions, as with other stores.
   */
  coordination?: Coordination | undefined;
  /** Milliseconds a session store call may take before the request answers 503 `store_unavailable` (checked by one timer every eighth of it, so a stalled call fails within 1⅛ × this; express-session's own `MemoryStore`, which cannot stall, is left as it is). Default 3000. */
  storeTimeout?: number | undefined;
  /**
   * The RP's private keys (JWKs with a `kid`; IdPyOIDC: `rp_keys`), for `private_key_jwt`, signed request objects and encrypted ID tokens /
   * UserInfo; `use` "sig" or "enc" (absent: both). Their public halves are served at GET {mountPath}/jwks.
   */
  keys?: JWK[] | undefined;
}

/** `RpOptions` with defaults applied. */
export interface ResolvedOptions extends Required<Omit<RpOptions, 'onError' | 'dynamic' | 'defaultProvider' | 'session' | 'coordination' | 'keys'>> {
  keys: JWK[];
  /**
   * Where the browser finds the RP's routes: the path of `baseURL` (an app mounted under a path, e.g.
   * `https://example.com/admin` with `app.use('/admin', rp(...))`) and `mountPath`. Every link and
   * redirect to them (requireAuth()'s, the sign-out form's) starts with it.
   */
  routesPath: string;
  defaultProvider: string | undefined;
  session?: RequestHandler;
  coordination?: Coordination;
  dynamic: DynamicOptions & { webfinger: boolean; registration: boolean };
  onError?: RpOptions['onError'];
}

const NAME = /^[A-Za-z0-9_-]+$/;

function checkUrl(option: string, value: unknown): URL {
  if (typeof value !== 'string' || !value) throw new OptionsError(option, 'is required: an absolute URL such as "https://app.example.com"');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OptionsError(option, `must be an absolute URL, got "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OptionsError(option, 'must be an http(s) URL');
  return url;
}

/** Every option of `rp()`, and of a provider entry: anything else is a typo (answered with "did you mean"). */
const RP_KEYS = ['baseURL', 'mountPath', 'providers', 'defaultProvider', 'dynamic', 'transactionTtl', 'jwksCooldown', 'onError', 'session',
  'coordination', 'storeTimeout', 'keys'] as const satisfies ReadonlyArray<keyof RpOptions>;
const PROVIDER_KEYS = ['type', 'label', 'clientId', 'clientSecret', 'tokenEndpointAuthMethod', 'tokenEndpointAuthSigningAlg', 'grantTypes', 'issuer',
  'providerInfo', 'allowIssuerMismatch', 'scope', 'responseType', 'responseMode', 'claims', 'idTokenSignedResponseAlg', 'idTokenEncryptedResponseAlg',
  'idTokenEncryptedResponseEnc', 'userinfoSignedResponseAlg', 'userinfoEncryptedResponseAlg', 'userinfoEncryptedResponseEnc', 'userinfoTokenMethod',
  'requestObject', 'authorizationParams', 'pkce', 'expectedIssuer', 'validateIdToken', 'fetchUser', 'profile', 'customFetch', 'allowInsecureRequests',
  'fetchUserInfo', 'backchannelLogout', 'frontchannelLogout', 'pushedAuthorizationRequests', 'dpop'] as const satisfies ReadonlyArray<keyof ProviderConfig>;
// both lists must name every option (a compile error otherwise)
const allRpKeys: Exclude<keyof RpOptions, (typeof RP_KEYS)[number]> extends never ? true : never = true;
const allProviderKeys: Exclude<keyof ProviderConfig, (typeof PROVIDER_KEYS)[number]> extends never ? true : never = true;
void allRpKeys;
void allProviderKeys;

/** Names other libraries use for our options (express-openid-connect, passport-openidconnect, openid-client). */
const ALIASES: Record<string, string> = {
  clientID: 'clientId', client_id: 'clientId', client_secret: 'clientSecret', issuerBaseURL: 'issuer', issuerUrl: 'issuer', issuerURL: 'issuer',
  baseUrl: 'baseURL', baseurl: 'baseURL', redirectUri: 'baseURL (callback URLs are {baseURL}{mountPath}/callback/{name})',
  callbackURL: 'baseURL (callback URLs are {baseURL}{mountPath}/callback/{name})', response_type: 'responseType', response_mode: 'responseMode',
  authorizationParameters: 'authorizationParams', routes: 'mountPath', secret: 'clientSecret (and the session secret goes to express-session)',
};

/** Refuses keys that are no option, suggesting the one meant. */
function checkKeyNames(at: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known, ALIASES);
    const where = near && !at && !known.includes(near.split(' ')[0]) ? ' in a provider entry: providers: { name: oidc({ ... }) }' : '';
    throw new OptionsError(at ? `${at}.${key}` : key, `is not an option${near ? `: did you mean "${near}"${where}?` : ` (the options are: ${known.join(', ')})`}`);
  }
}

/** Validates one provider entry; throws an `OptionsError` naming `providers.<name>.<field>`. */
export function checkProvider(name: string, p: ProviderConfig | undefined): void {
  const at = `providers.${name}`;
  if (!NAME.test(name)) throw new OptionsError(at, 'has a name that is not URL-safe: use letters, digits, "_" or "-"');
  if (!p || typeof p !== 'object') throw new OptionsError(at, 'must be a provider entry such as oidc({ issuer, clientId, clientSecret })');
  checkKeyNames(at, p, PROVIDER_KEYS);
  if (p.type !== 'oidc' && p.type !== 'oauth2') throw new OptionsError(`${at}.type`, 'must be "oidc" or "oauth2"');
  if (typeof p.clientId !== 'string' || !p.clientId) throw new OptionsError(`${at}.clientId`, 'is required (the client_id the OP gave you)');
  if (typeof p.scope !== 'string') throw new OptionsError(`${at}.scope`, 'must be a space-separated string');
  if (p.type === 'oidc' && !p.scope.split(' ').includes('openid')) throw new OptionsError(`${at}.scope`, 'must include "openid" for an OpenID Connect provider');
  if (!p.issuer && !p.providerInfo) throw new OptionsError(at, 'needs "issuer" (for discovery) or "providerInfo" (static metadata)');
  if (p.issuer) checkUrl(`${at}.issuer`, p.issuer);
  const http = [p.issuer, p.providerInfo?.authorization_endpoint, p.providerInfo?.token_endpoint].find((u) => typeof u === 'string' && u.startsWith('http:'));
  if (http && !p.allowInsecureRequests) {
    throw new OptionsError(p.issuer === http ? `${at}.issuer` : `${at}.providerInfo`,
      `is an http:// URL ("${http}"): OpenID Providers must use https. For local development against an OP on this machine, add allowInsecureRequests: true to this provider entry`);
  }
  if (p.providerInfo && typeof p.providerInfo.authorization_endpoint !== 'string') {
    throw new OptionsError(`${at}.providerInfo.authorization_endpoint`, 'is required in static provider metadata');
  }
  if (p.type === 'oauth2' && !p.fetchUser && !p.providerInfo?.userinfo_endpoint) {
    throw new OptionsError(`${at}.fetchUser`, 'is required for an OAuth 2.0 provider without a userinfo_endpoint');
  }
  const method = p.tokenEndpointAuthMethod;
  const methods = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'];
  if (method !== undefined && !methods.includes(method)) throw new OptionsError(`${at}.tokenEndpointAuthMethod`, `must be one of ${methods.join(', ')}`);
  if (method && method !== 'none' && method !== 'private_key_jwt' && !p.clientSecret) throw new OptionsError(`${at}.clientSecret`, `is required with tokenEndpointAuthMethod "${method}"`);
  if (p.responseType !== undefined && !RESPONSE_TYPES.includes(p.responseType)) throw new OptionsError(`${at}.responseType`, `must be one of ${RESPONSE_TYPES.map((t) => `"${t}"`).join(', ')}`);
  if (p.responseType && p.responseType !== 'code' && p.responseMode === 'query') {
    throw new OptionsError(`${at}.responseMode`, `cannot be "query" with responseType "${p.responseType}" (tokens never travel in a query string): use "form_post" or "fragment"`);
  }
  if (p.idTokenSignedResponseAlg?.startsWith('HS') && !p.clientSecret) throw new OptionsError(`${at}.clientSecret`, `is required to verify ${p.idTokenSignedResponseAlg} ID tokens`);
  if (p.requestObject?.signingAlg?.startsWith('HS') && !p.clientSecret) throw new OptionsError(`${at}.clientSecret`, `is required to sign ${p.requestObject.signingAlg} request objects`);
  if (p.idTokenSignedResponseAlg === 'none') throw new OptionsError(`${at}.idTokenSignedResponseAlg`, 'cannot be "none": unsigned ID tokens are never accepted');
  checkPushAndDPoP(at, p);
  for (const option of ['idTokenEncryptedResponseAlg', 'userinfoEncryptedResponseAlg'] as const) {
    if (/^(A\d{3}(GCM)?KW|dir)$/.test(p[option] ?? '') && !p.clientSecret) throw new OptionsError(`${at}.clientSecret`, `is required: ${option} "${p[option]}" uses a key derived from the client secret`);
  }
}

/** `pushedAuthorizationRequests` and `dpop`, and what DPoP cannot be combined with (a token sent any other way than by `Authorization` header). */
function checkPushAndDPoP(at: string, p: ProviderConfig): void {
  const par = p.pushedAuthorizationRequests;
  if (par !== undefined && typeof par !== 'boolean') throw new OptionsError(`${at}.pushedAuthorizationRequests`, 'must be true or false (default: when the OP requires it)');
  const dpop = p.dpop;
  if (dpop === undefined || dpop === false) return;
  if (dpop !== true && (typeof dpop !== 'object' || dpop === null)) throw new OptionsError(`${at}.dpop`, 'must be true or { alg }');
  if (typeof dpop === 'object') {
    checkKeyNames(`${at}.dpop`, dpop, ['alg']);
    if (dpop.alg !== undefined && !DPOP_ALGS.includes(dpop.alg)) throw new OptionsError(`${at}.dpop.alg`, `must be one of ${DPOP_ALGS.join(', ')}`);
  }
  const conflict = p.fetchUser ? 'fetchUser (the provider\'s user endpoint takes a Bearer token)'
    : p.userinfoTokenMethod === 'body' ? 'userinfoTokenMethod "body" (a DPoP token travels in the Authorization header)'
      : p.userinfoSignedResponseAlg || p.userinfoEncryptedResponseAlg ? 'signed or encrypted UserInfo (not supported with DPoP yet)'
        : p.responseType === 'id_token' || p.responseType === 'id_token token' ? `responseType "${p.responseType}" (no token endpoint to bind a token at)` : undefined;
  if (conflict) throw new OptionsError(`${at}.dpop`, `cannot be combined with ${conflict}`);
}

/** Checks the parts of provider entries that depend on `rp({ keys })`. */
function checkProviderKeys(name: string, p: ProviderConfig, keys: JWK[] | undefined): void {
  const needs = (option: string, what: string): never => {
    throw new OptionsError(`providers.${name}.${option}`, `${what} needs the RP's private keys: add rp({ keys: [privateJwk] }) (a JWK with a kid)`);
  };
  if (keys?.length) return;
  if (p.tokenEndpointAuthMethod === 'private_key_jwt') needs('tokenEndpointAuthMethod', '"private_key_jwt"');
  // symmetric algorithms (A128KW, dir …) use a key derived from the client secret instead (OIDC Core 10.2)
  const symmetric = (alg: string): boolean => /^(A\d{3}(GCM)?KW|dir)$/.test(alg);
  if (p.idTokenEncryptedResponseAlg && !symmetric(p.idTokenEncryptedResponseAlg)) needs('idTokenEncryptedResponseAlg', 'decrypting ID tokens');
  if (p.userinfoEncryptedResponseAlg && !symmetric(p.userinfoEncryptedResponseAlg)) needs('userinfoEncryptedResponseAlg', 'decrypting UserInfo responses');
  if (p.requestObject && (p.requestObject.signingAlg ?? 'RS256') !== 'none' && !p.requestObject.signingAlg?.startsWith('HS')) needs('requestObject', 'signing request objects');
}

/**
 * Applies defaults and validates `rp()` options; throws an `OptionsError` naming the option.
 *
 * @example
 * ```ts
 * resolveOptions({ baseURL: 'https://app.example.com', providers: { corp: oidc({ ... }) } });
 * ```
 */
export function resolveOptions(options: RpOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new OptionsError('options', 'must be an object: rp({ baseURL, providers })');
  checkKeyNames('', options, RP_KEYS);
  const base = checkUrl('baseURL', options.baseURL);
  const mountPath = options.mountPath ?? '/auth';
  if (typeof mountPath !== 'string' || !mountPath.startsWith('/') || (mountPath.length > 1 && mountPath.endsWith('/'))) {
    throw new OptionsError('mountPath', 'must be a path starting with "/" and not ending with "/", e.g. "/auth"');
  }
  if (!options.providers || typeof options.providers !== 'object') throw new OptionsError('providers', 'is required: { name: oidc({ issuer, clientId, clientSecret }) }');
  if (Array.isArray(options.providers)) {
    throw new OptionsError('providers', 'must be an object that names each provider, not an array: providers: { corp: oidc({ issuer, clientId, clientSecret }) } '
      + '(the name is in the login and callback URLs: /auth/login/corp)');
  }
  checkKeys(options.keys);
  for (const [name, p] of Object.entries(options.providers)) {
    checkProvider(name, p);
    checkProviderKeys(name, p, options.keys);
  }
  const names = Object.keys(options.providers);
  const dynamic = { ...options.dynamic, webfinger: !!options.dynamic?.webfinger, registration: !!options.dynamic?.registration };
  if (dynamic.allowIssuer !== undefined && typeof dynamic.allowIssuer !== 'function') throw new OptionsError('dynamic.allowIssuer', 'must be a function (issuer) => boolean');
  if (dynamic.store !== undefined && (typeof dynamic.store?.get !== 'function' || typeof dynamic.store?.set !== 'function')) {
    throw new OptionsError('dynamic.store', 'must have get(key) and set(key, value), e.g. memoryRegistrationStore()');
  }
  if (names.length === 0 && !dynamic.webfinger) throw new OptionsError('providers', 'must name at least one provider (or enable dynamic.webfinger)');
  if (options.defaultProvider !== undefined && !names.includes(options.defaultProvider)) {
    throw new OptionsError('defaultProvider', `must be one of the providers (${names.join(', ')})`);
  }
  const positive = (option: string, v: number | undefined, d: number): number => {
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new OptionsError(option, 'must be a number of seconds (>= 0)');
    return v;
  };
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new OptionsError('onError', 'must be a function (err, req, res, next)');
  if (options.session !== undefined && typeof options.session !== 'function') {
    throw new OptionsError('session', 'must be your express-session middleware: session({ secret, resave: false, saveUninitialized: false, store })');
  }
  const c = options.coordination;
  if (c !== undefined && (typeof c !== 'object' || c === null || typeof c.setIfAbsent !== 'function' || typeof c.takeSet !== 'function')) {
    throw new OptionsError('coordination', 'must be a Coordination, e.g. redisCoordination(redisClient)');
  }
  const storeTimeout = options.storeTimeout ?? 3000;
  if (!Number.isInteger(storeTimeout) || storeTimeout <= 0) throw new OptionsError('storeTimeout', 'must be a positive whole number of milliseconds');
  return {
    baseURL: base.href.replace(/\/$/, ''),
    mountPath: mountPath === '/' ? '' : mountPath,
    routesPath: base.pathname.replace(/\/$/, '') + (mountPath === '/' ? '' : mountPath),
    providers: { ...options.providers },
    defaultProvider: options.defaultProvider ?? names[0],
    dynamic,
    transactionTtl: positive('transactionTtl', options.transactionTtl, 600),
    jwksCooldown: positive('jwksCooldown', options.jwksCooldown, 1),
    onError: options.onError,
    session: options.session,
    coordination: c,
    storeTimeout,
    keys: options.keys ?? [],
  };
}

/**
 * For a provider whose client signs what it sends the OP (`private_key_jwt` / `client_secret_jwt`
 * assertions, signed request objects): what else a refusal of its credentials may mean. The OP takes
 * such a JWT only within its own clock tolerance (oidc-provider's `clockTolerance`, 15 s by default).
 */
export function assertionClockHint(p: ProviderConfig): string {
  const jwt = p.tokenEndpointAuthMethod === 'private_key_jwt' || p.tokenEndpointAuthMethod === 'client_secret_jwt';
  return jwt ? `; or ${CLOCKS_DIFFER} by more than the OP tolerates for the client's signed assertion (oidc-provider: 15 s): keep both in time (NTP)` : '';
}
