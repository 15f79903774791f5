/**
 * Request objects (OIDC Core 6, RFC 9101): the authorization request's parameters as a JWT, sent by
 * value (`request=`) or by reference (`request_uri=`, served by the RP), signed with a key of
 * `rp({ keys })` (or the client secret for HS256, or unsigned with "none"), optionally encrypted to
 * the OP's current encryption key.
 */
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { RpError } from './errors.js';
import { signingKey, type OwnKeys } from './keys.js';
import type { ProviderConfig } from './options.js';

/** Seconds a request object is valid (and served by reference). */
export const REQUEST_OBJECT_TTL = 300;

/** The OP's public keys for encryption, downloaded again at most once a second (so a rotated key is used at once). */
const opKeys = new Map<string, { at: number; keys: Promise<jose.JWK[]> }>();

async function opEncryptionKey(p: ProviderConfig, jwksUri: string, alg: string): Promise<jose.JWK> {
  let cached = opKeys.get(jwksUri);
  if (!cached || Date.now() - cached.at > 1000) {
    const doFetch = (p.customFetch as unknown as typeof fetch | undefined) ?? fetch;
    const keys = doFetch(jwksUri, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
      .then(async (r) => (r.ok ? (((await r.json()) as { keys?: jose.JWK[] }).keys ?? []) : Promise.reject(new Error(`HTTP ${r.status}`))));
    cached = { at: Date.now(), keys };
    keys.catch(() => opKeys.delete(jwksUri));
    opKeys.set(jwksUri, cached);
    if (opKeys.size > 1000) opKeys.delete(opKeys.keys().next().value!);
  }
  const keys = await cached.keys.catch((err: Error) => {
    throw new RpError('op_unreachable', `the OP's keys at ${jwksUri} could not be loaded to encrypt the request object: ${err.message}`);
  });
  const kty = alg.startsWith('RSA') ? 'RSA' : alg.startsWith('ECDH') ? undefined : 'oct';
  const key = keys.find((k) => (k.use === undefined || k.use === 'enc') && (k.alg === undefined || k.alg === alg) && (kty ? k.kty === kty : k.kty === 'EC' || k.kty === 'OKP'));
  if (!key) throw new RpError('invalid_response', `the OP publishes no encryption key for ${alg} at ${jwksUri}`);
  return key;
}

/**
 * The request object carrying `params` for provider `p`: claims `iss` (client_id), `aud` (the OP),
 * `iat`, `exp`, `jti`, then signed as `p.requestObject.signingAlg` says and encrypted when it names
 * an `encryptionAlg`.
 *
 * @example
 * ```ts
 * const jwt = await requestObject(p, { issuer, jwksUri }, { response_type: 'code', state, nonce, ... }, ownKeys);
 * ```
 */
export async function requestObject(
  p: ProviderConfig, op: { issuer: string; jwksUri?: string }, params: Record<string, string>, own: OwnKeys,
): Promise<string> {
  const settings = p.requestObject ?? {};
  const alg = settings.signingAlg ?? 'RS256';
  const iat = Math.floor(Date.now() / 1000);
  const claims = { ...params, iss: p.clientId, client_id: p.clientId, aud: op.issuer, iat, nbf: iat, exp: iat + REQUEST_OBJECT_TTL, jti: randomBytes(16).toString('base64url') };
  let jwt: string;
  if (alg === 'none') {
    jwt = new jose.UnsecuredJWT(claims).encode();
  } else if (alg.startsWith('HS')) {
    jwt = await new jose.SignJWT(claims).setProtectedHeader({ alg, typ: 'oauth-authz-req+jwt' }).sign(new TextEncoder().encode(p.clientSecret ?? ''));
  } else {
    const { key, kid } = signingKey(own, alg, `signing request objects for ${op.issuer}`);
    jwt = await new jose.SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'oauth-authz-req+jwt' }).sign(key);
  }
  if (!settings.encryptionAlg) return jwt;
  if (!op.jwksUri) throw new RpError('invalid_response', `the OP ${op.issuer} publishes no jwks_uri, so the request object cannot be encrypted to it`);
  const jwk = await opEncryptionKey(p, op.jwksUri, settings.encryptionAlg);
  return new jose.CompactEncrypt(new TextEncoder().encode(jwt))
    .setProtectedHeader({ alg: settings.encryptionAlg, enc: settings.encryptionEnc ?? 'A128CBC-HS256', cty: 'JWT', ...(jwk.kid ? { kid: jwk.kid } : {}) })
    .encrypt(await jose.importJWK(jwk, settings.encryptionAlg));
}
