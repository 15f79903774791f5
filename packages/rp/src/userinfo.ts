/**
 * UserInfo responses openid-client does not cover the way certification wants: the access token
 * in a POST body (RFC 6750 §2.2), and signed / encrypted / signed-then-encrypted answers
 * (`application/jwt`, OIDC Core 5.3.2) whose signature is checked with the OP's JWKS, like an ID
 * token's. Plain JSON over the Authorization header stays with `client.fetchUserInfo`.
 */
import * as jose from 'jose';
import { RpError } from './errors.js';
import { verifyJwt, type JwtExpectations, type KeySets } from './id-token.js';
import { DEFAULT_ENC, decryptJwe, isJwe, type OwnKeys } from './keys.js';
import type { ProviderConfig } from './options.js';

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
  if (response.status >= 500) throw new RpError('op_unavailable', `the userinfo endpoint ${opts.endpoint} answered HTTP ${response.status}`);
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
