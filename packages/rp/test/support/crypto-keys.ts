/**
 * Key material for the crypto certification tests (cert-crypto.test.ts): fresh key pairs as
 * private / public JWKs with a `kid`, `use` and `alg`, and the private members a public JWK must
 * never carry.
 */
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** The private members of RSA / EC / OKP JWKs (RFC 7518 §6.2.2, §6.3.2). */
export const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const;

export interface KeyPairJwks {
  /** The private JWK (what `rp({ keys })` or an OP's `jwks` takes). */
  privateJwk: JWK;
  /** Its public half (what a client's `jwks` registration or a JWKS serves). */
  publicJwk: JWK;
}

/**
 * A fresh key pair for `alg` ("RS256", "ES256", "RSA-OAEP", "ECDH-ES" on P-256 …) as JWKs with
 * `kid`, `use` ("sig" for signature algorithms, "enc" for key management ones) and `alg`.
 *
 * @example
 * ```ts
 * const { privateJwk, publicJwk } = await keyPair('RSA-OAEP', 'rp-enc-1');
 * ```
 */
export async function keyPair(alg: string, kid: string, opts: { use?: 'sig' | 'enc' | null } = {}): Promise<KeyPairJwks> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('ECDH') ? { crv: 'P-256' } : {}) });
  const use = opts.use === null ? {} : { use: opts.use ?? (/^(RSA-OAEP|RSA1_5|ECDH-ES)/.test(alg) ? 'enc' : 'sig') };
  const meta = { kid, alg, ...use };
  return { privateJwk: { ...(await exportJWK(privateKey)), ...meta }, publicJwk: { ...(await exportJWK(publicKey)), ...meta } };
}
