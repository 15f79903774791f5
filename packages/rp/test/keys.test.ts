/**
 * The RP's own keys (`rp({ keys })`) and the client-secret-derived keys of OIDC Core 10.2.
 */
import { createHash } from 'node:crypto';
import * as jose from 'jose';
import { checkKeys, decryptIdToken, decryptJwe, importKeys, secretKey } from '../src/keys.js';
import { RpError } from '../src/errors.js';
import type { ProviderConfig } from '../src/options.js';

const SECRET = 'a-client-secret-of-some-length-0123456789';

test('the symmetric key is the leftmost bits of SHA-256 / SHA-512 of the client secret (OIDC Core 10.2)', () => {
  const sha256 = createHash('sha256').update(SECRET).digest();
  expect(Buffer.from(secretKey(SECRET, 'A128KW', 'A128CBC-HS256')!)).toEqual(sha256.subarray(0, 16));
  expect(Buffer.from(secretKey(SECRET, 'A256KW', 'A128GCM')!)).toEqual(sha256);
  expect(Buffer.from(secretKey(SECRET, 'dir', 'A256CBC-HS512')!)).toEqual(createHash('sha512').update(SECRET).digest());
  expect(secretKey(SECRET, 'RSA-OAEP', 'A128GCM')).toBeUndefined();
});

test('an A128KW JWE made with the secret decrypts; one made with another secret does not', async () => {
  const make = (secret: string) => new jose.CompactEncrypt(new TextEncoder().encode('inner'))
    .setProtectedHeader({ alg: 'A128KW', enc: 'A128CBC-HS256' }).encrypt(secretKey(secret, 'A128KW', 'A128CBC-HS256')!);
  const own = await importKeys([]);
  expect(await decryptJwe(own, await make(SECRET), 'A128KW', 'A128CBC-HS256', SECRET)).toBe('inner');
  await expect(decryptJwe(own, await make('another-secret'), 'A128KW', 'A128CBC-HS256', SECRET)).rejects.toThrow();
  // only the registered algorithms: an RSA-OAEP entry does not accept an A128KW token
  await expect(decryptJwe(own, await make(SECRET), 'RSA-OAEP', 'A128CBC-HS256', SECRET)).rejects.toThrow();
});

test('decryptIdToken refuses a plain token when encryption was registered, and an encrypted one when it was not', async () => {
  const own = await importKeys([]);
  const p = { type: 'oidc', clientId: 'app', clientSecret: SECRET, scope: 'openid', issuer: 'https://op.example' } as ProviderConfig;
  const jwe = await new jose.CompactEncrypt(new TextEncoder().encode('a.b.c')).setProtectedHeader({ alg: 'A128KW', enc: 'A128CBC-HS256' })
    .encrypt(secretKey(SECRET, 'A128KW', 'A128CBC-HS256')!);
  await expect(decryptIdToken(p, own, jwe)).rejects.toMatchObject({ code: 'invalid_id_token', message: expect.stringMatching(/no idTokenEncryptedResponseAlg/) });
  const encrypted = { ...p, idTokenEncryptedResponseAlg: 'A128KW' };
  await expect(decryptIdToken(encrypted, own, 'a.b.c')).rejects.toMatchObject({ code: 'invalid_id_token', message: expect.stringMatching(/not encrypted/) });
  expect(await decryptIdToken(encrypted, own, jwe)).toBe('a.b.c');
  await expect(decryptIdToken({ ...encrypted, clientSecret: 'other' }, own, jwe)).rejects.toBeInstanceOf(RpError);
});

test('importKeys: sig, enc and both; the published JWKS has public members only', async () => {
  const rsa = await jose.generateKeyPair('RS256', { extractable: true });
  const ec = await jose.generateKeyPair('ECDH-ES', { extractable: true, crv: 'P-256' });
  const own = await importKeys([
    { ...(await jose.exportJWK(rsa.privateKey)), kid: 'both' },
    { ...(await jose.exportJWK(ec.privateKey)), kid: 'enc-ec', use: 'enc' },
  ]);
  expect(own.sign.map((k) => [k.kid, k.alg])).toEqual([['both', 'RS256']]);
  expect(own.decrypt.map((k) => [k.kid, k.alg])).toEqual([['both', 'RSA-OAEP'], ['enc-ec', 'ECDH-ES']]);
  for (const jwk of own.jwks.keys) for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(m);
  expect(own.jwks.keys.map((k) => k.kid)).toEqual(['both', 'enc-ec']);
});

test.each([
  ['not an array', { kty: 'RSA' }, /option "keys" must be an array/],
  ['a public key', [{ kty: 'RSA', n: 'x', e: 'AQAB', kid: 'k' }], /"keys\[0\]" must be a PRIVATE key/],
  ['no kid', [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }], /"keys\[0\].kid" is required/],
  ['a shared secret', [{ kty: 'oct', k: 'abc', kid: 'k' }], /"keys\[0\].kty" must be "RSA", "EC" or "OKP"/],
  ['two keys with one kid', [{ kty: 'EC', d: 'd', kid: 'k' }, { kty: 'EC', d: 'd', kid: 'k' }], /"keys\[1\].kid" "k" is used by two keys/],
  ['a bad use', [{ kty: 'EC', d: 'd', kid: 'k', use: 'both' }], /"keys\[0\].use" must be "sig" or "enc"/],
])('checkKeys refuses %s, naming the key', (_label, keys, message) => {
  expect(() => checkKeys(keys)).toThrow(message);
});
