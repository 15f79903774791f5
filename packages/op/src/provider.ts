import type { Request } from 'express';
import { createHash } from 'node:crypto';
import debug from 'debug';
import { warnAtMostHourly } from './hourly-warning.js';
import type { JSONWebKeySet } from 'jose';
import Provider, { errors, interactionPolicy, type Client, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { SCOPE_CLAIMS, scopeCovering, syncAccountsOf } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import { issuerScoped } from './issuer-scope.js';
import { deviceFlowFeature } from './device-flow.js';
import { PAGE_HEADERS } from './error-page.js';
import { OpConfigError } from './errors.js';
import { PASSWORD_GRANT_WARNING, registerPasswordGrant } from './grants/password.js';
import { exchangeClaims, registerTokenExchange } from './grants/token-exchange.js';
import { loadExistingGrant } from './grant.js';
import { publicJwks } from './keys.js';
import { logoutCsrfFor, sameLogoutXsrf } from './logout-csrf.js';
import { pkceRequired } from './pkce-policy.js';
import { parWithoutRedirectUris, requestUriOn, type ResolvedOptions } from './options.js';
import { parseAllowedHosts, privateHostsFetch } from './private-hosts.js';
import { notPushedDetails, PAR_REQUIRED, plainError } from './provider-errors.js';
import { revokingReplays } from './replay.js';
import { withRequestUris } from './request-uri.js';
import { destroyedOnceAnswered } from './request-scope.js';
import { claimsForResource, resourceIndicatorsFeature } from './resources.js';
import { throttle } from './throttle.js';
import { escapeHtml, withoutBidiControls, safeHref } from './views/escape.js';
import { defaultsOf, renderPage, type Views } from './views/render.js';
import type { ErrorViewProps } from './views/error.js';

const log = debug('openid-express:op');

/** What `buildConfiguration` needs beyond the options. */
export interface ConfigurationDeps {
  store: OpStore;
  views: Views;
  jwks: { keys: NonNullable<Configuration['jwks']>['keys'] };
  cookieKeys: string[];
}

const reqOf = (ctx: KoaContextWithOIDC) => ctx.req as unknown as Request;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** `base` with `over` merged in: plain objects recursively, everything else replaced. */
export function deepMerge<T extends object>(base: T, over: object): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as object, v) : v;
  }
  return out as T;
}

/**
 * Who may learn about a token (RFC 7662 §4): the client it was issued to, always. Another client only
 * when it is confidential (a resource server, e.g. mod_oauth2) and the token is meant for an API: a
 * client-credentials token, or an access token issued for a resource (RFC 8707: it has an `aud`). A
 * sign-in's own access token (for userinfo) and every refresh token stay their client's business:
 * another client is told `active: false`, so it learns neither whose they are nor their scopes.
 */
async function introspectionAllowed(_ctx: KoaContextWithOIDC, client: Client, token: { clientId?: string; kind?: string; aud?: unknown }) {
  if (token.clientId === client.clientId) return true;
  if (client.clientAuthMethod === 'none') return false;
  return token.kind === 'ClientCredentials' || (token.kind === 'AccessToken' && token.aud !== undefined);
}

// only the client a token was issued to may revoke it
async function revocationAllowed(_ctx: KoaContextWithOIDC, client: Client, token: { clientId?: string }) {
  if (token.clientId === client.clientId) return true;
  if (client.clientAuthMethod === 'none') return false;
  throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
}

/**
 * Puts op()'s checks first in `policy`'s login prompt, whichever policy the configuration ends with:
 * oidc-provider's, or an app's own `provider.interactions.policy` (which replaces it whole). A
 * request that asks no scope the OP knows (no `scope` at all, or only unknown ones, e.g.
 * "openid,email" joined with a comma) and no resource's scope is refused with `invalid_scope` (RFC 6749 §3.3) before the login form: oidc-provider
 * found out only after the user had typed their password, and answered a bare `access_denied`. And a
 * sign-in resuming where its redirect_uri is not registered is refused (`invalid_redirect_uri`).
 */
