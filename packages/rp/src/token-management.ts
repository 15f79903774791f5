/**
 * Token revocation (RFC 7009; IdPyOIDC: the `token_revocation` service, `TokenRevocation`) and
 * token introspection (RFC 7662; IdPyOIDC: the `introspection` service, `Introspection`), both
 * with the provider entry's client authentication.
 */
import * as client from 'openid-client';
import { atEndpoint, requireEndpoint, type Operation } from './operations.js';

/** `token_type_hint` (RFC 7009 §2.1, RFC 7662 §2.1): which kind of token it is, to help the OP find it. */
export type TokenTypeHint = 'access_token' | 'refresh_token' | (string & {});

/** The OP's answer about a token (RFC 7662 §2.2): `active` and, when active, what the OP tells about it. */
export type Introspection = client.IntrospectionResponse;

/**
 * Revokes `token` at provider `op`'s revocation endpoint. An unknown or already invalid token is
 * not an error (RFC 7009 §2.2); revoking a refresh token usually ends its whole grant.
 *
 * @example
 * ```ts
 * await revokeToken(op, auth.refreshToken, { tokenTypeHint: 'refresh_token' });
 * ```
 */
export async function revokeToken(op: Operation, token: string, opts: { tokenTypeHint?: TokenTypeHint } = {}): Promise<void> {
  const endpoint = requireEndpoint(op, 'revocation_endpoint', 'token revocation');
  await atEndpoint(op, endpoint, () => client.tokenRevocation(op.config, token, opts.tokenTypeHint ? { token_type_hint: opts.tokenTypeHint } : undefined));
}

/**
 * Asks provider `op`'s introspection endpoint about `token`: `{ active: false }` for a token that is
 * expired, revoked or unknown; otherwise its `scope`, `sub`, `exp`, `client_id`, `token_type`, `cnf`
 * (`cnf.jkt`: the DPoP key it is bound to) ….
 *
 * @example
 * ```ts
 * const { active, scope } = await introspectToken(op, accessToken, { tokenTypeHint: 'access_token' });
 * ```
 */
export async function introspectToken(op: Operation, token: string, opts: { tokenTypeHint?: TokenTypeHint } = {}): Promise<Introspection> {
  const endpoint = requireEndpoint(op, 'introspection_endpoint', 'token introspection');
  return atEndpoint(op, endpoint, () => client.tokenIntrospection(op.config, token, opts.tokenTypeHint ? { token_type_hint: opts.tokenTypeHint } : undefined));
}
