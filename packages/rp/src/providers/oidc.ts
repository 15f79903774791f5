/**
 * `oidc()`: any standard OpenID Provider, by discovery from its issuer or by static metadata.
 */
import type { ProviderConfig, ProviderInfo } from '../options.js';

/** Options of `oidc()`: the common `ProviderConfig` fields, with `scope` and `type` optional. */
export interface OidcProviderOptions extends Partial<Omit<ProviderConfig, 'type' | 'clientId'>> {
  clientId: string;
  /** Issuer identifier (discovery runs against `{issuer}/.well-known/openid-configuration`). */
  issuer?: string | undefined;
  /** Static metadata for an OP without discovery (IdPyOIDC: `provider_info`). */
  providerInfo?: ProviderInfo | undefined;
}

/**
 * A generic OpenID Connect provider entry.
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: {
 *   corp: oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: process.env.SECRET,
 *                scope: 'openid profile email offline_access' }),
 *   legacy: oidc({ clientId: 'app', clientSecret: 's', providerInfo: { issuer: 'https://old.example.com',
 *     authorization_endpoint: 'https://old.example.com/authorize', token_endpoint: 'https://old.example.com/token',
 *     jwks_uri: 'https://old.example.com/jwks' } }),
 * } });
 * ```
 */
export function oidc(options: OidcProviderOptions): ProviderConfig {
  return { ...options, label: options.label ?? hostOf(options.issuer), type: 'oidc', scope: options.scope ?? 'openid profile email' };
}

/** The issuer's host as a default label; an invalid issuer is reported by the options check, not here. */
function hostOf(issuer: string | undefined): string | undefined {
  return URL.canParse(issuer ?? '') ? new URL(issuer!).host : undefined;
}
