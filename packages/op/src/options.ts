import type { RequestHandler } from 'express';
import { didYouMean } from '@openid-express/rp';
import type { ClientMetadata, Configuration, JWK } from 'oidc-provider';
import { boundAccounts, type AccountStore } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import type { Authenticator } from './authenticators/authenticator.js';
import { OpConfigError } from './errors.js';
import { PKCE_POLICIES, type PkcePolicy } from './pkce-policy.js';
import type { TokenExchangePolicy } from './grants/token-exchange.js';
import { parseAllowedHosts } from './private-hosts.js';
import type { Views } from './views/render.js';

/** A client registered at start-up: oidc-provider client metadata plus `firstParty`. */
export type OpClient = ClientMetadata & {
  /** A client of the same organisation: never shown the consent screen. Default false. */
  firstParty?: boolean;
};

/** Which optional endpoints and mechanisms are on. */
export interface OpFeatures {
  /** `grant_type=client_credentials` at the token endpoint; the token's subject (`sub`, in its JWT form and in introspection) is the client. Default false. */
  clientCredentials?: boolean | undefined;
  /** RFC 7662 introspection endpoint. Default true. */
  introspection?: boolean | undefined;
  /** RFC 7009 revocation endpoint. Default true. */
  revocation?: boolean | undefined;
  /**
   * OIDC dynamic client registration. Default off. `true` lets anyone register; give
   * `{ initialAccessToken: 'secret' }` to require that bearer token at the registration endpoint.
   * With an `https:` issuer, a web client's `redirect_uris` must be https (http only on localhost,
   * 127.0.0.1 or [::1]): `invalid_redirect_uri` otherwise. Clients in `clients` are not checked so.
   */
  registration?: boolean | { initialAccessToken?: string } | undefined;
  /** RFC 9126 pushed authorization requests. Default true. */
  pushedAuthorizationRequests?: boolean | undefined;
  /** RFC 9101 request objects (`request` parameter, JAR). Default true. */
  requestObjects?: boolean | undefined;
  /**
   * OIDC Core 6.2 `request_uri`: the request object by reference. A client registers the https URLs it
   * serves its request objects at (`request_uris` client metadata, in `clients` or at registration; http too
   * while the issuer is http);
   * one of them (compared without its fragment) is fetched at the authorization request (oidc-provider's
   * outgoing-request rules: no private addresses, those of `allowPrivateHosts` only for clients listed in
   * `clients`, 2.5 s, at most 64 KB, no redirects; one fetch per URI at a time, at most 8 per client) and
   * checked as a `request` parameter is. Any other URL, or one that fails, is
   * `invalid_request_uri`. Discovery says `request_uri_parameter_supported: true` and `require_request_uri_registration: true`.
   * Default: as `requestObjects`.
   */
  requestUri?: boolean | undefined;
  /** RFC 9449 DPoP sender-constrained tokens, on every grant (op()'s password and token-exchange grants too): a proof binds the token to its key, and a client registered with `dpop_bound_access_tokens: true` that sends none is refused. Default true. */
  dPoP?: boolean | undefined;
  /** OIDC back-channel logout to clients that register a `backchannel_logout_uri`. Default true. */
  backchannelLogout?: boolean | undefined;
  /** OIDC Core 5.5 `claims` request parameter (individual and essential claims). Default true. */
  claimsParameter?: boolean | undefined;
  /**
   * RFC 8707 resource indicators: the APIs clients may ask access tokens for with the `resource`
   * parameter (authorization requests, client credentials, refresh, device flow, token exchange and
   * password grants). `{ resources: { 'https://api.example.com': { scope: 'read write' } }, defaultResource? }`
   * (see `OpResource`). A resource's tokens are RFC 9068 JWTs (`typ: at+jwt`; `aud` the resource or its
   * `audience`, `sub`, `client_id`, `scope`, plus the account claims its `claimsByScope` names) signed
   * with `jwks` (the OP's `/jwks`), or opaque with `accessTokenFormat: 'opaque'`. A client with `scope`
   * metadata gets only those of a resource's scopes. A token request that names no resource gets one for
   * the resource that was granted, else `defaultResource` when it asks no `openid` scope. Default off:
   * a `resource` parameter is refused (`invalid_target`).
   */
  resourceIndicators?: false | OpResourceIndicators | undefined;
  /**
   * RFC 8693 token exchange (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`): a client
   * trades an access token this OP issued to someone (`subject_token`, opaque or JWT,
   * `subject_token_type=urn:ietf:params:oauth:token-type:access_token`) for a token for another of
   * `resourceIndicators.resources` (`resource` or `audience`), with the same or fewer scopes, the same
   * `sub` and `act: { sub: <client_id> }` naming the client (delegation); it never outlives the subject
   * token. Give `{ policy }`: `({ client, subject, resource, audience, scope }) => boolean | Promise<boolean>`
   * decides who may exchange what (anything but `true` is `access_denied`); needs `resourceIndicators`.
   * Clients list the grant type in `grant_types`. Default off.
   */
  tokenExchange?: false | OpTokenExchange | undefined;
  /**
   * RFC 6749 §4.3 resource owner password credentials (`grant_type=password`, `username`, `password`)
   * for clients that list `password` in `grant_types`: the password is checked like the login form's
   * (the `accounts` store, the same per-account and per-IP lock-out, `throttle`). Answers an access
   * token, and a refresh token when the client may refresh and asks `offline_access`; no ID token.
   * OAuth 2.1 removes this grant (the client sees the password): op() warns at start-up. Default false.
   */
  passwordGrant?: boolean | undefined;
  /**
   * RFC 8628 device authorization grant: the device asks at `/device/auth` and polls the token endpoint;
   * the user types the code at `/device` (the `deviceInput` and `deviceConfirm` views, then the usual
   * login and consent, then `deviceSuccess`). Clients list `urn:ietf:params:oauth:grant-type:device_code`
   * in `grant_types`; codes live `ttl.DeviceCode` seconds. Default false.
   */
  deviceFlow?: boolean | undefined;
}

/** One API of `features.resourceIndicators.resources`, keyed by its resource indicator (an absolute URI). */
export interface OpResource {
  /** The scopes it knows, space-separated, e.g. `'read write'`. Required. */
  scope: string;
  /** `'jwt'` (RFC 9068, default: the API verifies it with the OP's `/jwks`) or `'opaque'` (the API introspects). */
  accessTokenFormat?: 'jwt' | 'opaque' | undefined;
  /** The tokens' `aud`, and the name the token exchange's `audience` parameter may use. Default the resource indicator. */
  audience?: string | undefined;
  /** Lifetime of its access tokens in seconds. Default `ttl.AccessToken` (`ttl.ClientCredentials` for client credentials). */
  accessTokenTTL?: number | undefined;
  /**
   * Account claims its tokens carry for each granted scope, e.g. `{ read: ['email'] }`: in the JWT, or in
   * the introspection answer of an opaque token. Not for client credentials (no account). Default none.
   */
  claimsByScope?: Record<string, string[]> | undefined;
}

