import debug from 'debug';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Express } from 'express';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { retryBackchannelLogout } from './backchannel-retry.js';
import { memoryAdapter } from './adapters/memory.js';
import type { OpStore } from './adapters/types.js';
import { password } from './authenticators/password.js';
import { appStore } from './bounded-store.js';
import { sendErrorPage, sendMethodNotAllowed, sendRefusal, sendStoreUnavailable, shownPath } from './error-page.js';
import { isResumeInProgress, OpConfigError } from './errors.js';
import { interactionStates } from './interaction-state.js';
import { completeLogin, completeOnce, interactionRoutes, type InteractionDeps } from './interactions.js';
import { resolveKeys } from './keys.js';
import { retiredKeyHint } from './retired-hint.js';
import { formPostPolicy } from './form-post-csp.js';
import {
  checkForwardedProto, checkHost, checkMount, corsHeadersSet, ownCors, pinHost, refuseAtOnce, refuseNoted, refuseOwn, type RequestCheck,
} from './request-checks.js';
import { claimDeviceResume } from './device-flow.js';
import { checkLogoutCsrf } from './logout-csrf.js';
import { requestUriOn, resolveOptions, type OpOptions, type ResolvedOptions } from './options.js';
import { postToGet } from './post-to-get.js';
import { createProvider, receivedValues } from './provider.js';
import { answeredByProvider } from './provider-routes.js';
import { requestUriByReference } from './request-uri.js';
import { parseAllowedHosts } from './private-hosts.js';
import { warnHttpIssuerOverHttps, warnUntrustedProxyOnce } from './proxy-warning.js';
import { guardSession } from './session-guard.js';
import { answerStoreFailuresWith503, answerStoreUnavailable, isStoreUnavailable, undoConsumes } from './store-unavailable.js';
import { destroyOnceSent, RESUME_CLAIMED, runRequestScope, type ResumeClaim } from './request-scope.js';
import { throttle } from './throttle.js';
import { defaultViews, type BrandedViews, type Views } from './views/render.js';

const log = debug('openid-express:op');

/** The Express app `op()` returns; `provider` is the oidc-provider instance, for advanced use. */
export type OpApp = Express & { provider: Provider; issuer: string };

const SESSION_MISSING = 'express-session is not registered before op(). Add '
  + 'app.use(session({ secret, resave: false, saveUninitialized: false, store })) before app.use(\'/op\', op({...})).';

function mountMismatch(o: ResolvedOptions, actual: string): string {
  return `the issuer "${o.issuer}" has path "${o.mountPath || '/'}" but op() is mounted at "${actual || '/'}": `
    + `mount it with app.use('${o.mountPath || '/'}', op(...)) or change the issuer`;
}

/**
 * An http: issuer with NODE_ENV=production (loopback aside): clients would send secrets, codes and
 * tokens to it in clear, and OpenID Connect requires https (OIDC Discovery §3). Said loudly at
 * start-up, as the memory store is: a service on a private network over http is the app's call.
 */
function warnHttpIssuer(url: URL): void {
  if (process.env.NODE_ENV !== 'production' || url.protocol !== 'http:' || ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) return;
  console.warn(`\n*** openid-express op(): NODE_ENV=production but the issuer is http (${url.href.replace(/\/$/, '')}): clients send their secrets, codes and `
    + 'tokens to it in clear, and OpenID Connect requires https. Give the public https URL the browsers use (behind a proxy '
    + 'that terminates TLS, that https URL, with trustProxy: true). ***\n');
}

function defaultStore(): OpStore {
  if (process.env.NODE_ENV === 'production') {
    console.warn('\n*** openid-express op(): NODE_ENV=production but no `adapter` given: tokens, sessions and login '
      + 'throttling live in this process\'s memory, are lost on restart and are not shared between instances. '
      + 'Use adapter: redisAdapter(client). ***\n');
  }
  return memoryAdapter();
}

type Problem = { code: string; message: string };

