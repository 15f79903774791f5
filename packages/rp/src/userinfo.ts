/**
 * UserInfo responses openid-client does not cover the way certification wants: the access token
 * in a POST body (RFC 6750 §2.2), and signed / encrypted / signed-then-encrypted answers
 * (`application/jwt`, OIDC Core 5.3.2) whose signature is checked with the OP's JWKS, like an ID
 * token's. Plain JSON over the Authorization header stays with `client.fetchUserInfo`.
 */
import * as jose from 'jose';
import { RpError, opRetryAfter } from './errors.js';
import { verifyJwt, type JwtExpectations, type KeySets } from './id-token.js';
import { DEFAULT_ENC, decryptJwe, isJwe, type OwnKeys } from './keys.js';
import type { ProviderConfig } from './options.js';

/** The claims each standard scope asks for (OIDC Core 5.4; `openid` gives `sub`, `offline_access` a refresh token and no claims). */
const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  openid: ['sub'],
  offline_access: [],
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website',
    'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
};
/** claim → the standard scope that asks for it. */
const SCOPE_OF_CLAIM: ReadonlyMap<string, string> = new Map(Object.entries(SCOPE_CLAIMS).flatMap(([scope, claims]) => claims.map((c) => [c, scope] as const)));
/** Claims about the token or the authentication, never about the person (a userinfo answer has none of them). */
const TOKEN_CLAIMS: ReadonlySet<string> = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'auth_time', 'acr', 'amr', 'azp', 'sid',
  'at_hash', 'c_hash', 's_hash', 'cnf', 'sub_jwk', 'events', '_claim_names', '_claim_sources']);

/**
 * Whether the userinfo endpoint can tell the RP more than the ID token did, right after a login
 * (the default of the `fetchUserInfo` provider option). It cannot — and is not asked — when:
 *
 * - the provider is `type: 'oidc'` without `fetchUser`, an ID token came, and the `claims` request
 *   parameter asks for no userinfo claims;
 * - every granted scope is a standard one (OIDC Core 5.4: openid, profile, email, address, phone,
 *   and offline_access): any other scope may release any claim;
 * - the ID token carries at least one claim of each granted scope (an OP's `claims_supported` may
 *   leave out what it releases only through userinfo);
 * - the OP publishes `claims_supported` (without it, what it can release is unknown), and every
 *   person claim listed there that the granted scopes can release — 5.4 maps it to a granted scope,
 *   or to no scope at all (an OP may add its own claims to a scope) — is in the ID token (or its
 *   `_claim_names`: aggregated and distributed claims).
 *
 * `scope` is the scope the token response granted, or the one requested when it named none (RFC 6749 §5.1).
 *
 * @example
 * ```ts
 * userInfoCanAdd(p, 'openid email', ['sub', 'email', 'email_verified', 'name'], { sub: 'alice', email: 'a@example.org', email_verified: true }); // false: name needs "profile"
 * ```
 */
export function userInfoCanAdd(
  p: ProviderConfig, scope: string, claimsSupported: readonly string[] | undefined, idTokenClaims: Record<string, unknown> | undefined,
): boolean {
  if (!idTokenClaims || p.type !== 'oidc' || p.fetchUser || p.claims?.userinfo || !claimsSupported) return true;
  const granted = new Set(scope.split(' ').filter(Boolean));
  for (const s of granted) if (!Object.hasOwn(SCOPE_CLAIMS, s)) return true;
  const names = idTokenClaims._claim_names;
  const carried = (claim: string): boolean =>
    Object.hasOwn(idTokenClaims, claim) || (typeof names === 'object' && names !== null && Object.hasOwn(names, claim));
  // claims_supported "might not be an exhaustive list" (OpenID Discovery §3): LemonLDAP::NG lists only
  // sub, iss, auth_time and acr. A granted scope none of whose claims the ID token carries is released
  // elsewhere, whatever the list says.
  for (const s of granted) if (SCOPE_CLAIMS[s]!.length && !SCOPE_CLAIMS[s]!.some(carried)) return true;
  for (const claim of claimsSupported) {
    if (TOKEN_CLAIMS.has(claim) || carried(claim)) continue;
    const s = SCOPE_OF_CLAIM.get(claim);
    if (s === undefined || granted.has(s)) return true;
  }
  return false;
}

/** True when this provider's UserInfo needs `fetchUserInfo` below rather than openid-client's. */
export const needsOwnUserInfo = (p: ProviderConfig): boolean =>
  p.userinfoTokenMethod === 'body' || !!p.userinfoSignedResponseAlg || !!p.userinfoEncryptedResponseAlg;