/** `features.resourceIndicators`. */
export interface OpResourceIndicators {
  /** The APIs, by resource indicator (`https://api.example.com`, sent as `resource` exactly so). Required. */
  resources: Record<string, OpResource>;
  /** The resource of a request that names none and asks no `openid` scope (e.g. client credentials). Default none. */
  defaultResource?: string | undefined;
}

/** `features.tokenExchange`. */
export interface OpTokenExchange {
  /** Whether `client` may have a token for `resource` with `scope` on behalf of `subject`; anything but `true` refuses. Required. */
  policy: TokenExchangePolicy;
}

/** Lifetimes in seconds. */
export interface OpTtl {
  /** Default 3600. */ AccessToken?: number | undefined;
  /** Default 60. */ AuthorizationCode?: number | undefined;
  /** Default 600. */ ClientCredentials?: number | undefined;
  /** Default 3600. */ IdToken?: number | undefined;
  /** Default 14 days; never past its Grant (`Grant` below), which no refresh extends: raise both for longer offline access. A public web client's rotated token keeps the rest of the old one's life. */ RefreshToken?: number | undefined;
  /** How long a user may take on the login/consent screens. Default 3600. */ Interaction?: number | undefined;
  /** The OP's login session. Default 14 days. */ Session?: number | undefined;
  /** The longest a recorded consent (an oidc-provider Grant) lasts: found again only through the OP session that recorded it (same browser, until sign-out), and the longest a chain of refresh tokens lasts. Default 14 days. */ Grant?: number | undefined;
  /** How long a device flow's user code may be entered (`features.deviceFlow`). Default 600. */ DeviceCode?: number | undefined;
}

/** Failed-login limits, counted in the `adapter` store so they hold across instances. */
export interface OpThrottle {
  /**
   * Failures allowed from one client IP (an IPv6 one's /64) within `windowSeconds` (for any accounts), after which that
   * address is locked out, the right password included. Default 5.
   */
  maxFailures?: number | undefined;
  /**
   * Failures allowed for one account from all addresses together within `windowSeconds`, after which the account is
   * locked for everyone. Default 100: far above `maxFailures`, so strangers sending a few guesses each from many
   * addresses cannot keep the account's owner out (a lock-out they could renew every window).
   */
  maxAccountFailures?: number | undefined;
  /** How long failures are remembered, from the first one (the lock-out time). Default 900. */
  windowSeconds?: number | undefined;
}

/** Options of `op()`. */
export interface OpOptions {
  /** The issuer URL; its path must be where the router is mounted (`https://id.example.com/op` → `app.use('/op', ...)`). Required. */
  issuer: string;
  /** Clients known at start-up (oidc-provider client metadata, snake_case: `redirect_uris`, `post_logout_redirect_uris`, `backchannel_logout_uri` …, plus op()'s `firstParty`), each checked at start-up as oidc-provider checks it at the client's first request. A name oidc-provider does not know is refused with the one meant (`backchannelLogoutUri` → `backchannel_logout_uri`), as oidc-provider would drop it without a word; so is metadata that needs a feature that is off (`id_token_encrypted_response_alg` without `provider: { features: { encryption: { enabled: true } } }`, `backchannel_logout_uri` with `features: { backchannelLogout: false }` …). `userinfo_signed_response_alg` works by default (signed userinfo, OIDC Core §5.3.2). Fields of your own go in `provider: { extraClientMetadata: { properties } }`. Default none. */
  clients?: OpClient[] | undefined;
  /** Where accounts are found (used by `password`, userinfo claims and WebFinger). Required. */
  accounts: AccountStore;
  /** The ways to sign in, offered together on the login page. Default `[password()]`. */
  authenticators?: Authenticator[] | undefined;
  /** View overrides: a function returning HTML or a view name for the app's engine. */
  views?: Partial<Views> | undefined;
  /** Records and login counters. Default `memoryAdapter()` (warns when NODE_ENV=production). */
  adapter?: OpStore | undefined;
  /** Private signing keys (`{ keys: [jwk, ...] }`). Generated with a warning in development; required in production. */
  jwks?: { keys: JWK[] } | undefined;
  /** Keys signing the OP's cookies, newest first. Generated with a warning in development; required in production. */
  cookieKeys?: string[] | undefined;
  /** Optional endpoints and mechanisms. */
  features?: OpFeatures | undefined;
  /** Lifetimes in seconds. */
  ttl?: OpTtl | undefined;
  /** Extra non-OIDC scopes clients may ask for (e.g. `api:read` for client credentials). Default none. */
  scopes?: string[] | undefined;
  /**
   * Trust `X-Forwarded-*` from one proxy hop (TLS-terminating proxy, load balancer). Default false;
   * op() warns once when requests carry `X-Forwarded-For` while it is off (login throttling would
   * count every client as the proxy's address), and, with an https issuer, once when a request came
   * over http with `X-Forwarded-Proto: https` (every endpoint it publishes would say http://).
   * When on, an https issuer's endpoints are https whatever `X-Forwarded-Proto` says; with an http
   * issuer, one whose first entry is not `http` or `https` gets a 400, and op() warns once an hour
   * when it says `https` (a TLS proxy in front: the issuer should be https://, as discovery and
   * tokens name the issuer as configured).
   */
  trustProxy?: boolean | undefined;
  /** Failed-login limits. */
  throttle?: OpThrottle | undefined;
  /**
   * The session middleware (`session({...})` of express-session) for op() to run itself, only on the
   * routes that use the browser session (the logout page and its confirmation, the login form's POST,
   * redirect-based authenticators' callbacks), with a deadline: a session store that fails or stalls
   * is a 503 `store_unavailable`. Default none: mount express-session before op() instead.
   */
  session?: RequestHandler | undefined;
  /**
   * Milliseconds a store call (the `session` middleware and its store, an `adapter` of your own, your
   * `accounts` store's methods and an authenticator's `verify()`; `redisAdapter` has its own `timeout`)
   * may take before the request is answered 503 `store_unavailable` with `Retry-After: 5`. Default 3000.
   */
  storeTimeout?: number | undefined;
  /**
   * Hosts the OP may call although they are private or loopback (back-channel logout to RPs on an
   * internal network): host names (`rp.internal`), IP addresses (`10.1.2.3`) or CIDR networks
   * (`10.0.0.0/8`). Every other destination keeps oidc-provider's SSRF protection. Default none.
   */
  allowPrivateHosts?: string[] | undefined;
  /**
   * When authorization requests must use PKCE. `'unless-nonce'` (default, RFC 9700 §2.1.1): always for public clients
   * and for requests without a `nonce`; a confidential client's OpenID Connect request with a `nonce` may omit it.
   * `'always'`: every request. `'public-only'`: public clients only, so a confidential client may send neither PKCE nor
   * a nonce (oidc-provider's default; what the OpenID certification module for requests without a nonce sends):
   * opt in only for a certification run or an RP that cannot change. A `code_challenge` that is sent is always
   * checked; only `S256` is accepted.
   */
  pkce?: PkcePolicy | undefined;
  /**
   * The OP's name, shown in the header and the title of every page it draws (login, consent, error,
   * sign-out), e.g. `"Example ID"`. Default: the issuer's host (`id.example.com`).
   */
  name?: string | undefined;
  /**
   * The OP's logo, shown next to `name` at the top of every page: an `https:` URL or a path on the
   * OP's own site (`/static/logo.svg`). Default none.
   */
  logoUri?: string | undefined;
  /**
   * Where the "Signed out" page and the error pages send people onward when no client to return to is
   * known: an http(s) URL or a path on the OP's site. Default none: those pages say to go back to the
   * application (a guessed `/` is a 404 on most identity providers, mounted under a path).
   */
  homeUri?: string | undefined;
  /** Raw oidc-provider configuration merged last, over everything above. Default none. */
  provider?: Configuration | undefined;
}

