/**
 * The RP's own keys (`rp({ keys })`, the IdPyOIDC `key_conf`): private JWKs the app gives, used to
 * sign client assertions (`private_key_jwt`) and request objects, and to decrypt encrypted ID
 * tokens and UserInfo responses. Their public halves are served at `GET {mountPath}/jwks`.
 */
import { createHash } from 'node:crypto';
import * as jose from 'jose';
import { OptionsError, RpError } from './errors.js';
import type { ProviderConfig } from './options.js';

/** One imported key, ready for jose / openid-client. */
export interface OwnKey {
  kid: string;
  alg: string;
  key: jose.CryptoKey;
}

/** The imported keys of the RP, by purpose, and the public JWKS to publish. */
export interface OwnKeys {
  sign: OwnKey[];
  decrypt: OwnKey[];
  jwks: { keys: jose.JWK[] };
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'use', 'alg'] as const;

/** The default `alg` of a key without one, per purpose. */
function defaultAlg(jwk: jose.JWK, use: 'sig' | 'enc'): string | undefined {
  if (use === 'sig') return jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'EC' ? { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv ?? ''] : jwk.kty === 'OKP' ? 'EdDSA' : undefined;
  return jwk.kty === 'RSA' ? 'RSA-OAEP' : jwk.kty === 'EC' || jwk.kty === 'OKP' ? 'ECDH-ES' : undefined;
}

/** Checks the `keys` option at start-up; throws an `OptionsError` naming the key that is wrong. */
export function checkKeys(keys: unknown): void {
  if (keys === undefined) return;
  if (!Array.isArray(keys)) throw new OptionsError('keys', 'must be an array of private JWKs, e.g. [await exportJWK(privateKey)] with a kid each');
  const kids = new Set<string>();
  keys.forEach((jwk: jose.JWK, i) => {
    const at = `keys[${i}]`;
    if (!jwk || typeof jwk !== 'object') throw new OptionsError(at, 'must be a private JWK object');
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') throw new OptionsError(`${at}.kty`, 'must be "RSA", "EC" or "OKP" (shared secrets are the provider\'s clientSecret)');
    if (typeof jwk.d !== 'string') throw new OptionsError(at, 'must be a PRIVATE key (it has no "d"); the RP publishes its public half at {mountPath}/jwks');
    if (typeof jwk.kid !== 'string' || !jwk.kid) throw new OptionsError(`${at}.kid`, 'is required: OPs pick the key by kid');
    if (kids.has(jwk.kid)) throw new OptionsError(`${at}.kid`, `"${jwk.kid}" is used by two keys`);
    kids.add(jwk.kid);
    if (jwk.use !== undefined && jwk.use !== 'sig' && jwk.use !== 'enc') throw new OptionsError(`${at}.use`, 'must be "sig" or "enc" (or absent for both)');
  });
}

/**
 * Imports the RP's keys: a key with `use: "sig"` signs, `use: "enc"` decrypts, no `use` does both
 * (its `alg` then decides, else the usual default of its type: RS256 / ES256 / EdDSA to sign,
 * RSA-OAEP / ECDH-ES to decrypt).
 *
 * @example
 * ```ts
 * const own = await importKeys([{ ...rsaPrivateJwk, kid: 'rp-1', use: 'sig' }]);
 * own.jwks; // { keys: [ the public half ] }
 * ```
 */
export async function importKeys(keys: jose.JWK[] = []): Promise<OwnKeys> {
  const own: OwnKeys = { sign: [], decrypt: [], jwks: { keys: [] } };
  for (const jwk of keys) {
    const uses = jwk.use ? [jwk.use as 'sig' | 'enc'] : (['sig', 'enc'] as const);
    for (const use of uses) {
      const alg = jwk.alg && (jwk.use || isAlgFor(jwk.alg, use)) ? jwk.alg : defaultAlg(jwk, use);
      if (!alg || (jwk.alg && jwk.use && !isAlgFor(alg, use))) continue;
      const key = (await jose.importJWK({ ...jwk, alg }, alg)) as jose.CryptoKey;
      (use === 'sig' ? own.sign : own.decrypt).push({ kid: jwk.kid!, alg, key });
    }
    own.jwks.keys.push(Object.fromEntries(PUBLIC_MEMBERS.filter((m) => jwk[m] !== undefined).map((m) => [m, jwk[m]])) as jose.JWK);
  }
  return own;
}

