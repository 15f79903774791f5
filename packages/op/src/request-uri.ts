/**
 * OpenID Connect Core §6.2 `request_uri`: the request object by reference. oidc-provider v9 takes a
 * `request_uri` from PAR only (discovery said `request_uri_parameter_supported: false`, and any other
 * was `request_uri_not_supported`), while the OpenID Foundation's Dynamic OP plan requires it. Here a
 * client registers the URLs it will use (`request_uris`, OIDC Dynamic Client Registration §2); at the
 * authorization endpoint one of them is fetched and its body handed to oidc-provider as the `request`
 * parameter, so oidc-provider's own request-object checks (the signature per the client's
 * `request_object_signing_alg`, `none` only where allowed, `iss` / `aud`, duplicates) all apply.
 */
import type Provider from 'oidc-provider';
import { errors, type Client, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import fetchBodyCheck from 'oidc-provider/lib/helpers/fetch_body_check.js';
import fetchRequest from 'oidc-provider/lib/helpers/fetch_request.js';
import authorizationErrorHandler from 'oidc-provider/lib/shared/authorization_error_handler.js';
import debug from 'debug';
import { fetchRouteFor, type AllowedHosts } from './private-hosts.js';

const log = debug('openid-express:op');

/** The largest request object fetched (`fetchResponseBodyLimits.request_uri` of oidc-provider's configuration). */
export const REQUEST_URI_LIMIT = 64 * 1024;
const PUSHED = 'urn:ietf:params:oauth:request_uri:';
const withoutFragment = (uri: string) => uri.split('#')[0];
/** Sent with each fetch: an OP (this one under another name, or another op()) asked by it fetches nothing more. */
const FETCHING = 'x-openid-express-request-uri';
/** Fetches of one client in flight at once, in this process (each may take 2.5 s): past it, refused. */
const MAX_IN_FLIGHT_PER_CLIENT = 8;

/**
 * `request_uris` as client metadata (static `clients` and dynamic registration alike, through
 * oidc-provider's `extraClientMetadata`; the app's own properties and validator keep working): an
 * array of https URLs (http too while the issuer itself is http, for local development).
 */
export function withRequestUris(config: Configuration, issuer: string): Configuration {
  const own = config.extraClientMetadata;
  const http = issuer.startsWith('http:');
  const ours = ownPaths(issuer);
  return {
    ...config,
    fetchResponseBodyLimits: { request_uri: REQUEST_URI_LIMIT, ...config.fetchResponseBodyLimits },
    extraClientMetadata: {
      ...own,
      properties: [...new Set([...(own?.properties ?? []), 'request_uris'])],
      validator(ctx, key, value, metadata) {
        if (key === 'request_uris' && value !== undefined) checkRequestUris(value, http, ours);
        if (own?.validator && (key !== 'request_uris' || own.properties?.includes(key))) return own.validator(ctx, key, value, metadata);
        return undefined;
      },
    },
  };
}

/** Whether a URL is one of the OP's own (under its issuer): a request_uri there would have the OP fetch itself. */
function ownPaths(issuer: string): (url: URL) => boolean {
  const base = new URL(issuer);
  const path = base.pathname.replace(/\/$/, '').toLowerCase();
  return (url) => url.origin === base.origin && (path === '' || url.pathname.toLowerCase() === path || url.pathname.toLowerCase().startsWith(`${path}/`));
}

function checkRequestUris(value: unknown, http: boolean, own: (url: URL) => boolean): void {
  const bad = Array.isArray(value) ? value.find((uri) => {
    const url = typeof uri === 'string' ? URL.parse(uri) : null;
    return (url?.protocol !== 'https:' && !(http && url?.protocol === 'http:')) || own(url);
  }) : value;
  if (Array.isArray(value) && bad === undefined) return;
  throw new errors.InvalidClientMetadata(`request_uris must be an array of ${http ? 'http(s)' : 'https'} URLs the client serves its `
    + `request objects at (OpenID Connect Dynamic Client Registration 2), e.g. ["https://app.example.com/request.jwt"], none under this `
    + `OP's issuer; received ${JSON.stringify(bad)}`);
}

/** The refusal of a `request_uri`, naming its host and what failed. */
function refused(url: URL | null, what: string): Error {
  return new errors.InvalidRequestUri(`the request_uri${url ? ` at ${url.host}` : ''} ${what}`);
}

/** Why a fetch failed, in a few words (a timeout, the SSRF guard's refusal of a private address, a refused connection): for the log only. */
function reasonOf(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { message?: string; code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'no answer within 2.5 s';
  return e?.cause?.message ?? e?.cause?.code ?? e?.message ?? String(err);
}

/** What the fetches of a request_uri check against: the issuer, static clients' ids, `allowPrivateHosts`. */
interface FetchRules {
  http: boolean;
  own: (url: URL) => boolean;
  staticClients: ReadonlySet<string>;
  allowed: AllowedHosts | undefined;
}

/** The request object at `uri`, one of `client`'s `request_uris`: at most REQUEST_URI_LIMIT bytes, a 200, no redirect. */
async function fetchRequestObject(provider: Provider, client: Client, uri: string, rules: FetchRules): Promise<string> {
  const url = URL.parse(uri);
  const registered = (client as unknown as { request_uris?: string[] }).request_uris ?? [];
  if (!registered.some((r) => withoutFragment(r) === withoutFragment(uri))) {
    throw refused(url, `is not one of the request_uris client "${client.clientId}" registered: register it (the fragment aside, it must be the same)`);
  }
  if (url?.protocol !== 'https:' && !(rules.http && url?.protocol === 'http:')) throw refused(url, 'must be an https URL');
  // this OP fetching itself (a chain of request_uris, each request making the next): never
  if (rules.own(url)) throw refused(url, 'is one of this OP\'s own URLs');
  // allowPrivateHosts is for the apps the OP's operator lists in `clients` (their back channels), not for
  // clients anyone registered: their request_uri could reach those internal hosts on a stranger's request
  if (rules.allowed && !rules.staticClients.has(client.clientId) && await fetchRouteFor(rules.allowed, url) !== 'protected') {
    throw refused(url, 'is on a host of allowPrivateHosts, which only clients listed in op()\'s `clients` may use for request_uri');
  }
  let response: Response;
  try {
    response = await fetchRequest(provider, url.href, {
      method: 'GET', redirect: 'manual', headers: { accept: 'application/oauth-authz-req+jwt, application/jwt', [FETCHING]: '1' },
    });
  } catch (err) {
    // one message for every failure before an answer: a stranger's request_uri must not tell open ports,
    // closed ones, names that do not resolve and private addresses apart (a scanner of the OP's network)
    log('request_uri %s of client %s not fetched: %s', JSON.stringify(url.href.slice(0, 200)), JSON.stringify(client.clientId), reasonOf(err));
    throw refused(url, 'could not be fetched (the OP\'s log says why)');
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    const redirect = response.status >= 300 && response.status < 400 ? ': redirects are not followed, register the final URL' : '';
    throw refused(url, `answered HTTP ${response.status}, not 200 with the request object${redirect}`);
  }
  try {
    return (await fetchBodyCheck(provider, 'request_uri', response)).toString('utf8').trim();
  } catch (err) {
    const big = (err as Error)?.message === 'response too large';
    if (!big) log('request_uri %s of client %s not read: %s', JSON.stringify(url.href.slice(0, 200)), JSON.stringify(client.clientId), reasonOf(err));
    throw refused(url, big ? `answered more than ${REQUEST_URI_LIMIT} bytes` : 'could not be read (the OP\'s log says why)');
  }
}

/**
 * One fetch per URL at a time in this process (concurrent requests for one request_uri share it), and
 * at most MAX_IN_FLIGHT_PER_CLIENT of one client: strangers' authorization requests cannot make the
 * OP hammer a host (each fetch may be held 2.5 s by a server that drips its answer).
 */
function boundedFetches(fetch: (client: Client, uri: string) => Promise<string>): (client: Client, uri: string) => Promise<string> {
  const inFlight = new Map<string, Promise<string>>();
  const perClient = new Map<string, number>();
  return (client, uri) => {
    const key = `${client.clientId} ${withoutFragment(uri)}`;
    const shared = inFlight.get(key);
    if (shared) return shared;
    const count = perClient.get(client.clientId) ?? 0;
    if (count >= MAX_IN_FLIGHT_PER_CLIENT) {
      return Promise.reject(refused(URL.parse(uri), `was not fetched: ${MAX_IN_FLIGHT_PER_CLIENT} fetches of client "${client.clientId}" are under way; try again`));
    }
    perClient.set(client.clientId, count + 1);
    const done = fetch(client, uri).finally(() => {
      inFlight.delete(key);
      const left = (perClient.get(client.clientId) ?? 1) - 1;
      if (left > 0) perClient.set(client.clientId, left);
      else perClient.delete(client.clientId);
    });
    inFlight.set(key, done);
    return done;
  };
}

/**
 * Answers `err` as oidc-provider answers a refused authorization request: to the client's redirect_uri
 * when the client is known and that redirect_uri is one of its own (with `state`, in the asked response
 * mode), else on the error page; `authorization.error` (or `server_error`) is emitted as for its own.
 */
async function answerAsProvider(provider: Provider, ctx: KoaContextWithOIDC, err: unknown): Promise<void> {
  const OIDCContext = (provider as unknown as { OIDCContext: new (ctx: unknown) => KoaContextWithOIDC['oidc'] }).OIDCContext;
  const oidc = Object.assign(new OIDCContext(ctx), { route: 'authorization', params: { ...ctx.query } });
  Object.defineProperty(ctx, 'oidc', { value: oidc });
  await authorizationErrorHandler(ctx, () => Promise.reject(err));
}

/**
 * At the authorization endpoint, before oidc-provider reads the request: a `request_uri` that is not
 * PAR's is looked up among the client's `request_uris`, fetched (oidc-provider's outgoing-request rules:
 * its SSRF guard, `allowPrivateHosts`, 2.5 s), and given to oidc-provider as `request`. A POST reaches
 * here as a GET (post-to-get.ts). Discovery says `request_uri_parameter_supported: true` and
 * `require_request_uri_registration: true`.
 *
 * @example
 * requestUriByReference(provider, 'https://id.example.com/op');
 */
export function requestUriByReference(provider: Provider, issuer: string, staticClients: ReadonlySet<string> = new Set(), allowed?: AllowedHosts): void {
  const path = provider.pathFor('authorization', { mountPath: '' });
  const rules: FetchRules = { http: issuer.startsWith('http:'), own: ownPaths(issuer), staticClients, allowed };
  const fetchOnce = boundedFetches((client, uri) => fetchRequestObject(provider, client, uri, rules));
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    // (oidc-provider serves the endpoint with a trailing slash too)
    const uri = ctx.method === 'GET' && (ctx.path === path || ctx.path === `${path}/`) ? ctx.query.request_uri : undefined;
    // PAR's, repeated ones, one sent with `request`, and a repeated client_id stay oidc-provider's to answer
    if (typeof uri !== 'string' || uri.startsWith(PUSHED) || ctx.query.request !== undefined || Array.isArray(ctx.query.client_id)) {
      await next();
      if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
        Object.assign(ctx.body, { request_uri_parameter_supported: true, require_request_uri_registration: true });
      }
      return;
    }
    let request: string;
    try {
      const id = ctx.query.client_id;
      if (typeof id !== 'string' || !id) throw new errors.InvalidRequest('missing required parameter \'client_id\' (a request_uri is looked up among its client\'s request_uris)');
      // a request an OP's request_uri fetch made (this OP under another name, another op()): no fetch from it
      if (ctx.get(FETCHING)) throw refused(URL.parse(uri), 'was not fetched: this request is itself a request_uri fetch');
      const client = await provider.Client.find(id);
      if (!client) throw new errors.InvalidClient('client is invalid', 'client not found');
      if ((client as unknown as { requirePushedAuthorizationRequests?: boolean }).requirePushedAuthorizationRequests) {
        throw new errors.InvalidRequest('Pushed Authorization Request must be used');
      }
      request = await fetchOnce(client, uri);
    } catch (err) {
      // (logged as oidc-provider's refusals are: router.ts's authorization.error listener)
      return answerAsProvider(provider, ctx, err);
    }
    const { request_uri: _fetched, ...query } = ctx.query;
    ctx.query = { ...query, request };
    return next();
  });
}