function withOpChecks<P extends ReturnType<typeof interactionPolicy.base>>(policy: P, parUnregistered: boolean): P {
  // (a policy the app built as a plain array of prompts has no `get`)
  const login = [...policy].find((prompt) => prompt.name === 'login');
  if (!login || login.checks.some((check) => check.reason === 'no_known_scope')) return policy;
  login.checks.unshift(NO_KNOWN_SCOPE, redirectUriUnregistered(parUnregistered));
  return policy;
}

const NO_KNOWN_SCOPE = new interactionPolicy.Check('no_known_scope', 'no scope this OP knows was asked for', (ctx: KoaContextWithOIDC) => {
  const { oidc } = ctx;
  if (oidc.requestParamOIDCScopes.size > 0 || Object.keys(oidc.resourceServers ?? {}).length > 0 || oidc.params?.authorization_details) return false;
  // (oidc-provider has already dropped the scopes it does not know from `scope`: "none" and "only unknown ones" look alike)
  throw new errors.InvalidScope('no scope this OP knows was asked for: ask for openid (and profile, email …), space-separated, '
    + 'or a scope of the OP\'s scopes_supported', '');
});

/**
 * The redirect_uri is checked again where the sign-in resumes (oidc-provider checks it only at /auth): an
 * instance whose `clients` no longer lists it (removed in a deploy, or while the sign-in was under way,
 * which lasts up to ttl.Interaction) sends no code there.
 */
function redirectUriUnregistered(parUnregistered: boolean): InstanceType<typeof interactionPolicy.Check> {
  return new interactionPolicy.Check('redirect_uri_unregistered', 'the redirect_uri is no longer registered', (ctx: KoaContextWithOIDC) => {
    const { client, params } = ctx.oidc;
    const uri = params?.redirect_uri;
    if (typeof uri !== 'string' || !client || client.redirectUriAllowed(uri)) return false;
    // a client that may push a redirect_uri it did not register (oidc-provider's rule: PAR on, confidential, no
    // sector_identifier_uri) had it checked when it was pushed; whether this sign-in came by PAR is not kept here
    if (parUnregistered && client.clientAuthMethod !== 'none' && client.sectorIdentifierUri === undefined) return false;
    log('sign-in of client %s refused where it resumed: its redirect_uri %s is not among the client\'s redirect_uris here', client.clientId, uri);
    throw Object.assign(new errors.InvalidRedirectUri(), {
      error_description: 'the application\'s address this sign-in would return to is not registered (any more) for this application: start the sign-in again from the application',
    });
  });
}

/** How deep a `claims` parameter may nest: OIDC Core 5.5's are 4 deep (`id_token` → claim → `values` → a value). */
const CLAIMS_MAX_DEPTH = 8;

/**
 * A `claims` parameter nested deeper than any claims request is refused (400 invalid_request): one
 * thousands of levels deep, in a few KB, overflowed the stack of what stores it (a 500). Walked
 * without recursion.
 */
function claimsNotTooDeep(_ctx: unknown, claims: object): void {
  // oidc-provider's own check, which this hook replaces (OIDC Core 5.5: each member null or an object)
  for (const container of ['userinfo', 'id_token']) {
    const members = (claims as Record<string, unknown>)[container];
    if (members === undefined || members === null || typeof members !== 'object') continue;
    for (const value of Object.values(members)) {
      if (value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new errors.InvalidRequest(`claims.${container} members must be null or objects`);
    }
  }
  const pending: Array<[unknown, number]> = [[claims, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, depth] = next;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > CLAIMS_MAX_DEPTH) throw new errors.InvalidRequest(`the claims parameter nests deeper than ${CLAIMS_MAX_DEPTH} levels (OpenID Connect Core 5.5's are at most 4)`);
    for (const member of Object.values(value)) pending.push([member, depth + 1]);
  }
}

/** `features.resourceIndicators` off: no resource server is known, so every `resource` is invalid_target. */
function noResourceServer(): never {
  throw new errors.InvalidTarget();
}

