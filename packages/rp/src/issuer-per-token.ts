/**
 * ID tokens whose issuer depends on the token (a provider's `expectedIssuer` hook: Entra ID's
 * "{tenantid}" template filled from `tid`, Google's scheme-less "accounts.google.com").
 *
 * openid-client checks an ID token's `iss` against its Configuration's issuer, so for such a
 * provider the check runs against a Configuration made for that callback with the concrete issuer.
 */
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { RpError } from './errors.js';
import type { ProviderConfig } from './options.js';

type Checks = client.AuthorizationCodeGrantChecks;
type TokenResponse = Awaited<ReturnType<typeof client.authorizationCodeGrant>>;

/**
 * `client.authorizationCodeGrant`, honouring `p.expectedIssuer`: when the ID token's `iss` is not
 * the metadata issuer, the captured token response is validated again (not re-requested: codes
 * are single-use) against a Configuration carrying the issuer the hook names for that token.
 *
 * @example
 * ```ts
 * const tokens = await codeGrantWithTokenIssuer(p, config, client.ClientSecretPost(secret), currentUrl, { expectedState });
 * ```
 */
export function codeGrantWithTokenIssuer(
  p: ProviderConfig, config: client.Configuration, auth: client.ClientAuth, currentUrl: URL, checks: Checks, options?: client.DPoPOptions,
): Promise<TokenResponse> {
  if (!p.expectedIssuer) return client.authorizationCodeGrant(config, currentUrl, checks, undefined, options);
  return withTokenIssuer(p, config, auth, (c, replay) => {
    // On replay, the `iss` authorization response parameter was already checked against the metadata issuer.
    const url = new URL(currentUrl);
    if (replay) url.searchParams.delete('iss');
    return client.authorizationCodeGrant(c, url, checks, undefined, options);
  });
}

/**
 * `client.refreshTokenGrant`, honouring `p.expectedIssuer` for the refreshed ID token.
 *
 * @example
 * ```ts
 * const tokens = await refreshWithTokenIssuer(p, config, auth, refreshToken, { scope: 'openid' });
 * ```
 */
export function refreshWithTokenIssuer(
  p: ProviderConfig, config: client.Configuration, auth: client.ClientAuth, refreshToken: string, parameters?: Record<string, string>,
  options?: client.DPoPOptions,
): Promise<TokenResponse> {
  if (!p.expectedIssuer) return client.refreshTokenGrant(config, refreshToken, parameters, options);
  return withTokenIssuer(p, config, auth, (c) => client.refreshTokenGrant(c, refreshToken, parameters, options));
}

/** Runs a token grant; on an `iss` mismatch, validates the captured answer again with the hook's issuer. */
async function withTokenIssuer(
  p: ProviderConfig, config: client.Configuration, auth: client.ClientAuth,
  grant: (config: client.Configuration, replay: boolean) => Promise<TokenResponse>,
): Promise<TokenResponse> {
  const metadata = config.serverMetadata();
  const fetchImpl = (p.customFetch as unknown as typeof fetch | undefined) ?? fetch;
  let captured: Response | undefined;
  const capture: client.CustomFetch = async (url, init) => {
    const response = await fetchImpl(url, init as RequestInit);
    if (url === metadata.token_endpoint) captured = response.clone();
    return response;
  };
  try {
    return await grant(derive(p, config, auth, metadata.issuer, capture), false);
  } catch (err) {
    if (!captured || !isIssuerMismatch(err)) throw err;
    const body = (await captured.clone().json()) as { id_token?: unknown };
    const issuer = typeof body.id_token === 'string' ? tokenIssuer(p, body.id_token, metadata.issuer) : metadata.issuer;
    if (issuer === metadata.issuer) throw err;
    const replay: client.CustomFetch = async (url, init) =>
      url === metadata.token_endpoint ? captured!.clone() : fetchImpl(url, init as RequestInit);
    // the authorization response's `iss` (RFC 9207) was checked in the first pass; the replay drops it from the URL,
    // so the copy must not ask for it again (Google advertises RFC 9207 and may sign "accounts.google.com")
    return grant(derive(p, config, auth, issuer, replay, { authorization_response_iss_parameter_supported: false }), true);
  }
}

/**
 * The Configuration to validate an ID token from the authorization response with
 * (`response_type=id_token`): `config` itself, or one carrying the issuer `p.expectedIssuer` names.
 *
 * @example
 * ```ts
 * const claims = await client.implicitAuthentication(configurationForIdToken(p, config, auth, idToken), url, nonce);
 * ```
 */
export function configurationForIdToken(
  p: ProviderConfig, config: client.Configuration, auth: client.ClientAuth, idToken: string | null,
): client.Configuration {
  const metadata = config.serverMetadata();
  if (!p.expectedIssuer || !idToken) return config;
  const issuer = tokenIssuer(p, idToken, metadata.issuer);
  if (issuer === metadata.issuer) return config;
  const derived = derive(p, config, auth, issuer, p.customFetch);
  client.useIdTokenResponseType(derived);
  return derived;
}

/** The hook's answer for this token; its refusal is an `invalid_id_token`. */
function tokenIssuer(p: ProviderConfig, idToken: string, metadataIssuer: string): string {
  try {
    return p.expectedIssuer!(decodeJwt(idToken) as Record<string, unknown>, metadataIssuer);
  } catch (err) {
    if (err instanceof RpError) throw err;
    throw new RpError('invalid_id_token', `the token was refused: ${(err as Error).message}`, { cause: err });
  }
}

/** openid-client's ClientError wrapping oauth4webapi's claim comparison failure on `iss`. */
function isIssuerMismatch(err: unknown): boolean {
  const e = err as { code?: string; cause?: { claim?: string; cause?: { claim?: string } } };
  return e?.code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' && (e.cause?.claim ?? e.cause?.cause?.claim) === 'iss';
}

/** A copy of `config` for one callback, with another issuer and HTTP client. */
function derive(
  p: ProviderConfig, config: client.Configuration, auth: client.ClientAuth, issuer: string, customFetch: client.CustomFetch | undefined,
  overrides?: Partial<client.ServerMetadata>,
): client.Configuration {
  // serverMetadata() carries helper methods; the Configuration wants plain (cloneable) metadata.
  const metadata = JSON.parse(JSON.stringify(config.serverMetadata())) as client.ServerMetadata;
  const derived = new client.Configuration({ ...metadata, ...overrides, issuer }, config.clientMetadata().client_id, config.clientMetadata(), auth);
  if (customFetch) derived[client.customFetch] = customFetch;
  if (p.allowInsecureRequests) client.allowInsecureRequests(derived);
  derived.timeout = config.timeout;
  return derived;
}