/** `OpOptions` with defaults applied. */
export interface ResolvedOptions extends Required<Omit<OpOptions, 'adapter' | 'jwks' | 'cookieKeys' | 'provider' | 'views' | 'session' | 'logoUri' | 'homeUri'>> {
  issuerUrl: URL;
  /** The path the router must be mounted at ('' for the root). */
  mountPath: string;
  adapter?: OpStore;
  jwks?: { keys: JWK[] };
  cookieKeys?: string[];
  provider: Configuration;
  views: Partial<Views>;
  features: OpFeatures;
  ttl: Required<OpTtl>;
  throttle: Required<OpThrottle>;
  session?: RequestHandler;
  logoUri?: string;
  homeUri?: string;
}

const DAY = 24 * 3600;

/** Default lifetimes (seconds). */
export const DEFAULT_TTL: Required<OpTtl> = {
  AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 600, IdToken: 3600,
  RefreshToken: 14 * DAY, Interaction: 3600, Session: 14 * DAY, Grant: 14 * DAY, DeviceCode: 600,
};

const VIEW_NAMES = ['layout', 'login', 'consent', 'error', 'logout', 'logoutSuccess', 'deviceInput', 'deviceConfirm', 'deviceSuccess'];
const FEATURE_NAMES = ['clientCredentials', 'introspection', 'revocation', 'registration',
  'pushedAuthorizationRequests', 'requestObjects', 'requestUri', 'dPoP', 'backchannelLogout', 'claimsParameter',
  'resourceIndicators', 'tokenExchange', 'passwordGrant', 'deviceFlow'];

function fail(option: string, message: string): never {
  throw new OpConfigError(option, message);
}

/** Every option of `op()`: anything else is a typo or another library's name, answered with "did you mean". */
const OP_KEYS = ['issuer', 'clients', 'accounts', 'authenticators', 'views', 'adapter', 'jwks', 'cookieKeys', 'features', 'ttl', 'scopes',
  'trustProxy', 'throttle', 'session', 'storeTimeout', 'allowPrivateHosts', 'pkce', 'name', 'logoUri', 'homeUri', 'provider'] as const satisfies ReadonlyArray<keyof OpOptions>;
const allOpKeys: Exclude<keyof OpOptions, (typeof OP_KEYS)[number]> extends never ? true : never = true;
void allOpKeys;
/** Names other libraries (oidc-provider's configuration, passport) use for our options. */
const OP_ALIASES: Record<string, string> = {
  issuerBaseURL: 'issuer', issuerUrl: 'issuer', baseURL: 'issuer', keys: 'jwks (signing keys) or cookieKeys (cookie keys)',
  cookies: 'cookieKeys', adapters: 'adapter', trust_proxy: 'trustProxy', proxy: 'trustProxy', ttls: 'ttl', client: 'clients',
};