/** A 500 saying how to fix the set-up (told on the console once), as a page or JSON. */
function misconfigured(views: Views) {
  let told = false;
  return (req: Request, res: Response, problem: Problem) => {
    if (!told) console.error(problem.message);
    told = true;
    if (req.accepts(['html', 'json']) === 'json') {
      return res.status(500).json({ error: 'server_error', code: problem.code, error_description: problem.message });
    }
    return sendErrorPage(req, res, views, { status: 500, code: problem.code, message: problem.message, title: 'This identity provider is misconfigured' });
  };
}

/**
 * What runs before a route that uses the browser session: the `session` option under a deadline
 * (a failing store is a 503), or, without it, a check that the app mounted express-session.
 */
function sessionStep(o: ResolvedOptions, views: Views, refuse: ReturnType<typeof misconfigured>): RequestHandler {
  if (o.session) {
    const guarded = guardSession(o.session, o.storeTimeout, (req, res, err) => void sendStoreUnavailable(req, res, views, err));
    let warned = false;
    return (req, res, next) => {
      // express-session does nothing where a session exists already: the app's, mounted before op()
      if (req.session && !warned) {
        warned = true;
        console.warn(APP_SESSION_FIRST);
      }
      guarded(req, res, next);
    };
  }
  return (req, res, next) => {
    if (req.session) return next();
    return void refuse(req, res, { code: 'session_missing', message: `op(): ${SESSION_MISSING}` });
  };
}

const APP_SESSION_FIRST = 'openid-express op(): an express-session of the app ran before op() on its paths, so op()\'s `session` option '
  + 'is not used: the OP keeps its sign-in state in the app\'s session (and its cookie), and a sign-in at the OP starts that session anew, '
  + 'dropping what the app kept in it. Mount the app\'s session on the app\'s own paths only (e.g. app.use(\'/app\', session(...))), or after op().';

/**
 * Checks where op() is mounted against its issuer's path, when it is mounted. An app op() is mounted
 * in that is not mounted itself yet (`id.use('/id', op(...))`, then `app.use('/auth', id)`) may
 * still come to the right path: the check waits for that mount. (Every request checks it too.)
 */
function onMount(app: Express, o: ResolvedOptions) {
  const check = (): void => {
    const path = app.path() === '/' ? '' : app.path();
    if (path === o.mountPath) return;
    let top = app as Express & { parent?: Express };
    while (top.parent) top = top.parent as typeof top;
    if (top !== app && o.mountPath.endsWith(path)) return void top.once('mount', check);
    throw new OpConfigError('issuer', mountMismatch(o, path));
  };
  app.on('mount', check);
}

/**
 * Gives redirect-based authenticators (upstream) their routes, each after `own` and the session step.
 * False when an authenticator's router has a layer that is no route (`router.use(...)`), which `own`
 * cannot be put in front of.
 */
function mountAuthenticators(app: Express, deps: InteractionDeps, o: ResolvedOptions, own: RequestHandler | undefined, session: RequestHandler): boolean {
  let routesOnly = true;
  for (const authenticator of deps.authenticators) {
    const router = express.Router();
    authenticator.mount?.({
      issuer: o.issuer, mountPath: o.mountPath, router, storeTimeout: o.storeTimeout, store: deps.claims,
      complete: (req, res, uid, result) => completeLogin(deps, req, res, uid, result),
      completeOnce: (req, res, once, outcome) => completeOnce(deps, req, res, once, outcome),
    });
    const paths = router.stack.flatMap((layer) => (layer.route ? [layer.route.path] : []));
    if (own) first(app, router, own);
    routesOnly &&= router.stack.every((layer) => layer.route);
    for (const path of new Set(paths)) app.all(path, session);
    app.use(router);
  }
  return routesOnly;
}

/**
 * Runs `handler` before each route of `router` (mounted at `mount`), on the methods it takes (`all`
 * for every method), and on OPTIONS, which Express answers itself (200 with Allow) where a route has
 * the path. (On `app`: a router of its own would answer OPTIONS at its end, before `router` does.)
 */
