import debug from 'debug';
import type { Request } from 'express';
import type Provider from 'oidc-provider';
import { errors, type TokenEndpointGrantContext } from 'oidc-provider';
import { bindToProof, dpopProof } from './dpop-binding.js';
import type { AccountStore } from '../accounts.js';
import { checkPassword } from '../authenticators/password.js';
import { clientIp } from '../client-ip.js';
import type { OpResourceIndicators } from '../options.js';
import { resourceServerInfo } from '../resources.js';
import { giveBackOnOutage, throttleKeyOf, type Throttle } from '../throttle.js';

const log = debug('openid-express:op');

/** The warning op() prints at start-up when `features.passwordGrant` is on. */
export const PASSWORD_GRANT_WARNING = 'openid-express op(): features.passwordGrant is on: clients that list "password" in '
  + 'grant_types may send users\' passwords to the token endpoint. OAuth 2.1 removes this grant (and RFC 9700 §2.4 says '
  + 'not to use it): the client sees the password, and users cannot sign in any other way there (federation, a second '
  + 'factor). Keep it for trusted first-party clients while they move to the code flow or the device flow (features.deviceFlow).';

/** What the grant needs. */
export interface PasswordGrantDeps {
  accounts: AccountStore;
  /** The login form's throttle: failures here count there, and a lock-out holds for both. */
  throttle: Throttle;
  /** `features.resourceIndicators`, when on. */
  resources?: OpResourceIndicators;
  /** The scopes oidc-provider knows (OpenID Connect's and `scopes`); others are ignored unless a resource offers them. */
  scopes: ReadonlySet<string>;
  /** op()'s `trustProxy`: whose address the throttle counts (see clientIp). */
  trustProxy: boolean;
}

const GENERIC_FAILURE = 'the username or password is incorrect';
const THROTTLED = 'too many failed attempts: wait a few minutes, then try again';
const BUSY = 'too many sign-ins from this address at this moment: try again in a few seconds';
const ACCOUNT_BUSY = 'too many sign-ins to this account at this moment: try again in a few seconds';

function invalidGrant(description: string): errors.InvalidGrant {
  return Object.assign(new errors.InvalidGrant(), { error_description: description });
}

/** The resource the request is for: the one it names, else the default one for a request without `openid`. */
function resourceOf(deps: PasswordGrantDeps, param: unknown, asked: string[]): string | undefined {
  if (param !== undefined) {
    if (!deps.resources) throw new errors.InvalidTarget('this OP has no resources (features.resourceIndicators)');
    return String(param);
  }
  return asked.includes('openid') ? undefined : deps.resources?.defaultResource;
}

/**
 * RFC 6749 §4.3 resource owner password credentials at the token endpoint (`grant_type=password`):
 * the password is checked as the login form checks it, with the same lock-out; a Grant records what
 * was given, then an access token (for a resource when one is named) and, when the client may refresh
 * and asks `offline_access`, a refresh token. No ID token.
 *
 * @example
 * registerPasswordGrant(provider, { accounts, throttle, scopes: new Set(['openid', 'offline_access']) });
 */
export function registerPasswordGrant(provider: Provider, deps: PasswordGrantDeps): void {
  provider.registerGrantType('password', async (ctx: TokenEndpointGrantContext) => {
    const params = ctx.oidc.params as Record<string, unknown>;
    const { client } = ctx.oidc;
    const { username, password } = params;
    if (typeof username !== 'string' || !username) throw new errors.InvalidRequest('missing required parameter \'username\'');
    if (typeof password !== 'string' || !password) throw new errors.InvalidRequest('missing required parameter \'password\'');

    // what is asked is checked before the password, so a malformed request costs no attempt
    const asked = typeof params.scope === 'string' ? [...new Set(params.scope.split(' ').filter(Boolean))] : [];
    const allowed = client.scope ? new Set(client.scope.split(' ')) : undefined;
    const refused = asked.find((s) => deps.scopes.has(s) && allowed && !allowed.has(s));
    if (refused) throw new errors.InvalidScope('requested scope is not allowed', refused);
    const oidcScope = asked.filter((s) => deps.scopes.has(s));
    const resource = resourceOf(deps, params.resource, asked);
    const info = resource ? resourceServerInfo(deps.resources!, resource, client) : undefined;
    const offered = info?.scope.split(' ').filter(Boolean) ?? [];
    const resourceScope = asked.length ? asked.filter((s) => offered.includes(s)) : offered;

    // the DPoP proof first: a bad or missing one (a client that must send one) costs no password attempt
    const proof = await dpopProof(provider, ctx);
    const req = ctx.req as unknown as Request;
    const ip = clientIp(req, deps.trustProxy);
    const login = await throttleKeyOf(deps.accounts, username.trim().toLowerCase() || undefined);
    const verdict = await deps.throttle.attempt(login, ip);
    if (verdict !== 'ok') {
      log('password grant throttled (client %s, %s)', client.clientId, verdict);
      throw invalidGrant(verdict === 'locked' ? THROTTLED : verdict === 'busy' ? BUSY : ACCOUNT_BUSY);
    }
    const accountId = await checkPassword(deps.accounts, username, password).catch(giveBackOnOutage(deps.throttle, login, ip));
    if (!accountId) {
      await deps.throttle.failed(login, ip);
      log('password grant failed (client %s)', client.clientId);
      throw invalidGrant(GENERIC_FAILURE);
    }
    await deps.throttle.succeed(login, ip);

    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    if (oidcScope.length) grant.addOIDCScope(oidcScope);
    if (resource && resourceScope.length) grant.addResourceScope(resource, resourceScope);
    const grantId = await grant.save();

    const at = new provider.AccessToken({
      accountId, client, grantId, gty: 'password', scope: (resource ? resourceScope : oidcScope).join(' ') || undefined,
    });
    if (resource && info) at.resourceServer = new provider.ResourceServer(resource, info);
    const rt = client.grantTypeAllowed('refresh_token') && oidcScope.includes('offline_access') ? new provider.RefreshToken({
      accountId, client, grantId, gty: 'password', amr: ['pwd'], authTime: Math.floor(Date.now() / 1000),
      scope: [...oidcScope, ...(resource ? resourceScope : [])].join(' '), ...(resource ? { resource } : {}),
    }) : undefined;
    await bindToProof(provider, ctx, proof, at, rt);
    ctx.oidc.entity('Grant', grant);
    ctx.oidc.entity('AccessToken', at);
    const accessToken = await at.save();

    let refreshToken: string | undefined;
    if (rt) {
      ctx.oidc.entity('RefreshToken', rt);
      refreshToken = await rt.save();
    }
    log('password grant succeeded (client %s)', client.clientId);
    ctx.body = {
      access_token: accessToken,
      token_type: at.tokenType,
      expires_in: at.expiration,
      ...(at.scope ? { scope: at.scope } : {}),
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    };
  }, ['username', 'password', 'scope', 'resource']);
}