/** Refuses an option name op() does not know, suggesting the one meant. */
function checkOptionNames(input: object): void {
  for (const key of Object.keys(input)) {
    if ((OP_KEYS as readonly string[]).includes(key)) continue;
    const near = didYouMean(key, OP_KEYS, OP_ALIASES);
    fail(key, `is not an option of op()${near ? `: did you mean "${near}"?` : ` (the options are: ${OP_KEYS.join(', ')}; raw oidc-provider configuration goes in "provider")`}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkIssuer(issuer: unknown): URL {
  if (typeof issuer !== 'string' || !issuer) fail('issuer', 'required, the OP\'s public URL, e.g. "https://id.example.com/op"');
  let url: URL;
  try { url = new URL(issuer); } catch { fail('issuer', `"${issuer}" is not a URL`); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail('issuer', 'must be an https: URL (http: only for development)');
  if (url.search || url.hash) fail('issuer', 'must not have a query or fragment');
  if (issuer.endsWith('/')) fail('issuer', `must not end with "/" (use "${issuer.replace(/\/+$/, '')}")`);
  return url;
}

/**
 * Every client metadata name oidc-provider v9 recognises (with some feature on), and op()'s own
 * `firstParty`. oidc-provider drops any other name without a word: a `backchannelLogoutUri` written
 * the RP's way turned back-channel logout off for that client, and nobody was told.
 */
const CLIENT_METADATA: readonly string[] = ['client_id', 'client_secret', 'client_name', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri',
  'contacts', 'application_type', 'client_id_issued_at', 'client_secret_expires_at', 'redirect_uris', 'response_types', 'response_modes',
  'grant_types', 'scope', 'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg', 'jwks', 'jwks_uri', 'sector_identifier_uri',
  'subject_type', 'default_acr_values', 'default_max_age', 'require_auth_time', 'initiate_login_uri', 'id_token_signed_response_alg',
  'id_token_encrypted_response_alg', 'id_token_encrypted_response_enc', 'userinfo_signed_response_alg', 'userinfo_encrypted_response_alg',
  'userinfo_encrypted_response_enc', 'introspection_signed_response_alg', 'introspection_encrypted_response_alg',
  'introspection_encrypted_response_enc', 'authorization_signed_response_alg', 'authorization_encrypted_response_alg',
  'authorization_encrypted_response_enc', 'request_object_signing_alg', 'request_object_encryption_alg', 'request_object_encryption_enc',
  'require_signed_request_object', 'require_pushed_authorization_requests', 'post_logout_redirect_uris', 'backchannel_logout_uri',
  'backchannel_logout_session_required', 'tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri',
  'tls_client_auth_san_ip', 'tls_client_auth_san_email', 'use_mtls_endpoint_aliases', 'tls_client_certificate_bound_access_tokens',
  'backchannel_token_delivery_mode', 'backchannel_user_code_parameter', 'backchannel_client_notification_endpoint',
  'backchannel_authentication_request_signing_alg', 'dpop_bound_access_tokens', 'authorization_details_types', 'firstParty',
  // op()'s own, with features.requestUri (request-uri.ts)
  'request_uris',
  // the lists a client may give instead of one value, with oidc-provider's features.rpMetadataChoices
  'authorization_encryption_alg_values_supported', 'authorization_encryption_enc_values_supported', 'authorization_signing_alg_values_supported',
  'backchannel_authentication_request_signing_alg_values_supported', 'id_token_encryption_alg_values_supported',
  'id_token_encryption_enc_values_supported', 'id_token_signing_alg_values_supported', 'introspection_encryption_alg_values_supported',
  'introspection_encryption_enc_values_supported', 'introspection_signing_alg_values_supported', 'request_object_encryption_alg_values_supported',
  'request_object_encryption_enc_values_supported', 'request_object_signing_alg_values_supported', 'subject_types_supported',
  'token_endpoint_auth_methods_supported', 'token_endpoint_auth_signing_alg_values_supported', 'userinfo_encryption_alg_values_supported',
  'userinfo_encryption_enc_values_supported', 'userinfo_signing_alg_values_supported'];

/** Refuses a client metadata name oidc-provider would drop, suggesting the one meant (`postLogoutRedirectUris` → `post_logout_redirect_uris`). */
function checkClientNames(c: Record<string, unknown>, i: number, extra: readonly string[]): void {
  for (const key of Object.keys(c)) {
    if (CLIENT_METADATA.includes(key) || extra.includes(key)) continue;
    const snake = key.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
    const near = CLIENT_METADATA.includes(snake) ? snake : didYouMean(key, [...CLIENT_METADATA, ...extra]);
    fail(`clients[${i}].${key}`, `client "${String(c.client_id)}": "${key}" is not client metadata that oidc-provider knows, and it would `
      + `drop it without a word${near ? `: did you mean "${near}"?` : ' (client metadata names are snake_case, as in OpenID Connect Dynamic '
      + 'Client Registration, e.g. redirect_uris, post_logout_redirect_uris, backchannel_logout_uri; fields of your own go in '
      + 'provider: { extraClientMetadata: { properties: [...] } })'}`);
  }
}

/** op()'s own switches for oidc-provider features (`features: { … }`), each on unless set to false. */
const OP_SWITCHED: ReadonlySet<string> = new Set(['requestObjects', 'backchannelLogout', 'dPoP', 'pushedAuthorizationRequests', 'introspection']);
/** oidc-provider features op() turns on itself (the others are off unless `provider.features` turns them on). */
const OP_ON: ReadonlySet<string> = new Set(['jwtUserinfo']);

/** Client metadata that oidc-provider keeps only with a feature on (else it drops it without a word): which features. */
const METADATA_FEATURES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^(id_token|userinfo|introspection|authorization)_encrypted_response_(alg|enc)$|^request_object_encryption_(alg|enc)$/, 'encryption'],
  [/^userinfo_signed_response_alg$/, 'jwtUserinfo'],
  [/^introspection_(signed|encrypted)_response_/, 'jwtIntrospection'],
  [/^introspection_(signed|encrypted)_response_/, 'introspection'],
  [/^authorization_(signed|encrypted)_response_/, 'jwtResponseModes'],
  [/^tls_client_|^use_mtls_endpoint_aliases$/, 'mTLS'],
  [/^backchannel_(token_delivery_mode|user_code_parameter|client_notification_endpoint|authentication_request_signing_alg)$/, 'ciba'],
  [/^authorization_details_types$/, 'richAuthorizationRequests'],
  [/^backchannel_logout_/, 'backchannelLogout'],
  [/^(request_object_signing_alg|require_signed_request_object)$/, 'requestObjects'],
  [/^require_pushed_authorization_requests$/, 'pushedAuthorizationRequests'],
  [/^dpop_bound_access_tokens$/, 'dPoP'],
];

/**
 * A client whose metadata asks for what a feature that is off provides (encrypted ID tokens, signed
 * userinfo, a back channel …): oidc-provider would drop that metadata and serve the client without it
 * (an ID token not encrypted, which the client refuses, or worse, accepts). Refused, naming the switch.
 */
function checkClientFeatures(c: Record<string, unknown>, i: number, features: OpOptions['features'], provider: OpOptions['provider']): void {
  const theirs = (provider as { features?: Record<string, { enabled?: unknown } | undefined> } | undefined)?.features;
  const on = (feature: string): boolean => {
    const set = theirs?.[feature]?.enabled;
    if (set !== undefined) return set === true;
    return OP_SWITCHED.has(feature) ? (features as Record<string, unknown> | undefined)?.[feature] !== false : OP_ON.has(feature);
  };
  for (const key of Object.keys(c)) {
    for (const [names, feature] of METADATA_FEATURES) {
      if (!names.test(key) || on(feature)) continue;
      const how = OP_SWITCHED.has(feature) ? `features: { ${feature}: true }` : `provider: { features: { ${feature}: { enabled: true } } }`;
      fail(`clients[${i}].${key}`, `client "${String(c.client_id)}" has ${key}, which needs oidc-provider's "${feature}" feature, and it is off: `
        + `oidc-provider would drop ${key} without a word and serve the client without it. Turn it on with op({ ${how} }), or remove ${key}`);
    }
  }
}

function checkClients(clients: unknown, features: OpOptions['features'], provider: OpOptions['provider']): OpClient[] {
  if (clients === undefined) return [];
  if (!Array.isArray(clients)) fail('clients', 'must be an array of client metadata objects');
  clients.forEach((c, i) => {
    if (isObject(c) && typeof c.client_id === 'string' && c.client_id) return;
    // the RP's spelling (oidc({ clientId })), which checkClientNames would otherwise never get to name
    const camel = isObject(c) ? Object.keys(c).find((k) => k.toLowerCase() === 'clientid') : undefined;
    fail(`clients[${i}].client_id`, `required (a string)${camel ? `; you gave ${camel}: OP clients use the client metadata names `
      + '(client_id, client_secret, redirect_uris …), not the camelCase of the RP\'s oidc()' : ''}`);
  });
  const ids = clients.map((c) => c.client_id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) fail('clients', `client_id "${dup}" is listed twice`);
  const parUnregistered = parWithoutRedirectUris(provider);
  const extra = (provider as { extraClientMetadata?: { properties?: unknown } } | undefined)?.extraClientMetadata?.properties;
  const own = Array.isArray(extra) ? extra.filter((p): p is string => typeof p === 'string') : [];
  clients.forEach((c, i) => {
    checkClientNames(c as Record<string, unknown>, i, own);
    checkClientFeatures(c as Record<string, unknown>, i, features, provider);
    checkRedirectUris(c as OpClient, i, parUnregistered);
    checkClientSecret(c as OpClient, i);
    checkCodeGrant(c as OpClient, i);
  });
  return clients as OpClient[];
}

