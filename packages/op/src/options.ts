import type { ClientMetadata, Configuration, JWK } from 'oidc-provider';
import type { AccountStore } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import type { Authenticator } from './authenticators/authenticator.js';
import { OpConfigError } from './errors.js';
import type { Views } from './views/render.js';

/** A client registered at start-up: oidc-provider client metadata plus `firstParty`. */
export type OpClient = ClientMetadata & {
  /** A client of the same organisation: never shown the consent screen. Default false. */
  firstParty?: boolean;
};

/** Which optional endpoints and mechanisms are on. */
export interface OpFeatures {
  /** `grant_type=client_credentials` at the token endpoint. Default false. */
  clientCredentials?: boolean;
  /** RFC 7662 introspection endpoint. Default true. */
  introspection?: boolean;
  /** RFC 7009 revocation endpoint. Default true. */
  revocation?: boolean;
  /**
   * OIDC dynamic client registration. Default off. `true` lets anyone register; give
   * `{ initialAccessToken: 'secret' }` to require that bearer token at the registration endpoint.
   */
  registration?: boolean | { initialAccessToken?: string };
  /** RFC 9126 pushed authorization requests. Default true. */
  pushedAuthorizationRequests?: boolean;
  /** RFC 9101 request objects (`request` parameter, JAR). Default true. */
  requestObjects?: boolean;
  /** RFC 9449 DPoP sender-constrained tokens. Default true. */
  dPoP?: boolean;
  /** OIDC back-channel logout to clients that register a `backchannel_logout_uri`. Default true. */
  backchannelLogout?: boolean;
  /** OIDC Core 5.5 `claims` request parameter (individual and essential claims). Default true. */
  claimsParameter?: boolean;
}

/** Lifetimes in seconds. */
export interface OpTtl {
  /** Default 3600. */ AccessToken?: number;
  /** Default 60. */ AuthorizationCode?: number;
  /** Default 600. */ ClientCredentials?: number;
  /** Default 3600. */ IdToken?: number;
  /** Default 14 days. */ RefreshToken?: number;
  /** How long a user may take on the login/consent screens. Default 3600. */ Interaction?: number;
  /** The OP's login session. Default 14 days. */ Session?: number;
  /** Remembered consent. Default 14 days. */ Grant?: number;
}

/** Failed-login limits, counted in the `adapter` store so they hold across instances. */
export interface OpThrottle {
  /** Failures allowed per login name and per client IP within `windowSeconds`. Default 5. */
  maxFailures?: number;
  /** How long failures are remembered, from the first one (the lock-out time). Default 900. */
  windowSeconds?: number;
}

/** Options of `op()`. */
export interface OpOptions {
  /** The issuer URL; its path must be where the router is mounted (`https://id.example.com/op` → `app.use('/op', ...)`). Required. */
  issuer: string;
  /** Clients known at start-up (oidc-provider client metadata). Default none. */
  clients?: OpClient[];
  /** Where accounts are found (used by `password`, userinfo claims and WebFinger). Required. */
  accounts: AccountStore;
  /** The ways to sign in, offered together on the login page. Default `[password()]`. */
  authenticators?: Authenticator[];
  /** View overrides: a function returning HTML or a view name for the app's engine. */
  views?: Partial<Views>;
  /** Records and login counters. Default `memoryAdapter()` (warns when NODE_ENV=production). */
  adapter?: OpStore;
  /** Private signing keys (`{ keys: [jwk, ...] }`). Generated with a warning in development; required in production. */
  jwks?: { keys: JWK[] };
  /** Keys signing the OP's cookies, newest first. Generated with a warning in development; required in production. */
  cookieKeys?: string[];
  /** Optional endpoints and mechanisms. */
  features?: OpFeatures;
  /** Lifetimes in seconds. */
  ttl?: OpTtl;
  /** Extra non-OIDC scopes clients may ask for (e.g. `api:read` for client credentials). Default none. */
  scopes?: string[];
  /** Trust `X-Forwarded-*` from one proxy hop (TLS-terminating proxy). Default false. */
  trustProxy?: boolean;
  /** Failed-login limits. */
  throttle?: OpThrottle;
  /** Raw oidc-provider configuration merged last, over everything above. Default none. */
  provider?: Configuration;
}

