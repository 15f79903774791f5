/**
 * `oauth2()`: a plain OAuth 2.0 authorization server with a "current user" endpoint (no ID token,
 * no discovery). The GitHub preset is built on it.
 */
import type { NormalizedUser, ProviderConfig } from '../options.js';
import { OptionsError } from '../errors.js';

/** Options of {@link oauth2}. */
export interface OAuth2Options {
  clientId: string;
  clientSecret?: string | undefined;
  /** Authorization endpoint URL (static, there is no discovery). */
  authorizationEndpoint: string;
  /** Token endpoint URL. */
  tokenEndpoint: string;
  /** URL answering the current user as JSON for a Bearer access token. Required unless `fetchUser`. */
  userinfoEndpoint?: string | undefined;
  /** Identifier of the server (used as its `issuer` in metadata). Default: the authorization endpoint's origin. */
  issuer?: string | undefined;
  /** Space-separated scopes. Default: none (the server's default). */
  scope?: string | undefined;
  /** Label for login buttons. Default: "OAuth 2.0". */
  label?: string | undefined;
  /** Token endpoint client authentication. Default: client_secret_basic with a secret, none without. */
  tokenEndpointAuthMethod?: ProviderConfig['tokenEndpointAuthMethod'] | undefined;
  /** Extra parameters on every authorization request. */
  authorizationParams?: Record<string, string> | undefined;
  /** PKCE S256 (default true; servers that ignore it are unaffected). */
  pkce?: boolean | undefined;
  /** Map the user endpoint's JSON to the normalized user; `sub` is required. Default: OIDC claim names. */
  profile?: ProviderConfig['profile'] | undefined;
  /** Load the user yourself instead of a GET to `userinfoEndpoint`. */
  fetchUser?: ProviderConfig['fetchUser'] | undefined;
  /** HTTP wrapper for the server's wire quirks (token endpoint, user endpoint). */
  customFetch?: ProviderConfig['customFetch'] | undefined;
  /** Allow http:// endpoints (development and tests against loopback only). */
  allowInsecureRequests?: boolean | undefined;
}

/**
 * Thrown by a `fetchUser` when the user endpoint does not answer a usable user (`code`
 * `userinfo_failed`, `status` the endpoint's HTTP status).
 *
 * @example
 * ```ts
 * oauth2({ ..., fetchUser: async (token, f) => { const r = await f(url, { headers: { authorization: `Bearer ${token}` } });
 *   if (!r.ok) throw new UserEndpointError(`user endpoint answered ${r.status}`, r.status); return r.json(); } });
 * ```
 */
export class UserEndpointError extends Error {
  readonly code = 'userinfo_failed';
  /**
   * `status` 429 or 5xx is a failure that passes (503 `op_unavailable`, the login kept for a retry), waiting
   * the `Retry-After` of `headers` when they have one.
   */
  constructor(message: string, readonly status?: number, readonly headers?: Headers) {
    super(message);
    this.name = 'UserEndpointError';
  }
}

/**
 * A user endpoint's refusal as a {@link UserEndpointError}. A rate limit is one that passes: 429, or a 403 with
 * `x-ratelimit-remaining: 0` or `Retry-After` (GitHub's primary and secondary limits, also Gitea's and GitLab's
 * headers); its wait is the `Retry-After`, else the time to `x-ratelimit-reset` (epoch seconds).
 */
export function userEndpointError(url: string, response: Response, now = Date.now()): UserEndpointError {
  const headers = response.headers;
  const limited = response.status === 429
    || (response.status === 403 && (headers.get('x-ratelimit-remaining') === '0' || headers.has('retry-after')));
  const path = new URL(url).pathname;
  if (!limited) return new UserEndpointError(`user endpoint ${path} answered HTTP ${response.status}`, response.status);
  const reset = Number(headers.get('x-ratelimit-reset'));
  const wait = headers.get('retry-after') ?? (Number.isFinite(reset) && reset > 0 ? String(Math.ceil(reset - now / 1000)) : '60');
  return new UserEndpointError(`user endpoint ${path} answered HTTP ${response.status}: rate limited`, 429, new Headers({ 'retry-after': wait }));
}