/**
 * A client whose response types include `code` must be allowed to exchange the code. oidc-provider
 * accepts the contradiction (it fixes up `implicit` by itself, not this), so the user would sign in
 * and the app's code exchange would then fail with unauthorized_client.
 */
function checkCodeGrant(c: OpClient, i: number): void {
  if (!Array.isArray(c.grant_types) || c.grant_types.includes('authorization_code')) return;
  const responses = Array.isArray(c.response_types) ? c.response_types : ['code'];
  if (!responses.some((r) => typeof r === 'string' && r.split(' ').includes('code'))) return;
  const given = Array.isArray(c.response_types) ? `response_types ${JSON.stringify(responses)}` : 'the default response_types ["code"]';
  fail(`clients[${i}].grant_types`, `client "${c.client_id}" has ${given} but grant_types ${JSON.stringify(c.grant_types)} lacks `
    + '"authorization_code": its users would sign in and the code exchange would then fail. Add "authorization_code" to grant_types, '
    + 'or set response_types: [] for a client that does not sign users in');
}

const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt']);

/**
 * A client that authenticates with a secret needs one. oidc-provider would only say so at the
 * client's first sign-in, to the user ("invalid_client_metadata: client_secret is mandatory property"),
 * and the usual cause is a browser app registered without `token_endpoint_auth_method: 'none'`.
 */
function checkClientSecret(c: OpClient, i: number): void {
  const given = c.token_endpoint_auth_method;
  const method = given ?? 'client_secret_basic';
  // a public client never sends a secret: the app that was given one sends it (client_secret_basic by
  // default in most libraries), and oidc-provider refuses every code exchange with invalid_client
  if (method === 'none' && typeof c.client_secret === 'string' && c.client_secret) {
    fail(`clients[${i}].client_secret`, `client "${c.client_id}" has token_endpoint_auth_method 'none' (a public client: a browser or mobile `
      + 'app, which never authenticates with a secret) and a client_secret, which the OP would ignore while the app sends it: remove '
      + 'client_secret for a public client, or drop token_endpoint_auth_method: \'none\' for a server-side app that keeps its secret');
  }
  if (typeof method !== 'string' || !SECRET_METHODS.has(method)) return;
  if (typeof c.client_secret === 'string' && c.client_secret) return;
  const how = given === undefined ? `token_endpoint_auth_method is ${method} (the default)` : `token_endpoint_auth_method is ${method}`;
  fail(`clients[${i}].client_secret`, `client "${c.client_id}" has no client_secret, and its ${how}. A server-side app gives `
    + 'client_secret: a long random string from your secret store (e.g. `openssl rand -base64 32`); a browser or mobile '
    + 'app, which cannot keep a secret, is a public client: set token_endpoint_auth_method: \'none\' (PKCE is then required)');
}

/**
 * A client that signs users in through the browser (the authorization_code or implicit grant, or any
 * response type: oidc-provider's default is `code`) needs somewhere to send them back. oidc-provider
 * would only say so at the first /auth request ("redirect_uris is mandatory property"), naming no client.
 */
function checkRedirectUris(c: OpClient, i: number, parUnregistered: boolean): void {
  if (typeof c.redirect_uris === 'string') fail(`clients[${i}].redirect_uris`, `must be an array: redirect_uris: [${JSON.stringify(c.redirect_uris)}]`);
  // oidc-provider lets PAR-only clients go without, when its own switch says so (RFC 9126 §2.4)
  if (c.require_pushed_authorization_requests === true && parUnregistered) return;
  const grants = Array.isArray(c.grant_types) ? c.grant_types : ['authorization_code'];
  const responses = Array.isArray(c.response_types) ? c.response_types : ['code'];
  const browser = responses.length > 0 || grants.includes('authorization_code') || grants.includes('implicit');
  if (!browser || (Array.isArray(c.redirect_uris) && c.redirect_uris.length > 0)) return;
  const front = grants.filter((g) => g === 'authorization_code' || g === 'implicit');
  const uses = front.length ? `the ${front.join(' and ')} grant${Array.isArray(c.grant_types) ? '' : ' (the default)'}`
    : `response_types ${JSON.stringify(responses)}${Array.isArray(c.response_types) ? '' : ' (the default)'}`;
  fail(`clients[${i}].redirect_uris`, `client "${c.client_id}" uses ${uses}, which sends users back to the app, so it needs `
    + 'redirect_uris, e.g. redirect_uris: [\'https://app.example.com/auth/callback\'] (where the app receives the code); '
    + 'a client that only uses client_credentials needs grant_types: [\'client_credentials\'], response_types: [] instead'
    + (c.require_pushed_authorization_requests === true ? '; a confidential client that requires PAR may send unregistered ones '
      + 'with provider: { features: { pushedAuthorizationRequests: { allowUnregisteredRedirectUris: true } } }' : ''));
}

/** oidc-provider's switch for PAR requests with redirect URIs the client never registered, given through `provider`. */
export function parWithoutRedirectUris(provider: OpOptions['provider']): boolean {
  return provider?.features?.pushedAuthorizationRequests?.allowUnregisteredRedirectUris === true;
}

/** An https: URL, or a path on the OP's own site ("/logo.svg", not "//evil.example"); `http` also allows http: URLs. */
function checkPageUri(option: string, value: unknown, http: boolean): string | undefined {
  if (value === undefined) return undefined;
  const hint = http ? 'an http(s) URL or a path on this site such as "/"' : 'an https: URL or a path on this site such as "/logo.svg"';
  if (typeof value !== 'string' || !value) fail(option, `must be ${hint}`);
  if (value.startsWith('/') && !value.startsWith('//') && !value.includes('\\')) return value;
  let url: URL | undefined;
  try { url = new URL(value); } catch { /* below */ }
  if (url?.protocol === 'https:' || (http && url?.protocol === 'http:')) return value;
  return fail(option, `must be ${hint}, got ${JSON.stringify(value)}`);
}

