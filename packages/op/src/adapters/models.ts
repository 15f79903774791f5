import debug from 'debug';
import { errors } from 'oidc-provider';

const log = debug('openid-express:op');

/**
 * Models whose records belong to a grant: `revokeByGrantId` deletes them all.
 * (Interaction and Session carry no grant of their own; Grant is deleted by id.)
 */
export const GRANTABLE: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/**
 * A store's answer to a second `consume` of the same record (or of a record already gone).
 * oidc-provider checks `consumed` before it consumes, but two concurrent requests can both pass
 * that check; refusing the loser here turns the race into the protocol error the client expects.
 */
export function consumeRefused(model: string, state: 'consumed' | 'missing'): Error {
  const what = state === 'consumed' ? 'already consumed' : 'not found';
  // Never the id: for codes and refresh tokens the id is the secret itself.
  log('store refused to consume a %s: %s (a replay or a racing request)', model, what);
  if (model === 'PushedAuthorizationRequest') {
    return new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
  }
  return new errors.InvalidGrant(`${humanName(model)} ${what}`);
}

function humanName(model: string): string {
  return model.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * A device code is kept this long past its expiry, so a device still polling is told `expired_token`
 * (RFC 8628 §3.5; oidc-provider checks the expiry itself) instead of `invalid_grant` "not found".
 */
export const EXPIRED_DEVICE_CODE_GRACE = 60;

/** Seconds to keep a record: oidc-provider's `expiresIn`, at least 1 s; undefined keeps it forever. */
export function ttlSeconds(expiresIn: number | undefined, model?: string): number | undefined {
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn)) return undefined;
  return Math.max(1, Math.ceil(expiresIn)) + (model === 'DeviceCode' ? EXPIRED_DEVICE_CODE_GRACE : 0);
}