function features(o: ResolvedOptions, views: Views): Configuration['features'] {
  const f = o.features;
  const reg = f.registration;
  return {
    devInteractions: { enabled: false },
    // off: every `resource` parameter is refused (invalid_target), as oidc-provider's default does, but
    // without its "you MUST change it" notice, which any visitor could print by sending `resource=`
    resourceIndicators: f.resourceIndicators ? resourceIndicatorsFeature(f.resourceIndicators) : { enabled: true, getResourceServerInfo: noResourceServer },
    ...(f.deviceFlow ? { deviceFlow: deviceFlowFeature(views) } : {}),
    clientCredentials: { enabled: f.clientCredentials === true },
    introspection: { enabled: f.introspection !== false, allowedPolicy: introspectionAllowed },
    revocation: { enabled: f.revocation !== false, allowedPolicy: revocationAllowed },
    registration: {
      enabled: !!reg,
      initialAccessToken: typeof reg === 'object' && reg.initialAccessToken ? reg.initialAccessToken : false,
    },
    pushedAuthorizationRequests: { enabled: f.pushedAuthorizationRequests !== false },
    requestObjects: { enabled: f.requestObjects !== false },
    dPoP: { enabled: f.dPoP !== false },
    backchannelLogout: { enabled: f.backchannelLogout !== false },
    claimsParameter: { enabled: f.claimsParameter !== false, assertClaimsParameter: claimsNotTooDeep },
    // a client may register userinfo_signed_response_alg and get its userinfo as a signed JWT (OIDC Core §5.3.2)
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        const req = reqOf(ctx);
        const csrf = `<input type="hidden" name="csrf" value="${logoutCsrfFor(req)}">`;
        // every "Sign out?" tab of this browser carries the same secret: confirming an earlier one works
        // (only when oidc-provider's form is the one known: a secret the form does not carry would refuse every confirmation)
        const state = ctx.oidc.session!.state as { secret: string; clientId?: string; postLogoutRedirectUri?: string; state?: string };
        const fresh = `name="xsrf" value="${state.secret}"`;
        const shown = form.includes(fresh) ? form.replace(fresh, `name="xsrf" value="${escapeHtml(sameLogoutXsrf(req, state))}"`) : form;
        ctx.type = 'html';
        ctx.set(PAGE_HEADERS);
        ctx.body = await renderPage(req, views, 'logout', {
          title: 'Sign out', clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId,
          form: shown.replace('</form>', `${csrf}</form>`),
        });
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.set(PAGE_HEADERS);
        const client = ctx.oidc.client;
        const clientName = client?.clientName ?? client?.clientId;
        // onward: back to the client (its registered post-logout page, else its site), else the OP's home
        const toClient = safeHref(client?.postLogoutRedirectUris?.[0]) ?? safeHref(client?.clientUri);
        ctx.body = await renderPage(reqOf(ctx), views, 'logoutSuccess', {
          title: 'Signed out', clientName,
          backUrl: toClient ?? o.homeUri, backLabel: toClient ? `Back to ${withoutBidiControls(String(clientName))}` : 'Continue',
        });
      },
    },
  };
}

/** Lifetimes: a resource's `accessTokenTTL`, when it has one, wins over `ttl.AccessToken` / `ttl.ClientCredentials`. */
function ttlOf(o: ResolvedOptions): NonNullable<Configuration['ttl']> {
  // a session nobody signed in to (oidc-provider saves one for the logout form's xsrf, and for /device):
  // kept as long as a sign-in under way, not the 14 days of a login, so a stranger's GET leaves nothing
  // for two weeks; it gets the full life when someone signs in with it (saved again then)
  const Session: NonNullable<Configuration['ttl']>['Session'] = (_ctx, session) => (session.accountId ? o.ttl.Session : Math.min(o.ttl.Session, o.ttl.Interaction));
  // never past its Grant, which oidc-provider checks at every refresh and no refresh extends: a token
  // rotated on day 10 got 14 days more, and was refused on day 14 while it said day 24. A public web
  // client's rotated token keeps what was left of the old one's life (oidc-provider's own rule, which
  // a number here had dropped)
  const RefreshToken: NonNullable<Configuration['ttl']>['RefreshToken'] = (ctx, token, client) => {
    const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
    let ttl = rotated && client.applicationType === 'web' && client.clientAuthMethod === 'none' && !token.isSenderConstrained()
      ? rotated.remainingTTL : o.ttl.RefreshToken;
    const grantExp = ctx?.oidc?.entities.Grant?.exp;
    if (typeof grantExp === 'number') ttl = Math.min(ttl, Math.max(grantExp - Math.floor(Date.now() / 1000), 1));
    return ttl;
  };
  if (!o.features.resourceIndicators) return { ...o.ttl, Session, RefreshToken };
  return {
    ...o.ttl,
    Session,
    RefreshToken,
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? o.ttl.AccessToken,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? o.ttl.ClientCredentials,
  };
}