function checkAuthenticators(list: unknown): void {
  if (!Array.isArray(list) || list.length === 0) fail('authenticators', 'must be a non-empty array');
  const ids = new Set<string>();
  list.forEach((a, i) => {
    if (!isObject(a) || typeof a.id !== 'string' || !/^[\w-]+$/.test(a.id)) fail(`authenticators[${i}].id`, 'required: letters, digits, "-" or "_"');
    if (typeof a.verify !== 'function' || typeof a.fields !== 'function' || typeof a.throttleKey !== 'function') {
      fail(`authenticators[${i}]`, 'must implement the Authenticator interface (fields, throttleKey, verify)');
    }
    if (ids.has(a.id)) fail('authenticators', `id "${a.id}" is used twice`);
    ids.add(a.id);
  });
}

function checkKeys(o: OpOptions): void {
  if (o.jwks !== undefined && (!isObject(o.jwks) || !Array.isArray(o.jwks.keys) || o.jwks.keys.length === 0)) {
    fail('jwks', 'must be { keys: [private JWK, ...] } with at least one key');
  }
  if (o.jwks?.keys.some((k) => !isObject(k) || !('d' in k))) fail('jwks', 'must hold private keys (a "d" member); public keys cannot sign');
  if (o.jwks) checkJwkAlgs(o.jwks.keys as unknown as Array<Record<string, unknown>>);
  if (o.cookieKeys !== undefined && (!Array.isArray(o.cookieKeys) || o.cookieKeys.length === 0
    || o.cookieKeys.some((k) => typeof k !== 'string' || k.length < 16))) {
    fail('cookieKeys', 'must be a non-empty array of random strings of 16 characters or more');
  }
}

function checkNumbers(name: string, value: unknown, allowed: string[]): void {
  if (value === undefined) return;
  if (!isObject(value)) fail(name, 'must be an object');
  for (const [k, v] of Object.entries(value)) {
    if (!allowed.includes(k)) fail(`${name}.${k}`, `unknown; expected one of ${allowed.join(', ')}`);
    if (v === undefined) continue; // left to its default
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`${name}.${k}`, 'must be a positive whole number of seconds/count');
  }
}

/** The `alg` values a key of each type (and EC curve) can sign with (oidc-provider refused others as "of no use", naming no fix). */
const KEY_ALGS: Record<string, RegExp> = {
  RSA: /^(RS|PS)(256|384|512)$/, 'EC:P-256': /^ES256$/, 'EC:P-384': /^ES384$/, 'EC:P-521': /^ES512$/, 'EC:secp256k1': /^ES256K$/, OKP: /^(EdDSA|Ed25519)$/,
};

/** Each key's `alg` fits its type, and no two keys share a `kid` (a copy made while changing keys). */
function checkJwkAlgs(keys: Array<Record<string, unknown>>): void {
  const seen = new Map<unknown, number>();
  keys.forEach((k, i) => {
    const type = k.kty === 'EC' ? `EC:${String(k.crv)}` : String(k.kty);
    const fits = KEY_ALGS[type];
    // (an encryption key, for encrypted request objects, has a key-management alg: RSA-OAEP, ECDH-ES …)
    const encryption = k.use === 'enc' || (typeof k.alg === 'string' && /^(RSA-OAEP|RSA1_5|ECDH-ES)/.test(k.alg));
    if (typeof k.alg === 'string' && fits && !encryption && !fits.test(k.alg)) {
      const can = { RSA: 'RS256 (or PS256, RS384 …)', 'EC:P-256': 'ES256', 'EC:P-384': 'ES384', 'EC:P-521': 'ES512', 'EC:secp256k1': 'ES256K', OKP: 'EdDSA' }[type];
      fail(`jwks.keys[${i}]`, `is a${type === 'RSA' ? 'n RSA' : ` ${type.replace(':', ' ')}`} key, which cannot sign with alg "${k.alg}": give alg "${can}", or leave alg out`);
    }
    if (k.kid !== undefined) {
      const first = seen.get(k.kid);
      if (first !== undefined) fail(`jwks.keys[${i}]`, `has the kid ${JSON.stringify(k.kid)} of jwks.keys[${first}]: each key needs its own kid (tokens name the key they were signed with by it)`);
      seen.set(k.kid, i);
    }
  });
}

const ACCOUNT_METHODS = ['findByLogin', 'findById', 'verifyPassword', 'claims'];

/** An AccountStore has all four methods; a Promise of one, or a misspelt method, is named. */
function checkAccounts(accounts: unknown): void {
  const example = 'e.g. memoryAccounts([{ id, username, password, claims }]), or your own object with findByLogin, findById, verifyPassword and claims';
  if (typeof (accounts as { then?: unknown } | undefined)?.then === 'function') {
    fail('accounts', 'is a Promise: await it before op() (const accounts = await makeAccounts(); op({ accounts, ... }))');
  }
  if (!isObject(accounts)) fail('accounts', `required: an AccountStore, ${example}`);
  const missing = ACCOUNT_METHODS.filter((m) => typeof accounts[m] !== 'function');
  if (!missing.length) return;
  // own methods and a class's (one prototype down)
  const proto = Object.getPrototypeOf(accounts) as object | null;
  const names = [...Object.getOwnPropertyNames(accounts), ...(proto && proto !== Object.prototype ? Object.getOwnPropertyNames(proto) : [])];
  const typos = missing.flatMap((m) => {
    const near = names.find((n) => n !== m && didYouMean(n, [m]) === m);
    return near ? [`"${near}" should be "${m}"`] : [];
  });
  fail('accounts', `is missing ${missing.map((m) => `${m}()`).join(', ')} of an AccountStore${typos.length ? ` (${typos.join(', ')})` : ''}: ${example}`);
}

function checkShape(o: OpOptions): void {
  checkAccounts(o.accounts);
  if (o.adapter !== undefined && (!isObject(o.adapter) || typeof o.adapter.adapterFor !== 'function')) {
    fail('adapter', 'must be an OpStore, e.g. memoryAdapter() or redisAdapter(client)');
  }
  if (o.views !== undefined) {
    if (!isObject(o.views)) fail('views', 'must be an object');
    for (const [k, v] of Object.entries(o.views)) {
      if (!VIEW_NAMES.includes(k)) fail(`views.${k}`, `unknown view; expected one of ${VIEW_NAMES.join(', ')}`);
      if (typeof v !== 'function' && typeof v !== 'string') fail(`views.${k}`, 'must be a function returning HTML or a view name');
    }
  }
  if (o.features !== undefined) {
    if (!isObject(o.features)) fail('features', 'must be an object');
    for (const k of Object.keys(o.features)) if (!FEATURE_NAMES.includes(k)) fail(`features.${k}`, `unknown; expected one of ${FEATURE_NAMES.join(', ')}`);
  }
  if (o.pkce !== undefined && !PKCE_POLICIES.includes(o.pkce)) fail('pkce', `must be one of ${PKCE_POLICIES.map((p) => `'${p}'`).join(', ')}`);
  if (o.scopes !== undefined && (!Array.isArray(o.scopes) || o.scopes.some((s) => typeof s !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)))) {
    fail('scopes', 'must be an array of scope tokens (no spaces)');
  }
  if (o.trustProxy !== undefined && typeof o.trustProxy !== 'boolean') fail('trustProxy', 'must be true or false');
  if (o.provider !== undefined && !isObject(o.provider)) fail('provider', 'must be an oidc-provider configuration object');
  if (o.session !== undefined && typeof o.session !== 'function') fail('session', 'must be a middleware, e.g. session({ secret, resave: false, saveUninitialized: false, store })');
  if (o.name !== undefined && (typeof o.name !== 'string' || !o.name.trim() || o.name.length > 100)) {
    fail('name', 'must be the OP\'s name as a short string (1 to 100 characters), e.g. "Example ID"');
  }
  checkPageUri('logoUri', o.logoUri, false);
  checkPageUri('homeUri', o.homeUri, true);
  if (o.storeTimeout !== undefined && (!Number.isInteger(o.storeTimeout) || o.storeTimeout < 50 || o.storeTimeout > 60_000)) {
    fail('storeTimeout', 'must be a whole number of milliseconds between 50 and 60000 (default 3000)');
  }
}