/** `OpOptions` with defaults applied. */
export interface ResolvedOptions extends Required<Omit<OpOptions, 'adapter' | 'jwks' | 'cookieKeys' | 'provider' | 'views'>> {
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
}

const DAY = 24 * 3600;

/** Default lifetimes (seconds). */
export const DEFAULT_TTL: Required<OpTtl> = {
  AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 600, IdToken: 3600,
  RefreshToken: 14 * DAY, Interaction: 3600, Session: 14 * DAY, Grant: 14 * DAY,
};

const VIEW_NAMES = ['layout', 'login', 'consent', 'error', 'logout', 'logoutSuccess'];
const FEATURE_NAMES = ['clientCredentials', 'introspection', 'revocation', 'registration',
  'pushedAuthorizationRequests', 'requestObjects', 'dPoP', 'backchannelLogout', 'claimsParameter'];

function fail(option: string, message: string): never {
  throw new OpConfigError(option, message);
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

function checkClients(clients: unknown): OpClient[] {
  if (clients === undefined) return [];
  if (!Array.isArray(clients)) fail('clients', 'must be an array of client metadata objects');
  clients.forEach((c, i) => {
    if (!isObject(c) || typeof c.client_id !== 'string' || !c.client_id) fail(`clients[${i}].client_id`, 'required (a string)');
  });
  const ids = clients.map((c) => c.client_id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) fail('clients', `client_id "${dup}" is listed twice`);
  return clients as OpClient[];
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
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`${name}.${k}`, 'must be a positive whole number of seconds/count');
  }
}

function checkShape(o: OpOptions): void {
  if (!isObject(o.accounts) || typeof o.accounts.verifyPassword !== 'function' || typeof o.accounts.findById !== 'function') {
    fail('accounts', 'required: an AccountStore, e.g. memoryAccounts([{ id, username, password, claims }])');
  }
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
  if (o.scopes !== undefined && (!Array.isArray(o.scopes) || o.scopes.some((s) => typeof s !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)))) {
    fail('scopes', 'must be an array of scope tokens (no spaces)');
  }
  if (o.trustProxy !== undefined && typeof o.trustProxy !== 'boolean') fail('trustProxy', 'must be true or false');
  if (o.provider !== undefined && !isObject(o.provider)) fail('provider', 'must be an oidc-provider configuration object');
}

/**
 * Validates `op()` options and applies defaults. Throws `OpConfigError` naming the option.
 *
 * @example
 * const resolved = resolveOptions({ issuer: 'https://id.example.com/op', accounts });
 */
export function resolveOptions(input: OpOptions): ResolvedOptions {
  if (!isObject(input)) fail('options', 'op() needs an options object: op({ issuer, accounts, clients })');
  const issuerUrl = checkIssuer(input.issuer);
  const clients = checkClients(input.clients);
  checkShape(input);
  checkKeys(input);
  checkNumbers('ttl', input.ttl, Object.keys(DEFAULT_TTL));
  checkNumbers('throttle', input.throttle, ['maxFailures', 'windowSeconds']);
  if (input.authenticators !== undefined) checkAuthenticators(input.authenticators);
  return {
    issuer: input.issuer,
    issuerUrl,
    mountPath: issuerUrl.pathname === '/' ? '' : issuerUrl.pathname,
    clients,
    accounts: input.accounts,
    authenticators: input.authenticators ?? [],
    views: input.views ?? {},
    adapter: input.adapter,
    jwks: input.jwks,
    cookieKeys: input.cookieKeys,
    features: input.features ?? {},
    ttl: { ...DEFAULT_TTL, ...(input.ttl ?? {}) },
    scopes: input.scopes ?? [],
    trustProxy: input.trustProxy === true,
    throttle: { maxFailures: 5, windowSeconds: 900, ...(input.throttle ?? {}) },
    provider: input.provider ?? {},
  };
}
