/**
 * What the tier-2 operations of `RelyingParty` (client credentials, token exchange, revocation,
 * introspection, device authorization) share: the provider they run against, the endpoint they
 * need from its metadata, and how a refusal becomes an `RpError` with the RP's codes (OP 5xx:
 * `op_unavailable`; unreachable: `op_unreachable`; credentials refused: `client_auth_failed`;
 * any other refusal: `op_error` with the OP's `error` in `opError`).
 */
import type * as client from 'openid-client';
import { RpError, toRpError } from './errors.js';
import { assertionClockHint, type ProviderConfig } from './options.js';

/** One provider, ready for an operation: its name, entry and openid-client Configuration. */
export interface Operation {
  name: string;
  p: ProviderConfig;
  config: client.Configuration;
}

type Endpoint = 'token_endpoint' | 'revocation_endpoint' | 'introspection_endpoint' | 'device_authorization_endpoint' | 'pushed_authorization_request_endpoint';

/** The URL of `endpoint` in the OP's metadata; an `invalid_request` naming what is missing (and why it is needed) otherwise. */
export function requireEndpoint(op: Operation, endpoint: Endpoint, purpose: string): string {
  const url = op.config.serverMetadata()[endpoint];
  if (typeof url !== 'string' || !url) {
    throw new RpError('invalid_request', `provider "${op.name}" cannot do ${purpose}: its metadata has no ${endpoint}`);
  }
  return url;
}

/**
 * `err` from an operation at `endpoint` as an `RpError`. `invalid_client` (the OP refused the client's
 * credentials) is `client_auth_failed` naming the options to check, as for logins.
 */
export function operationError(op: Operation, endpoint: string, err: unknown): RpError {
  const e = toRpError(err);
  const { p, name } = op;
  if (e.opError !== 'invalid_client' || !['ResponseBodyError', 'WWWAuthenticateChallengeError'].includes((e.cause as Error | undefined)?.name ?? '')) {
    // which provider and endpoint answered (or could not be reached): one app talks to several
    if (err instanceof RpError || e.message.startsWith(`provider "${name}"`)) return e;
    const named = new RpError(e.code, `provider "${name}": ${endpoint}: ${e.message}`, { opError: e.opError, cause: e.cause ?? err, retryAfter: e.retryAfter, lasting: e.lasting });
    if (e.loginUrl) named.loginUrl = e.loginUrl;
    return named;
  }
  const method = p.tokenEndpointAuthMethod ?? (p.clientSecret ? 'client_secret_basic' : 'none');
  return new RpError('client_auth_failed',
    `provider "${name}": ${endpoint} refused the client's credentials (invalid_client). ` +
    `Check providers.${name}.clientId ("${p.clientId}"), clientSecret and tokenEndpointAuthMethod ("${method}") against the client registered at ${op.config.serverMetadata().issuer}${assertionClockHint(p)}`,
    { opError: e.opError, cause: e });
}

/** Runs `operation` against `endpoint`, turning whatever it throws into an `RpError`. */
export async function atEndpoint<T>(op: Operation, endpoint: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw operationError(op, endpoint, err);
  }
}

/** Parameters where a value may repeat (`resource`, `audience`): arrays become one entry each. */
export function formParameters(params: Record<string, string | string[] | undefined>): URLSearchParams {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) form.append(key, v);
  }
  return form;
}
