/**
 * `google()`: Google as an OpenID Provider. Its quirks live here: the scheme-less `iss`
 * ("accounts.google.com"), refresh tokens only with `access_type=offline` + `prompt=consent`, and
 * `hd` being a UI hint that the RP itself must enforce on the ID token, and the scopes it grants named
 * as API URLs ("https://www.googleapis.com/auth/userinfo.email" for `email`).
 */
import type { CustomFetch } from 'openid-client';
import type { ProviderConfig } from '../options.js';
import { asString, requireString, requireUrl } from './oauth2.js';

/** Options of {@link google}. */
export interface GoogleOptions {
  clientId: string;
  clientSecret: string;
  /** Space-separated scopes. Default: "openid email profile". */
  scope?: string | undefined;
  /** Ask for a refresh token (`access_type=offline`, `prompt=consent`). Default false. */
  offline?: boolean | undefined;
  /** Google Workspace domain: sent as `hd`, and an ID token with another `hd` claim is refused. `'*'`: any Workspace account (an ID token without `hd`, a consumer account, is refused). */
  hostedDomain?: string | undefined;
  /** Extra authorization parameters (e.g. `login_hint`). */
  authorizationParams?: Record<string, string> | undefined;
  /** Label for login buttons. Default: "Google". */
  label?: string | undefined;
  /** Issuer to discover. Default: https://accounts.google.com (override for tests only). */
  issuer?: string | undefined;
  /** Allow http:// endpoints (tests against loopback only). */
  allowInsecureRequests?: boolean | undefined;
}

/**
 * Refused ID token: its `hd` claim is not the configured `hostedDomain`. The callback answers
 * `invalid_id_token` (401) with this error as `cause`.
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: { google: google({ clientId, clientSecret, hostedDomain: 'example.com' }) },
 *   onError: (err, req, res) => res.status(err.status).send(err.cause instanceof HostedDomainError ? 'Use your example.com account' : err.message) });
 * ```
 */
export class HostedDomainError extends Error {
  readonly code = 'hosted_domain_mismatch';
  constructor(expected: string, actual: unknown) {
    super(expected === '*'
      ? `ID token hd ${JSON.stringify(actual ?? null)}: a Google Workspace account is required (hostedDomain "*"), and this is a consumer account`
      : `ID token hd ${JSON.stringify(actual ?? null)} is not the required hosted domain "${expected}"`);
    this.name = 'HostedDomainError';
  }
}

/**
 * The Google provider entry (OpenID Connect, discovery, code flow with PKCE).
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: {
 *   google: google({ clientId, clientSecret, offline: true, hostedDomain: 'example.com' }),
 * } });
 * ```
 */
export function google(options: GoogleOptions): ProviderConfig {
  const where = 'google()';
  requireString(where, options, 'clientId');
  requireString(where, options, 'clientSecret');
  if (options.issuer !== undefined) requireUrl(where, options, 'issuer');
  if (options.hostedDomain !== undefined) requireString(where, options, 'hostedDomain');
  const hostedDomain = options.hostedDomain;
  return {
    type: 'oidc',
    label: options.label ?? 'Google',
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    tokenEndpointAuthMethod: 'client_secret_basic',
    issuer: options.issuer ?? 'https://accounts.google.com',
    scope: options.scope ?? 'openid email profile',
    responseType: 'code',
    responseMode: 'query',
    pkce: true,
    authorizationParams: {
      ...(options.offline ? { access_type: 'offline', prompt: 'consent' } : {}),
      ...(hostedDomain ? { hd: hostedDomain } : {}),
      ...options.authorizationParams,
    },
    expectedIssuer: schemelessIssuer,
    validateIdToken: hostedDomain
      ? (claims) => {
          // "*": any Workspace account (Google's documented hd=*), so any hd claim; a consumer account has none
          const ok = hostedDomain === '*' ? typeof claims.hd === 'string' && claims.hd !== '' : claims.hd === hostedDomain;
          if (!ok) throw new HostedDomainError(hostedDomain, claims.hd);
        }
      : undefined,
    profile: (claims) => ({
      sub: asString(claims.sub),
      name: asString(claims.name),
      email: asString(claims.email),
      emailVerified: typeof claims.email_verified === 'boolean' ? claims.email_verified : undefined,
      picture: asString(claims.picture),
    }),
    customFetch: googleScopeFetch(),
    allowInsecureRequests: options.allowInsecureRequests,
  };
}

/** The OIDC scope each of Google's API-URL names for it means (Google grants `email` as the first). */
const GOOGLE_SCOPE_NAMES: Record<string, string> = {
  'https://www.googleapis.com/auth/userinfo.email': 'email',
  'https://www.googleapis.com/auth/userinfo.profile': 'profile',
};

/**
 * Google's token endpoint names the granted `email` and `profile` scopes as API URLs
 * ("https://www.googleapis.com/auth/userinfo.email openid …"): the answer's `scope` gets the names that
 * were asked for, so `requireAuth({ scope: 'email' })` and the userinfo decision see what was granted.
 *
 * @example
 * ```ts
 * const customFetch = googleScopeFetch();
 * ```
 */
export function googleScopeFetch(fetchImpl: typeof fetch = fetch): CustomFetch {
  return async (url, init) => {
    const response = await fetchImpl(url, init as RequestInit);
    // token requests only (a form with a grant_type), answered with JSON naming one of the URLs
    if (init.method !== 'POST' || !String(init.body ?? '').includes('grant_type=') || response.status !== 200) return response;
    const text = await response.text();
    const renamed = renameScopes(text);
    return new Response(renamed ?? text, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** The token response `text` with Google's scope URLs named as OIDC scopes; undefined when there is nothing to rename. */
function renameScopes(text: string): string | undefined {
  if (!text.includes('https://www.googleapis.com/auth/userinfo.')) return undefined;
  let body: { scope?: unknown };
  try {
    body = JSON.parse(text) as { scope?: unknown };
  } catch {
    return undefined;
  }
  if (typeof body?.scope !== 'string') return undefined;
  const scopes = body.scope.split(' ').filter(Boolean).map((scope) => GOOGLE_SCOPE_NAMES[scope] ?? scope);
  body.scope = [...new Set(scopes)].join(' ');
  return JSON.stringify(body);
}

/**
 * Google signs some ID tokens with `iss: "accounts.google.com"`: the issuer without its scheme is
 * accepted as the same issuer; anything else must equal the metadata issuer.
 */
function schemelessIssuer(claims: Record<string, unknown>, metadataIssuer: string): string {
  const bare = metadataIssuer.replace(/^https?:\/\//, '');
  return claims.iss === bare ? bare : metadataIssuer;
}
