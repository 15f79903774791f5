/**
 * `req.oidc`: the per-request view of the login kept in the session, and the operations on it.
 */
import { IncomingMessage } from 'node:http';
import type { Request, Response as ExpressResponse } from 'express';
import { RpError, oneLine } from './errors.js';
import type { NormalizedUser } from './options.js';
import { isTokenExpired, type RelyingParty } from './relying-party.js';
import type { Authentication } from './session.js';
import { sessionOp } from './session-guard.js';
import { coordinationOf, endedAfterSave, sessionEnded } from './coordination.js';
import { readStoredLogin, toStoredLogin } from './stored-login.js';
import { takeOthersWrites } from './concurrent-writes.js';
import { within } from './stuck-connection.js';

/** How long a refused refresh waits for the session as other requests left it (a store answers in a few ms). */
const MERGE_WAIT_MS = 250;

/**
 * Whether a user info request failed because the OP refused the access token itself: RFC 6750's
 * `invalid_token` (or a bare 401 challenge), or a provider's user endpoint answering 401 (GitHub's "Bad credentials").
 */
function tokenRefused(err: unknown): boolean {
  return err instanceof RpError && (err.opError === 'invalid_token' || causedBy401(err, 'UserEndpointError') || causedBy401(err, 'WWWAuthenticateChallengeError'));
}

/** `err`'s cause is an error named `name` with status 401 (`UserEndpointError`: a provider's own user endpoint, e.g. `github()`'s). */
function causedBy401(err: RpError, name: string): boolean {
  const cause = err.cause as { name?: unknown; status?: unknown } | undefined;
  return cause?.name === name && cause.status === 401;
}

/** The access token as `req.oidc.accessToken` shows it. */
export interface AccessToken {
  value: string;
  tokenType: string;
  scope?: string;
  /** Epoch seconds. */
  expiresAt?: number;
  isExpired(): boolean;
}

/**
 * What `req.oidc` offers: the login kept in the session and the operations on it. An interface
 * of plain members, so that two copies of the package (e.g. sources and build) agree on its type.
 */
export interface OidcContext {
  /** The login kept in the session, if any. */
  readonly authentication: Authentication | undefined;
  /** True when the session holds a login. */
  isAuthenticated(): boolean;
  /** The normalized user, or undefined when not logged in. */
  readonly user: NormalizedUser | undefined;
  /** The verified claims of the ID token. */
  readonly idTokenClaims: Record<string, unknown> | undefined;
  /** The current access token (possibly expired: see `getValidAccessToken()`). */
  readonly accessToken: AccessToken | undefined;
  /** Refresh grant (optionally a narrower `scope`); a refused refresh ends the login. */
  refresh(opts?: { scope?: string }): Promise<AccessToken>;
  /** Claims from the OP's userinfo endpoint (or the provider's user endpoint); an expired access token is refreshed first, as for `fetch()`. */
  fetchUserInfo(): Promise<Record<string, unknown>>;
  /** True when logged in and, with `maxAgeSeconds`, authenticated at the OP at most that long ago. */
  hasActiveAuthentication(maxAgeSeconds?: number): boolean;
  /** An unexpired access token, refreshing it first when it has expired. */
  getValidAccessToken(): Promise<AccessToken>;
  /** `fetch` to a resource server with `Authorization: Bearer <access token>` (refreshed when expired); a DPoP-bound token with a DPoP proof. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
}

/**
 * `req.oidc`, set by `rp()` on every request.
 *
 * @example
 * ```ts
 * app.get('/api/orders', requireAuth(), async (req, res) => {
 *   const response = await req.oidc.fetch('https://api.example.com/orders');
 *   res.json(await response.json());
 * });
 * ```
 */
export class RequestContext implements OidcContext {
  constructor(
    private readonly req: Request,
    /** The RP core behind this request. */
    readonly relyingParty: RelyingParty,
  ) {}

  /** What `authentication` was last read from (the session's record), and what it read. */
  private readFrom: unknown;
  private login: Authentication | undefined;

