/**
 * `rp()`: the Express routes, a thin layer over `RelyingParty`. Each handler reads the request,
 * calls the core, writes the answer.
 */
import { createHash, randomBytes } from 'node:crypto';
import querystring from 'node:querystring';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Session, SessionData, Store } from 'express-session';
import createDebug from 'debug';
import { RequestContext, contextMaker, provideContext } from './context.js';
import { RESUBMIT_FIELD, needsSameOriginResubmit, postFragment, resubmitSameOrigin } from './form-post.js';
import { REQUEST_OBJECT_TTL } from './request-object.js';
import { RpError, oneLine, publicStoreFailure, toRpError } from './errors.js';
import { errorPage, escapeHtml, page, pagePolicy } from './page.js';
import type { ProviderConfig, RpOptions } from './options.js';
import { failedAfterCodeSpent, RelyingParty } from './relying-party.js';
import { CLOCKS_DIFFER, LOGOUT_TOKEN_MAX_AGE, isUnpublishedKey } from './id-token.js';
import { alreadyUsed, answerProof, claimCallback, finishedLogin, type CallbackClaim } from './callback-claim.js';
import { coordinationOf, endIndexedSessions, hashedKey, isProcessCoordination, keepEndedSessionsEnded, markSessionEnded, type Coordination, type KeepPending, type SessionStoreHooks } from './coordination.js';
import { checkStore, guardedSession, inThisProcess, sessionOp } from './session-guard.js';
import { noteSessionAsRead, noteSessionsAsRead } from './concurrent-writes.js';
import { logoutIndexKey, logoutJtiKey, logoutScope, unscopedLogoutIndexKey, type Authentication, type OidcSessionData, type Transaction } from './session.js';
import { readStoredLogin, toStoredLogin, type StoredLogin } from './stored-login.js';
import { expiredReturnTo, hasPendingLogin, livePendingLogins, pendingLogins } from './transactions.js';
import { shortLivedPendingLogins } from './pending-life.js';
import { checkRoutesPath, checkSessionCookie } from './cookie-checks.js';
import { KeyQueue } from './key-queue.js';
import { underLock } from './lease.js';

const debug = createDebug('openid-express:rp');

type Handler = (req: Request, res: Response) => Promise<void>;

/** The Express router returned by `rp()`, with its core. */
export type RpRouter = Router & { relyingParty: RelyingParty };

/**
 * Mounts the RP routes (login, callback, refresh, logout, back-channel logout, providers) and
 * `req.oidc`. Needs `express-session` mounted before it.
 *
 * @example
 * ```ts
 * app.use(session({ secret, resave: false, saveUninitialized: false }));
 * app.use(rp({ baseURL: 'https://app.example.com', providers: { corp: oidc({ issuer, clientId, clientSecret }) } }));
 * ```
 */
export function rp(options: RpOptions): RpRouter {
  const relyingParty = new RelyingParty(options);
  const { mountPath: m } = relyingParty.options;
  const router = express.Router() as RpRouter;
  router.relyingParty = relyingParty;
  const form = formBody(express.urlencoded({ extended: false, limit: '64kb' }));
  const json = express.json({ limit: '16kb' });
  const wrap = (handler: Handler): RequestHandler => (req, res, next) => handler(req, res).catch(next);
  const routes = new Routes(relyingParty);
  const { session, storeTimeout } = relyingParty.options;

  const onError = (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    sendError(toRpError(clientInputError(err) ?? err), req, res, next, relyingParty);
  };
  // a POST to the refresh route refreshes whatever its token's expiry: its session is kept as read too
  // (rp()'s routes take any letter case, as Express's do)
  const refreshPath = `${m}/refresh`.toLowerCase();
  const refreshPathSlash = `${refreshPath}/`;
  const refreshing = (req: Request): boolean => {
    if (req.method !== 'POST') return false;
    const url = req.originalUrl ?? req.url;
    const query = url.indexOf('?');
    const path = (query < 0 ? url : url.slice(0, query)).toLowerCase();
    return path.endsWith(refreshPath) || path.endsWith(refreshPathSlash);
  };
  // One layer for every request: the app's session (with its deadline), `req.oidc`, the landing of an
  // RP-initiated logout. A request outside {mountPath} then leaves the router at once (no match, no
  // walk through the routes, no extra event-loop turn at its end).
  const guarded = session ? guardedSession(session, storeTimeout) : undefined;
  let boundTo: unknown;
  const makeContext = contextMaker(relyingParty);
  const withSession = (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (err !== undefined) return onError(err, req, res, next);
    if (req.sessionStore !== boundTo && req.sessionStore) {
      checkStore((boundTo = req.sessionStore), storeTimeout);
      keepEndedSessionsEnded(req.sessionStore, coordinationOf(relyingParty, req.sessionStore), {
        newerLogin: newerStoredLogin(relyingParty), renewIndex: logoutIndexRenewal(relyingParty),
      });
      // a request that may refresh the login keeps the session as it read it (its save keeps others' writes):
      // noted as express-session makes it from now on; this request's session was made already, so here,
      // where a write of a middleware between express-session and rp() counts as read
      noteSessionsAsRead(req.sessionStore, refreshing);
      noteSessionAsRead(req.session, refreshing(req));
    }
    const clash = provideContext(req, res, makeContext);
    if (clash) return onError(clash, req, res, next);
    if (req.method === 'GET' && req.headers.cookie?.includes(LOGOUT_STATE_COOKIE)) {
      // with the `session` option this runs in the store's callback, outside Express's own try/catch
      try {
        return postLogoutLanding(req, res, next);
      } catch (failure) {
        return onError(failure, req, res, next);
      }
    }
    next();
  };
  // without the `session` option (express-session mounted before rp()), no closure per request
  const first: RequestHandler = guarded
    ? (req, res, next) => guarded(req, res, (err?: unknown) => withSession(err, req, res, next))
    : (req, res, next) => withSession(undefined, req, res, next);
  router.use(first);
  const r = express.Router();
  // each path's methods, as its routes are added (HEAD goes with GET, as Express answers it): the 405s below list them
  const methods = new Map<string, string[]>();
  const route = (method: 'get' | 'post', path: string, ...handlers: RequestHandler[]): void => {
    methods.set(path, [...(methods.get(path) ?? []), ...(method === 'get' ? ['GET', 'HEAD'] : ['POST'])]);
    r[method](path, ...handlers);
  };
  route('get', '/providers', (_req, res) => void res.json(relyingParty.listProviders()));
  route('get', '/jwks', wrap(routes.jwks));
  route('get', '/request/:id', wrap(routes.requestObject));
  route('get', '/login/:provider', wrap(routes.login));
  route('post', '/login/:provider', form, wrap(routes.login)); // third-party-initiated login may POST (OIDC Core 4)
  route('get', '/login', wrap(routes.login));
  route('post', '/login', form, wrap(routes.login));
  route('get', '/callback/:provider', wrap(routes.callback));
  route('post', '/callback/:provider', form, wrap(routes.callback));
  route('post', '/refresh', form, json, wrap(routes.refresh));
  route('get', '/logout', wrap(routes.logout));
  route('post', '/logout', form, json, wrap(routes.logout)); // a page's script may send JSON
  route('post', '/backchannel-logout/:provider', form, wrap(routes.backchannelLogout));
  route('get', '/frontchannel-logout/:provider', wrap(routes.frontchannelLogout));
  // another method at one of these paths: 405 with Allow (RFC 9110 §15.5.6), not the app's bare 404; OPTIONS lists them
  for (const [path, list] of methods) {
    const allow = list.join(', ');
    r.all(path, (req, res, next) => {
      res.set('allow', allow);
      if (req.method === 'OPTIONS') return void res.status(204).end();
      next(new RpError('method_not_allowed', `${req.method} is not allowed at ${req.baseUrl}${req.path}: it takes ${allow}`));
    });
  }
  r.use(onError);
  router.use(m || '/', r);
  skipRoutingOutsideMount(router, m, first);
  return router;
}

/**
 * A request outside {mountPath} (every request of the app's own routes) only needs the first
 * layer: the session step and `req.oidc`. It gets just that, without the Router walking its stack
 * and restoring `req` around it. Paths under {mountPath} in any letter case (Express matches
 * mount paths without regard to case) take the Router as before.
 */
function skipRoutingOutsideMount(router: RpRouter, mountPath: string, first: RequestHandler): void {
  if (!mountPath) return; // mounted at the root ('/' is normalized to ''): every path is under it
  const prefix = mountPath.toLowerCase();
  const under = `${prefix}/`;
  type Handle = (req: Request, res: Response, next: NextFunction) => void;
  const routed = router as unknown as { handle: Handle };
  const handle = routed.handle.bind(router);
  routed.handle = (req, res, next) => {
    const q = req.url.indexOf('?');
    const path = (q === -1 ? req.url : req.url.slice(0, q)).toLowerCase();
    if (path === prefix || path.startsWith(under) || !next) return handle(req, res, next);
    first(req, res, next);
  };
}