const originOf = (uri: string): string | undefined => {
  try {
    return new URL(uri).origin;
  } catch {
    return undefined;
  }
};

/**
 * Which browser origins may read the answers of the endpoints a client calls itself (token,
 * userinfo, revocation, introspection, PAR ...): a public client (`token_endpoint_auth_method:
 * 'none'`, a single-page app) from the origin of one of its `redirect_uris`; any client's such
 * origin, userinfo only (a confidential client's secret never belongs in a browser). oidc-provider's
 * own default rule, set here so it stops asking to be changed. Discovery and JWKS allow every origin.
 */
const clientBasedCORS = (operatorClients: ReadonlySet<string>) => (ctx: KoaContextWithOIDC, origin: string, client: Client): boolean => {
  if (origin === 'null') return false;
  const ownOrigin = (client.redirectUris ?? []).some((uri) => originOf(uri) === origin);
  if (ctx.oidc.route !== 'userinfo' && client.clientAuthMethod !== 'none') {
    // the page only sees "Failed to fetch", and the answer it cannot read names the origin, which is the
    // client's own: the likely cause is a browser app registered as a confidential client. Said once an hour
    // per client, for the operator's own (`clients`) only: strangers registering clients must not fill the log
    if (ownOrigin && operatorClients.has(client.clientId)) {
      warnAtMostHourly(`cors-confidential ${client.clientId}`, `a page at ${origin} called the ${ctx.oidc.route} endpoint for client `
        + `${JSON.stringify(client.clientId.slice(0, 100))}, which authenticates with ${client.clientAuthMethod}; browsers get no CORS answer for it (the page sees `
        + '"Failed to fetch"), since a secret never belongs in a browser. A single-page app is a public client: register it with '
        + 'token_endpoint_auth_method: \'none\' (PKCE protects its code); else call this endpoint from your server');
    }
    return false;
  }
  if (!ownOrigin) log('CORS refused: origin %s is not the origin of a redirect_uri of client %s', JSON.stringify(origin.slice(0, 200)), client.clientId);
  return ownOrigin;
};

/** The scope to load an account's claims for: `scope`, widened when claims are asked by name (userinfo calls this on every request). */
function askedScope(scope: string, asked: object | undefined): string {
  if (asked) for (const _name in asked) return scopeCovering(scope, Object.keys(asked));
  return scope;
}

/**
 * `extraTokenClaims`: a resource's account claims by scope (`claimsByScope`), a token exchange's `act`,
 * and a client-credentials token's `sub`. A token with no resource owner has the client as its subject
 * (RFC 9068 §2.2); oidc-provider writes that `sub` into the JWT form only, so without it the opaque
 * form's introspection answer had no `sub` and resource servers that name the caller by it (Apache
 * mod_oauth2 by default) refused the token.
 */
function tokenClaims(o: ResolvedOptions): NonNullable<Configuration['extraTokenClaims']> {
  const ri = o.features.resourceIndicators;
  return async (ctx, token) => {
    const own = token.kind === 'ClientCredentials' ? { sub: token.clientId } : undefined;
    if (!ri && !o.features.tokenExchange) return own;
    const claims = { ...(ri ? await claimsForResource(ri, o.accounts, ctx, token) : undefined), ...exchangeClaims(token), ...own };
    return Object.keys(claims).length ? claims : undefined;
  };
}

/**
 * The oidc-provider configuration `op()` runs with: our adapter, keys, views, accounts and
 * features, then `options.provider` merged last.
 */
