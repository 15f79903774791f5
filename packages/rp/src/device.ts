/**
 * The device authorization grant (RFC 8628; no IdPyOIDC RPHandler counterpart): a device without a
 * browser (TV, CLI) shows the user a code and a URL; the user approves at the OP on another device
 * while the app polls the token endpoint. Polling waits `interval` seconds between requests (5
 * more after each `slow_down`, as openid-client does), stops when the device code expires, and
 * stops at once when the caller's `AbortSignal` fires.
 */
import * as client from 'openid-client';
import { RpError } from './errors.js';
import { dpopAlg, dpopOptions, newDPoPKey, type DPoPKey } from './dpop.js';
import { atEndpoint, formParameters, operationError, requireEndpoint, type Operation } from './operations.js';
import type { Authentication } from './session.js';
import { tokenResult, type TokenResult } from './token-result.js';

/** Options of `relyingParty.deviceAuthorization(name, options)`. */
export interface DeviceAuthorizationOptions {
  /** Space-separated scopes. Default: the provider entry's `scope` (with "openid", the result is a login). */
  scope?: string;
  /** Resource indicator(s) (RFC 8707). */
  resource?: string | string[];
  /** Any other device authorization request parameters. */
  params?: Record<string, string>;
}

/** Options of `poll()` / `pollTokens()`. */
export interface DevicePollOptions {
  /** Stops polling: the call rejects with the signal's reason (an `AbortError` by default). */
  signal?: AbortSignal;
}

/**
 * A started device authorization: what to show the user, and `poll()` to wait for the answer.
 * Poll once at a time; after success, `poll()` / `pollTokens()` answer the same result again.
 */
export interface DeviceAuthorization {
  /** The code the user types at `verificationUri` (`user_code`). */
  userCode: string;
  /** Where the user goes (`verification_uri`). */
  verificationUri: string;
  /** The same with the code filled in (`verification_uri_complete`), e.g. for a QR code. */
  verificationUriComplete?: string;
  /** Seconds the code is valid (`expires_in`). */
  expiresIn: number;
  /** Seconds between two polls (`interval`; 5 when the OP says none). */
  interval: number;
  /**
   * Polls until the user approved and returns the login (ID token verified, user loaded), as a
   * browser login would keep it. Denied: `op_error` / `access_denied`; expired: `op_error` / `expired_token`.
   */
  poll(opts?: DevicePollOptions): Promise<Authentication>;
  /** Like `poll()`, returning the tokens only (no ID token needed: any OAuth 2.0 server). */
  pollTokens(opts?: DevicePollOptions): Promise<TokenResult>;
}

/** Builds the login from a token response (ID token check, claims): supplied by `RelyingParty`. */
export type ToAuthentication = (tokens: client.TokenEndpointResponse, key: DPoPKey | undefined) => Promise<Authentication>;

/**
 * Starts a device authorization at provider `op` (its device_authorization_endpoint, with the
 * client's authentication). With `dpop` on the entry, the tokens are bound to a fresh key.
 *
 * @example
 * ```ts
 * const device = await startDeviceAuthorization(op, { scope: 'openid profile' }, toAuthentication);
 * console.log(`Go to ${device.verificationUri} and enter ${device.userCode}`);
 * const auth = await device.poll({ signal: AbortSignal.timeout(300_000) });
 * ```
 */
export async function startDeviceAuthorization(op: Operation, opts: DeviceAuthorizationOptions, toAuthentication: ToAuthentication): Promise<DeviceAuthorization> {
  const endpoint = requireEndpoint(op, 'device_authorization_endpoint', 'the device authorization grant');
  const tokenEndpoint = requireEndpoint(op, 'token_endpoint', 'the device authorization grant');
  const params = formParameters({ ...opts.params, scope: opts.scope ?? op.p.scope, resource: opts.resource });
  const response = await atEndpoint(op, endpoint, () => client.initiateDeviceAuthorization(op.config, params));
  const key = op.p.dpop ? await newDPoPKey(op.name, dpopAlg(op.p.dpop), op.config) : undefined;
  const expiresAt = Date.now() + response.expires_in * 1000;
  let done: client.TokenEndpointResponse | undefined;
  let polling = false;

  const tokens = async (signal: AbortSignal | undefined): Promise<client.TokenEndpointResponse> => {
    if (done) return done;
    if (polling) throw new RpError('invalid_request', 'this device authorization is already being polled: poll once at a time');
    polling = true;
    try {
      done = await pollGrant(op, tokenEndpoint, response, key, expiresAt, signal);
      return done;
    } finally {
      polling = false;
    }
  };
  return {
    userCode: response.user_code,
    verificationUri: response.verification_uri,
    ...(response.verification_uri_complete ? { verificationUriComplete: response.verification_uri_complete } : {}),
    expiresIn: response.expires_in,
    interval: response.interval ?? 5,
    poll: async (o = {}) => toAuthentication(await tokens(o.signal), key),
    pollTokens: async (o = {}) => tokenResult(await tokens(o.signal), key),
  };
}

/** openid-client's polling, bounded by the code's expiry and the caller's signal (either ends it at once). */
async function pollGrant(
  op: Operation, tokenEndpoint: string, response: client.DeviceAuthorizationResponse, key: DPoPKey | undefined, expiresAt: number,
  callerSignal: AbortSignal | undefined,
): Promise<client.TokenEndpointResponse> {
  callerSignal?.throwIfAborted();
  const expiry = AbortSignal.timeout(Math.max(0, expiresAt - Date.now()));
  const signal = callerSignal ? AbortSignal.any([callerSignal, expiry]) : expiry;
  const polling = client.pollDeviceAuthorizationGrant(op.config, response, undefined, { signal, ...(await dpopOptions(op.config, key)) });
  polling.catch(() => undefined); // when the race below is lost, openid-client still ends (it checks the signal between waits)
  // openid-client notices an abort only between waits: answer at once instead
  const aborted = new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => undefined);
  try {
    return await Promise.race([polling, aborted]);
  } catch (err) {
    if (callerSignal?.aborted) throw callerSignal.reason;
    if (expiry.aborted) {
      throw new RpError('op_error', `the device code expired before the user approved it at ${response.verification_uri}`, { opError: 'expired_token', cause: err });
    }
    throw operationError(op, tokenEndpoint, err);
  }
}