/**
 * Calls the userinfo endpoint with `accessToken` and returns the claims, checking what the
 * provider entry registered: an encrypted answer is decrypted with `rp({ keys })`, a signed one
 * verified (its `iss` / `aud`, when present, must be the OP / this client), and `sub` must be the
 * ID token's.
 *
 * @example
 * ```ts
 * const claims = await fetchUserInfo(p, { endpoint, accessToken, expectedSub: 'alice', expect, keySets, own });
 * ```
 */
export async function fetchUserInfo(
  p: ProviderConfig,
  opts: { endpoint: string; accessToken: string; expectedSub: string | undefined; expect: JwtExpectations; keySets: KeySets; own: OwnKeys },
): Promise<Record<string, unknown>> {
  const doFetch = (p.customFetch as unknown as typeof fetch | undefined) ?? fetch;
  const body = p.userinfoTokenMethod === 'body';
  let response: Response;
  try {
    response = await doFetch(opts.endpoint, {
      method: body ? 'POST' : 'GET',
      headers: {
        accept: 'application/jwt, application/json',
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : { authorization: `Bearer ${opts.accessToken}` }),
      },
      ...(body ? { body: new URLSearchParams({ access_token: opts.accessToken }).toString() } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new RpError('op_unreachable', `the userinfo endpoint ${opts.endpoint} could not be reached: ${(err as Error).message}`, { cause: err });
  }
  if (response.status >= 500 || response.status === 429) {
    await response.body?.cancel().catch(() => undefined);
    throw new RpError('op_unavailable', `the userinfo endpoint ${opts.endpoint} answered HTTP ${response.status}`, { retryAfter: opRetryAfter(response.headers) });
  }
  if (response.status !== 200) throw new RpError('invalid_response', `the userinfo endpoint ${opts.endpoint} answered HTTP ${response.status}`);
  const text = await response.text();
  const jwt = (response.headers.get('content-type') ?? '').split(';')[0].trim() === 'application/jwt';
  const claims = jwt ? await readJwt(p, text.trim(), opts) : parseJson(text, opts.endpoint);
  if (!jwt && (p.userinfoSignedResponseAlg || p.userinfoEncryptedResponseAlg)) {
    throw new RpError('invalid_response', `the userinfo endpoint ${opts.endpoint} answered plain JSON, but this provider entry registered signed or encrypted UserInfo`);
  }
  if (typeof claims.sub !== 'string') throw new RpError('invalid_response', 'the UserInfo response has no sub');
  if (opts.expectedSub !== undefined && claims.sub !== opts.expectedSub) {
    throw new RpError('invalid_response', 'the UserInfo response is about another subject than the ID token');
  }
  return claims;
}

/** An `application/jwt` UserInfo answer: decrypted when encryption was registered, then its signature checked when signing was. */
async function readJwt(p: ProviderConfig, token: string, opts: { expect: JwtExpectations; keySets: KeySets; own: OwnKeys }): Promise<Record<string, unknown>> {
  const encAlg = p.userinfoEncryptedResponseAlg;
  if (isJwe(token) !== !!encAlg) {
    throw new RpError('invalid_response', encAlg ? 'the UserInfo response is not encrypted, but userinfoEncryptedResponseAlg is set' : 'the UserInfo response is encrypted, but no userinfoEncryptedResponseAlg is set for this provider');
  }
  let inner = token;
  if (encAlg) {
    try {
      inner = (await decryptJwe(opts.own, token, encAlg, p.userinfoEncryptedResponseEnc ?? DEFAULT_ENC, p.clientSecret)).trim();
    } catch (err) {
      throw new RpError('invalid_response', `the encrypted UserInfo response could not be decrypted: ${(err as Error).message}`, { cause: err });
    }
    if (!p.userinfoSignedResponseAlg) return parseJson(inner, 'the decrypted UserInfo response');
  }
  if (!p.userinfoSignedResponseAlg) throw new RpError('invalid_response', 'the UserInfo response is a signed JWT, but no userinfoSignedResponseAlg is set for this provider');
  try {
    // iss and aud are optional in a UserInfo JWT (OIDC Core 5.3.2); when present they must be right
    const unverified = jose.decodeJwt(inner);
    return (await verifyJwt(inner, {
      ...opts.expect,
      algorithms: [p.userinfoSignedResponseAlg],
      issuer: unverified.iss === undefined ? (undefined as unknown as string) : opts.expect.issuer,
      audience: unverified.aud === undefined ? (undefined as unknown as string) : opts.expect.audience,
    }, opts.keySets, p)) as Record<string, unknown>;
  } catch (err) {
    throw new RpError('invalid_response', `the signed UserInfo response was refused: ${(err as Error).message}`, { cause: err });
  }
}

function parseJson(text: string, where: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new RpError('invalid_response', `${where} did not answer a JSON object`);
}
