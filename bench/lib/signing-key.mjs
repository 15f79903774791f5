// A fresh RS256 signing key (a private JWK with kid, use and alg) for the benches' OPs.
// The JWK comes straight from the generation: on Node 20, exporting a KeyObject that
// generateKeyPairSync made can deadlock the process (see test/support/private-jwk.ts).
import { generateKeyPairSync, randomUUID } from 'node:crypto';

export function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } });
  return { ...privateKey, kid: randomUUID(), use: 'sig', alg: 'RS256' };
}
