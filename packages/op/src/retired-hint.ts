import debug from 'debug';
import type { RequestHandler } from 'express';
import * as jose from 'jose';
import type { JWK } from 'oidc-provider';

const log = debug('openid-express:op');

/**
 * An `id_token_hint` signed with a key this OP no longer has (an ID token issued before the signing
 * key was changed, kept by an app whose user has not refreshed since) made oidc-provider refuse the
 * sign-out: 400 "could not validate id_token_hint", the user stayed signed in at the OP, and the
 * next person at that browser was signed in as them. Such a hint is left out, its audience passed as
 * `client_id` (so `post_logout_redirect_uri` is still checked against that client's registered
 * ones): oidc-provider then asks the user to confirm the sign-out, as for a sign-out without a hint.
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
    let aud: unknown;
    try {
      kid = jose.decodeProtectedHeader(hint[0]!).kid;
      aud = jose.decodeJwt(hint[0]!).aud;
    } catch {
      return next(); // not a JWT: oidc-provider says so
    }
    const audience = Array.isArray(aud) && aud.length === 1 ? aud[0] : aud;
    if (typeof kid !== 'string' || known.has(kid) || typeof audience !== 'string') return next();
    query.delete('id_token_hint');
    if (!query.has('client_id')) query.set('client_id', audience);
    log('sign-out: id_token_hint signed with a key this OP no longer has (kid %s): the user is asked to confirm instead', JSON.stringify(kid.slice(0, 80)));
    req.url = `${req.url.slice(0, at)}?${query.toString()}`;
    next();
  };
}