export function buildConfiguration(o: ResolvedOptions, deps: ConfigurationDeps): Configuration {
  const { store, views } = deps;
  const parUnregistered = parWithoutRedirectUris(o.provider);
  const config: Configuration = {
    // (revokeGrantPolicy is oidc-provider's default unless the app's `provider` sets it)
    // (a record is found only by the issuer that wrote it: OPs sharing a store namespace stay apart, see issuer-scope.ts)
    adapter: (name: string) => destroyedOnceAnswered(name, revokingReplays(name, issuerScoped(o.issuer, name, store.adapterFor(name)), store, o.provider?.revokeGrantPolicy), store),
    // a PAR-only client allowed unregistered redirect URIs may leave the list out (oidc-provider wants it empty)
    clients: o.clients.map(({ firstParty: _firstParty, ...metadata }) => (parUnregistered && metadata.require_pushed_authorization_requests === true
      && metadata.redirect_uris === undefined ? { ...metadata, redirect_uris: [] } : metadata)),
    jwks: deps.jwks,
    cookies: { keys: deps.cookieKeys },
    // how alice authenticated (acr, amr) rides with `openid`, so ID Tokens always carry it when known
    claims: { ...SCOPE_CLAIMS, openid: ['sub', 'acr', 'amr'], auth_time: null, sid: null },
    scopes: ['openid', 'offline_access', ...o.scopes],
    pkce: { required: pkceRequired(o.pkce) },
    // every OpenID Connect response type (the Implicit and Hybrid plans); each client uses only the ones it
    // registered (default ['code']; oidc-provider adds the implicit grant to a client registering id_token or token ones)
    responseTypes: ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token', 'none'],
    // OIDC Core 3.1.2.1: redirect_uri is required, even when the client registered only one
    allowOmittingSingleRegisteredRedirectUri: false,
    features: features(o, views),
    // (op()'s checks are added after the app's `provider` is merged: see withOpChecks)
    interactions: { url: (_ctx, interaction) => `${o.mountPath}/interaction/${interaction.uid}`, policy: interactionPolicy.base() },
    // two tabs' consents of one browser add to one Grant (grant.ts)
    loadExistingGrant,
    findAccount(ctx, sub) {
      // memoryAccounts() answers at once: no promise per lookup on userinfo's path. `sub` first (its
      // claims never hold one): oidc-provider copies these claims and sets `sub` again, which on
      // Node 20 and 22 missed V8's inline cache on every call when `sub` came last
      const sync = syncAccountsOf(o.accounts);
      if (sync) {
        return sync.findById(sub) ? { accountId: sub, claims: (_use, scope, asked) => ({ sub, ...sync.claims(sub, askedScope(scope, asked)) }) } : accountGone(ctx, sub);
      }
      return o.accounts.findById(sub).then((account) => (account ? {
        // claims asked by name (`claims` parameter) come from the store too; oidc-provider filters what goes out
        accountId: sub, claims: async (_use, scope, asked) => ({ ...(await o.accounts.claims(sub, askedScope(scope, asked))), sub }),
      } : accountGone(ctx, sub)));
    },
    // oidc-provider's own rule (RFC 9700 §4.14.2): a public client's refresh token rotates on every use,
    // and a replayed one revokes the grant, unless it is bound to a DPoP key (sender-constrained, which
    // RFC 9700 takes instead of rotation); a confidential client's is bound to its authentication and
    // rotates only in the last 30 % of its life, so a client that retries after a lost answer or an OP
    // store failure is not taken for a thief (that replay would revoke the grant: a logout)
    clientBasedCORS: clientBasedCORS(new Set(o.clients.map((c) => String(c.client_id)))),
    ttl: ttlOf(o),
    extraTokenClaims: tokenClaims(o),
    ...(o.allowPrivateHosts.length ? { fetch: privateHostsFetch(parseAllowedHosts(o.allowPrivateHosts)) } : {}),
    async renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.set(PAGE_HEADERS);
      const description = out.error_description === undefined ? undefined : String(out.error_description);
      // an app view that fails must not turn a 400 into a bare 500
      const errorPage = (props: ErrorViewProps) => renderPage(reqOf(ctx), views, 'error', props).catch(() => renderPage(reqOf(ctx), defaultsOf(views), 'error', props));
      if (description === 'could not find logout details' && !ctx.oidc?.session?.accountId) {
        if (ctx.get('sec-fetch-site') === 'cross-site') {
          // a confirmation posted from another site (a page there that submits the OP's logout form) comes
          // without the OP's cookies, so it finds no session: saying "Signed out" would be untrue
          ctx.status = 403;
          ctx.body = await errorPage({
            title: 'Nothing was signed out', status: 403, code: 'cross_site_request',
            message: 'This sign-out came from another website, so your sign-in here was not changed. To sign out, use the sign-out button of the application you use.',
            details: description, backUrl: o.homeUri, backLabel: o.homeUri ? 'Continue' : undefined,
          });
          return;
        }
        // a sign-out confirmed again (a double click, a retry after a lost answer): it already happened
        ctx.status = 200;
        ctx.body = await renderPage(reqOf(ctx), views, 'logoutSuccess', { title: 'Signed out', backUrl: o.homeUri, backLabel: 'Continue' });
        return;
      }
      if (description === 'xsrf token invalid' && ctx.oidc?.route === 'end_session_confirm') {
        // a stale "Sign out?" form (its secret replaced since): still signed in, so the way on is a fresh page
        ctx.body = await errorPage({
          title: 'You are still signed in', status: ctx.status, code: 'invalid_request',
          message: 'This sign-out page has expired, so you were not signed out. Sign out again to end your session here.',
          details: description, backUrl: ctx.oidc.urlFor('end_session'), backLabel: 'Sign out',
        });
        return;
      }
      if (description === 'post_logout_redirect_uri not registered' && ctx.oidc?.route === 'end_session') {
        // RP-Initiated Logout 1.0 §3: never sent to an address the client did not register; the user may still sign out here
        log('request refused: %s (%s)%s', String(out.error), description, receivedValues(ctx, String(out.error), description));
        ctx.body = await errorPage({
          title: 'You were not signed out', status: ctx.status, code: String(out.error),
          message: 'The application asked to sign you out and then send you to an address it has not registered, so nothing was changed. To sign out here, use the button below.',
          details: `${description} (the OP's log, with DEBUG=openid-express:op, names the address received and the registered ones)`,
          backUrl: ctx.oidc.urlFor('end_session'), backLabel: 'Sign out',
        });
        return;
      }
      if (description === PAR_REQUIRED && ctx.oidc?.client) {
        // a client that must push its request sent it here: what to do, for its developers (JSON when asked)
        const details = notPushedDetails(ctx.oidc.client, ctx.oidc.urlFor('pushed_authorization_request'));
        if (ctx.accepts('html', 'json') === 'json') {
          ctx.type = 'json';
          ctx.body = { error: out.error, error_description: details };
          return;
        }
        ctx.body = await errorPage({ ...plainError(ctx.status, String(out.error), details, ctx.oidc.client) });
        return;
      }
      // a lost or finished sign-in (no resume cookie, interaction gone) is oidc-provider's invalid_request too
      const code = error instanceof errors.SessionNotFound ? 'session_not_found' : String(out.error);
      // the values themselves only in the log: a page of the OP showing text a stranger put in a link reads as the OP's word
      const received = receivedValues(ctx, code, description);
      if (received) log('request refused: %s (%s)%s', code, description, received);
      const details = description === undefined || !received ? description : `${description} (the OP's log, with DEBUG=openid-express:op, names the values received)`;
      ctx.body = await errorPage({ ...plainError(ctx.status, code, details, ctx.oidc?.client), code: String(out.error) });
    },
  };
  const merged = withRequestUrisIfOn(httpsRedirectsOnly(deepMerge(config, o.provider), o.issuer), o);
  const policy = merged.interactions?.policy;
  if (policy) withOpChecks(policy as ReturnType<typeof interactionPolicy.base>, parUnregistered);
  return merged;
}

