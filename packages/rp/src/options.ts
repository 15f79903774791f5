/**
 * Options of `rp()` and the shape every provider entry (preset) returns.
 *
 * Single source of truth for option names, defaults and their documentation (the README's option
 * table is generated from / checked against this file). Validation with messages that say what to
 * fix lives here too.
 *
 * OWNERSHIP NOTE (remove when the package is done): the RP core owns this file. Provider presets
 * (google.ts, microsoft.ts, github.ts, oauth2) must only need the generic hooks of
 * `ProviderConfig`; a preset that needs a new hook adds an OPTIONAL, provider-neutral field here and
 * the core handles it generically. Core code never names a provider.
 */
import type * as client from 'openid-client';

/** The user as the app sees it on `req.oidc.user`, whatever the provider. */
export interface NormalizedUser {
  sub: string;
  provider: string;
  name?: string;
  email?: string;
  emailVerified?: boolean;
  picture?: string;
  /** All claims, merged from the ID token and the user info / user endpoint. */
  claims: Record<string, unknown>;
}

/** Static provider metadata for an OP without discovery (the seed's `provider_info`). */
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
  label?: string;
  clientId: string;
  clientSecret?: string;
  /** Token endpoint client authentication. Default: client_secret_basic with a secret, none without. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Issuer identifier; discovery runs against it unless `providerInfo` is given. */
  issuer?: string;
  /** Static metadata (the seed's `provider_info`), used instead of discovery. */
  providerInfo?: ProviderInfo;
  /** Accept a discovery document whose `issuer` differs from the URL asked (seed: allow.issuer_mismatch). */
  allowIssuerMismatch?: boolean;
  /** Space-separated scopes requested at login. */
  scope: string;
  /** 'code' (default) or 'id_token' (all claims in the ID token, no token endpoint). */
  responseType?: 'code' | 'id_token';
  /** 'query' (default for code) or 'form_post'. */
  responseMode?: 'query' | 'form_post';
  /** Extra parameters on every authorization request (e.g. `access_type`, `prompt`, `hd`). */
  authorizationParams?: Record<string, string>;
  /** PKCE S256 (default true). */
  pkce?: boolean;
  /**
   * The issuer an ID token must carry, given its unverified claims and the metadata issuer
   * (e.g. a `{tenantid}` template filled from `tid`). Throw to refuse. Default: the metadata issuer.
   */
  expectedIssuer?: (unverifiedClaims: Record<string, unknown>, metadataIssuer: string) => string;
  /** Extra checks on the verified ID token claims; throw an Error to refuse the login. */
  validateIdToken?: (claims: Record<string, unknown>) => void;
  /** For `type: 'oauth2'`: load the user's claims with the access token. */
  fetchUser?: (accessToken: string, fetchImpl: typeof fetch) => Promise<Record<string, unknown>>;
  /** Map the provider's claims to the normalized user (sub, name, email, ...). */
  profile?: (claims: Record<string, unknown>) => Partial<Omit<NormalizedUser, 'provider' | 'claims'>>;
  /** HTTP wrapper for the provider's wire quirks, passed to openid-client as `customFetch`. */
  customFetch?: client.CustomFetch;
  /** Allow http:// endpoints (development and tests against loopback only). */
  allowInsecureRequests?: boolean;
}