function first(app: Express, router: express.Router, handler: RequestHandler, mount = ''): void {
  for (const { route } of router.stack) {
    if (!route) continue;
    const path = mount ? `${mount}${route.path}` : route.path;
    for (const method of new Set([...route.stack.map((layer) => layer.method ?? 'all'), 'options'])) app[method as 'all'](path, handler);
  }
}

/** `endSession`: the logout page's path, offered to sign out with a fresh form (the user is still signed in). */
function logoutRefused(views: Views, endSession: string) {
  return (req: Request, res: Response) => void sendErrorPage(req, res, views, {
    status: 403, code: 'csrf_invalid', message: 'This form has expired or did not come from this site. Nothing was changed.',
    backUrl: endSession, backLabel: 'Sign out',
  });
}

/** Body-parser and other errors before oidc-provider: a 4xx/500 (503 for the store) page, never a stack trace. */
function errorPage(views: Views) {
  return (err: { status?: number; type?: string }, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (isStoreUnavailable(err)) return void sendStoreUnavailable(req, res, views, err);
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    log('request error %d: %s', status, err.type ?? 'unknown');
    void sendErrorPage(req, res, views, {
      status, code: status === 500 ? 'server_error' : 'invalid_request',
      message: status === 500 ? 'Something went wrong. Try again later.' : 'The request could not be read.',
    });
  };
}

/** What op()'s checks change (`pinHost`, `ownCors`), as the request came: given back to the app's routes after a root-mounted op(). */
interface AsReceived {
  host: string | undefined;
  forwardedHost: string | string[] | undefined;
  forwardedProto: string | string[] | undefined;
  cors: Array<[string, number | string | string[]]>;
}
const AS_RECEIVED = Symbol('the request as it came to op()');

/** Keeps what op()'s checks change of a request (op() at the root of a host sees every request of the app). */
const keepAsReceived: RequestCheck = (req, res) => {
  const cors = corsHeadersSet(res).map((name): AsReceived['cors'][number] => [name, res.getHeader(name)!]);
  (req as Request & { [AS_RECEIVED]?: AsReceived })[AS_RECEIVED] = {
    host: req.headers.host, forwardedHost: req.headers['x-forwarded-host'], forwardedProto: req.headers['x-forwarded-proto'], cors,
  };
  return true;
};

/** Gives a request passed on to the app's routes its `Host`, `X-Forwarded-Host`, `X-Forwarded-Proto` and the CORS headers set before op(). */
function giveBack(req: Request & { [AS_RECEIVED]?: AsReceived }, res: Response): void {
  const kept = req[AS_RECEIVED];
  if (!kept) return;
  req.headers.host = kept.host;
  if (kept.forwardedHost !== undefined) req.headers['x-forwarded-host'] = kept.forwardedHost;
  if (kept.forwardedProto === undefined) delete req.headers['x-forwarded-proto'];
  else req.headers['x-forwarded-proto'] = kept.forwardedProto;
  for (const [name, value] of kept.cors) res.setHeader(name, value);
}

/** Where op() at the root of a host keeps, per request, the way on to the app's own routes after it. */
const PASS_ON = Symbol('the app after op()');

/**
 * The token endpoint's answer when what the request redeemed (a code, a refresh token, a device
 * code) was deleted before its consume was final: another request presented it at the same moment
 * and revoked its grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2), or it expired. 400 `invalid_grant`, as
 * the other request got; the tokens this one made are not sent (the revocation removes them).
 */
function answerGrantGone(ctx: KoaContextWithOIDC): void {
  log('token request of client %s refused: invalid_grant (what it redeemed was revoked or expired before the answer; a replay at the same moment)', ctx.oidc?.client?.clientId ?? '?');
  ctx.respond = false;
  ctx.res.removeHeader('set-cookie');
  const body = JSON.stringify({
    error: 'invalid_grant',
    error_description: 'grant request is invalid (the code or refresh token was presented by another request at the same time, which revoked its grant, or it expired): start a new authorization',
  });
  ctx.res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', pragma: 'no-cache' });
  ctx.res.end(body);
}