/**
 * `express.urlencoded()`, and a form body an app-wide `express.raw()` or `express.text({ type: '*\/*' })`
 * (kept for webhook signatures) already read as bytes, which body-parser then leaves alone: the form
 * fields are read from those bytes, as body-parser would (the app's parser bounded their size). Without
 * it such an app's back-channel logouts ended nobody and form_post callbacks posted themselves again and again.
 */
function formBody(parse: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const body: unknown = req.body;
    if ((typeof body !== 'string' && !Buffer.isBuffer(body)) || !req.is('application/x-www-form-urlencoded')) return parse(req, res, next);
    req.body = querystring.parse(body.toString('utf8'));
    next();
  };
}

/**
 * The request's own faults, found before our handlers run: body-parser's errors (a malformed or too
 * large body, a body whose `Content-Encoding` does not decode) and Express's (a route parameter
 * that does not percent-decode). 400 `invalid_request`, not an OP's `invalid_response`.
 */
function clientInputError(err: unknown): RpError | undefined {
  const e = err as { type?: unknown; status?: unknown; expose?: unknown; message?: unknown; code?: unknown };
  if (typeof e?.status !== 'number' || e.status < 400 || e.status >= 500) return undefined;
  if (typeof e.type === 'string') return new RpError('invalid_request', `the request body was refused (${e.type})`);
  // http-errors' client errors (body-parser wraps a zlib failure so), and the router's URIError of a param
  if (e.expose === true || err instanceof URIError) {
    const code = typeof e.code === 'string' && /^[A-Z_]{1,40}$/.test(e.code) ? ` (${e.code})` : '';
    const what = `${String(e.message).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 120)}${code}`;
    return new RpError('invalid_request', `the request was refused: ${what}`);
  }
  return undefined;
}

/** The route handlers; each one reads the request, calls the core, writes the answer. */
class Routes {
  constructor(private readonly rp: RelyingParty) {}

  login: Handler = async (req, res) => {
    const session = requireSession(req);
    checkSessionCookie(req, res, this.rp);
    checkRoutesPath(req, this.rp);
    const input = (req.method === 'POST' ? req.body ?? {} : req.query) as Record<string, unknown>;
    // GET {mountPath}/login?identifier=alice@example.org: the OP is found on the fly (dynamic option);
    // GET {mountPath}/login?iss=…: a third party starts the login at the OP of that issuer (OIDC Core 4)
    const name = req.params.provider !== undefined
      ? String(req.params.provider)
      : input.iss !== undefined && input.identifier === undefined ? this.rp.providerByIssuer(input.iss) : await this.rp.discoverProvider(input.identifier);
    const maxAge = parseMaxAge(input.maxAge);
    const thirdParty = input.iss !== undefined || input.target_link_uri !== undefined;
    const returnTo = thirdParty ? await this.rp.thirdPartyLogin(name, input) : safeReturnTo(input.returnTo, this.rp);
    const params = thirdParty && typeof input.login_hint === 'string' && input.login_hint ? { login_hint: input.login_hint.slice(0, 512) } : undefined;
    const request = await this.rp.authorizationRequest(name, {
      returnTo, maxAge, params,
      publishRequestObject: async (jwt) => {
        const id = randomBytes(24).toString('base64url');
        await coordinationOf(this.rp, req.sessionStore).set(requestObjectKey(id), jwt, REQUEST_OBJECT_TTL * 1000);
        return `${this.rp.options.baseURL}${this.rp.options.mountPath}/request/${id}`;
      },
    });
    const oidc = (session.oidc ??= {});
    // a session that holds only pending logins is kept twice as long as they are usable, not the store's default
    if (req.sessionStore) shortLivedPendingLogins(req.sessionStore, 2 * this.rp.options.transactionTtl * 1000);
    // one login start of a session saves at a time, each with the pending logins saved before it: two
    // tabs starting a sign-in at the same moment each read the session, and the last save dropped the
    // other's pending login (that tab's sign-in ended on "This sign-in has expired"). In this process by
    // a queue; across instances by a lock in the `coordination` option's store (the tabs' requests may
    // reach two instances), only for a session that is stored already (a new one is this request's alone)
    await this.loginSaves.run(req.sessionID, async () => {
      const stored = req.sessionStore && req.headers.cookie?.includes(req.sessionID);
      const save = async (): Promise<void> => {
        if (stored) await this.withStoredPendingLogins(req, oidc);
        this.rp.saveTransaction(oidc, request.state, request.transaction);
        // saved before the redirect: with the store down the answer is a 503 here, not a sign-in at the OP that cannot finish
        await sessionOp<void>((cb) => session.save(cb));
      };
      const shared = stored ? this.rp.options.coordination : undefined;
      // (waits as long as another start's read and save may take, each within its deadline)
      const waitMs = Math.ceil(2.25 * this.rp.options.storeTimeout) + 1000;
      await (shared ? underLock(shared, hashedKey('oidc-login-start:', req.sessionID), { ...LOGIN_START_LOCK, waitMs, what: 'another sign-in start of this session' }, save) : save());
    });
    // (not when express-session sends no cookie: checkSessionCookie says why, and the sign-in could not stay)
    if (!req.headers.cookie?.includes(req.sessionID) && !(session.cookie.secure === true && !req.secure)) rememberPendingSession(res, request.state, req.sessionID, this.rp);
    redirect(res, request.url.href);
  };

  /** Login starts under way, by session id: see `login`. */
  private readonly loginSaves = new KeyQueue();

  /**
   * Adds to `oidc` the pending logins that the session as stored holds and this request's copy does
   * not (another tab's login start saved since this request read it), oldest first; the cap and
   * the expiry apply when this login is added. Only for a session the request's cookie named: a new
   * one is in no store yet.
   */
  private async withStoredPendingLogins(req: Request, oidc: OidcSessionData): Promise<void> {
    const stored = await sessionOp<Partial<SessionData> | null | undefined>((cb) => req.sessionStore.get(req.sessionID, cb));
    const ours = pendingLogins(oidc);
    const theirs = pendingLogins(stored?.oidc).filter((t) => !ours.some((o) => o.state === t.state));
    if (theirs.length) oidc.transactions = [...ours, ...theirs].sort((a, b) => a.createdAt - b.createdAt);
  }