  /** The login kept in the session, if any (read from its compact form once per request, or after it changed). */
  get authentication(): Authentication | undefined {
    const stored = this.req.session?.oidc?.auth;
    if (stored !== this.readFrom) {
      this.readFrom = stored;
      try {
        this.login = stored === undefined ? undefined : readStoredLogin(stored);
      } catch {
        this.login = undefined; // a record this version cannot read (no sub): no login
      }
    }
    return this.login;
  }

  /** True when the session holds a login. */
  isAuthenticated(): boolean {
    return this.authentication !== undefined;
  }

  /** The normalized user, or undefined when not logged in. */
  get user(): NormalizedUser | undefined {
    return this.authentication?.user;
  }

  /** The verified claims of the ID token. */
  get idTokenClaims(): Record<string, unknown> | undefined {
    return this.authentication?.idTokenClaims;
  }

  /** The current access token (possibly expired: see `getValidAccessToken()`). */
  get accessToken(): AccessToken | undefined {
    const token = this.authentication?.accessToken;
    return token && { ...token, isExpired: () => isTokenExpired(token) };
  }

  /** Refresh grant (optionally a narrower `scope`); a refused refresh ends the login. */
  async refresh(opts: { scope?: string } = {}): Promise<AccessToken> {
    const auth = this.requireAuthentication();
    return this.store(() => this.relyingParty.refresh(auth, opts), opts.scope);
  }

  /** Claims from the OP's userinfo endpoint (or the provider's user endpoint); an expired access token is refreshed first, as for `fetch()`. */
  async fetchUserInfo(): Promise<Record<string, unknown>> {
    // an expired access token is refreshed first, as for fetch(): the OP answers it invalid_token
    await this.getValidAccessToken();
    let refused: RpError;
    try {
      return await this.relyingParty.userInfo(this.requireAuthentication());
    } catch (err) {
      if (!tokenRefused(err)) throw err;
      refused = err as RpError;
    }
    // refused before its expiry: revoked at the OP, its grant ended, a GitHub token the user withdrew, or
    // (invalid_token says that too) a token for another audience, as a login for an API (RFC 8707) has.
    // A new one once, when the login can get one: the OP refusing that ends the login (refresh_failed);
    // a new one refused again is no sign-out (the grant is alive): the refusal goes as it came
    const auth = this.requireAuthentication();
    if (auth.refreshToken) {
      await this.store(() => this.relyingParty.refresh(auth));
      return this.relyingParty.userInfo(this.requireAuthentication());
    }
    // no refresh token: a user endpoint's 401 (GitHub's tokens have no audience and never expire) ends the
    // login; the OP's invalid_token may be an audience's, and such a login ends at its expiresAt anyway
    if (!causedBy401(refused, 'UserEndpointError')) throw refused;
    throw this.ended(new RpError('login_ended', `provider "${auth.provider}" refused this login's access token at its user endpoint `
      + '(revoked there: the user withdrew it, or its grant ended), and the login has no refresh token to get another: the login has ended; sign in again'), auth);
  }

  /** True when logged in and, with `maxAgeSeconds`, authenticated at the OP at most that long ago. */
  hasActiveAuthentication(maxAgeSeconds?: number): boolean {
    return this.relyingParty.hasActiveAuthentication(this.authentication, maxAgeSeconds);
  }

  /** An unexpired access token, refreshing it first when it has expired. */
  async getValidAccessToken(): Promise<AccessToken> {
    const auth = this.requireAuthentication();
    return this.store(() => this.relyingParty.validAccessToken(auth));
  }