/**
 * The methods oidc-provider's endpoints take (its routes, lib/helpers/initialize_app.js; HEAD with
 * every GET), by route name. `methods.test.ts` checks this table against oidc-provider itself.
 */
const ROUTE_METHODS: Record<string, readonly string[]> = {
  discovery: ['GET'], jwks: ['GET'], authorization: ['GET', 'POST'], userinfo: ['GET', 'POST'], token: ['POST'],
  introspection: ['POST'], revocation: ['POST'], registration: ['POST'], pushed_authorization_request: ['POST'],
  device_authorization: ['POST'], code_verification: ['GET', 'POST'], backchannel_authentication: ['POST'],
  end_session: ['GET', 'POST'], end_session_confirm: ['POST'], end_session_success: ['GET'],
};

/** The path of oidc-provider's route `name` under the mount; undefined for the routes of features that are off. */
function endpointPath(provider: Provider, name: string): string | undefined {
  if (name === 'discovery') return '/.well-known/openid-configuration';
  try {
    return provider.pathFor(name, { mountPath: '' });
  } catch {
    return undefined; // pathFor throws for the routes of features that are off
  }
}

/** `Allow` of each endpoint's path (relative to the mount, in lower case; features that are off have none). */
function allowedMethods(provider: Provider): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, methods] of Object.entries(ROUTE_METHODS)) {
    const path = endpointPath(provider, name);
    if (path !== undefined) out.set(path.toLowerCase(), [...methods, ...(methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', '));
  }
  return out;
}

/**
 * A path under the mount that neither op() nor oidc-provider routes (a mistyped URL, an old link):
 * the 404 error page for browsers, JSON for API clients, as the rest of op() answers, instead of
 * Koa's plain-text "Not Found". A method an endpoint does not take (`GET /token`) is 405 with
 * `Allow` (RFC 9110 §15.5.6), and `OPTIONS` without a CORS preflight's headers 204 with `Allow`. Added before the provider's
 * router, it runs after it (`await next()`), and only changes an answer nothing has written.
 *
 * op() at the root of a host (an issuer without a path) passes such a request on to the app's own
 * routes mounted after it (`passOn`), as Express middleware does: before, it answered them all.
 */
function answerUnknownPaths(provider: Provider, views: Views, passOn: boolean): void {
  const allow = allowedMethods(provider);
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    // (and the scope in which a store failure undoes what the request consumed, store-unavailable.ts,
    // and which a consume is held for until the answer is written, redisAdapter's consume)
    const { settled, gone, failure, scope } = await runRequestScope(ctx.res, next, (ctx.req as { [RESUME_CLAIMED]?: ResumeClaim })[RESUME_CLAIMED]);
    // what the request consumed could not be made final (Redis failed, or the lease ran out and another
    // request took it over): its answer must not carry the tokens, nor leave the code spent
    if (!settled && ctx.respond !== false && !ctx.headerSent) {
      undoConsumes(scope);
      destroyOnceSent(scope, ctx.res, false);
      // the code or refresh token is gone (a replay of it at the same moment revoked its grant): no retry
      // can redeem it, so the token endpoint refuses it as a replay is refused, not 503 "try again"
      if (gone && ctx.oidc?.route === 'token') return answerGrantGone(ctx);
      return answerStoreUnavailable(ctx, views, failure);
    }
    // RFC 6749 §5.1 (OIDC Core 3.1.3.3): a token answer, tokens or an error, says Pragma: no-cache besides
    // oidc-provider's Cache-Control: no-store (an HTTP/1.0 cache on the way reads only that)
    if (ctx.oidc?.route === 'token' && !ctx.headerSent) ctx.set('pragma', 'no-cache');
    // RFC 7009 §2.2: the client ignores the body; oidc-provider's is empty text, which clients that parse every
    // answer as JSON (simple-oauth2, @fastify/oauth2) throw on, so a revoked token looked like a failed revocation
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200 && !ctx.body && !ctx.headerSent) ctx.body = {};
    // the sign-in under way and the replaced OP session are deleted once the answer went out, if it is no
    // failure (a store failure answered 503 leaves Koa's status at the 500 oidc-provider set before it said so)
    destroyOnceSent(scope, ctx.res, ctx.status < 500);
    if (ctx.status !== 404 || ctx.body != null || ctx.respond === false || ctx.headerSent) return;
    ctx.respond = false;
    const req = ctx.req as unknown as Request & { [PASS_ON]?: NextFunction };
    const res = ctx.res as unknown as Response;
    if (passOn && req[PASS_ON]) {
      res.statusCode = 200; // Koa's 404 until a route answers: the app's routes start from Node's default
      giveBack(req, res);
      return req[PASS_ON]();
    }
    if (!refuseNoted(req, res, views)) return; // a malformed request op() answers itself after all
    const methods = allow.get(ctx.path.toLowerCase());
    await (methods ? sendMethodNotAllowed(req, res, views, methods) : sendRefusal(req, res, views, {
      status: 404, code: 'not_found', message: `There is no ${ctx.method} ${shownPath(req)} here. Check the address, or start again from the application you came from.`,
    })).catch((err: unknown) => {
      log('the %s answer failed: %s', methods ? 405 : 404, (err as Error)?.message);
      if (!ctx.res.headersSent) ctx.res.writeHead(methods ? 405 : 404);
      ctx.res.end();
    });
  });
}

