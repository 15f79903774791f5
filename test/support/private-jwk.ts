// A fresh private key as a JWK, for tests (RSA 2048 by default, or an EC P-256 key).
//
// Made by generateKeyPairSync with JWK encodings, so no KeyObject of the generation job is exported
// afterwards. On Node 20, `privateKey.export({ format: 'jwk' })` on a key that generateKeyPairSync
// made deadlocks the process when a garbage collection during the export frees the generation job
// (both take the key's lock): a jest worker hung forever in CI that way. Node 22 and 24 do not.
import { generateKeyPairSync } from 'node:crypto';

export type PrivateJwk = { kty: string; [member: string]: string };

const JWK_OUT = { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } } as const;

export function privateJwk(type: 'rsa' | 'ec' = 'rsa'): PrivateJwk {
  const options = type === 'rsa' ? { modulusLength: 2048, ...JWK_OUT } : { namedCurve: 'P-256', ...JWK_OUT };
  // @types/node types these encodings only for PEM and DER; Node returns plain JWK objects.
  const { privateKey } = (generateKeyPairSync as (t: string, o: object) => { privateKey: unknown })(type, options);
  return privateKey as PrivateJwk;
}
