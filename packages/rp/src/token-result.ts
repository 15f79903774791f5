/**
 * What the tier-2 grants (client credentials, token exchange, device authorization) return: the
 * tokens in the same camelCase shape a login keeps, with the DPoP key a bound token needs.
 */
import type * as client from 'openid-client';
import type { DPoPKey } from './dpop.js';
import { expiryOf, type StoredAccessToken } from './session.js';

/**
 * Tokens from a grant that is not a login. Pass it to `relyingParty.fetchResource(result, url)` to
 * call a resource server with it (a DPoP proof is added when the token is bound).
 */
export interface TokenResult {
  accessToken: StoredAccessToken;
  refreshToken?: string;
  idToken?: string;
  /** Token exchange (RFC 8693): what `accessToken.value` is, e.g. "urn:ietf:params:oauth:token-type:access_token". */
  issuedTokenType?: string;
  /** The private key the access token is bound to (DPoP, `tokenType` "dpop"); keep it with the token. */
  dpop?: DPoPKey;
}

/** A token endpoint answer as a `TokenResult`; `dpop` is kept only when the OP bound the token to it. */
export function tokenResult(tokens: client.TokenEndpointResponse, dpop: DPoPKey | undefined): TokenResult {
  const expiresIn = tokens.expires_in;
  const issuedTokenType = tokens.issued_token_type;
  return {
    accessToken: {
      value: tokens.access_token,
      tokenType: tokens.token_type,
      ...(tokens.scope ? { scope: tokens.scope } : {}),
      ...(typeof expiresIn === 'number' ? { expiresAt: expiryOf(expiresIn) } : {}),
    },
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
    ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
    ...(typeof issuedTokenType === 'string' ? { issuedTokenType } : {}),
    ...(dpop && tokens.token_type?.toLowerCase() === 'dpop' ? { dpop } : {}),
  };
}