  callback: Handler = async (req, res) => {
    // the callback URL carries the code (and state): a page shown at it (an error, the app's `onError`)
    // must not hand it on as a Referer to what it loads or links to (RFC 9700 §4.2.4)
    res.set('referrer-policy', 'no-referrer');
    const session = requireSession(req);
    const name = String(req.params.provider);
    await this.rp.loadProvider(name);
    this.rp.provider(name);
    const params = req.method === 'POST' ? bodyParams(req.body) : new URL(req.originalUrl, 'http://callback.invalid').searchParams;
    // response_mode=fragment: the browser kept the response in the fragment; a same-origin page posts it here
    if (req.method === 'GET' && params.size === 0 && this.rp.provider(name).responseMode === 'fragment') return postFragment(req, res);
    const responseType = this.rp.provider(name).responseType ?? 'code';
    if (req.method === 'GET' && responseType !== 'code' && ['id_token', 'access_token', 'code'].some((k) => params.has(k))) {
      throw new RpError('invalid_request', `a response_type "${responseType}" response is never accepted in a query string (tokens in URLs leak): it must be posted (form_post) or come from the fragment page`);
    }
    if (needsSameOriginResubmit(req, params, session.oidc)) return resubmitSameOrigin(req, res, params);
    params.delete(RESUBMIT_FIELD);
    const state = params.get('state');
    let transaction: Transaction | undefined;
    try {
      transaction = await this.takePendingLogin(req, res, state, name);
      const coordination = coordinationOf(this.rp, req.sessionStore);
      // the browser's session cookies: the one this request's session came with (a copy whose answer was lost
      // sends it again), and those naming sessions a login replaced (e.g. the second of two tabs that started
      // without a session cookie, its pending login found through its own cookie). A session this request
      // made (no cookie came) can be joined by no copy: nothing the browser holds names it
      const cookies = sessionCookies(req);
      const from = cookies.find((signed) => idInCookie(signed) === req.sessionID) ?? `(new session) ${req.sessionID}`;
      const claimed = await claimCallback(coordination, state!, cookies, answerProof(params), transaction.createdAt + this.rp.options.transactionTtl * 1000)
        .catch(leaveSessionAlone(req));
      // a copy of this answer from this browser signed in already: this request ends signed in too
      if ('joined' in claimed) return await joinLogin(req, res, claimed.joined, transaction.returnTo).catch(leaveSessionAlone(req));
      const { claim } = claimed;
      try {
        // another request held the answer and let it go: its pending login as that request left it
        if (claim.waited) transaction = await this.pendingLoginAgain(req, state!, name);
        const auth = await this.rp.finalize(transaction, state!, params).catch(async (err: unknown) => {
          const failure = toRpError(err);
          await this.failedCallback(req, claim, state!, transaction!, failure);
          throw failure;
        });
        const pending = pendingLogins(req.session.oidc);
        // the logout index is written before the session: a login the OP's logout could not end is never saved
        const oidc: OidcSessionData = { ...(pending.length ? { transactions: pending } : {}), auth: toStoredLogin(auth) };
        await loginSession(req, oidc,
          async (sessionId) => void (oidc.iu = await indexForLogout(coordination, req.sessionStore, auth, logoutScope(this.rp.provider(name)), sessionId, req.session.cookie)),
          (sessionId) => claim.signedIn(from, sessionId));
      } finally {
        await claim.spent(); // any other way out (the login could not be saved): final. After an outcome, nothing
      }
      debug('session regenerated at login (provider %s)', name);
      redirect(res, transaction.returnTo);
    } catch (err) {
      // a sign-in answer that matches no pending login, opened by a browser that is signed in (the
      // callback URL again: a second tab, history, a reload after the login): nothing to do, and no
      // reason for an error page. Nothing is exchanged, so an answer planted by someone else signs no one in
      if (transaction === undefined && err instanceof RpError && err.code === 'invalid_state' && session.oidc?.auth) {
        debug('callback of provider %s matches no pending login, and the browser is signed in: sent to /', name);
        return redirect(res, '/');
      }
      // the same, from a browser that never got the answer that signed it in (a proxy that timed out on it,
      // a lost connection): the login replaced the session its cookie names, so express-session gave this
      // request a new one; the claim of the answer says which session the login is in, for that cookie only
      if (transaction === undefined && err instanceof RpError && err.code === 'invalid_state' && state && !session.oidc?.auth) {
        // (one read of the claim, then every session id of the cookie header: other apps' cookies may come first)
        const joined = await finishedLogin(coordinationOf(this.rp, req.sessionStore), state, answerProof(params), sessionCookies(req)).catch(() => undefined);
        if (joined) {
          return await joinLogin(req, res, joined, '/').catch((failure: unknown) => {
            throw withLoginUrl(toRpError(failure), this.rp.loginPath(name));
          });
        }
      }
      // the session that holds this sign-in is in the store, but this instance could not read the
      // browser's cookie for it: the instances' secrets differ, which the generic message cannot name
      const failure = transaction === undefined && err instanceof RpError && err.code === 'invalid_state' && state
        && !pendingLogins(session.oidc).length && (await heldUnderOtherSecret(req, state)) ? otherSecret() : err;
      // every page of a failed callback offers a new login at the same provider, to the same page
      const returnTo = transaction?.returnTo ?? (failure instanceof RpError ? expiredReturnTo.get(failure) : undefined);
      throw withLoginUrl(toRpError(clientInputError(failure) ?? failure), this.rp.loginPath(name, returnTo));
    }
  };

  /**
   * Says how a callback failed, for the copies of its answer: a failure a retry may fix (the OP was
   * down or the store stalled) keeps the pending login, so the same answer may be tried again (the
   * page says "try again"). When the code was redeemed before the failure (userinfo down), the OP's
   * answer is kept with it and saved before the claim lets the next copy in; a failure that no retry
   * fixes (a refused code, a failed check, a DPoP login whose key was this request's) is final.
   */
  private async failedCallback(req: Request, claim: CallbackClaim, state: string, transaction: Transaction, failure: RpError): Promise<void> {
    if (failure.retryAfter === undefined || failedAfterCodeSpent(failure)) return claim.spent();
    this.rp.saveTransaction(req.session.oidc ??= {}, state, transaction);
    if (!transaction.redeemed) return claim.release().catch(() => undefined);
    const saved = await sessionOp<void>((cb) => req.session.save(cb)).then(() => true, () => false);
    await (saved ? claim.retry().catch(() => claim.spent()) : claim.spent());
  }

  /**
   * The pending login of `state` (single use: the claim of the answer lets one request use it), from
   * this browser's session or else from the session its login start named in the cookie of `state`
   * (see {@link rememberPendingSession}): another tab's login start, at the same moment in a browser
   * that had no session cookie yet, gave the browser the session cookie it now holds.
   */
  private async takePendingLogin(req: Request, res: Response, state: string | null, name: string): Promise<Transaction> {
    const other = state ? pendingSessionCookie(req, res, state, this.rp) : undefined;
    try {
      return this.rp.takeTransaction(req.session.oidc, state, name);
    } catch (err) {
      const startedIn = other && err instanceof RpError && err.code === 'invalid_state' ? await pendingLoginsOf(req, other, state!) : undefined;
      if (!startedIn) throw err;
      debug('callback of provider %s: its pending login is in the session another tab\'s cookie replaced', name);
      return this.rp.takeTransaction(startedIn, state, name);
    }
  }

  /** The pending login of `state` from the session as the store holds it now (another request may have changed it). */
  private async pendingLoginAgain(req: Request, state: string, name: string): Promise<Transaction> {
    const stored = await sessionOp<Partial<SessionData> | null | undefined>((cb) => req.sessionStore.get(req.sessionID, cb));
    req.session.oidc = stored?.oidc;
    if (hasPendingLogin(req.session.oidc, state)) return this.rp.takeTransaction(req.session.oidc, state, name);
    const other = pendingSessionCookie(req, undefined, state, this.rp);
    return this.rp.takeTransaction((other && await pendingLoginsOf(req, other, state)) || req.session.oidc, state, name);
  }

  /**
   * What a session a logout at the OP ends keeps: its pending logins still usable (other tabs'
   * sign-ins under way, e.g. one as another user, which is what made the OP end this login), stored
   * as long as a session of pending logins only is.
   */
  private keepPending(store: Store): KeepPending {
    const ttl = this.rp.options.transactionTtl;
    shortLivedPendingLogins(store, 2 * ttl * 1000);
    return (session) => livePendingLogins(session.oidc, ttl);
  }

  refresh: Handler = async (req, res) => {
    requireSession(req);
    refuseCrossOrigin(req, this.rp);
    const scope = typeof req.body?.scope === 'string' && req.body.scope ? req.body.scope : undefined;
    noteSessionAsRead(req.session, true); // (a no-op when noted as express-session made it, as it is but on a store's first request)
    const token = await req.oidc.refresh({ scope });
    res.set('cache-control', 'no-store');
    res.json({ tokenType: token.tokenType, scope: token.scope, expiresAt: token.expiresAt });
  };

  logout: Handler = async (req, res) => {
    const session = requireSession(req);
    const returnTo = safeReturnTo(req.query.returnTo ?? req.body?.returnTo, this.rp);
    // another site must not be able to sign the user out (an <img> or a link elsewhere): a GET that is
    // not from the app's own pages gets a confirmation page, a POST from another origin a 403
    if (req.method === 'POST') refuseCrossOrigin(req, this.rp);
    else if (!fromOwnPage(req, this.rp)) return confirmLogout(req, res, this.rp, returnTo);
    const stored = session.oidc?.auth;
    const auth = stored && readStoredLogin(stored);
    const earlier = auth ? undefined : await recentSignOut(coordinationOf(this.rp, req.sessionStore), req);
    if (earlier) {
      // the same sign-out again, from a browser that never saw the first answer (a double click)
      expectPostLogoutState(res, earlier.returnTo, earlier.state, this.rp);
      return goOn(req, res, earlier.to, this.rp);
    }
    // "sign out of this site only", offered when the OP could not be reached
    const localOnly = req.method === 'POST' && req.body?.local === '1';
    let endSession: URL | undefined;
    const state = randomBytes(16).toString('base64url');
    if (auth && !localOnly) {
      try {
        endSession = await this.rp.endSessionUrl(auth, new URL(returnTo, this.rp.options.baseURL).href, state);
      } catch (err) {
        const failure = toRpError(err);
        // the OP cannot be asked right now: ending only this site's session would leave the user
        // signed in at the OP (the next "Sign in" needs no password), so say so and keep the login
        // (the store failing on the way, e.g. reading an OP found on the fly: its own 503, which speaks of no OP)
        if (failure.retryAfter !== undefined) {
          if (this.rp.options.onError || failure.code === 'store_unavailable') throw failure;
          return logoutUnavailable(req, res, this.rp, failure, returnTo, auth.provider);
        }
        debug('no RP-initiated logout at provider %s: %s', auth.provider, failure.message);
      }
    }
    const coordination = coordinationOf(this.rp, req.sessionStore);
    // both written before the session ends: without them a request of this session still under way
    // could save the login back (its store may have room when the coordination store has none), and
    // a second "Sign out" would end only this site's session. So a store that refuses them (Redis
    // full) is a 503 that keeps the login: "try again", not a sign-out that does not hold
    await Promise.all([
      // where the logout went, for a second "Sign out" from a browser that never saw this answer
      endSession && coordination.set(signedOutKey(req.sessionID), JSON.stringify({ to: endSession.href, state, returnTo } satisfies SignedOut), SIGNED_OUT_MS),
      // a request of this session still under way must not save its login back (keepEndedSessionsEnded)
      auth && markSessionEnded(coordination, req.sessionID),
    ]);
    // other tabs' sign-ins under way (pending logins) stay: this session keeps only those, the login
    // and the app's data go (marked ended above, a request under way still cannot save the login back)
    const pending = this.keepPending(req.sessionStore)(session);
    if (pending.length) {
      for (const key of Object.keys(session)) if (key !== 'cookie') delete (session as unknown as Record<string, unknown>)[key];
      session.oidc = { transactions: pending };
      await sessionOp<void>((cb) => session.save(cb));
    } else {
      await sessionOp<void>((cb) => req.session.destroy(cb));
    }
    if (endSession) expectPostLogoutState(res, returnTo, state, this.rp);
    debug('logout: local session ended%s', endSession ? `, RP-initiated logout at provider ${auth!.provider}` : '');
    goOn(req, res, endSession?.href ?? returnTo, this.rp);
  };

