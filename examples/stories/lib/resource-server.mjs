// A resource server route on the client's site that accepts only DPoP-bound access tokens and
// checks the proof as RFC 9449 §7 says; its answer lists what it checked.
import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, jwtVerify } from 'jose';

const sha256 = (value) => createHash('sha256').update(value).digest('base64url');

/**
 * Mounts GET `path` on `app`: `Authorization: DPoP <token>` with a `DPoP` proof (typ dpop+jwt,
 * signature by the key in its header, htm, htu, ath, a fresh iat, an unused jti), and the token a
 * JWT of the OP for `audience` (`t.jwks`) whose `cnf.jkt` is the proof key's thumbprint.
 */
export function dpopResource(app, t, { path, audience }) {
  const seen = new Set();
  app.get(path, async (req, res) => {
    const checked = [];
    const refuse = (error, why) => res.status(401)
      .set('www-authenticate', `DPoP error="${error}", algs="ES256 Ed25519"`)
      .json({ error, error_description: why, checked });
    const [scheme, token] = (req.get('authorization') ?? '').split(' ');
    if (scheme?.toLowerCase() !== 'dpop' || !token) return refuse('invalid_token', `a DPoP-bound token must come as "Authorization: DPoP", not "${scheme ?? ''}"`);
    const proof = req.get('dpop');
    if (!proof) return refuse('invalid_dpop_proof', 'no DPoP proof');
    let payload;
    let header;
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'Ed25519', 'EdDSA'] }));
      checked.push(`proof: typ dpop+jwt, ${header.alg} signature by the key in its header`);
    } catch (err) {
      return refuse('invalid_dpop_proof', `the proof does not verify: ${err.message}`);
    }
    const htu = `${t.site}${req.path}`;
    if (payload.htm !== req.method || payload.htu !== htu) return refuse('invalid_dpop_proof', `the proof is for ${payload.htm} ${payload.htu}`);
    checked.push(`proof: htm ${payload.htm}, htu ${payload.htu}`);
    if (payload.ath !== sha256(token)) return refuse('invalid_dpop_proof', 'the proof is for another access token (ath)');
    checked.push('proof: ath is the hash of this access token');
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 60 || typeof payload.jti !== 'string' || seen.has(payload.jti)) {
      return refuse('invalid_dpop_proof', 'the proof is stale or replayed');
    }
    seen.add(payload.jti);
    checked.push('proof: fresh iat, jti not seen before');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, t.jwks, { issuer: t.issuer, audience, typ: 'at+jwt' }));
      checked.push(`token: RFC 9068 JWT of the OP for ${audience}`);
    } catch (err) {
      return refuse('invalid_token', `the access token does not verify: ${err.message}`);
    }
    const jkt = await calculateJwkThumbprint(header.jwk);
    if (claims.cnf?.jkt !== jkt) return refuse('invalid_token', 'the access token is not bound to the proof\'s key (cnf.jkt)');
    checked.push(`token: cnf.jkt ${jkt} = the proof key's thumbprint`);
    res.json({ resource: 'the protected resource', sub: claims.sub, scope: claims.scope, checked });
  });
}