/**
 * `features` as true/false (registration: false or its options). oidc-provider's own shape
 * `{ enabled: true }` means the same; anything else is refused, naming the feature and what it accepts.
 */
function checkFeatures(features: OpFeatures | undefined): OpFeatures {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(features ?? {})) {
    if (name === 'resourceIndicators') out[name] = checkResourceIndicators(value);
    else if (name === 'tokenExchange') out[name] = checkTokenExchange(value);
    else if (value === undefined || typeof value === 'boolean') out[name] = value;
    else if (!isObject(value)) fail(`features.${name}`, `must be true or false, got ${JSON.stringify(value)}`);
    else if (name === 'registration') out[name] = checkRegistration(value);
    else if (Object.keys(value).every((k) => k === 'enabled') && typeof value.enabled === 'boolean') out[name] = value.enabled;
    else fail(`features.${name}`, `must be true or false (oidc-provider's { enabled: true } is accepted too), got ${JSON.stringify(value)}`);
  }
  return out as OpFeatures;
}

/** `features.registration`: true/false, `{ initialAccessToken }`, or oidc-provider's `{ enabled, initialAccessToken }`. */
function checkRegistration(value: Record<string, unknown>): OpFeatures['registration'] {
  const unknown = Object.keys(value).filter((k) => k !== 'enabled' && k !== 'initialAccessToken');
  if (unknown.length) fail(`features.registration.${unknown[0]}`, 'unknown; expected initialAccessToken (and optionally enabled)');
  if (value.enabled !== undefined && typeof value.enabled !== 'boolean') fail('features.registration.enabled', 'must be true or false');
  const token = value.initialAccessToken;
  if (token !== undefined && (typeof token !== 'string' || !token)) {
    fail('features.registration.initialAccessToken', 'must be a non-empty secret string');
  }
  if (value.enabled === false) return false;
  return token === undefined ? true : { initialAccessToken: token as string };
}

const RI = 'features.resourceIndicators';
const RI_EXAMPLE = "{ resources: { 'https://api.example.com': { scope: 'read write' } } }";
const RESOURCE_KEYS = ['scope', 'accessTokenFormat', 'audience', 'accessTokenTTL', 'claimsByScope'];
/** Claims a JWT access token sets itself: `claimsByScope` may not name them. */
const TOKEN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf', 'act', 'authorization_details'];
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** One API of `features.resourceIndicators.resources`. */
function checkResource(id: string, value: unknown): OpResource {
  const at = `${RI}.resources[${JSON.stringify(id)}]`;
  let url: URL | undefined;
  try { url = new URL(id); } catch { /* below */ }
  if (!url || id.includes('#')) fail(at, 'a resource indicator must be an absolute URI without a fragment, e.g. "https://api.example.com"');
  if (!isObject(value)) fail(at, "must be { scope: 'read write' } (and optionally accessTokenFormat, audience, accessTokenTTL, claimsByScope)");
  const unknown = Object.keys(value).find((k) => !RESOURCE_KEYS.includes(k));
  if (unknown) fail(`${at}.${unknown}`, `unknown; expected ${RESOURCE_KEYS.join(', ')}`);
  const scopes = typeof value.scope === 'string' ? value.scope.split(' ').filter(Boolean) : [];
  if (scopes.length === 0 || scopes.some((s) => !SCOPE_TOKEN.test(s))) fail(`${at}.scope`, "required: the API's scopes, space-separated, e.g. 'read write'");
  const format = value.accessTokenFormat;
  if (format !== undefined && format !== 'jwt' && format !== 'opaque') fail(`${at}.accessTokenFormat`, "must be 'jwt' (default) or 'opaque'");
  if (value.audience !== undefined && (typeof value.audience !== 'string' || !value.audience)) fail(`${at}.audience`, 'must be a non-empty string');
  const ttl = value.accessTokenTTL;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0)) fail(`${at}.accessTokenTTL`, 'must be a positive whole number of seconds');
  const byScope = value.claimsByScope;
  if (byScope !== undefined) {
    if (!isObject(byScope)) fail(`${at}.claimsByScope`, "must map scopes to claim names, e.g. { read: ['email'] }");
    for (const [scope, names] of Object.entries(byScope)) {
      if (!scopes.includes(scope)) fail(`${at}.claimsByScope.${scope}`, `"${scope}" is not one of this resource's scopes (${scopes.join(' ')})`);
      if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || !n)) fail(`${at}.claimsByScope.${scope}`, "must be an array of claim names, e.g. ['email']");
      const reserved = (names as string[]).find((n) => TOKEN_CLAIMS.includes(n));
      if (reserved) fail(`${at}.claimsByScope.${scope}`, `"${reserved}" is set by the OP itself in every access token; name account claims only`);
    }
  }
  return { ...(value as unknown as OpResource), scope: scopes.join(' ') };
}

