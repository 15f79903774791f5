import debug from 'debug';
import type { RequestHandler } from 'express';
import * as jose from 'jose';
import type { JWK } from 'oidc-provider';

const log = debug('openid-express:op');

/**
 * An `id_token_hint` signed with a key this OP no longer has (an ID token issued before the signing
 * key was changed, kept by an app whose user has not refreshed since) made oidc-provider refuse the
 * sign-out: 400 "could not validate id_token_hint", the user stayed signed in at the OP, and the
 * next person at that browser was signed in as them. Such a hint is left out, and so is what it was to
 * vouch for: nothing of a token whose signature cannot be checked is used (RP-Initiated Logout 1.0
 * §4), which a forged one is as well (the OIDF suite's bad-id-token-hint signs one with a kid the OP
 * never had): not its audience, and not the request's `post_logout_redirect_uri` and `state`.
 * oidc-provider then asks the user to confirm the sign-out, as for one without a hint, and the user
 * ends on the OP's "Signed out" page.
 * A hint signed with a key the OP has is left to oidc-provider's checks.
 *
 * @example
 * app.get('/session/end', retiredKeyHint(resolveKeys(jwks, cookieKeys, console.warn).jwks.keys));
 */
export function retiredKeyHint(keys: readonly JWK[]): RequestHandler {
  const kids = keys.map((k) => k.kid);
  // a key without a kid (resolveKeys() gives every plain JWK one): every hint to oidc-provider
  if (kids.some((kid) => typeof kid !== 'string')) return (_req, _res, next) => next();
  const known = new Set(kids);
  return (req, _res, next) => {
    const at = req.url.indexOf('?');
    if (at === -1) return next();
    const query = new URLSearchParams(req.url.slice(at + 1));
    const hint = query.getAll('id_token_hint');
    if (hint.length !== 1) return next(); // none, or repeated: oidc-provider answers
    let kid: unknown;
    try {
      kid = jose.decodeProtectedHeader(hint[0]!).kid;
      jose.decodeJwt(hint[0]!);
    } catch {
      return next(); // not a JWT: oidc-provider says so
    }
    if (typeof kid !== 'string' || known.has(kid)) return next();
    for (const name of ['id_token_hint', 'post_logout_redirect_uri', 'state']) query.delete(name);
    log('sign-out: id_token_hint signed with a key this OP does not have (kid %s; a retired key, or forged): the user is asked to confirm, '
      + 'and is not sent to the post_logout_redirect_uri it came with', JSON.stringify(kid.slice(0, 80)));
    req.url = `${req.url.slice(0, at)}?${query.toString()}`;
    next();
  };
}