/** `request_uris` client metadata with `features.requestUri` (request-uri.ts). */
const withRequestUrisIfOn = (config: Configuration, o: ResolvedOptions) => (requestUriOn(o.features) ? withRequestUris(config, o.issuer) : config);

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * An OP served over https takes, from dynamic registration (and RFC 7592 updates), a web client's
 * `redirect_uris` over https only, loopback hosts aside (a developer's machine): the code and, for
 * form_post and fragments, the tokens travel to them (RFC 6749 §3.1.2.1, RFC 9700 §2.1 and OAuth 2.1
 * ask for TLS there). oidc-provider refuses http only for the implicit flow. Clients in `clients`
 * are the operator's own choice and stay as configured. Set through oidc-provider's documented
 * `extraClientMetadata` hook (the app's own properties and validator keep working).
 */
function httpsRedirectsOnly(config: Configuration, issuer: string): Configuration {
  if (!issuer.startsWith('https:')) return config;
  const own = config.extraClientMetadata;
  const properties = [...new Set([...(own?.properties ?? []), 'redirect_uris'])];
  return {
    ...config,
    extraClientMetadata: {
      ...own,
      properties,
      validator(ctx, key, value, metadata) {
        if (key === 'redirect_uris') refuseHttpRedirects(ctx, metadata);
        if (own?.validator && (key !== 'redirect_uris' || own.properties?.includes(key))) return own.validator(ctx, key, value, metadata);
        return undefined;
      },
    },
  };
}

function refuseHttpRedirects(ctx: KoaContextWithOIDC | undefined, metadata: Record<string, unknown>): void {
  const route = ctx?.oidc?.route;
  if ((route !== 'registration' && route !== 'client_update') || (metadata.application_type ?? 'web') !== 'web') return;
  const uris = Array.isArray(metadata.redirect_uris) ? metadata.redirect_uris : [];
  const plain = uris.find((uri) => {
    const url = typeof uri === 'string' ? URL.parse(uri) : null;
    return url?.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname);
  });
  if (plain !== undefined) {
    // (RFC 7591 §3.2.2's error; its default description speaks of an authorization request's redirect_uri)
    throw Object.assign(new errors.InvalidRedirectUri(), {
      error_description: `redirect_uris of a web client must use https (http only on a loopback host: localhost, 127.0.0.1 `
        + `or [::1]); received ${JSON.stringify(plain)}: register https://${String(plain).slice('http://'.length)} instead`,
    });
  }
}

/**
 * An account the store no longer has (deleted, or its id changed). When it is the one the OP session
 * is signed in as, that session is signed out: oidc-provider went on with a session whose account it
 * could not load, and every sign-in from that browser (for any client, as anyone) answered 500 until
 * the session expired, 14 days. Now the login form is asked for (`login_required` with `prompt=none`).
 */
function accountGone(ctx: KoaContextWithOIDC | undefined, sub: string): undefined {
  const session = (ctx?.oidc as { session?: Record<string, unknown> & { accountId?: string } } | undefined)?.session;
  if (session?.accountId === sub) {
    log('the OP session is signed in as an account the store no longer has: signed out, the login form is asked for');
    // as a session nobody signed in to: no account, no login details, no grants of that account for its
    // clients (the next sign-in, as someone else, met them: "accountId mismatch", a 500). oidc-provider's
    // session refuses `accountId = undefined`, hence deletes, then saved as changed
    for (const key of ['accountId', 'loginTs', 'amr', 'acr', 'transient']) delete session[key];
    session.authorizations = {};
    session.touched = true;
  }
  return undefined;
}

/**
 * The values a developer needs to fix a refused authorization request, which oidc-provider's
 * descriptions do not name: the `redirect_uri` and `client_id` received, for a redirect URI or a
 * client that is not registered ('' for other errors). Logged with DEBUG, not shown on the page.
 */
export function receivedValues(ctx: KoaContextWithOIDC, code: string, description?: string): string {
  const params = (ctx.oidc?.params ?? ctx.query ?? {}) as Record<string, unknown>;
  const q = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 200)) : 'none');
  const client = ctx.oidc?.client;
  const registered = (list: readonly string[] | undefined) => JSON.stringify((list ?? []).slice(0, 10));
  if (code === 'invalid_redirect_uri') {
    return ` (redirect_uri received: ${q(params.redirect_uri)}, client_id ${q(params.client_id)}: it must be one of that client's redirect_uris, exactly as registered)`;
  }
  if (code === 'invalid_client') return ` (client_id received: ${q(params.client_id)}: no client of that id is registered)`;
  if (description === 'post_logout_redirect_uri not registered') {
    return ` (post_logout_redirect_uri received: ${q(params.post_logout_redirect_uri)}, client ${q(client?.clientId)}, whose post_logout_redirect_uris are `
      + `${registered(client?.postLogoutRedirectUris)}: it must be one of them exactly, a trailing slash included)`;
  }
  if (description === 'requested response_type is not allowed for this client') {
    return ` (response_type received: ${q(params.response_type)}, client ${q(client?.clientId)}, whose response_types are ${registered(client?.responseTypes)}: `
      + 'register it in the client\'s response_types, or have the client ask one of those, e.g. response_type=code)';
  }
  return '';
}

