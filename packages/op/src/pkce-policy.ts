import { errors, type Client, type KoaContextWithOIDC } from 'oidc-provider';

/**
 * When an authorization request for a code must carry PKCE:
 * - `'unless-nonce'` (default, RFC 9700 §2.1.1): always for public clients and for every request
 *   without a `nonce`; a confidential client making an OpenID Connect request with a `nonce` may
 *   omit it, because there the nonce binds the code to the ID token (OpenID certification RPs and
 *   many server-side RPs work this way).
 * - `'always'`: every request, from every client.
 * - `'public-only'`: public clients only; a confidential client may send a code request with neither
 *   PKCE nor a nonce (oidc-provider's own default, and what the OpenID certification module
 *   `oidcc-ensure-request-without-nonce-succeeds-for-code-flow` sends). Such a request has no defence
 *   against code injection (RFC 9700 §4.5) but the client's own state handling: opt in only for
 *   certification runs or RPs that cannot change.
 *
 * A `code_challenge` that is sent is always enforced, and only `S256` is accepted (oidc-provider).
 */
export type PkcePolicy = 'unless-nonce' | 'always' | 'public-only';

export const PKCE_POLICIES: readonly PkcePolicy[] = ['unless-nonce', 'always', 'public-only'];

/**
 * oidc-provider's `pkce.required(ctx, client)` for `policy`.
 *
 * @example
 * new Provider(issuer, { pkce: { required: pkceRequired('unless-nonce') } });
 */
export function pkceRequired(policy: PkcePolicy): (ctx: KoaContextWithOIDC, client: Client) => boolean {
  // oidc-provider asks only of a code request without a code_challenge: "required" is a refusal, which is
  // thrown here with what the client can do (its message was a bare "policy requires PKCE")
  return (ctx, client) => {
    if (policy === 'always') throw refusal(': this OP requires it of every client (op() option pkce: \'always\')');
    if (client.clientAuthMethod === 'none') throw refusal(': this client is public (token_endpoint_auth_method none), and PKCE is what binds the code to it');
    if (policy === 'public-only') return false;
    const { nonce, scope } = ctx.oidc.params ?? {};
    const openid = typeof scope === 'string' && scope.split(' ').includes('openid');
    if (openid && typeof nonce === 'string' && nonce.length > 0) return false;
    throw refusal(', or (this client being confidential) make it an OpenID Connect request, scope openid, with a nonce');
  };
}

/** The refusal of a code request without PKCE, saying why and what to send (RFC 9700 §2.1.1). */
function refusal(why: string): InstanceType<typeof errors.InvalidRequest> {
  return new errors.InvalidRequest(`PKCE is required: send code_challenge with code_challenge_method=S256${why}`);
}
