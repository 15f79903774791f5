/**
 * `requireAuth()`: the route guard. Browsers are sent to log in, APIs get 401, a login that lacks
 * the required claims or scope gets 403 (never a login loop).
 */
import type { RequestHandler } from 'express';
import { RequestContext } from './context.js';
import { OptionsError, RpError } from './errors.js';
import { MAX_RETURN_TO, browserPath, requireSession, sendError, wantsHtml } from './router.js';

/** A required claim value, or a test of the claim's value. */
export type ClaimRequirement = string | number | boolean | ((value: unknown) => boolean);

/** Options of `requireAuth()`. */
export interface RequireAuthOptions {
  /** Only a login at this provider counts (and the login redirect goes there). Default: any login; login at rp's default provider. */
  provider?: string | undefined;
  /** Seconds since the user authenticated at the OP; older logins must authenticate again (`max_age`). */
  maxAge?: number | undefined;
  /** Required claims of the user: exact values (an array claim must contain it) or tests; or one test of all claims. */
  claims?: Record<string, ClaimRequirement> | ((claims: Record<string, unknown>) => boolean) | undefined;
  /** Space-separated scopes the access token must have been granted. */
  scope?: string | undefined;
}

function claimMatches(actual: unknown, wanted: ClaimRequirement): boolean {
  if (typeof wanted === 'function') return wanted(actual) === true;
  return Array.isArray(actual) ? actual.includes(wanted) : actual === wanted;
}

function hasClaims(claims: Record<string, unknown>, wanted: NonNullable<RequireAuthOptions['claims']>): boolean {
  if (typeof wanted === 'function') return wanted(claims) === true;
  return Object.entries(wanted).every(([name, value]) => claimMatches(claims[name], value));
}

/**
 * Guards a route: the request must carry a login (from `provider`, recent enough for `maxAge`)
 * whose user has `claims` and whose access token has `scope`. The route's answer gets
 * `Cache-Control: no-store` (set your own in the route to change it).
 *
 * @example
 * ```ts
 * app.get('/admin', requireAuth({ claims: { groups: 'admin' }, maxAge: 900 }), adminPage);
 * app.get('/api/me', requireAuth({ scope: 'profile' }), (req, res) => res.json(req.oidc.user));
 * ```
 */
export function requireAuth(options: RequireAuthOptions = {}): RequestHandler {
  if (options.maxAge !== undefined && !(Number.isInteger(options.maxAge) && options.maxAge >= 0)) {
    throw new OptionsError('maxAge', 'must be a whole number of seconds', 'requireAuth()');
  }
  return (req, res, next) => {
    const ctx = req.oidc;
    if (!(ctx instanceof RequestContext)) return next(new Error('requireAuth() needs rp() mounted before it: app.use(rp({ ... })). If it is, a middleware between them replaced res.locals, where rp() leaves req.oidc: add to res.locals instead'));
    const rp = ctx.relyingParty;
    try {
      requireSession(req);
    } catch (err) {
      return sendError(err as RpError, req, res, next, rp);
    }
    const auth = ctx.authentication;
    const fromProvider = !options.provider || auth?.provider === options.provider;
    if (!auth || !fromProvider || !rp.hasActiveAuthentication(auth, options.maxAge)) {
      const provider = options.provider ?? rp.options.defaultProvider;
      const loginUrl = (returnTo: string | undefined): string => {
        // a deep link is sent along only while the redirect stays small: encoded again it grows up to 3 times,
        // and a `Location` of several KB overflows proxies' header buffers (nginx's 4 KB: a bare 502)
        const query = new URLSearchParams(returnTo !== undefined && returnTo.length <= MAX_RETURN_TO ? { returnTo } : {});
        if (options.maxAge !== undefined && auth) query.set('maxAge', String(options.maxAge));
        if (query.toString().length > 2 * MAX_RETURN_TO) query.delete('returnTo');
        const search = query.toString();
        return `${rp.options.routesPath}/login/${encodeURIComponent(provider!)}${search ? `?${search}` : ''}`;
      };
      // htmx (a page's script asking for a fragment of HTML): a redirect to the OP would fail in it (another origin);
      // a 401 whose HX-Redirect sends the whole page to the login, back to the page the user is on
      const htmx = req.headers['hx-request'] === 'true';
      if (htmx && provider) res.set('HX-Redirect', loginUrl(samePagePath(req.headers['hx-current-url'], rp.options.baseURL)));
      else if (wantsHtml(req) && (req.method === 'GET' || req.method === 'HEAD') && provider) return res.redirect(loginUrl(browserPath(req, rp)));
      return sendError(new RpError('not_authenticated', 'this resource needs a login'), req, res, next, rp);
    }
    if (options.claims && !hasClaims(auth.user.claims, options.claims)) {
      return sendError(new RpError('insufficient_claims', 'your account lacks a claim this resource requires'), req, res, next, rp);
    }
    if (options.scope) {
      // RFC 6749 §5.1: no scope in the token response means the requested scope was granted
      const granted = new Set((auth.accessToken?.scope ?? rp.options.providers[auth.provider]?.scope ?? '').split(' '));
      if (!options.scope.split(' ').filter(Boolean).every((s) => granted.has(s))) {
        return sendError(new RpError('insufficient_scope', `this resource needs the scope "${options.scope}"`), req, res, next, rp);
      }
    }
    // the answer carries the user's data: no browser or shared cache may keep it (after a sign-out,
    // Back would show it again from the cache). The route may set its own Cache-Control over it
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
}

/** The path and query of `url` when it is a page of the app (`baseURL`'s origin), else undefined. */
function samePagePath(url: unknown, baseURL: string): string | undefined {
  if (typeof url !== 'string' || !URL.canParse(url)) return undefined;
  const page = new URL(url);
  return page.origin === new URL(baseURL).origin ? `${page.pathname}${page.search}` : undefined;
}