/**
 * A generic OAuth 2.0 provider entry: authorization code (+ PKCE), then the user from a user endpoint.
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: {
 *   gitea: oauth2({
 *     label: 'Gitea', clientId, clientSecret, scope: 'read:user',
 *     authorizationEndpoint: 'https://git.example.com/login/oauth/authorize',
 *     tokenEndpoint: 'https://git.example.com/login/oauth/access_token',
 *     userinfoEndpoint: 'https://git.example.com/api/v1/user',
 *     profile: (u) => ({ sub: String(u.id), name: u.full_name as string, email: u.email as string }),
 *   }),
 * } });
 * ```
 */
export function oauth2(options: OAuth2Options): ProviderConfig {
  const where = 'oauth2()';
  requireString(where, options, 'clientId');
  requireUrl(where, options, 'authorizationEndpoint');
  requireUrl(where, options, 'tokenEndpoint');
  if (options.userinfoEndpoint !== undefined) requireUrl(where, options, 'userinfoEndpoint');
  if (!options.userinfoEndpoint && !options.fetchUser) {
    throw new OptionsError('userinfoEndpoint', 'is missing: give it (or "fetchUser") so the user can be loaded after login', where);
  }
  const userinfoEndpoint = options.userinfoEndpoint;
  return {
    type: 'oauth2',
    label: options.label ?? 'OAuth 2.0',
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    tokenEndpointAuthMethod: options.tokenEndpointAuthMethod,
    issuer: options.issuer ?? new URL(options.authorizationEndpoint).origin,
    providerInfo: {
      issuer: options.issuer ?? new URL(options.authorizationEndpoint).origin,
      authorization_endpoint: options.authorizationEndpoint,
      token_endpoint: options.tokenEndpoint,
      ...(userinfoEndpoint ? { userinfo_endpoint: userinfoEndpoint } : {}),
    },
    scope: options.scope ?? '',
    responseType: 'code',
    responseMode: 'query',
    authorizationParams: options.authorizationParams,
    pkce: options.pkce ?? true,
    fetchUser: options.fetchUser ?? ((accessToken, fetchImpl) => getJson(fetchImpl, userinfoEndpoint!, accessToken)),
    profile: options.profile ?? standardProfile,
    customFetch: options.customFetch,
    allowInsecureRequests: options.allowInsecureRequests,
  };
}

/**
 * GET a JSON document with a Bearer token; non-2xx or non-object answers become a {@link UserEndpointError}.
 *
 * @example
 * ```ts
 * const user = await getJson(fetch, 'https://api.example.com/user', accessToken);
 * ```
 */
export async function getJson(
  fetchImpl: typeof fetch,
  url: string,
  accessToken: string,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const response = await fetchImpl(url, {
    headers: { accept: 'application/json', ...headers, authorization: `Bearer ${accessToken}` },
    redirect: 'manual',
  });
  if (!response.ok) throw userEndpointError(url, response);
  const body: unknown = await response.json().catch(() => undefined);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new UserEndpointError(`user endpoint ${new URL(url).pathname} did not answer a JSON object`);
  }
  return body as Record<string, unknown>;
}

/** OIDC standard claim names → normalized user. */
function standardProfile(claims: Record<string, unknown>): Partial<Omit<NormalizedUser, 'provider' | 'claims'>> {
  const sub = claims.sub ?? claims.id;
  return {
    sub: typeof sub === 'number' || typeof sub === 'string' ? String(sub) : undefined,
    name: asString(claims.name),
    email: asString(claims.email),
    emailVerified: typeof claims.email_verified === 'boolean' ? claims.email_verified : undefined,
    picture: asString(claims.picture),
  };
}

/** The value when it is a non-empty string. */
export function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Start-up check of a required string option, naming the preset and the option. */
export function requireString(where: string, options: object | undefined, key: string): void {
  const value = (options as Record<string, unknown> | undefined)?.[key];
  if (typeof value !== 'string' || value.length === 0) {
    throw new OptionsError(key, 'is required and must be a non-empty string', where);
  }
}

/** Start-up check of a URL option (http: only with allowInsecureRequests). */
export function requireUrl(where: string, options: object, key: string): void {
  requireString(where, options, key);
  const value = (options as Record<string, string>)[key];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OptionsError(key, `must be an absolute URL, got ${JSON.stringify(value)}`, where);
  }
  const insecureOk = (options as { allowInsecureRequests?: boolean }).allowInsecureRequests === true;
  if (url.protocol !== 'https:' && !(insecureOk && url.protocol === 'http:')) {
    throw new OptionsError(key, 'must be an https: URL (http: only with allowInsecureRequests: true)', where);
  }
}