/**
 * An OpenID Provider as an Express app: oidc-provider behind the login and consent screens.
 * Mount it where the issuer's path says, after express-session.
 *
 * @example
 * app.use(session({ secret, resave: false, saveUninitialized: false }));
 * app.use('/op', op({
 *   issuer: 'https://id.example.com/op',
 *   clients: [{ client_id: 'app', client_secret: 's3cret', redirect_uris: ['https://app.example.com/auth/callback/corp'] }],
 *   accounts: memoryAccounts([{ id: 'alice', username: 'alice', password: 'wonderland' }]),
 * }));
 */
type OidcError = Error & { error?: string; error_description?: string; error_detail?: string };

/** What a refused request's error says, for the debug log: its code, its description and what caused it, quoted. */
function refusalDetail(err: OidcError): string {
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  const why = [...new Set([err.error_description ?? err.message, err.error_detail, cause].filter(Boolean))].join(': ');
  const clock = cause && /^jwt (expired|not active yet|issued in the future)$/.test(cause)
    ? ' (past the clock tolerance: oidc-provider\'s clockTolerance, 15 s by default: the JWT is old, or the clocks of the client\'s server and this OP differ; keep both in time with NTP)' : '';
  return `${err.error ?? err.name} ${JSON.stringify(why.slice(0, 300))}${clock}`;
}

