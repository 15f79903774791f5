/**
 * `microsoft()`: Microsoft Entra ID (v2.0 endpoints). Its quirks live here: multi-tenant discovery
 * documents whose issuer is the template ".../{tenantid}/v2.0" (the ID token's `iss` is that template
 * filled with its `tid`), optional tenant allow-lists, and IdPyOIDC's `id_token` + `form_post` mode.
 */
import type { ProviderConfig } from '../options.js';
import { asString, requireString, requireUrl } from './oauth2.js';
import { OptionsError } from '../errors.js';

/** Options of {@link microsoft}. */
export interface MicrosoftOptions {
  /** Tenant id (GUID) or domain, or `common`, `organizations`, `consumers`. */
  tenant: string;
  clientId: string;
  /** Required for the code flow; not used by `responseType: 'id_token'`. */
  clientSecret?: string | undefined;
  /** Tenant ids (`tid`) allowed to log in; others are refused. Default: any the tenant setting admits. */
  allowedTenants?: string[] | undefined;
  /** 'code' (default; `form_post` or `query`) or 'id_token' (IdPyOIDC's mode: all claims in the ID token, always `form_post`). */
  responseType?: 'code' | 'id_token' | undefined;
  /** Response mode for the code flow. Default: 'query'. */
  responseMode?: 'query' | 'form_post' | undefined;
  /** Space-separated scopes. Default: "openid profile email" (+ "offline_access" with `offline`). */
  scope?: string | undefined;
  /** Ask for a refresh token (adds the `offline_access` scope). Default false. */
  offline?: boolean | undefined;
  /** Extra authorization parameters (e.g. `prompt`, `domain_hint`). */
  authorizationParams?: Record<string, string> | undefined;
  /** Label for login buttons. Default: "Microsoft". */
  label?: string | undefined;
  /** Authority origin. Default: https://login.microsoftonline.com (override for sovereign clouds or tests). */
  authority?: string | undefined;
  /** Allow http:// endpoints (tests against loopback only). */
  allowInsecureRequests?: boolean | undefined;
}

/**
 * Refused ID token: no valid `tid`, or a tenant not in `allowedTenants`. The callback answers
 * `invalid_id_token` (401) with this error as `cause`.
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: { work: microsoft({ tenant: 'organizations', clientId, clientSecret, allowedTenants: [tid] }) },
 *   onError: (err, req, res) => res.status(err.status).send(err.cause instanceof TenantError ? 'Your organization is not enrolled' : err.message) });
 * ```
 */
export class TenantError extends Error {
  readonly code = 'tenant_not_allowed';
  constructor(message: string) {
    super(message);
    this.name = 'TenantError';
  }
}

/**
 * The Microsoft Entra ID provider entry.
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: {
 *   work: microsoft({ tenant: 'organizations', clientId, clientSecret, allowedTenants: [myTenantId] }),
 *   idpyoidcStyle: microsoft({ tenant: 'common', clientId, responseType: 'id_token' }),  // form_post
 * } });
 * ```
 */
export function microsoft(options: MicrosoftOptions): ProviderConfig {
  const where = 'microsoft()';
  requireString(where, options, 'tenant');
  requireString(where, options, 'clientId');
  if (options.authority !== undefined) requireUrl(where, options, 'authority');
  if (!/^[A-Za-z0-9.-]+$/.test(options.tenant)) {
    throw new OptionsError('tenant', 'must be a tenant id, a domain, "common", "organizations" or "consumers"', where);
  }
  const responseType = options.responseType ?? 'code';
  if (responseType !== 'code' && responseType !== 'id_token') {
    throw new OptionsError('responseType', 'must be "code" or "id_token"', where);
  }
  if (responseType === 'code') requireString(`${where} with responseType "code"`, options, 'clientSecret');
  const allowed = validateAllowedTenants(where, options.allowedTenants);
  const authority = (options.authority ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  return {
    type: 'oidc',
    label: options.label ?? 'Microsoft',
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    tokenEndpointAuthMethod: options.clientSecret ? 'client_secret_post' : 'none',
    issuer: `${authority}/${options.tenant}/v2.0`,
    // Multi-tenant discovery documents name the "{tenantid}" template as issuer, not the URL asked.
    allowIssuerMismatch: true,
    scope: options.scope ?? (options.offline ? 'openid profile email offline_access' : 'openid profile email'),
    responseType,
    responseMode: responseType === 'id_token' ? 'form_post' : options.responseMode ?? 'query',
    pkce: responseType === 'code',
    // The claims are in the ID token; Entra's userinfo lives at Graph and wants a Graph access token.
    fetchUserInfo: false,
    // Entra's single sign-out calls the front-channel logout URL with `sid` alone (no `iss`)
    frontchannelLogout: 'sid',
    authorizationParams: options.authorizationParams,
    expectedIssuer: (claims, metadataIssuer) => tenantIssuer(claims, metadataIssuer, allowed),
    validateIdToken: allowed ? (claims) => void checkTenant(claims.tid, allowed) : undefined,
    profile: (claims) => ({
      sub: asString(claims.sub),
      name: asString(claims.name),
      // Not preferred_username: it is not an email and not verified (the "nOAuth" account-takeover pattern).
      email: asString(claims.email),
    }),
    allowInsecureRequests: options.allowInsecureRequests,
  };
}

/** The issuer the ID token must carry: the metadata issuer, with `{tenantid}` filled from its `tid`. */
function tenantIssuer(claims: Record<string, unknown>, metadataIssuer: string, allowed: Set<string> | undefined): string {
  if (!metadataIssuer.includes('{tenantid}')) return metadataIssuer;
  const tid = checkTenant(claims.tid, allowed);
  return metadataIssuer.replace('{tenantid}', tid);
}

/** A `tid` that is a tenant id and, with an allow-list, on it. */
function checkTenant(tid: unknown, allowed: Set<string> | undefined): string {
  if (typeof tid !== 'string' || !/^[0-9a-fA-F-]{1,64}$/.test(tid)) {
    throw new TenantError('ID token has no valid "tid" (tenant id) claim');
  }
  if (allowed && !allowed.has(tid.toLowerCase())) {
    throw new TenantError(`tenant ${tid} is not in allowedTenants`);
  }
  return tid;
}

function validateAllowedTenants(where: string, list: string[] | undefined): Set<string> | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list) || list.length === 0 || list.some((t) => typeof t !== 'string' || t.length === 0)) {
    throw new OptionsError('allowedTenants', 'must be a non-empty array of tenant ids', where);
  }
  return new Set(list.map((t) => t.toLowerCase()));
}