  /** `fetch` to a resource server with `Authorization: Bearer <access token>` (refreshed when expired). */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const token = await this.getValidAccessToken();
    // DPoP-bound (`dpop` provider option): a proof signed by the login's key goes with each request
    if (token.tokenType.toLowerCase() === 'dpop') return this.relyingParty.fetchResource(this.requireAuthentication(), url, init);
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token.value}`);
    return fetch(url, { ...init, headers });
  }

  private requireAuthentication(): Authentication {
    const auth = this.authentication;
    if (!auth) throw new RpError('not_authenticated', 'log in first');
    return auth;
  }

  /**
   * After a refresh saved the session: a logout at the OP that ended it meanwhile (back-channel, on
   * any instance) wins. The logout marks the session ended before destroying it, and this check comes
   * after the save, so whichever lands last, the session ends up destroyed.
   */
  private async notEnded(): Promise<void> {
    const { sessionStore: store, sessionID, session } = this.req;
    if (!store || !session) return;
    // the save just made looked already (keepEndedSessionsEnded), when the session holds a login
    if (!(await (endedAfterSave(session) ?? sessionEnded(coordinationOf(this.relyingParty, store), sessionID)))) return;
    await this.endedMeanwhile();
  }

  /** A sign-out ended this session while its tokens were being refreshed: it is destroyed (if it was not), and the request answers 401. */
  private async endedMeanwhile(): Promise<never> {
    // express-session's own destroy: the request then has no session left to save at its end
    await sessionOp<void>((cb) => this.req.session.destroy(cb));
    throw new RpError('not_authenticated', 'this session was ended (a logout, at the OpenID Provider or here) while its tokens were being refreshed; sign in again');
  }

  /**
   * Runs a token operation and keeps its result in the session; only a refresh the OP refused
   * (`refresh_failed`) logs out. `scope`: the refresh's, when it asked for one.
   */
  private async store(operation: () => Promise<Authentication>, scope?: string): Promise<AccessToken> {
    const previous = this.authentication;
    try {
      const auth = await this.withinBudget(operation(), previous, scope);
      const session = this.req.session;
      if (session?.oidc && previous && auth !== previous) {
        // a sign-out while the OP answered (seconds, at times) is the usual race: not written back at
        // all, rather than written and destroyed again by the check after the save (`notEnded`), when
        // other requests could see it signed in meanwhile (a store that cannot be read says nothing)
        const { sessionStore } = this.req;
        if (sessionStore && (await sessionEnded(coordinationOf(this.relyingParty, sessionStore), this.req.sessionID).catch(() => false))) {
          this.relyingParty.refreshSettled(previous, auth, true, scope); // (its result is kept no longer than for a saved one)
          await this.endedMeanwhile();
        }
        const stored = session.oidc.auth;
        session.oidc.auth = toStoredLogin(auth);
        // saved now, so a store failure is a 503 here rather than new tokens silently lost after the answer;
        // with what other requests of the session wrote since this one read it, which the save would undo
        let gone = false;
        try {
          gone = !(await takeOthersWrites(this.req));
          if (!gone) await sessionOp<void>((cb) => session.save(cb));
        } catch (err) {
          // the session keeps its old record (no second save at the end of the request, which would
          // wait out another deadline); the refresh result is kept for its next request instead
          session.oidc.auth = stored;
          this.relyingParty.refreshSettled(previous, auth, false, scope);
          throw err;
        }
        // (its result is kept as for a saved one, no longer: a session signed out meanwhile keeps nothing for a day)
        this.relyingParty.refreshSettled(previous, auth, true, scope);
        if (gone) {
          // not in the store: destroyed while the OP answered (the app's own sign-out, a sign-in that
          // renewed the session id), and not written back, signed in again
          this.dropSession();
          throw new RpError('not_authenticated', 'this session was ended (a logout, at the OpenID Provider or here) while its tokens were being refreshed; sign in again');
        }
        await this.notEnded();
      }
      return this.accessToken!;
    } catch (err) {
      if (err instanceof RpError && (err.code === 'refresh_failed' || err.code === 'login_ended')) {
        // the session is saved without its login at the end of the request: with what other requests wrote
        // while the OP answered (a sign-in another tab started, which the user now needs), when the store
        // gives it at once; else as it was read (the refused login must go). Not at all when it is gone.
        if ((await this.othersWritesTaken()) === 'gone') this.dropSession();
        throw this.ended(err, previous);
      }
      throw err;
    }
  }

  /**
   * {@link takeOthersWrites} within {@link MERGE_WAIT_MS}: 'gone' when the store no longer has the
   * session; false when the store failed or was slower (a merge that comes later changes nothing).
   */
  private async othersWritesTaken(): Promise<boolean | 'gone'> {
    const wait = { over: false };
    try {
      return (await within(takeOthersWrites(this.req, wait), MERGE_WAIT_MS)) || 'gone';
    } catch {
      return false;
    } finally {
      wait.over = true;
    }
  }

  /** The request's session is not saved at its end (express-session saves nothing without `req.session`). */
  private dropSession(): void {
    (this.req as { session?: unknown }).session = undefined;
  }

  /** `err`, having ended the session's login `previous`: its way on is a new sign-in at the same provider, back to this page (a page load's). */
  private ended(err: RpError, previous: Authentication | undefined): RpError {
    if (this.req.session?.oidc) delete this.req.session.oidc.auth;
    if (previous) err.loginUrl ??= this.relyingParty.loginPath(previous.provider, this.req.method === 'GET' ? this.req.originalUrl : undefined);
    return err;
  }

  /**
   * `running` (a token operation on `previous`), or a 503 once it has taken {@link tokenBudgetMs}:
   * each call of a refresh has its deadline (the lock and the shared result in the store, the OP's
   * answer), but with a slow store or OP their sum passed what a load balancer lets a request last
   * (30 s at Heroku's router, 60 s at nginx's and AWS's defaults), and the user got a cut instead of
   * a `Retry-After`. The operation goes on, and its result is kept (in this process and, with
   * `coordination`, in the store) for the session's next request, which does not refresh again.
   */
  private withinBudget(running: Promise<Authentication>, previous: Authentication | undefined, scope: string | undefined): Promise<Authentication> {
    let timer: NodeJS.Timeout | undefined;
    const budget = this.relyingParty.tokenBudgetMs;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        running.then((fresh) => {
          if (previous && fresh !== previous) this.relyingParty.refreshSettled(previous, fresh, false, scope);
        }, () => undefined);
        reject(new RpError('op_unavailable', `refreshing the tokens${previous ? ` of provider "${previous.provider}"` : ''} took longer than `
          + `${Number((budget / 1000).toFixed(1))} s (the OpenID Provider or the session store answers slowly); it goes on, and this session's next request gets its result: try again shortly`));
      }, budget);
    });
    return Promise.race([running, late]).finally(() => clearTimeout(timer));
  }
}