const isAlgFor = (alg: string, use: 'sig' | 'enc'): boolean => (use === 'enc') === /^(RSA-OAEP|RSA1_5|ECDH-ES)/.test(alg);

/** The signing key for `alg` (or the first one); throws naming the option to set when there is none. */
export function signingKey(own: OwnKeys, alg: string | undefined, purpose: string): OwnKey {
  const key = own.sign.find((k) => !alg || k.alg === alg);
  if (!key) {
    throw new OptionsError('keys', `has no signing key${alg ? ` for ${alg}` : ''}, needed for ${purpose}: add a private JWK with use "sig"${alg ? ` and alg "${alg}"` : ''}`);
  }
  return key;
}

/** Bits of key a symmetric `alg` (or, for "dir", its `enc`) needs. */
const SYMMETRIC_BITS: Record<string, number> = {
  A128KW: 128, A192KW: 192, A256KW: 256, A128GCMKW: 128, A192GCMKW: 192, A256GCMKW: 256,
  A128GCM: 128, A192GCM: 192, A256GCM: 256, 'A128CBC-HS256': 256, 'A192CBC-HS384': 384, 'A256CBC-HS512': 512,
};

/**
 * The symmetric key of a client for `alg` / `enc` (OIDC Core 10.2): the leftmost bits of the
 * SHA-256 (SHA-384, SHA-512 for longer keys) of the client secret.
 */
export function secretKey(clientSecret: string, alg: string, enc: string): Uint8Array | undefined {
  const bits = SYMMETRIC_BITS[alg === 'dir' ? enc : alg];
  if (!bits) return undefined;
  const hash = bits <= 256 ? 'sha256' : bits <= 384 ? 'sha384' : 'sha512';
  return new Uint8Array(createHash(hash).update(clientSecret, 'utf8').digest().subarray(0, bits / 8));
}

/**
 * Decrypts a compact JWE (an encrypted ID token or UserInfo response) with the RP's keys, or with
 * the key derived from the client secret for symmetric algorithms (A128KW, dir …); returns the
 * plaintext. Only the algorithms the provider entry names are accepted.
 */
export async function decryptJwe(own: OwnKeys, jwe: string, alg: string, enc: string, clientSecret?: string): Promise<string> {
  const { plaintext } = await jose.compactDecrypt(jwe, async (header) => {
    if (header.alg === alg && clientSecret !== undefined) {
      const secret = secretKey(clientSecret, alg, enc);
      if (secret) return secret;
    }
    const candidates = own.decrypt.filter((k) => k.alg === header.alg && (header.kid === undefined || k.kid === header.kid));
    if (candidates.length === 0) throw new Error(`no key of rp({ keys }) decrypts ${header.alg}${header.kid ? ` with kid "${header.kid}"` : ''}`);
    return candidates[0].key;
  }, { keyManagementAlgorithms: [alg], contentEncryptionAlgorithms: [enc] });
  return new TextDecoder().decode(plaintext);
}

/** The content encryption of encrypted responses when the provider entry names none (the registration default). */
export const DEFAULT_ENC = 'A128CBC-HS256';

/**
 * The signed ID token inside an encrypted one, as provider `p` registered: an unencrypted token is
 * refused when encryption was registered, an encrypted one when it was not.
 */
export async function decryptIdToken(p: ProviderConfig, own: OwnKeys, idToken: string): Promise<string> {
  const alg = p.idTokenEncryptedResponseAlg;
  if (isJwe(idToken) !== !!alg) {
    throw new RpError('invalid_id_token', alg
      ? `the ID token is not encrypted, but providers.*.idTokenEncryptedResponseAlg is "${alg}": the OP must encrypt it`
      : 'the ID token is encrypted, but no idTokenEncryptedResponseAlg is set for this provider: set it (and rp({ keys })) to accept encrypted ID tokens');
  }
  if (!alg) return idToken;
  try {
    return await decryptJwe(own, idToken, alg, p.idTokenEncryptedResponseEnc ?? DEFAULT_ENC, p.clientSecret);
  } catch (err) {
    throw new RpError('invalid_id_token', `the encrypted ID token could not be decrypted: ${(err as Error).message}`, { cause: err });
  }
}

/** True for a compact JWE (five parts), false for a JWS (three). */
export const isJwe = (token: string): boolean => token.split('.').length === 5;