  /** The RP's public keys (`keys` option), for OPs that verify its signatures or encrypt to it (its `jwks_uri`). */
  jwks: Handler = async (_req, res) => {
    res.set('cache-control', 'public, max-age=60').json((await this.rp.ownKeys).jwks);
  };

  /** A request object kept for the OP to fetch by reference (`request_uri`). */
  requestObject: Handler = async (req, res) => {
    const id = String(req.params.id);
    const jwt = /^[\w-]{32}$/.test(id) ? await coordinationOf(this.rp, req.sessionStore).get(requestObjectKey(id)) : undefined;
    if (!jwt) throw new RpError('not_found', 'no request object has this id (it expired after 5 minutes, or never existed)');
    res.set('cache-control', 'no-store').type('application/oauth-authz-req+jwt').send(jwt);
  };

  /**
   * Front-channel logout (OpenID Front-Channel Logout 1.0): the OP loads this URL in an iframe with
   * its `iss` and the `sid` of the OP session; every RP session of that `sid` ends (the same index
   * as back-channel logout). Both parameters are required, so another site cannot sign users out.
   */
  frontchannelLogout: Handler = async (req, res) => {
    const store = req.sessionStore;
    if (!store) throw sessionMissing(req);
    const name = String(req.params.provider);
    const sid = await this.rp.frontchannelLogout(name, req.query.iss, req.query.sid);
    const coordination = coordinationOf(this.rp, store);
    const ended = await endLoggedOut(coordination, store, name, this.rp.provider(name), 'sid', sid, typeof req.query.iss === 'string' ? req.query.iss : undefined, this.keepPending(store));
    debug('front-channel logout at provider %s ended %d session(s)', name, ended);
    const config = await this.rp.providerInfo(name);
    res.status(200).set({
      'cache-control': 'no-store',
      'content-security-policy': `default-src 'none'; frame-ancestors ${new URL(config.serverMetadata().issuer).origin}`,
    }).type('html').send(FRONTCHANNEL_PAGE);
  };

  backchannelLogout: Handler = async (req, res) => {
    const store = req.sessionStore;
    if (!store) throw sessionMissing(req);
    const token = req.body?.logout_token;
    if (typeof token !== 'string' || !token) throw new RpError('invalid_request', 'the request has no logout_token');
    const name = String(req.params.provider);
    const { sid, sub, jti, iat } = await this.rp.logoutToken(name, token);
    const coordination = coordinationOf(this.rp, store);
    const seen = logoutJtiKey(name, hashedKey('', jti));
    if (await coordination.get(seen)) throw new RpError('invalid_logout_token', 'this logout token was already used (replay)');
    // the sessions end first and the token is remembered last: a store failure on the way is a 503
    // the OP retries (Back-Channel Logout 1.0 §2.8), and that retry must not look like a replay, nor
    // find the index emptied by the failed attempt
    const [kind, value] = sid ? ['sid', sid] as const : ['sub', sub!] as const;
    const issuer = (await this.rp.providerInfo(name)).serverMetadata().issuer;
    const ended = await endLoggedOut(coordination, store, name, this.rp.provider(name), kind, value, issuer, this.keepPending(store));
    await rememberLogoutToken(coordination, seen, iat);
    debug('back-channel logout at provider %s ended %d session(s)', name, ended);
    res.set('cache-control', 'no-store');
    res.status(200).end();
  };
}

/**
 * Ends the sessions indexed under `kind` `value` (an OP `sid` or `sub`) of provider `name` (entry `p`):
 * its own index, then 0.1.0's unscoped one, where only this provider's sessions (from `iss`, when the
 * logout names it) are ended: those the first did not. Those the first ended leave 0.1.0's index too
 * (left there, each login's `sid` key outlived its sign-out by the index's 30 days). In turn, so a
 * store failure on the first leaves the second for the OP's retry. A session that also holds pending
 * logins keeps those (`keepPending`). Returns how many were ended.
 */
async function endLoggedOut(
  coordination: Coordination, store: Store, name: string, p: ProviderConfig, kind: 'sid' | 'sub', value: string, iss: string | undefined, keepPending: KeepPending,
): Promise<number> {
  const ended = await endIndexedSessions(coordination, store, logoutIndexKey(name, logoutScope(p), kind, value), INDEX_TTL_MS, INDEX_MAX, { keepPending });
  const more = await endIndexedSessions(coordination, store, unscopedLogoutIndexKey(name, kind, value), INDEX_TTL_MS, INDEX_MAX,
    { only: ofThisProvider(store, name, p.clientId, iss), forget: ended, keepPending });
  return ended.length + more.length;
}

/**
 * Of the sessions an index written by 0.1.0 names (its key did not say which OP and client, so apps
 * sharing a coordination store and a provider name shared it), the ones of this app's provider
 * `name`: in this session store, signed in at `name` with an ID token for `clientId` and, when the
 * logout names one, from `iss`. The others are left as they are.
 */
function ofThisProvider(store: Store, name: string, clientId: string, iss: string | undefined): (ids: string[]) => Promise<string[]> {
  return async (ids) => {
    const sessions = await Promise.all(ids.map((id) => sessionOp<SessionData | null | undefined>((cb) => store.get(id, cb))));
    return ids.filter((_, i) => {
      const stored = sessions[i]?.oidc?.auth;
      if (!stored || stored.provider !== name) return false;
      const { aud, iss: issuer } = readStoredLogin(stored).idTokenClaims ?? {};
      return (aud === clientId || (Array.isArray(aud) && aud.includes(clientId))) && (iss === undefined || issuer === iss);
    });
  };
}

/**
 * Remembers a logout token's `jti` (key `seen`) until the token is too old to be accepted anyway, so
 * it is refused when it comes again (replay). Written once its logout is done; the same token
 * arriving twice at once ends the same sessions twice, which changes nothing.
 */
async function rememberLogoutToken(coordination: Coordination, seen: string, iat: number): Promise<void> {
  const ttlMs = Math.max(1000, (iat + LOGOUT_TOKEN_MAX_AGE + 30) * 1000 - Date.now());
  await coordination.setIfAbsent(seen, '1', ttlMs);
}

/**
 * For a copy of a login answer that another request owns: its session, read before that request
 * saved, is not saved back at the end (it would bring back a session the login replaced, or undo
 * what the owner kept for a retry). Rethrows.
 */
function leaveSessionAlone(req: Request): (err: unknown) => never {
  return (err) => {
    (req as { session?: unknown }).session = undefined;
    throw err;
  };
}

/**
 * Gives this request the session `sessionId` of a login that a copy of the same answer finished (the
 * browser gets its cookie), and goes where the login was going. "Already used" when that session is
 * gone, or the session middleware cannot hand a stored session over.
 */
async function joinLogin(req: Request, res: Response, sessionId: string, returnTo: string): Promise<void> {
  const store = req.sessionStore as Store & { createSession?: (req: Request, data: SessionData) => Session };
  const data = await sessionOp<SessionData | null | undefined>((cb) => store.get(sessionId, cb));
  if (!data?.oidc?.auth || typeof store.createSession !== 'function') throw alreadyUsed();
  req.sessionID = sessionId;
  store.createSession(req, data);
  debug('a copy of a callback joined the login it finished');
  redirect(res, returnTo);
}