export function op(options: OpOptions): OpApp {
  const o = resolveOptions(options);
  warnHttpIssuer(o.issuerUrl);
  const userStore = o.adapter ?? defaultStore();
  // our own stores answer in bounded time (memory at once, redis within its `timeout`) and keep
  // expired device codes a while; an app's store gets a deadline and is told to keep them too
  const store = userStore.kind === 'memory' || userStore.kind === 'redis' ? userStore : appStore(userStore, o.storeTimeout);
  const keys = resolveKeys(o.jwks, o.cookieKeys, (msg) => console.warn(msg));
  const views: BrandedViews = { ...defaultViews, ...o.views, brand: { name: o.name, logoUri: o.logoUri } } as BrandedViews;
  const provider = createProvider(o, { store, views, ...keys });
  // a 500 is a fault to fix (a bug, or the app's own code failing: its accounts, views): said on stderr with
  // its stack, as Express's own handler does; a store that is down is a 503 (store-unavailable.ts), not this
  provider.on('server_error', (ctx, err) => {
    log('server_error: %s', err.message);
    if (!isStoreUnavailable(err) && !isResumeInProgress(err)) console.error(`op(): ${ctx.method} ${ctx.path} failed (500 server_error):`, err);
  });
  // a refused token request answers only "grant request is invalid"; why (e.g. "authorization code is
  // expired", which instances with differing clocks cause) is said here, never the code or token itself
  provider.on('grant.error', (ctx, err) => log('token request of client %s refused: %s (%s)',
    ctx.oidc?.client?.clientId ?? '?', (err as OidcError).error ?? err.name, (err as OidcError).error_detail ?? (err as OidcError).error_description ?? err.message));
  // the same for an authorization or PAR request: why, and for an old or early request object the clocks
  // (checked before its signature, so a visitor can cause the line: its text is quoted, and only logged)
  const refused = (what: string) => (ctx: KoaContextWithOIDC, err: OidcError) => {
    if (err.error === 'invalid_redirect_uri' || err.error === 'invalid_client') return; // logged with the values received (provider.ts)
    log('%s of client %s refused: %s%s', what, JSON.stringify(String(ctx.oidc?.client?.clientId ?? '?').slice(0, 100)), refusalDetail(err),
      receivedValues(ctx, String(err.error), err.error_description));
  };
  provider.on('authorization.error', refused('authorization request'));
  provider.on('pushed_authorization_request.error', refused('pushed authorization request'));
  retryBackchannelLogout(provider, store);
  answerStoreFailuresWith503(provider, views);

  const app = express() as OpApp;
  app.provider = provider;
  app.issuer = o.issuer;
  app.disable('x-powered-by');
  if (o.trustProxy) app.set('trust proxy', 1);
  onMount(app, o);
  const refuse = misconfigured(views);
  const session = sessionStep(o, views, refuse);
  // the checks every request passes, in one layer (each layer costs on the API endpoints' hot path)
  const atRoot = o.mountPath === '';
  // (at the root of a host, a malformed request op() passes on to the app's routes is theirs, not op()'s to refuse)
  // (unless an authenticator answers through `router.use()`: op() cannot tell which requests those are, so every
  // malformed request is refused at once, as under a path)
  let refuseEvery = false;
  const answered = atRoot ? answeredByProvider(provider) : undefined;
  const malformed = answered ? refuseOwn(views, (req) => refuseEvery || answered(req)) : refuseAtOnce(views);
  const checks: RequestCheck[] = [
    ...(atRoot ? [keepAsReceived] : []), // what the checks change is given back to the app's routes after op()
    ...(o.trustProxy ? [] : [warnUntrustedProxyOnce(o.issuer)]),
    checkMount(o.mountPath, views, (req, res) => refuse(req, res, { code: 'mount_mismatch', message: `op(): ${mountMismatch(o, req.baseUrl)}` })),
    checkHost(o.trustProxy, malformed),
    ...(o.trustProxy && o.issuerUrl.protocol !== 'https:' ? [checkForwardedProto(malformed), warnHttpIssuerOverHttps(o.issuer)] : []),
    pinHost(o.issuer, o.trustProxy),
    ownCors,
  ];
  const passesChecks: RequestCheck = (req, res) => {
    for (const check of checks) if (!check(req, res)) return false;
    return true;
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (passesChecks(req, res)) next();
  });
  // first on each of op()'s own routes at the root: a malformed request the checks let go on (`refuseOwn`) is
  // refused there (under a path the checks let none go on: no layers added there)
  const own: RequestHandler | undefined = atRoot ? (req, res, next) => {
    if (refuseNoted(req, res, views)) next();
  } : undefined;
  const deps: InteractionDeps = {
    provider, views, accounts: o.accounts,
    authenticators: o.authenticators.length ? o.authenticators : [password()],
    throttle: throttle(store, o.throttle),
    firstParty: new Set(o.clients.filter((c) => c.firstParty).map((c) => c.client_id)),
    mountPath: o.mountPath,
    states: interactionStates(store, o.ttl.Interaction),
    trustProxy: o.trustProxy,
    homeUri: o.homeUri,
    storeTimeout: o.storeTimeout,
    claims: store,
  };
  const interactions = interactionRoutes(deps, session);
  if (own) first(app, interactions, own, '/interaction');
  app.use('/interaction', interactions);
  if (!mountAuthenticators(app, deps, o, own, session) && atRoot) {
    refuseEvery = true;
    log('an authenticator\'s router has a layer that is no route (router.use): at the root of a host, every request with a malformed Host, X-Forwarded-Host or X-Forwarded-Proto is refused');
  }
  // (at the root of a host, a method these paths do not take goes on to the app's own routes, as any unknown request does)
  if (!atRoot) app.use('/interaction', interactions.wrongMethods);
  const endSession = provider.pathFor('end_session', { mountPath: '' });
  // op()'s own routes: `own` first, on OPTIONS too (Express answers it itself where a route has the path)
  const route = (method: 'get' | 'post', path: string, ...handlers: RequestHandler[]): void => {
    if (!own) return void app[method](path, ...handlers);
    app.options(path, own);
    app[method](path, own, ...handlers);
  };
  // the logout page's CSRF token lives in the browser session; the body is left for oidc-provider to parse
  route('get', endSession, session, retiredKeyHint(keys.jwks.keys));
  route('post', provider.pathFor('end_session_confirm', { mountPath: '' }), session, checkLogoutCsrf(logoutRefused(views, `${o.mountPath}${endSession}`)));
  const codeVerification = endpointPath(provider, 'code_verification');
  if (codeVerification) route('get', `${codeVerification}/:uid`, claimDeviceResume(store, provider, views));
  for (const endpoint of ['authorization', 'end_session'] as const) {
    route('post', provider.pathFor(endpoint, { mountPath: '' }), ...postToGet(o.mountPath));
  }
  answerUnknownPaths(provider, views, atRoot);
  formPostPolicy(provider);
  // (after formPostPolicy: a refused request_uri answered in form_post mode gets its headers too)
  if (requestUriOn(o.features)) {
    requestUriByReference(provider, o.issuer, new Set(o.clients.map((c) => c.client_id)), o.allowPrivateHosts.length ? parseAllowedHosts(o.allowPrivateHosts) : undefined);
  }
  const callback = provider.callback();
  app.use(atRoot ? (req: Request & { [PASS_ON]?: NextFunction }, res: Response, next: NextFunction) => {
    req[PASS_ON] = next;
    void callback(req, res);
  } : callback);
  const onError = errorPage(views);
  app.use(onError);
  skipAppForApiEndpoints(app, provider, passesChecks, callback);
  return app;
}

