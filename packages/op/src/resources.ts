import { errors, type AccessToken, type Client, type ClientCredentials, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { AccountStore } from './accounts.js';
import type { OpResource, OpResourceIndicators } from './options.js';

/** The scopes whose claims an account store is asked for when a resource's `claimsByScope` names some. */
const CLAIM_SCOPES = 'openid profile email address phone';

/**
 * The configured resource a request names: by its indicator (`resource`), or, with `byAudience`, by
 * the `aud` its tokens carry (the token exchange's `audience` parameter).
 *
 * @example
 * findResource(ri, 'https://api.example.com') // ['https://api.example.com', { scope: 'read write' }]
 */
export function findResource(ri: OpResourceIndicators, target: string, byAudience = false): [string, OpResource] | undefined {
  if (Object.hasOwn(ri.resources, target)) return [target, ri.resources[target]!];
  if (!byAudience) return undefined;
  return Object.entries(ri.resources).find(([id, r]) => (r.audience ?? id) === target);
}

/**
 * What oidc-provider is told about a resource (`getResourceServerInfo`): its scopes (only those in
 * the client's `scope` metadata when it has some), audience, lifetime and format (JWT by default).
 * An unknown resource is `invalid_target`.
 */
export function resourceServerInfo(ri: OpResourceIndicators, indicator: string, client: Client | undefined): ResourceServer {
  const found = findResource(ri, indicator);
  if (!found) throw new errors.InvalidTarget(`unknown resource "${indicator.slice(0, 200)}"`);
  const [, r] = found;
  const allowed = client?.scope ? new Set(client.scope.split(' ')) : undefined;
  return {
    scope: r.scope.split(' ').filter((s) => !allowed || allowed.has(s)).join(' '),
    ...(r.audience ? { audience: r.audience } : {}),
    ...(r.accessTokenTTL ? { accessTokenTTL: r.accessTokenTTL } : {}),
    accessTokenFormat: r.accessTokenFormat ?? 'jwt',
  };
}

/**
 * oidc-provider's `features.resourceIndicators` for op()'s: the configured resources, the granted
 * resource reused when a token request names none (`useGrantedResource`), and `defaultResource` for
 * requests that name none and ask no `openid` scope (so OpenID Connect sign-ins keep a userinfo token).
 */
export function resourceIndicatorsFeature(ri: OpResourceIndicators): NonNullable<Configuration['features']>['resourceIndicators'] {
  return {
    enabled: true,
    async defaultResource(ctx, _client, oneOf) {
      if (oneOf) return ri.defaultResource && oneOf.includes(ri.defaultResource) ? ri.defaultResource : oneOf;
      const scope = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope.split(' ') : [];
      return scope.includes('openid') ? undefined : ri.defaultResource;
    },
    useGrantedResource: async () => true,
    getResourceServerInfo: async (_ctx, indicator, client) => resourceServerInfo(ri, indicator, client),
  };
}

/**
 * The account claims a resource's token carries for its granted scopes (`claimsByScope`), for
 * oidc-provider's `extraTokenClaims`; undefined when there are none.
 */
export async function claimsForResource(
  ri: OpResourceIndicators, accounts: AccountStore, _ctx: KoaContextWithOIDC, token: AccessToken | ClientCredentials,
): Promise<Record<string, unknown> | undefined> {
  const indicator = token.resourceServer?.identifier();
  const accountId = 'accountId' in token ? token.accountId : undefined;
  const byScope = indicator ? findResource(ri, indicator)?.[1].claimsByScope : undefined;
  if (!byScope || !accountId) return undefined;
  const names = new Set([...token.scopes].flatMap((scope) => (Object.hasOwn(byScope, scope) ? byScope[scope]! : [])));
  if (names.size === 0) return undefined;
  const all = await accounts.claims(accountId, `${CLAIM_SCOPES} ${token.scope ?? ''}`.trim());
  const out: Record<string, unknown> = {};
  for (const name of names) if (all[name] !== undefined) out[name] = all[name];
  return Object.keys(out).length ? out : undefined;
}