/** Registers the grants op() adds to oidc-provider's (`grants/`): token exchange and the password grant. */
function registerGrants(provider: Provider, o: ResolvedOptions, deps: ConfigurationDeps): void {
  const { resourceIndicators: resources, tokenExchange, passwordGrant } = o.features;
  if (tokenExchange && resources) {
    registerTokenExchange(provider, {
      resources, policy: tokenExchange.policy, accounts: o.accounts, jwks: publicJwks(deps.jwks) as JSONWebKeySet, accessTokenTTL: o.ttl.AccessToken,
    });
  }
  if (passwordGrant) {
    console.warn(PASSWORD_GRANT_WARNING);
    registerPasswordGrant(provider, {
      accounts: o.accounts, throttle: throttle(deps.store, o.throttle), trustProxy: o.trustProxy, ...(resources ? { resources } : {}),
      scopes: new Set([...Object.keys(SCOPE_CLAIMS), 'openid', 'offline_access', ...o.scopes]),
    });
  }
}

/**
 * Loads each of `clients` as oidc-provider will at the client's first request, so that a metadata
 * error (a redirect URI with a fragment, an unknown auth method, a grant whose feature is off, an
 * unknown scope ...) stops start-up naming the client, instead of answering its first user with a
 * 400 invalid_client_metadata page.
 */