/** For `keepEndedSessionsEnded`: the login, in the session's form, that replaced a saved one's refresh token lately. */
function newerStoredLogin(rp: RelyingParty): (login: { provider: string; refreshToken?: string }) => Promise<StoredLogin | Authentication | undefined> {
  return async (login) => {
    const newer = login.refreshToken ? await rp.newerLogin(login.provider, login.refreshToken) : undefined;
    return newer && toStoredLogin(newer);
  };
}

/** Sets where the error page's "Sign in again" link goes (errors of a login's callback). */
function withLoginUrl(err: RpError, url: string): RpError {
  err.loginUrl ??= url;
  return err;
}

/** Where an RP-initiated logout sent the browser (kept a minute under the ended session's id). */
interface SignedOut { to: string; state: string; returnTo: string }
const SIGNED_OUT_MS = 60_000;
/**
 * A login start's lock on its session: renewed while it reads and saves the session; one whose instance died
 * frees it within 6 s. A renewal is sent `renewMs` after the last one left and may take up to redisCoordination's
 * `timeout` (2 s by default) to land: the lease outlasts both (review-57: 3 s did not, under a slow Redis).
 */
export const LOGIN_START_LOCK = { leaseMs: 6000, renewMs: 2000 };
const signedOutKey = (sessionId: string): string => hashedKey('oidc-lo:', sessionId);

/**
 * The request's cookies that read as express-session's signed session ids (`s:<id>.<signature>`), whole.
 * Their signatures are not checked here (the app's session secret is express-session's): a finished
 * login is joined by the whole value (callback-claim.ts), which only that secret can make, never by
 * the id it names, which a store's reader or a log line may know.
 */
function sessionCookies(req: Request): string[] {
  return (req.headers.cookie ?? '').split(';').slice(0, 20).map((pair) => {
    const value = pair.slice(pair.indexOf('=') + 1).trim();
    let decoded = '';
    try {
      decoded = decodeURIComponent(value);
    } catch { /* not ours */ }
    return decoded.startsWith('s:') && decoded.lastIndexOf('.') > 2 ? decoded : '';
  }).filter(Boolean);
}

const idInCookie = (signed: string): string => signed.slice(2, signed.lastIndexOf('.'));

/** The session ids the request's cookies name, other than its own: of sessions that are gone, which express-session has replaced. */
function cookieSessionIds(req: Request): string[] {
  return sessionCookies(req).map(idInCookie).filter((id) => id !== req.sessionID);
}

/**
 * True when a session of the store named by one of the request's signed cookies holds the pending
 * login of `state`: the cookie came back, but express-session did not take it (its signature is not
 * one of this instance's `secret`s). Read only on that failure's path, at most 5 sessions.
 */
async function heldUnderOtherSecret(req: Request, state: string): Promise<boolean> {
  for (const id of cookieSessionIds(req).slice(0, 5)) {
    const data = await sessionOp<Partial<SessionData> | null | undefined>((cb) => req.sessionStore.get(id, cb)).catch(() => undefined);
    if (hasPendingLogin(data?.oidc, state)) return true;
  }
  return false;
}

/** `invalid_state` for a sign-in whose session this instance holds but whose cookie it cannot verify. */
const otherSecret = (): RpError => new RpError('invalid_state',
  'the state of this callback matches no login started in this browser as this server reads its cookie: the sign-in is in the session store, '
  + 'but the session cookie is signed with an express-session `secret` this server does not have. Every instance must have the same `secret` '
  + '(when changing it, give the new one first and keep the old ones after it: README "Changing keys and secrets")');

/**
 * Where the logout of the session this browser's cookie named went, when that was in the last
 * minute: a second "Sign out" from a browser that never saw the first answer (a double click) still
 * carries the ended session's cookie, and is sent to the OP too instead of finding no login and
 * leaving the user signed in there. express-session has already replaced the unknown id, so the
 * ids are read from the cookie header (express-session's signed `s:<id>.<signature>` values).
 */
async function recentSignOut(coordination: Coordination, req: Request): Promise<SignedOut | undefined> {
  // every session id of the cookie header at once (other apps' express-session cookies may come first)
  const found = await Promise.all(cookieSessionIds(req).slice(0, 10).map((id) => coordination.get(signedOutKey(id))));
  const signedOut = found.find((value) => value !== undefined);
  return signedOut === undefined ? undefined : JSON.parse(signedOut) as SignedOut;
}

/** Coordination key of a request object served by reference. */
const requestObjectKey = (id: string): string => `oidc-req:${id}`;

/**
 * A login started by a browser whose cookie named no session (its first visit, or its session gone)
 * is also remembered in a cookie of its own: named after a hash of its `state`, holding the id of the
 * session that keeps it (as the session cookie does: it is worth no more than that cookie, and is
 * taken only for a session that holds this `state`'s pending login), sent only to the callback path,
 * as long as the pending login lives. Two tabs starting a sign-in at once from such a browser each get
 * a new session and the browser keeps the cookie of one; the other tab's callback finds its pending
 * login through this cookie. The binding to the browser stays (the browser holds the cookie, RFC 9700
 * §4.7.1). Written by hand: on every first sign-in, `res.cookie()` and a seal cost a login start a
 * quarter of its CPU (bench, phase a).
 */
function rememberPendingSession(res: Response, state: string, sessionId: string, rp: RelyingParty): void {
  const secure = rp.options.baseURL.startsWith('https:') ? '; Secure' : '';
  res.append('Set-Cookie', `${pendingCookieName(state)}=${encodeURIComponent(sessionId)}; Max-Age=${rp.options.transactionTtl}; `
    + `Path=${callbackCookiePath(rp)}; HttpOnly${secure}; SameSite=Lax`);
}

/** The session id the cookie of `state` holds (see {@link rememberPendingSession}), which is cleared when `res` is given; undefined without one. */
function pendingSessionCookie(req: Request, res: Response | undefined, state: string, rp: RelyingParty): string | undefined {
  const name = pendingCookieName(state);
  const value = readCookie(req, name);
  if (value === undefined) return undefined;
  res?.clearCookie(name, { path: callbackCookiePath(rp) });
  // the browser's session cookie names that session, and express-session did not take it (another
  // `secret`): not another tab's sign-in, and the callback says what to fix
  if (!value || value.length > 256 || value === req.sessionID || cookieSessionIds(req).includes(value)) return undefined;
  return value;
}

/** The pending logins of stored session `id` when it holds the one of `state`. */
async function pendingLoginsOf(req: Request, id: string, state: string): Promise<OidcSessionData | undefined> {
  const stored = await sessionOp<Partial<SessionData> | null | undefined>((cb) => req.sessionStore.get(id, cb));
  return hasPendingLogin(stored?.oidc, state) ? stored!.oidc : undefined;
}

const pendingCookieName = (state: string): string => `oidc_pl_${createHash('sha256').update(state).digest('base64url').slice(0, 16)}`;
const callbackCookiePath = (rp: RelyingParty): string => new URL(`${rp.options.baseURL}${rp.options.mountPath}/callback`).pathname;

/** The cookie that remembers the `state` sent with an RP-initiated logout, until the OP sends the browser back. */
const LOGOUT_STATE_COOKIE = 'oidc_logout_state';

/**
 * Remembers (for 10 minutes) the `state` the OP must send back after logout, with the landing page's
 * path: the cookie's value is `<state> <path>`. The cookie is scoped to that path where a cookie's
 * `Path` can say it (not with a `;` in it; then `/`), and only that exact path is taken for the landing.
 */
function expectPostLogoutState(res: Response, returnTo: string, state: string, rp: RelyingParty): void {
  const landing = new URL(returnTo, rp.options.baseURL).pathname;
  res.cookie(LOGOUT_STATE_COOKIE, `${state} ${landing}`, {
    httpOnly: true, sameSite: 'lax', secure: rp.options.baseURL.startsWith('https:'), path: logoutCookiePath(landing), maxAge: 600_000,
  });
}

/** The `Path` of the logout-state cookie for a landing page (what `cookie` accepts: no control characters, no `;` or `<`). */
function logoutCookiePath(landing: string): string {
  return /^\/[\x21-\x3a\x3d-\x7e]*$/.test(landing) ? landing : '/';
}

/**
 * The landing of an RP-initiated logout (its `post_logout_redirect_uri`, the app's own page): a
 * `state` that is not the one this browser sent is refused (RP-Initiated Logout 1.0 §3: the RP
 * checks it), and the one it sent is taken off the URL. Only the exact landing path is handled;
 * every other page, and a cookie this version cannot read, goes on untouched.
 */
