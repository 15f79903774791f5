import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JWK } from 'oidc-provider';
import { OpConfigError } from './errors.js';

const HOW = 'generate them once with `node -e "import(\'@openid-express/op\').then(m => console.log(JSON.stringify(m.generateKeys())))"`'
  + ' and load the result from your secret store';

/** Encodings that make generateKeyPairSync return JWKs (typed by @types/node only for PEM and DER). */
const JWK_OUT = { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } } as const;

/**
 * Fresh keys for `op()`: an RS256 signing key and a cookie key. Run once, store the output as a secret.
 *
 * @example
 * const { jwks, cookieKeys } = generateKeys();
 * op({ issuer, accounts, jwks, cookieKeys });
 */
export function generateKeys(): { jwks: { keys: JWK[] }; cookieKeys: string[] } {
  // The JWK comes out of the key generation itself: on Node 20, exporting (`export({ format: 'jwk' })`)
  // a KeyObject that generateKeyPairSync made can deadlock the process when a garbage collection
  // during the export frees the generation job (both take the key's lock).
  const { privateKey: jwk } = generateKeyPairSync('rsa', { modulusLength: 2048, ...JWK_OUT }) as unknown as { privateKey: JWK };
  const kid = randomBytes(8).toString('base64url');
  return { jwks: { keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] }, cookieKeys: [randomBytes(32).toString('base64url')] };
}

/**
 * The keys to run with: the given ones; in development, generated ones with a warning;
 * with NODE_ENV=production and none given, a start-up error saying how to make them.
 */
export function resolveKeys(jwks: { keys: JWK[] } | undefined, cookieKeys: string[] | undefined, warn: (msg: string) => void) {
  const production = process.env.NODE_ENV === 'production';
  if (production && !jwks) throw new OpConfigError('jwks', `required when NODE_ENV=production: ${HOW}`);
  if (production && !cookieKeys) throw new OpConfigError('cookieKeys', `required when NODE_ENV=production: ${HOW}`);
  if (jwks && cookieKeys) return { jwks: withKids(jwks), cookieKeys };
  warn('op(): no jwks/cookieKeys given: generated throwaway keys (tokens and sessions die with the process). '
    + `Fine for development; for production ${HOW}.`);
  const generated = generateKeys();
  return { jwks: withKids(jwks ?? generated.jwks), cookieKeys: cookieKeys ?? generated.cookieKeys };
}

/**
 * `jwks` with a `kid` on every key: its own, else the one oidc-provider would give it (the SHA-256
 * of its public members in oidc-provider's order), so what oidc-provider publishes and what op()'s
 * own code reads (e.g. `retiredKeyHint`) are one value. A key that is not a plain JWK (an
 * `ExternalSigningKey`), or whose type oidc-provider refuses, is left to oidc-provider.
 */
function withKids(jwks: { keys: JWK[] }): { keys: JWK[] } {
  if (!Array.isArray(jwks.keys) || jwks.keys.every((k) => !isPlainKey(k) || typeof k.kid === 'string')) return jwks;
  return {
    ...jwks,
    keys: jwks.keys.map((k) => {
      const kid = isPlainKey(k) && k.kid === undefined ? thumbprintKid(k) : undefined;
      return kid === undefined ? k : { ...k, kid };
    }),
  };
}

function isPlainKey(k: unknown): k is JWK {
  return typeof k === 'object' && k !== null && Object.getPrototypeOf(k) === Object.prototype;
}

/** oidc-provider's `kid` of a key that has none (`calculateKid` in its `initialize_keystore.js`). */
function thumbprintKid(jwk: JWK): string | undefined {
  const { kty, e, n, crv, x, y } = jwk;
  const { alg, pub } = jwk as { alg?: string; pub?: string };
  const members = kty === 'RSA' ? { e, kty, n } : kty === 'EC' ? { crv, kty, x, y } : kty === 'OKP' ? { crv, kty, x } : kty === 'AKP' ? { alg, kty, pub } : undefined;
  return members && createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Members of a JWK that only a private (or secret) key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The public half of signing keys (what `/jwks` publishes), e.g. to verify the OP's own JWTs.
 *
 * @example
 * const verifyWith = createLocalJWKSet(publicJwks(jwks));
 */
export function publicJwks(jwks: { keys: readonly unknown[] }): { keys: JWK[] } {
  const jwkOf = (k: unknown): k is JWK => typeof k === 'object' && k !== null && typeof (k as JWK).kty === 'string' && (k as JWK).kty !== 'oct';
  return {
    keys: jwks.keys.filter(jwkOf).map((k) => Object.fromEntries(Object.entries(k).filter(([name]) => !PRIVATE_MEMBERS.includes(name))) as JWK),
  };
}