/**
 * The endpoints machines call (discovery, keys, token, userinfo, introspection, revocation, PAR,
 * device authorization, CIBA, registration) and the authorization GET go from the checks straight
 * to oidc-provider. Express runs a mounted app by re-prototyping `req` and `res` and routing them
 * a second time, which cost about 13 % of the instructions of a userinfo call (bench/RESULTS.md);
 * none of op()'s own routes or settings apply to these paths. Every other path, and these in
 * another letter case or with a trailing slash, takes op()'s app as before.
 */
function skipAppForApiEndpoints(
  app: OpApp, provider: Provider, passesChecks: RequestCheck, callback: (req: Request, res: Response) => unknown,
) {
  const api = new Set(['discovery', 'jwks', 'token', 'userinfo', 'introspection', 'revocation',
    'pushed_authorization_request', 'device_authorization', 'backchannel_authentication', 'registration']
    .flatMap((name) => endpointPath(provider, name) ?? []));
  const authorization = provider.pathFor('authorization', { mountPath: '' });
  type Handle = (req: Request, res: Response, next?: NextFunction) => void;
  const mounted = app as unknown as { handle: Handle };
  const handle = mounted.handle.bind(app);
  mounted.handle = (req, res, next) => {
    // `next` is there when an app mounted op(); http.createServer(op(...)) takes the app as before
    if (!next) return handle(req, res, next);
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    if (!api.has(path) && !(path === authorization && req.method === 'GET')) return handle(req, res, next);
    if (passesChecks(req, res)) void callback(req, res);
  };
}