/** `features.resourceIndicators`: `{ resources, defaultResource? }` (oidc-provider's `enabled` accepted), or false. */
function checkResourceIndicators(value: unknown): OpResourceIndicators | false {
  if (value === undefined || value === false) return false;
  if (!isObject(value)) fail(RI, `must be the APIs tokens may be for, ${RI_EXAMPLE}, or false; got ${JSON.stringify(value)}`);
  const unknown = Object.keys(value).find((k) => !['resources', 'defaultResource', 'enabled'].includes(k));
  if (unknown) fail(`${RI}.${unknown}`, 'unknown; expected resources and optionally defaultResource');
  if (value.enabled !== undefined && typeof value.enabled !== 'boolean') fail(`${RI}.enabled`, 'must be true or false');
  if (value.enabled === false) return false;
  if (!isObject(value.resources) || Object.keys(value.resources).length === 0) fail(`${RI}.resources`, `required: at least one API, e.g. ${RI_EXAMPLE}`);
  const resources: Record<string, OpResource> = {};
  const audiences = new Map<string, string>();
  for (const [id, r] of Object.entries(value.resources)) {
    resources[id] = checkResource(id, r);
    const audience = resources[id].audience ?? id;
    const other = audiences.get(audience);
    if (other) fail(`${RI}.resources`, `"${other}" and "${id}" have the same audience "${audience}": every API needs its own`);
    audiences.set(audience, id);
  }
  const def = value.defaultResource;
  if (def !== undefined && (typeof def !== 'string' || !Object.hasOwn(resources, def))) {
    fail(`${RI}.defaultResource`, `must be one of the resources: ${Object.keys(resources).map((k) => JSON.stringify(k)).join(', ')}`);
  }
  return { resources, ...(def === undefined ? {} : { defaultResource: def as string }) };
}

const TX = 'features.tokenExchange';
const TX_EXAMPLE = "{ policy: ({ client, subject, resource, scope }) => client.clientId === 'gateway' }";

/** `features.tokenExchange`: `{ policy }` (oidc-provider's `enabled` accepted), or false. Enabling it without a policy is refused. */
function checkTokenExchange(value: unknown): OpTokenExchange | false {
  if (value === undefined || value === false) return false;
  if (value === true) fail(TX, `needs a policy saying which client may exchange which tokens: ${TX_EXAMPLE}`);
  if (!isObject(value)) fail(TX, `must be ${TX_EXAMPLE} or false, got ${JSON.stringify(value)}`);
  const unknown = Object.keys(value).find((k) => k !== 'policy' && k !== 'enabled');
  if (unknown) fail(`${TX}.${unknown}`, 'unknown; expected policy (and optionally enabled)');
  if (value.enabled !== undefined && typeof value.enabled !== 'boolean') fail(`${TX}.enabled`, 'must be true or false');
  if (value.enabled === false) return false;
  if (typeof value.policy !== 'function') fail(`${TX}.policy`, `required: a function deciding each exchange, e.g. ${TX_EXAMPLE}`);
  return { policy: value.policy as TokenExchangePolicy };
}

/** Whether `request_uri` is on: `features.requestUri`, by default as `features.requestObjects`. */
export function requestUriOn(features: OpFeatures): boolean {
  return features.requestUri ?? features.requestObjects !== false;
}

/** The grant types a feature of op() provides, so that a client listing one with the feature off is told at start-up. */
const GRANT_FEATURES: Record<string, 'passwordGrant' | 'tokenExchange' | 'deviceFlow' | 'clientCredentials'> = {
  client_credentials: 'clientCredentials',
  password: 'passwordGrant',
  'urn:ietf:params:oauth:grant-type:token-exchange': 'tokenExchange',
  'urn:ietf:params:oauth:grant-type:device_code': 'deviceFlow',
};

/** What the features need of each other and of the clients. */
function checkFeatureNeeds(features: OpFeatures, clients: OpClient[], provider: OpOptions['provider']): void {
  if (features.tokenExchange && !features.resourceIndicators) {
    fail(TX, `needs features.resourceIndicators: the new token is for one of its resources (the resource or audience parameter), e.g. ${RI_EXAMPLE}`);
  }
  if (features.requestUri === true && features.requestObjects === false) {
    fail('features.requestUri', 'needs features.requestObjects: what a request_uri points at is a request object');
  }
  // oidc-provider's own switch, given through the `provider` escape hatch, turns its grants on too
  const raw = (feature: 'deviceFlow' | 'clientCredentials') => provider?.features?.[feature]?.enabled === true;
  clients.forEach((c, i) => {
    if (c.request_uris !== undefined && !requestUriOn(features)) {
      fail(`clients[${i}].request_uris`, `client "${c.client_id}" registers request_uris but features.requestUri is off: turn it on (with features.requestObjects) or remove them`);
    }
    for (const grant of Array.isArray(c.grant_types) ? c.grant_types : []) {
      const feature = GRANT_FEATURES[grant];
      if (!feature || features[feature] || ((feature === 'deviceFlow' || feature === 'clientCredentials') && raw(feature))) continue;
      fail(`clients[${i}].grant_types`, `client "${c.client_id}" lists "${grant}" but features.${feature} is off: turn it on or remove the grant type`);
    }
  });
}

/**
 * Validates `op()` options and applies defaults. Throws `OpConfigError` naming the option.
 *
 * @example
 * const resolved = resolveOptions({ issuer: 'https://id.example.com/op', accounts });
 */
/** The members of `o` that are set: an option given as `undefined` (an unset environment variable) keeps its default. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function resolveOptions(input: OpOptions): ResolvedOptions {
  if (!isObject(input)) fail('options', 'op() needs an options object: op({ issuer, accounts, clients })');
  checkOptionNames(input);
  const issuerUrl = checkIssuer(input.issuer);
  checkShape(input);
  // (features first: a client's metadata is checked against them, `{ enabled: false }` read as false)
  const features = checkFeatures(input.features);
  const clients = checkClients(input.clients, features, input.provider);
  checkKeys(input);
  checkNumbers('ttl', input.ttl, Object.keys(DEFAULT_TTL));
  checkNumbers('throttle', input.throttle, ['maxFailures', 'maxAccountFailures', 'windowSeconds']);
  if (input.authenticators !== undefined) checkAuthenticators(input.authenticators);
  parseAllowedHosts(input.allowPrivateHosts);
  checkFeatureNeeds(features, clients, input.provider);
  return {
    issuer: input.issuer,
    issuerUrl,
    mountPath: issuerUrl.pathname === '/' ? '' : issuerUrl.pathname,
    clients,
    accounts: boundAccounts(input.accounts, input.storeTimeout ?? 3000),
    authenticators: input.authenticators ?? [],
    views: input.views ?? {},
    adapter: input.adapter,
    jwks: input.jwks,
    cookieKeys: input.cookieKeys,
    features,
    ttl: { ...DEFAULT_TTL, ...definedOnly(input.ttl) },
    scopes: input.scopes ?? [],
    trustProxy: input.trustProxy === true,
    throttle: { maxFailures: 5, maxAccountFailures: 100, windowSeconds: 900, ...definedOnly(input.throttle) },
    session: input.session,
    storeTimeout: input.storeTimeout ?? 3000,
    allowPrivateHosts: input.allowPrivateHosts ?? [],
    pkce: input.pkce ?? 'unless-nonce',
    name: input.name?.trim() ?? issuerUrl.host,
    logoUri: input.logoUri,
    homeUri: input.homeUri,
    provider: input.provider ?? {},
  };
}