function postLogoutLanding(req: Request, res: Response, next: NextFunction): void {
  const value = readCookie(req, LOGOUT_STATE_COOKIE);
  const space = value === undefined ? -1 : value.indexOf(' ');
  if (space < 1) return next();
  const expected = value!.slice(0, space);
  const landing = value!.slice(space + 1);
  const url = new URL(req.originalUrl, 'http://landing.invalid');
  if (url.pathname !== landing) return next();
  res.clearCookie(LOGOUT_STATE_COOKIE, { path: logoutCookiePath(landing) });
  const state = url.searchParams.get('state');
  if (state === null) return next();
  if (state !== expected) {
    const ctx = req.oidc as RequestContext | undefined;
    if (ctx instanceof RequestContext) {
      return sendError(new RpError('invalid_state', 'the sign-out answer carries a state this browser did not send (you are signed out all the same)'), req, res, next, ctx.relyingParty);
    }
    return void res.status(400).end();
  }
  url.searchParams.delete('state');
  redirect(res, `${url.pathname}${url.search}`);
}

/** A cookie's value (percent-decoded), or undefined when absent or not decodable. */
function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined; // a malformed escape: as if absent
      }
    }
  }
  return undefined;
}

/** How long the back-channel logout index of a `sid` / `sub` lives for a session whose cookie has no end (the browser's session): renewed about daily while it is used. */
const INDEX_TTL_MS = 30 * 24 * 3600 * 1000;
/** How long an index outlives the session it was written for: it is renewed about once a day. */
const INDEX_SLACK_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600_000;
const MINUTE_MS = 60_000;
/** At most this many sessions are remembered per `sid` / `sub` (the newest): a bound on what one user's logins can store. */
const INDEX_MAX = 500;
/**
 * Past this many ids, a login drops those whose session is gone (signed out here only, expired,
 * replaced at a new login). Before, the index kept the newest 50 ids, dead or alive: a user's one
 * live device fell out behind 50 ended sessions, and a sign-out at the OP (a token with only `sub`)
 * left it signed in.
 */
const INDEX_PRUNE_AT = 50;
/** The newest ids are never dropped: a login under way indexes its session before it saves it. */
const INDEX_PRUNE_SPARE = 10;

/**
 * Remembers which session ids belong to an OP `sid` and `sub` (one atomic add per record), for as long
 * as the session whose cookie is `cookie` can live: a day past its end, or 30 days for a cookie without
 * one (the browser's session). Returns until when (epoch minutes).
 *
 * Also under 0.1.0's unscoped keys, which this version reads only for this provider's sessions
 * (`ofThisProvider`): an instance still running 0.1.0 during a rolling upgrade reads only those, and a
 * logout it answered would have missed every login made on a new instance, for good. To be dropped in a
 * release after the next, once no 0.1.0 instance can take a logout. Not with express-session's MemoryStore,
 * whose sessions no other instance can end: that copy of the index was one more read and write of a
 * record of up to INDEX_MAX ids at every login, for nobody.
 */
async function indexForLogout(
  coordination: Coordination, store: Store, auth: Authentication, scope: string, sessionId: string, cookie: { expires?: Date | null } | undefined,
): Promise<number> {
  const sid = auth.idTokenClaims?.sid;
  // (the coordination as coordinationOf chose it, once: a store wrapped later keeps the process's map, review-60)
  const shared = !isProcessCoordination(coordination) && !inThisProcess(store);
  const named: Array<['sub' | 'sid', string]> = typeof sid === 'string' ? [['sub', auth.user.sub], ['sid', sid]] : [['sub', auth.user.sub]];
  const keys = named.flatMap(([kind, value]) => [logoutIndexKey(auth.provider, scope, kind, value), ...(shared ? [unscopedLogoutIndexKey(auth.provider, kind, value)] : [])]);
  const now = Date.now();
  const end = sessionEnd(cookie, now);
  const ttlMs = end === undefined ? INDEX_TTL_MS : Math.max(end - now, 0) + INDEX_SLACK_MS;
  const sizes = await Promise.all(keys.map((key) => coordination.addToSet(key, sessionId, ttlMs, INDEX_MAX)));
  await Promise.all(keys.map((key, i) => (prunesAt(sizes[i] ?? 0) ? pruneIndex(coordination, store, key) : undefined)));
  // (rounded down: a renewal can come a minute early, never late. Not to the hour: every session signed in
  // within one hour came due at once, at its end, each renewing at its next request: review-60)
  return Math.floor((now + ttlMs) / MINUTE_MS);
}

/** When a session whose cookie is `cookie` ends (epoch ms), or undefined for a browser-session cookie. */
function sessionEnd(cookie: { expires?: Date | string | null } | undefined, now: number): number | undefined {
  // (read on every touch of a signed-in session: no Date made; a store may give the string back)
  const expires = cookie?.expires;
  const end = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : NaN;
  return Number.isFinite(end) && end > now ? end : undefined;
}

/**
 * For `keepEndedSessionsEnded`: renews the back-channel-logout index of a session that has come to
 * outlive it (within an hour of its end, or, for a browser-session cookie, a day after it was last
 * written), and records until when in the session. Undefined (nothing to do) otherwise: one compare
 * per save or touch. A session of an earlier version, which does not say, is renewed once.
 */
function logoutIndexRenewal(rp: RelyingParty): NonNullable<SessionStoreHooks['renewIndex']> {
  return (store, sid, session) => {
    const oidc = session.oidc;
    if (!oidc?.auth) return undefined;
    const now = Date.now();
    const until = Math.max((oidc.iu ?? -Infinity) * MINUTE_MS, (oidc.indexedUntil ?? -Infinity) * 1000);
    const end = sessionEnd(session.cookie, now);
    if (until > (end ?? now + INDEX_TTL_MS - INDEX_SLACK_MS) + HOUR_MS) return undefined;
    const auth = readStoredLogin(oidc.auth);
    // (a dynamic OP another instance registered is loaded from the registration store first)
    return rp.loadProvider(auth.provider).then(() => indexForLogout(coordinationOf(rp, store), store, auth, logoutScope(rp.provider(auth.provider)), sid, session.cookie)).then((renewed) => {
      oidc.iu = renewed;
      delete oidc.indexedUntil;
      debug('back-channel logout index of a session renewed until %s', new Date(renewed * MINUTE_MS).toISOString());
    }, (err: unknown) => {
      debug('back-channel logout index of a session not renewed: %s', (err as Error).message);
      throw err;
    });
  };
}

/**
 * Whether the login that made an index this big prunes it: at 51, 101, 151 … ids, not at every login
 * past 50. A user with many live sessions (a shared or test account, a script that signs in again and
 * again) keeps a big index, and pruning at each login read every indexed session at each login (up
 * to 490 store reads per login: 1.8× the login's CPU in the bench's one-user run). Sessions that
 * ended are still dropped after at most 50 more logins.
 */
function prunesAt(size: number): boolean {
  return size > INDEX_PRUNE_AT && (size - INDEX_PRUNE_AT - 1) % INDEX_PRUNE_AT === 0;
}

/** Drops from the index at `key` the ids whose session is gone, but the newest (best effort: a failure changes nothing). */
async function pruneIndex(coordination: Coordination, store: Store, key: string): Promise<void> {
  const { readSet, removeFromSet } = coordination;
  if (!readSet || !removeFromSet) return;
  try {
    const ids = (await readSet.call(coordination, key)).slice(0, -INDEX_PRUNE_SPARE);
    const alive = await Promise.all(ids.map((id) => sessionOp<SessionData | null | undefined>((cb) => store.get(id, cb))));
    const gone = ids.filter((_, i) => !alive[i]);
    if (gone.length) await removeFromSet.call(coordination, key, gone);
    debug('back-channel logout index %s: %d ids of ended sessions dropped', key, gone.length);
  } catch (err) {
    debug('back-channel logout index %s not pruned: %s', key, (err as Error).message);
  }
}

/**
 * A 302 (a 303 after a POST) with no body and `cache-control: no-store`. `res.redirect()` would write an HTML or text
 * body repeating the (long) URL, which express-session then splits into two socket writes.
 */
function redirect(res: Response, location: string): void {
  // a POST answered by a redirect is a 303 (RFC 9110 §15.4.4): the browser goes on with a GET, never posts again
  res.status(res.req.method === 'POST' ? 303 : 302).set('cache-control', 'no-store').location(location).end();
}

