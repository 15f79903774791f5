/** Back-channel logout tokens "from the OP" for tests, and a bounded wait for the OP's asynchronous call. */
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { CLIENT_ID } from './rp-app.js';

export const LOGOUT_EVENT = { 'http://schemas.openid.net/event/backchannel-logout': {} };

/**
 * A well-formed logout token of `op` for the test client (fresh jti, iat now), with `claims` and
 * `header` laid over it; signed with the OP's own key unless `key` is given.
 */
export async function logoutToken(
  op: { issuer: string; signingKey: JWK },
  claims: JWTPayload,
  header: Record<string, unknown> = {},
  key?: Parameters<SignJWT['sign']>[0],
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: op.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: `jti-${Math.random()}`, events: LOGOUT_EVENT, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: op.signingKey.kid as string, typ: 'logout+jwt', ...header })
    .sign(key ?? (await importJWK(op.signingKey, 'RS256')));
}

/** Polls `check` every 50 ms, for 10 s at most (the OP sends logout tokens after answering). */
export async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}
