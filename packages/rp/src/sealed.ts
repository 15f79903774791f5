/**
 * Values left in the coordination store for another request to pick up (a shared refresh result, a
 * finished login's session id) are sealed (AES-256-GCM) with a key derived from a secret only that
 * request holds (the refresh token it replaces; the session and `state` of the login): reading the
 * store is not enough to use them.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const keyOf = (secret: string, purpose: string): Buffer => Buffer.from(hkdfSync('sha256', secret, `openid-express ${purpose}`, 'result', 32));

/** `text` sealed with a key derived from `secret` (for `purpose`), as base64url. */
export function seal(text: string, secret: string, purpose: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret, purpose), iv);
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** What `seal(text, secret, purpose)` sealed; throws when `secret` or `purpose` differ or it was altered. */
export function open(sealed: string, secret: string, purpose: string): string {
  const raw = Buffer.from(sealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', keyOf(secret, purpose), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}
