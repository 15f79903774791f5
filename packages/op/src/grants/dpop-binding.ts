/**
 * DPoP (RFC 9449) for the grants op() adds (password, token exchange), applied as oidc-provider's
 * own grants apply it: the proof is checked, the access token bound to its key (`cnf.jkt`,
 * `token_type: DPoP`), a public client's refresh token bound too, and a client registered with
 * `dpop_bound_access_tokens: true` that sends no proof refused (RFC 9449 §5). Before, these grants
 * issued Bearer tokens whatever the request carried. The helpers are oidc-provider's own, from the
 * module it offers custom grants (`oidc-provider/lib/helpers/grants.js`, marked experimental there).
 */
import type Provider from 'oidc-provider';
import type { AccessToken, RefreshToken, TokenEndpointGrantContext } from 'oidc-provider';
import { applyRefreshTokenBindings, checkDpopReplay, checkDpopRequired, validateDpop } from 'oidc-provider/lib/helpers/grants.js';

/** A checked DPoP proof. */
export type DpopProof = NonNullable<Awaited<ReturnType<typeof validateDpop>>>;

/**
 * The request's DPoP proof, checked (an invalid one is `invalid_dpop_proof`), or undefined; refuses
 * (`invalid_grant`) a request without one from a client that must send one. Called before anything
 * is spent (a password attempt), so a refused request costs nothing.
 *
 * @example
 * const proof = await dpopProof(provider, ctx);
 */
export async function dpopProof(provider: Provider, ctx: TokenEndpointGrantContext): Promise<DpopProof | undefined> {
  const proof = await validateDpop(provider, ctx);
  checkDpopRequired(provider, ctx, proof);
  return proof;
}

/**
 * Binds access token `at` to the proof's key (once the proof is known not to be replayed), and a
 * public client's refresh token `rt` to the same key, before they are saved.
 *
 * @example
 * await bindToProof(provider, ctx, proof, at, rt);
 */
export async function bindToProof(provider: Provider, ctx: TokenEndpointGrantContext, proof: DpopProof | undefined, at: AccessToken, rt?: RefreshToken): Promise<void> {
  if (proof) {
    await checkDpopReplay(provider, ctx, proof, ctx.oidc.client.clientId);
    at.setThumbprint('jkt', proof.thumbprint);
  }
  if (rt) await applyRefreshTokenBindings(provider, ctx, at, rt);
}
