/**
 * ✔ the token endpoint accepts the client's credentials. The probe redeems a made-up authorization code
 * with the client authentication the RP uses (`tokenEndpointAuthMethod`, through openid-client):
 * `invalid_grant` means the OP authenticated the client and then refused the code (credentials fine);
 * `invalid_client` means it did not authenticate the client.
 */
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { toRpError } from '../errors.js';
import { networkError } from './http.js';
import { at, fail, meta, pass, skip, type CheckResult, type ProviderContext } from './types.js';

export async function checkCredentials(ctx: ProviderContext): Promise<CheckResult> {
  const { p, config } = ctx;
  if (p.responseType === 'id_token' || p.responseType === 'id_token token') return skip(`responseType "${p.responseType}" never calls the token endpoint`);
  if (p.grantTypes && !p.grantTypes.includes('authorization_code')) return skip(`${at(ctx)}.grantTypes has no authorization_code`);
  if (!config) return skip('the OP\'s metadata is not usable (see above)');
  const m = config.serverMetadata();
  const endpoint = m.token_endpoint;
  if (!endpoint) return skip('the OP announces no token_endpoint');
  const method = p.tokenEndpointAuthMethod ?? (p.clientSecret ? 'client_secret_basic' : 'none');
  const params: Record<string, string> = { code: `openid-express-doctor-${randomBytes(16).toString('base64url')}`, redirect_uri: ctx.rp.callbackUrl(ctx.name) };
  if (p.pkce !== false) params.code_verifier = client.randomPKCECodeVerifier();
  try {
    await client.genericGrantRequest(config, 'authorization_code', params);
  } catch (err) {
    const rpError = toRpError(err);
    const opError = rpError.opError;
    const who = `client "${p.clientId}" (${method})`;
    // GitHub calls an unknown code bad_verification_code
    if (opError === 'invalid_grant' || opError === 'bad_verification_code') return pass(`${endpoint} accepted ${who} and refused a made-up code with ${opError}, as it should`);
    const supported = Array.isArray(m.token_endpoint_auth_methods_supported) ? ` (the OP supports: ${m.token_endpoint_auth_methods_supported.join(', ')})` : '';
    if (opError === 'invalid_client') {
      const keys = method === 'private_key_jwt'
        ? `; with private_key_jwt the OP must know the RP's public key: register jwks_uri ${ctx.rp.options.baseURL}${ctx.rp.options.mountPath}/jwks (or the public JWK) for the client`
        : '';
      return fail(
        `${endpoint} refused the credentials of ${who}: ${rpError.message}`,
        `check ${at(ctx)}.clientId and ${at(ctx)}.clientSecret against the OP's registration of "${p.clientId}", and that ${at(ctx)}.tokenEndpointAuthMethod ("${method}") is the method the client is registered with${supported}${keys}`,
      );
    }
    if (opError === 'unauthorized_client' || opError === 'unsupported_grant_type') {
      return fail(`${endpoint} does not let ${who} use the authorization_code grant: ${rpError.message}`, `allow the authorization_code grant for client "${p.clientId}" at the OP`);
    }
    if (rpError.code === 'op_unreachable' || rpError.code === 'op_unavailable') {
      return fail(`${endpoint}: ${rpError.message} (${networkError(err, ctx.http.timeoutMs)})`, `check that ${endpoint} is reachable from this machine`);
    }
    return fail(
      `${endpoint} answered a made-up code with ${opError ?? rpError.code} instead of invalid_grant: ${rpError.message}`,
      `see the OP's answer; check ${at(ctx)}.clientId, clientSecret and tokenEndpointAuthMethod ("${method}")${supported}`,
    );
  }
  return fail(`${endpoint} accepted a made-up authorization code`, `the OP at ${meta(m as Record<string, unknown>, 'issuer')} does not check codes: do not use it`);
}
