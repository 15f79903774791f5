/**
 * Pushed Authorization Requests (RFC 9126; IdPyOIDC: the `pushed_authorization` add-on,
 * `add_on/par.py`): the login's parameters are POSTed to the OP, with the client's authentication,
 * and the browser carries only `client_id` and the `request_uri` the OP answered. With a request
 * object (`requestObject`, JAR) the pushed request carries it by value (`request=`): PAR is already
 * "by reference".
 *
 * Used when the provider entry says `pushedAuthorizationRequests: true`, and without being asked
 * when the OP's metadata says `require_pushed_authorization_requests`. An OP that requires PAR of
 * one client only (client metadata) says so only by refusing a plain request: that refusal names
 * the option to set.
 */
import * as client from 'openid-client';
import { OptionsError, RpError } from './errors.js';
import type { OwnKeys } from './keys.js';
import { atEndpoint, type Operation } from './operations.js';
import { requestObject } from './request-object.js';

/** Whether each OP's metadata requires PAR, read once per Configuration (`serverMetadata()` copies the metadata on each call). */
const required = new WeakMap<client.Configuration, boolean>();

/** True when logins at `op` use PAR: the entry's `pushedAuthorizationRequests`, else the OP's `require_pushed_authorization_requests`. */
export function usesPar(op: Omit<Operation, 'name'>): boolean {
  if (op.p.pushedAuthorizationRequests !== undefined) return op.p.pushedAuthorizationRequests;
  let requires = required.get(op.config);
  if (requires === undefined) {
    requires = op.config.serverMetadata().require_pushed_authorization_requests === true;
    required.set(op.config, requires);
  }
  return requires;
}

/**
 * Pushes the authorization request `params` (or, with `requestObject`, a request object carrying
 * them) to the OP's pushed_authorization_request_endpoint; returns the URL to send the browser to.
 *
 * @example
 * ```ts
 * const url = await pushedAuthorizationUrl(op, { redirect_uri, scope, state, nonce, code_challenge, code_challenge_method: 'S256' }, 'code', ownKeys);
 * // url: https://id.example.com/authorize?client_id=app&request_uri=urn:ietf:params:oauth:request_uri:…
 * ```
 */
export async function pushedAuthorizationUrl(op: Operation, params: Record<string, string>, responseType: string, own: OwnKeys): Promise<URL> {
  const metadata = op.config.serverMetadata();
  const endpoint = metadata.pushed_authorization_request_endpoint;
  if (!endpoint) {
    if (op.p.pushedAuthorizationRequests) {
      throw new OptionsError(`providers.${op.name}.pushedAuthorizationRequests`, `is true, but the OP ${metadata.issuer} has no pushed_authorization_request_endpoint`);
    }
    throw new RpError('invalid_response', `the OP ${metadata.issuer} requires pushed authorization requests but has no pushed_authorization_request_endpoint`);
  }
  // RFC 9101 §6.3: the OP uses only the request object's parameters, so response_type goes in it too
  const pushed = op.p.requestObject
    ? { request: await requestObject(op.p, { issuer: metadata.issuer, jwksUri: metadata.jwks_uri }, { ...params, response_type: responseType }, own) }
    : params;
  return atEndpoint(op, endpoint, () => client.buildAuthorizationUrlWithPAR(op.config, pushed));
}

/**
 * The OP refused a plain authorization request because this client must use PAR (oidc-provider:
 * "Pushed Authorization Request must be used"): the same error, saying which option to set.
 */
export function parRequiredError(name: string, e: RpError): RpError {
  if (e.opError !== 'invalid_request' || !/pushed authorization request/i.test(e.message)) return e;
  return new RpError(e.code, `${e.message}. This client must use pushed authorization requests: set providers.${name}.pushedAuthorizationRequests: true`,
    { opError: e.opError, cause: e });
}