function checkClientMetadata(provider: Provider, clients: NonNullable<Configuration['clients']>): void {
  const ClientModel = provider.Client as unknown as new (metadata: object) => unknown;
  clients.forEach((metadata, i) => {
    try {
      void new ClientModel(metadata);
    } catch (err) {
      const { error, error_description: description } = err as { error?: string; error_description?: string };
      if (!error || !description) throw err;
      throw new OpConfigError(`clients[${i}]`, `client "${metadata.client_id}": ${description} (oidc-provider's ${error}; `
        + 'every client is checked at start-up as it would be at its first sign-in)');
    }
  });
}

/** A configured oidc-provider instance. */
/**
 * oidc-provider's replay check of a JWT's `jti` (a DPoP proof, a client assertion, a request object)
 * reads the record, then writes it: two requests carrying the same proof at once (at one instance
 * or two) both found none and both were let through (RFC 9449 §11.1: each proof once). The first is
 * now claimed in one atomic step of the store (`increment`: 1 for the first caller only), beside the
 * record oidc-provider keeps, which is still read (an instance of the previous version wrote only
 * that) and written (for those instances, during a rolling upgrade).
 */
function atomicReplayDetection(provider: Provider, store: OpStore): void {
  const ReplayDetection = provider.ReplayDetection as unknown as {
    find(id: string): Promise<unknown>;
    instantiate(payload: { jti: string; iss: string }): { save(ttl: number): Promise<unknown> };
    unique(iss: string, jti: string, exp: number): Promise<boolean>;
  };
  ReplayDetection.unique = async (iss, jti, exp) => {
    const id = createHash('sha256').update(`${iss}${jti}`).digest('base64url');
    const ttl = Math.max(1, exp - Math.floor(Date.now() / 1000));
    const [claims, found] = await Promise.all([store.increment(`openid-express:jti:${id}`, ttl), ReplayDetection.find(id)]);
    if (claims !== 1 || found) return false;
    await ReplayDetection.instantiate({ jti: id, iss }).save(ttl);
    return true;
  };
}

export function createProvider(o: ResolvedOptions, deps: ConfigurationDeps): Provider {
  const configuration = buildConfiguration(o, deps);
  const provider = new Provider(o.issuer, configuration);
  if (o.trustProxy) provider.proxy = true;
  atomicReplayDetection(provider, deps.store);
  registerGrants(provider, o, deps);
  // after registerGrants: a client may list the grants op() adds
  checkClientMetadata(provider, configuration.clients ?? []);
  return provider;
}
