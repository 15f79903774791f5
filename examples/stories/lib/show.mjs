// How the stories show what the RelyingParty returned (the parsed and verified response).
import { createHash } from 'node:crypto';

/** A login (`Authentication` from finalize / refresh / device polling) as the story prints it. */
export function tokenResponse(s, auth, from) {
  s.result(from, {
    ...(auth.user ? { user: { sub: auth.user.sub, ...(auth.user.name ? { name: auth.user.name } : {}), ...(auth.user.email ? { email: auth.user.email } : {}) } } : {}),
    ...(auth.idToken ? { id_token: auth.idToken } : {}),
    ...(auth.accessToken ? {
      access_token: auth.accessToken.value,
      token_type: auth.accessToken.tokenType,
      ...(auth.accessToken.scope ? { scope: auth.accessToken.scope } : {}),
      ...(auth.accessToken.expiresAt ? { expires_at: new Date(auth.accessToken.expiresAt * 1000).toISOString() } : {}),
    } : {}),
    ...(auth.refreshToken ? { refresh_token: auth.refreshToken } : {}),
    ...(auth.dpop ? { dpop_key: `${auth.dpop.kty} ${auth.dpop.crv} (private key kept with the login)` } : {}),
  });
}

/** The claims the RelyingParty loaded for the user (ID token + userinfo), as the story prints them. */
export function userClaims(auth) {
  const { claims } = auth.user;
  return Object.fromEntries(Object.entries(claims).filter(([k]) => !['iss', 'aud', 'exp', 'iat', 'nonce', 'at_hash', 'c_hash', 'auth_time', 'sid', 'azp'].includes(k)));
}

/**
 * The `at_hash` / `c_hash` of a value (OIDC Core 3.3.2.11): the left half of its hash, with the
 * hash of the ID token's `alg` (SHA-256 for RS256 / ES256 / PS256).
 */
export function halfHash(value, alg = 'RS256') {
  const bits = /^(RS|ES|PS)(384|512)$/.exec(alg)?.[2] ?? '256';
  const digest = createHash(`sha${bits}`).update(value, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}