/**
 * Sends the browser on to `href` after a sign-out. A sign-out form posted by a browser (`Sec-Fetch-Mode: navigate`)
 * that goes on to another origin (the OP's end-session endpoint) gets a page that goes there, not a redirect:
 * browsers apply the form page's `form-action` to the redirects after its post, and an app-wide helmet()'s
 * `form-action 'self'` stopped that one, leaving the user signed in at the OP. This page carries rp()'s own CSP.
 * A page's script (`fetch`, see {@link fromScript}) gets `200 { "redirectTo": href }` to send its page there.
 */
function goOn(req: Request, res: Response, href: string, rp: RelyingParty): void {
  const target = new URL(href, rp.options.baseURL);
  // a page's script (fetch): a redirect to the OP would fail in it (another origin, and no OP cookie),
  // leaving the user signed in there; it gets where to send the page instead
  if (fromScript(req)) return void res.status(200).set('cache-control', 'no-store').json({ redirectTo: target.href });
  if (req.method !== 'POST' || req.headers['sec-fetch-mode'] !== 'navigate' || target.origin === new URL(rp.options.baseURL).origin) return redirect(res, href);
  const url = escapeHtml(target.href);
  res.status(200).set({
    ...PAGE_HEADERS, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer',
    // the page's own policy, without form-action (its refresh is a navigation, which no CSP directive stops)
    'content-security-policy': pagePolicy(undefined, false),
  }).type('html').send(page('Signing out…', `<meta http-equiv="refresh" content="0;url=${url}"><h1>Signing out…</h1>`
    + `<p>You are signed out of this site. <a href="${url}">Continue</a> to sign out at ${escapeHtml(target.host)}.</p>`));
}

/**
 * Refuses a request another site's page made with the user's cookies (CSRF): a foreign Origin, or
 * Sec-Fetch-Site cross-site. `Origin: null` is what browsers send on a page's own form posts under
 * `Referrer-Policy: no-referrer` (helmet's default): accepted when Sec-Fetch-Site, which pages cannot
 * set, says same-origin (another site's sandboxed frame also sends null, but as cross-site).
 */
function refuseCrossOrigin(req: Request, rp: RelyingParty): void {
  const origin = req.get('origin');
  const site = req.get('sec-fetch-site');
  const foreign = origin !== undefined && origin !== new URL(rp.options.baseURL).origin && !(origin === 'null' && site === 'same-origin');
  if (foreign || site === 'cross-site') {
    throw new RpError('cross_origin_request', 'this request came from another site; only the app\'s own pages may make it');
  }
}

/**
 * True when a GET comes from the app's own pages or the user's own hand: `Sec-Fetch-Site`
 * `same-origin` or `none` (typed, bookmarked), or, from browsers without it, a same-origin `Referer`.
 */
function fromOwnPage(req: Request, rp: RelyingParty): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const referer = req.get('referer');
  try {
    return referer !== undefined && new URL(referer).origin === new URL(rp.options.baseURL).origin;
  } catch {
    return false;
  }
}

