/**
 * The resource owner password credentials grant (RFC 6749 §4.3; IdPyOIDC: the
 * `resource_owner_password_credentials` service, `ROPCAccessTokenRequest`). OAuth 2.1 removes it:
 * for trusted first-party clients moving to the code or device flow only; the OP must enable it.
 */
import * as client from 'openid-client';
import { dpopAlg, dpopOptions, newDPoPKey } from './dpop.js';
import { atEndpoint, formParameters, requireEndpoint, type Operation } from './operations.js';
import { tokenResult, type TokenResult } from './token-result.js';

/** Options of `relyingParty.passwordGrant(name, options)`. */
export interface PasswordGrantOptions {
  username: string;
  password: string;
  /** Space-separated scopes to ask for (default: the OP's default for the client). */
  scope?: string;
  /** Resource indicator(s) (RFC 8707): the API(s) the token is for. */
  resource?: string | string[];
}

/**
 * Runs the password grant at provider `op` with the provider entry's client authentication.
 *
 * @example
 * ```ts
 * const tokens = await passwordGrantRequest(op, { username: 'alice', password, scope: 'read' });
 * ```
 */
export async function passwordGrantRequest(op: Operation, opts: PasswordGrantOptions): Promise<TokenResult> {
  const endpoint = requireEndpoint(op, 'token_endpoint', 'the password grant');
  const key = op.p.dpop ? await newDPoPKey(op.name, dpopAlg(op.p.dpop), op.config) : undefined;
  const params = formParameters({ username: opts.username, password: opts.password, scope: opts.scope, resource: opts.resource });
  const tokens = await atEndpoint(op, endpoint, async () => client.genericGrantRequest(op.config, 'password', params, await dpopOptions(op.config, key)));
  return tokenResult(tokens, key);
}
