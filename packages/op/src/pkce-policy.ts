import type { Client, KoaContextWithOIDC } from 'oidc-provider';

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
  return (ctx, client) => {
    if (policy === 'always' || client.clientAuthMethod === 'none') return true;
    if (policy === 'public-only') return false;
    const { nonce, scope } = ctx.oidc.params ?? {};
    const openid = typeof scope === 'string' && scope.split(' ').includes('openid');
    return !(openid && typeof nonce === 'string' && nonce.length > 0);
  };
}
