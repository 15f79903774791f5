/**
 * Token exchange (RFC 8693; IdPyOIDC: the `token_exchange` service, `TokenExchange`): trade a token
 * the app holds (usually a user's access token) for another one, e.g. for a downstream API
 * (`audience` / `resource`), with a narrower `scope`, or acting for the user (`actorToken`).
 */
import * as client from 'openid-client';
import { RpError } from './errors.js';
import { dpopAlg, dpopOptions, newDPoPKey } from './dpop.js';
import { atEndpoint, formParameters, requireEndpoint, type Operation } from './operations.js';
import { tokenResult, type TokenResult } from './token-result.js';

/** The grant type of RFC 8693. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** The token type of an access token (RFC 8693 §3), the default `subjectTokenType`. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** Options of `relyingParty.tokenExchange(name, options)` (RFC 8693 §2.1). */
export interface TokenExchangeOptions {
  /** The token to exchange (`subject_token`), e.g. `req.oidc.accessToken.value`. */
  subjectToken: string;
  /** Its type (`subject_token_type`). Default "urn:ietf:params:oauth:token-type:access_token". */
  subjectTokenType?: string;
  /** A token naming who acts for the subject (`actor_token`), with `actorTokenType`. */
  actorToken?: string;
  /** Required with `actorToken`. */
  actorTokenType?: string;
  /** The type of token wanted (`requested_token_type`). Default: the OP's choice. */
  requestedTokenType?: string;
  /** Logical name(s) of the target service (`audience`). */
  audience?: string | string[];
  /** URL(s) of the target resource (`resource`, RFC 8707). */
  resource?: string | string[];
  /** Space-separated scopes for the new token. */
  scope?: string;
  /** Any other token request parameters. */
  params?: Record<string, string>;
}

/**
 * Runs the token exchange grant at provider `op` with the client's authentication. The answer's
 * `issued_token_type` is in `issuedTokenType` (its `token_type` may be "N_A" for tokens that are not
 * access tokens). With `dpop` on the entry, a new access token is bound to a fresh key.
 *
 * @example
 * ```ts
 * const { accessToken } = await tokenExchangeGrant(op, { subjectToken: auth.accessToken.value, audience: 'billing' });
 * ```
 */
export async function tokenExchangeGrant(op: Operation, opts: TokenExchangeOptions): Promise<TokenResult> {
  const endpoint = requireEndpoint(op, 'token_endpoint', 'token exchange');
  if (typeof opts?.subjectToken !== 'string' || !opts.subjectToken) throw new RpError('invalid_request', 'tokenExchange needs subjectToken (the token to exchange)');
  if (opts.actorToken && !opts.actorTokenType) throw new RpError('invalid_request', 'tokenExchange needs actorTokenType with actorToken (RFC 8693 §2.1)');
  const key = op.p.dpop ? await newDPoPKey(op.name, dpopAlg(op.p.dpop), op.config) : undefined;
  const params = formParameters({
    ...opts.params,
    subject_token: opts.subjectToken,
    subject_token_type: opts.subjectTokenType ?? ACCESS_TOKEN_TYPE,
    actor_token: opts.actorToken,
    actor_token_type: opts.actorToken ? opts.actorTokenType : undefined,
    requested_token_type: opts.requestedTokenType,
    audience: opts.audience,
    resource: opts.resource,
    scope: opts.scope,
  });
  const tokens = await atEndpoint(op, endpoint, async () => client.genericGrantRequest(op.config, TOKEN_EXCHANGE_GRANT, params, await dpopOptions(op.config, key)));
  return tokenResult(tokens, key);
}