/** The page a logout link from elsewhere lands on: one button that POSTs from the app's own origin. */
function confirmLogout(req: Request, res: Response, rp: RelyingParty, returnTo: string): void {
  // its button's POST carries the app's Origin even where the app sends Referrer-Policy: no-referrer
  res.status(200).set({ 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'referrer-policy': 'same-origin', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
  if (!wantsHtml(req)) {
    res.json({ confirm: 'POST this URL from the app\'s own origin to sign out', method: 'POST', action: `${rp.options.routesPath}/logout` });
    return;
  }
  res.type('html').send(page('Sign out?',
    `<h1>Sign out?</h1><p>A link asked to sign you out of this site.</p>` +
      `<form method="post" action="${escapeHtml(`${rp.options.routesPath}/logout`)}"><input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">` +
      `<button type="submit">Sign out</button></form><p><a href="/">Stay signed in</a></p>`));
}

/**
 * The OP could not be reached to end the user's session there (503, Retry-After, the login kept):
 * try again, or sign out of this site only, knowing the OP's session may remain.
 */
function logoutUnavailable(req: Request, res: Response, rp: RelyingParty, err: RpError, returnTo: string, provider: string): void {
  res.status(503).set({ 'cache-control': 'no-store', 'retry-after': String(err.retryAfter), 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
  if (!wantsHtml(req)) return void res.json(err.toJSON());
  const action = escapeHtml(`${rp.options.routesPath}/logout`);
  const back = `<input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">`;
  res.type('html').send(page('Signing out is briefly unavailable',
    `<h1>Signing out is briefly unavailable</h1><p>Your sign-in provider could not be reached to end your session there, so you are still signed in. ` +
      `This usually passes by itself: try again in a few seconds.</p>` +
      `<form method="post" action="${action}">${back}<button type="submit">Try again</button></form>` +
      `<p>Or sign out of this site only: you may stay signed in at your provider, and the next sign-in here may not ask for your password.</p>` +
      `<form method="post" action="${action}">${back}<input type="hidden" name="local" value="1"><button type="submit">Sign out of this site only</button></form>` +
      `<p class="detail">provider "${escapeHtml(provider)}": ${escapeHtml(err.message)}</p><p class="detail">Error code: <code>${escapeHtml(err.code)}</code></p>`));
}

function bodyParams(body: unknown): URLSearchParams {
  const params = new URLSearchParams();
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') params.append(k, v);
  }
  return params;
}

function parseMaxAge(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value) || !Number.isSafeInteger(n)) {
    throw new RpError('invalid_request', 'maxAge must be a whole number of seconds');
  }
  return n;
}

function sessionMissing(req: Request): RpError {
  const path = (req.originalUrl ?? req.url ?? '/').split('?')[0]!;
  return new RpError(
    'session_missing',
    `req.session is missing at ${JSON.stringify(path.slice(0, 200))}: express-session made no session for this request. Either it is not `
    + 'mounted before rp() (app.use(session({ secret, resave: false, saveUninitialized: false })); app.use(rp({ ... }))), or the '
    + `cookie: { path } given to express-session does not cover this path (it skips requests outside it: give path "/" or a prefix of ${JSON.stringify(path.slice(0, 200))}), `
    + 'or its store reports it is disconnected (express-session skips requests until it is ready again).',
  );
}

/**
 * Gives the login a session of a new id (no session fixation), saved before the old one is
 * destroyed: a store that fails or stalls here (503) leaves the browser the session it had, with the
 * login it held before (a re-login, a step-up), instead of destroying it first as `regenerate()`
 * does. Without express-session's `store.generate` (another session middleware), `regenerate()`.
 */
async function loginSession(
  req: Request, oidc: NonNullable<SessionData['oidc']>, beforeSave?: (sessionId: string) => Promise<void>, afterSave?: (sessionId: string) => Promise<void>,
): Promise<void> {
  const store = req.sessionStore as Store & { generate?: (req: Request) => void };
  const before = { id: req.sessionID, session: req.session };
  const generate = typeof store?.generate === 'function';
  if (generate) store.generate!(req);
  else await sessionOp<void>((cb) => req.session.regenerate(cb));
  try {
    await beforeSave?.(req.sessionID);
    req.session.oidc = oidc;
    await sessionOp<void>((cb) => req.session.save(cb));
    savedOnce(req.session);
  } catch (err) {
    if (generate) {
      req.sessionID = before.id; // the browser keeps its cookie and its session
      req.session = before.session;
    } else if (req.session?.oidc) {
      delete req.session.oidc.auth; // never leave a half-written login behind
    }
    throw err;
  }
  await afterSave?.(req.sessionID);
  if (generate) {
    await sessionOp<void>((cb) => store.destroy(before.id, cb))
      .catch((err) => debug('the session before the login was not destroyed (it expires by itself): %s', (err as Error).message));
  }
}

/**
 * express-session saves a session whose id is not the cookie's (one `store.generate` made) again at the
 * end of the request: a second write of the same login (and a second look for a sign-out mark) on
 * every sign-in. After loginSession()'s own save, that session's `save` writes only what changed since.
 */
function savedOnce(session: Session): void {
  // (its own members but the cookie; a replacer function would take JSON.stringify off its fast path)
  const unchanged = ({ cookie, ...data }: Session) => JSON.stringify(data);
  const saved = unchanged(session);
  const save = session.save;
  Object.defineProperty(session, 'save', {
    configurable: true, writable: true, enumerable: false,
    value(this: Session, cb?: (err?: unknown) => void) {
      if (unchanged(this) !== saved) return save.call(this, cb);
      cb?.();
      return this;
    },
  });
}

/** The session of the request; throws `session_missing` (with what to add) when express-session is not mounted. */
export function requireSession(req: Request): Session & Partial<SessionData> {
  if (!req.session) throw sessionMissing(req);
  return req.session;
}

/**
 * Longest `returnTo` the login route keeps (a longer one returns to `/`), and that a `requireAuth()`
 * redirect carries (encoded, twice that): a deep link longer than that returns to `/` after the sign-in.
 */
export const MAX_RETURN_TO = 1024;

/**
 * A same-origin path to go back to, or `/`. Refuses absolute URLs, `//host`, `/\host`, control
 * characters, more than {@link MAX_RETURN_TO} characters and anything that would leave the app's origin.
 */
export function safeReturnTo(value: unknown, rp: RelyingParty): string {
  // none, or one not taken: the app's home (baseURL's path: "/" at the root, "/shop/" for https://example.com/shop)
  const home = `${new URL(rp.options.baseURL).pathname.replace(/\/$/, '')}/`;
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//')) return home;
  // at most as long as requireAuth() sends (a stranger's ten pending logins stay a few KB in the store)
  if (/[\\\u0000-\u001f\u007f]/.test(value) || value.length > MAX_RETURN_TO) return home;
  const origin = new URL(rp.options.baseURL).origin;
  try {
    const url = new URL(value, origin);
    // dot segments can turn "/.//evil.example" into "//evil.example": check what we would send
    if (url.origin !== origin || url.pathname.startsWith('//')) return home;
    return `${url.pathname}${url.search}${url.hash}`;
  } catch {
    return home;
  }
}

/**
 * The path the browser sees for this request (`req.originalUrl`, query included). Behind a proxy that
 * strips a prefix (`baseURL` https://example.com/shop, the app seeing `/me` for the browser's
 * `/shop/me`), that prefix is put back, so a redirect to it (requireAuth()'s way back after the
 * sign-in) lands in the app, not at the site's root. An app mounted under the prefix (`app.use('/shop', …)`)
 * sees it already.
 */
export function browserPath(req: Request, rp: RelyingParty): string {
  const prefix = new URL(rp.options.baseURL).pathname.replace(/\/$/, '');
  const url = req.originalUrl;
  if (!prefix) return url;
  const lower = url.toLowerCase();
  const p = prefix.toLowerCase();
  return lower === p || lower.startsWith(`${p}/`) || lower.startsWith(`${p}?`) ? url : `${prefix}${url}`;
}

/**
 * True when a browser says the request is a page's script (`fetch()`, XMLHttpRequest) or a subresource:
 * `Sec-Fetch-Mode` `cors` or `no-cors`, with `Sec-Fetch-Dest` (Chromium, Firefox and Safari send both;
 * Node's fetch sends `Sec-Fetch-Mode: cors` alone, and is judged by its `Accept`). It cannot follow a
 * redirect to the OP (another origin: a CORS error the script cannot tell from being offline), whatever
 * its `Accept` says. Not `same-origin`: a service worker that passes a page load on with a header of
 * its own (`new Request(event.request, { headers })`) sends that, and its page must still go to the OP.
 */
export function fromScript(req: Request): boolean {
  const mode = req.headers['sec-fetch-mode'];
  return (mode === 'cors' || mode === 'no-cors') && req.headers['sec-fetch-dest'] !== undefined;
}

/** True when the request is a browser asking for a page (not an API call). */
export function wantsHtml(req: Request): boolean {
  const accept = req.headers.accept;
  if (!accept?.includes('text/html') || fromScript(req)) return false; // an API client, fetch()'s */*: JSON, read at once
  // a script's XMLHttpRequest (jQuery sends X-Requested-With) cannot follow a redirect to the OP anyway;
  // else HTML only when preferred to JSON by the q-values (RFC 9110 §12.4.2: "text/html;q=0" is a no)
  // (only XMLHttpRequest: Android's WebView sends its app's package name on plain page loads), nor htmx's
  return req.headers['x-requested-with'] !== 'XMLHttpRequest' && req.headers['hx-request'] !== 'true' && req.accepts(['json', 'html']) === 'html';
}

/** The page a front-channel logout answers in the OP's hidden frame (no style: nobody sees it, but it has a language). */
const FRONTCHANNEL_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head><body><main><h1>Signed out</h1></main></body></html>';

/** The headers of the RP's own HTML pages: nothing runs or loads but their style, no framing, no sniffing. */
const PAGE_HEADERS = {
  'content-security-policy': pagePolicy(),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
};


/**
 * Which setting `err` says is wrong, when it is one that fails every sign-in or refresh until someone
 * changes it (and no visitor can cause): the client's credentials, the OP's address, the keys the OP
 * publishes, the clocks. Undefined for anything else.
 */
function misconfiguration(err: RpError): string | undefined {
  if (err.code === 'client_auth_failed' || err.code === 'discovery_failed') return err.code;
  if (err.code !== 'invalid_id_token') return undefined;
  if (isUnpublishedKey(err.cause)) return 'unpublished_key';
  return err.message.includes(CLOCKS_DIFFER) ? 'clock' : undefined;
}

/**
 * The configured provider a failed request was about: the one its rp() route names (`/login/:provider`,
 * `/callback/:provider` …; Express has left the route's params behind by the time an error is
 * answered), else the one of the session's login (a refresh in an app's route); '' when none.
 */
function providerOfRequest(req: Request, rp: RelyingParty): string {
  const path = req.baseUrl + req.path;
  const { routesPath, providers } = rp.options;
  let name: unknown = path.startsWith(`${routesPath}/`) ? path.slice(routesPath.length + 1).split('/')[1] : undefined;
  try {
    name = typeof name === 'string' ? decodeURIComponent(name) : req.session?.oidc?.auth?.provider;
  } catch {
    name = undefined;
  }
  return typeof name === 'string' && Object.hasOwn(providers, name) ? name : '';
}

/** Answers an `RpError`: the app's `onError`, else HTML for browsers and JSON for APIs. */
export function sendError(err: RpError, req: Request, res: Response, next: NextFunction, rp: RelyingParty): void {
  debug('%s %s -> %d %s: %s', req.method, oneLine(req.path, 200), err.status, err.code, oneLine(err.message, 1000));
  // a setting that fails every sign-in until someone changes it: said without DEBUG too, once an hour
  const setting = misconfiguration(err);
  if (setting) {
    rp.warnAtMostHourly(`${setting}:${providerOfRequest(req, rp)}`,
      `${req.method} ${oneLine(req.baseUrl + req.path, 200)} failed (${err.status} ${err.code}): ${oneLine(err.message, 1000)} (said at most once an hour)`);
  }
  // a bug (the app's hook or ours) is for the app's developer: its stack where they look, not on the page
  if (err.code === 'internal_error') console.error(`[@openid-express/rp] ${req.method} ${req.path} failed (500 internal_error):`, err.cause ?? err);
  // the store is failing: without its session, express-session does not hold the answer back to save
  // or touch it at the end (another deadline); what this request changed is dropped, as it failed
  if (err.code === 'store_unavailable' && req.session) (req as { session?: unknown }).session = undefined;
  if (rp.options.onError) return rp.options.onError(err, req, res, next);
  // in production what Redis answered (its ACL user, key patterns, the advice for operators) is the log's, not the visitor's
  if (err.code === 'store_unavailable' && process.env.NODE_ENV === 'production') err = publicStoreFailure(err);
  if (res.headersSent) return next(err);
  res.status(err.status).set('cache-control', 'no-store');
  if (err.retryAfter !== undefined) res.set('retry-after', String(err.retryAfter));
  // RFC 9110 §15.5.2 wants a challenge with a 401; RFC 6750 §3: no error code when no credentials came with the
  // request, and only its registered ones otherwise (a login's tokens refused or gone: invalid_token)
  if (err.status === 401) {
    const realm = `Bearer realm="${new URL(rp.options.baseURL).host}"`;
    res.set('www-authenticate', err.code === 'not_authenticated' ? realm : `${realm}, error="invalid_token"`);
  }
  res.vary('accept');
  if (!wantsHtml(req)) return void res.json(err.toJSON());
  res.set(PAGE_HEADERS).type('html').send(errorPage(err));
}

/**
 * An Express error handler that answers the RP's errors thrown in your own routes (e.g. from
 * `req.oidc.fetch()` or `getValidAccessToken()` while the OP or the store is down) as `rp()` does:
 * the right status, `Retry-After` for transient failures, HTML for browsers, JSON for APIs. Other
 * errors go on to your next error handler.
 *
 * @example
 * ```ts
 * app.get('/orders', requireAuth(), async (req, res) => res.json(await (await req.oidc.fetch(api)).json()));
 * app.use(rpErrorHandler());
 * ```
 */
export function rpErrorHandler(): (err: unknown, req: Request, res: Response, next: NextFunction) => void {
  return (err, req, res, next) => {
    const ctx = req.oidc as RequestContext | undefined;
    if (!(err instanceof RpError) || !(ctx instanceof RequestContext)) return next(err);
    sendError(err, req, res, next, ctx.relyingParty);
  };
}