/**
 * `req.oidc`, built on first use. `req.oidc` is a getter (and setter) on Express's request
 * prototype, over `res.locals` under this key: rp() leaves there a function that makes the
 * request's `RequestContext`, and the first read of `req.oidc` calls it and keeps the context in its
 * place. So a request that never reads `req.oidc` costs one entry in `res.locals`, and `req` gains no
 * property: on Node 20 and 22 every property added to a request after Express changed its prototype
 * costs a hidden class of its own, and a per-request `req.oidc` was about 3 % of a guarded request's
 * CPU (bench/RESULTS.md, 2026-12-03, "req.oidc on first use"). The key is shared by every copy of
 * this package; each copy's rp() leaves its own maker, so each makes its own contexts.
 */
const CONTEXT = Symbol.for('@openid-express/rp request context');

/** What rp() leaves in `res.locals`: makes the request's context (marked, so no value is taken for one). */
export type ContextMaker = ((req: Request) => RequestContext) & { readonly [CONTEXT]: true };

/** The RelyingParty of each maker (one maker per rp()). */
const makerOf = new WeakMap<ContextMaker, RelyingParty>();

/** The maker of `relyingParty`'s request contexts, made once per rp(). */
export function contextMaker(relyingParty: RelyingParty): ContextMaker {
  const make = (req: Request): RequestContext => new RequestContext(req, relyingParty);
  const maker = Object.defineProperty(make, CONTEXT, { value: true }) as ContextMaker;
  makerOf.set(maker, relyingParty);
  return maker;
}

