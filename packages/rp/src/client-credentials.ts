/**
 * The client credentials grant (RFC 6749 §4.4; IdPyOIDC: the `client_credentials` service,
 * `CCAccessToken`): an access token for the app itself, no user involved, e.g. for a
 * machine-to-machine API call.
 */
import * as client from 'openid-client';
import { dpopAlg, dpopOptions, newDPoPKey } from './dpop.js';
import { atEndpoint, formParameters, requireEndpoint, type Operation } from './operations.js';
import { tokenResult, type TokenResult } from './token-result.js';

/** Options of `relyingParty.clientCredentials(name, options)`. */
export interface ClientCredentialsOptions {
  /** Space-separated scopes to ask for (default: none, the OP's default for the client). */
  scope?: string;
  /** Resource indicator(s) (RFC 8707): the API(s) the token is for. */
  resource?: string | string[];
  /** Any other token request parameters (e.g. `audience` for OPs that use it). */
  params?: Record<string, string>;
}

/**
 * Runs the client credentials grant at provider `op`, with the provider entry's client
 * authentication; with `dpop` on the entry the token is bound to a fresh key (returned as `dpop`).
 *
 * @example
 * ```ts
 * const tokens = await clientCredentialsGrant(op, { scope: 'stock:read', resource: 'https://api.example.com' });
 * ```
 */
export async function clientCredentialsGrant(op: Operation, opts: ClientCredentialsOptions = {}): Promise<TokenResult> {
  const endpoint = requireEndpoint(op, 'token_endpoint', 'the client credentials grant');
  const key = op.p.dpop ? await newDPoPKey(op.name, dpopAlg(op.p.dpop), op.config) : undefined;
  const params = formParameters({ ...opts.params, scope: opts.scope, resource: opts.resource });
  const tokens = await atEndpoint(op, endpoint, async () => client.clientCredentialsGrant(op.config, params, await dpopOptions(op.config, key)));
  return tokenResult(tokens, key);
}