type Locals = Record<symbol, unknown>;

/** The getter and setter of `req.oidc`, defined once on Express's request prototype. */
const OIDC_PROPERTY = {
  configurable: true,
  enumerable: false,
  get(this: Request): OidcContext | undefined {
    const locals = this.res?.locals as Locals | undefined;
    const value = locals?.[CONTEXT];
    if (typeof value !== 'function' || (value as Partial<ContextMaker>)[CONTEXT] !== true) return value as OidcContext | undefined;
    const ctx = (value as ContextMaker)(this);
    locals![CONTEXT] = ctx;
    return ctx;
  },
  /** `req.oidc = …` (a test's stand-in, another library): what that request reads from then on. */
  set(this: Request, value: unknown): void {
    const locals = this.res?.locals as Locals | undefined;
    if (locals !== undefined) locals[CONTEXT] = value;
    else Object.defineProperty(this, 'oidc', { value, writable: true, enumerable: true, configurable: true });
  },
};
Object.defineProperty(OIDC_PROPERTY.get, CONTEXT, { value: true }); // marks our getter (any copy's)

/** The request prototype last seen to reach our getter. */
let reaches: object | null = null;

/**
 * True when `req.oidc` on this request is our getter. The first time, it defines it on Express's
 * own request prototype (`express.request`, the one just above Node's `IncomingMessage.prototype`,
 * which every app's and sub-app's requests inherit). False for a request Express has not handled,
 * where something else defined `oidc` there, or on a request that already has its own `oidc`.
 */
function reachesGetter(req: Request): boolean {
  const proto = Object.getPrototypeOf(req) as object | null;
  if (proto === reaches) return true;
  let base = proto;
  while (base !== null && Object.getPrototypeOf(base) !== IncomingMessage.prototype) base = Object.getPrototypeOf(base) as object | null;
  if (base === null || Object.hasOwn(req, 'oidc')) return false;
  const defined = Object.getOwnPropertyDescriptor(base, 'oidc');
  if (defined === undefined) {
    if (!Reflect.defineProperty(base, 'oidc', OIDC_PROPERTY)) return false; // a frozen prototype
  } else if (!(defined.get && CONTEXT in defined.get)) return false;
  reaches = proto;
  return true;
}

/**
 * Gives this request its `req.oidc`, built on first use. Where the getter cannot serve it (no
 * `res.locals`: not handled by an Express app; someone else's `oidc`), `req.oidc` is set at once,
 * as it always was.
 */
export function provideContext(req: Request, res: ExpressResponse, make: ContextMaker): RpError | undefined {
  const locals = res.locals as Locals | undefined;
  const before = locals?.[CONTEXT];
  // another rp() already on this request: both would read and write the one req.session.oidc, so a login
  // through either would pass the other's requireAuth() (a customer in the staff area), and one's
  // sign-out would end the other's login
  if (before !== undefined && before !== make && (isMaker(before) || (before instanceof RequestContext && before.relyingParty !== makerOf.get(make)))) {
    return twoRouters(req);
  }
  if (locals !== undefined && reachesGetter(req)) locals[CONTEXT] = make;
  else req.oidc = make(req);
  return undefined;
}

const isMaker = (value: unknown): boolean => typeof value === 'function' && (value as Partial<ContextMaker>)[CONTEXT] === true;

function twoRouters(req: Request): RpError {
  return new RpError('invalid_options', `two rp() routers handle ${req.method} ${oneLine(req.originalUrl, 200)}: they would share the one `
    + 'login in req.session, so signing in through either would pass the other\'s requireAuth(). Use one rp() with several providers '
    + '(providers: { customers: …, staff: … }, and requireAuth({ provider: \'staff\' })), or mount each on its own path with its own '
    + 'session (app.use(\'/shop\', shopApp); app.use(\'/admin\', adminApp), each with its own express-session and cookie name)');
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Given by `rp()` (built the first time a request reads it): the login of this session and its operations. */
      oidc: OidcContext;
    }
  }
}
