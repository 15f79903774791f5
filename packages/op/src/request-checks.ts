import type { Request, Response } from 'express';
import { sendRefusal } from './error-page.js';
import type { Views } from './views/render.js';

/** A host name or IP literal with an optional port: what `Host` and `X-Forwarded-Host` may carry. */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::(\d{1,5}))?$/;

/** True when `value` is a well-formed authority (oidc-provider builds its URLs from it and throws on anything else). */
export function isValidAuthority(value: string | undefined): boolean {
  if (!value) return false;
  const m = AUTHORITY.exec(value);
  if (!m || (m[1] !== undefined && Number(m[1]) > 65535)) return false;
  try {
    return new URL(`http://${value}`).host.length > 0;
  } catch {
    return false;
  }
}

/**
 * A check every request to op() passes before anything else: true to go on, false when it has
 * answered the request itself (a refusal). Synchronous, so the API endpoints' fast path runs the
 * checks as one loop, without a callback per check.
 */
export type RequestCheck = (req: Request, res: Response) => boolean;

/** The authority of an absolute-form request target (`GET http://host/path HTTP/1.1`), which Koa prefers to `Host`. */
const absoluteAuthority = (url: string): string | undefined => /^https?:\/\/([^/?#]*)/i.exec(url)?.[1];

/**
 * Refuses a request whose `Host`, absolute-form request target, or (behind a trusted proxy)
 * `X-Forwarded-Host` is malformed with a 400, before oidc-provider turns it into a URL and fails
 * with a 500.
 */
export function checkHost(trustProxy: boolean, refuse: RefuseMalformed): RequestCheck {
  // the last Host found well-formed: nearly every request carries the same one, and the check is a
  // pure function of it (this skips a regex and a URL parse per request)
  let lastValid: string | undefined;
  return (req, res) => {
    const { host } = req.headers;
    const hostValid = host !== undefined && (host === lastValid || isValidAuthority(host));
    if (hostValid) lastValid = host;
    const forwarded = trustProxy ? req.get('x-forwarded-host')?.split(',')[0]?.trim() : undefined;
    const target = absoluteAuthority(req.originalUrl);
    if (hostValid && (forwarded === undefined || isValidAuthority(forwarded))
      && (target === undefined || isValidAuthority(target))) return true;
    return refuse(req, res, 'The request\'s Host header is malformed.');
  };
}

/**
 * Behind a trusted proxy (Koa's `proxy`), the scheme of every URL oidc-provider builds is the first
 * `X-Forwarded-Proto` entry as it came: `a b` made a URL it could not parse, a 500 with a stack trace,
 * and `javascript` a discovery document of javascript:// endpoints. Anything but http or https is
 * refused with a 400. (Used with an http issuer; an https issuer's scheme is pinned, `pinHost`.)
 */
export function checkForwardedProto(refuse: RefuseMalformed): RequestCheck {
  return (req, res) => {
    const proto = req.headers['x-forwarded-proto'];
    if (!proto || /^https?$/i.test(String(proto).split(',')[0]!.trim())) return true;
    return refuse(req, res, 'The request\'s X-Forwarded-Proto header is malformed: its first entry must be http or https.');
  };
}

/**
 * What `checkHost` and `checkForwardedProto` do with a malformed request: false when it is refused
 * (a 400 saying what is malformed), true to let it go on. op() under a path refuses it at once
 * (`refuseAtOnce`); op() at the root of a host only where it answers the request itself (`refuseOwn`).
 */
export type RefuseMalformed = (req: Request, res: Response, message: string) => boolean;

/** Refuses a malformed request with a 400 saying what is malformed. */
export function refuseAtOnce(views: Views): RefuseMalformed {
  return (req, res, message) => {
    void sendRefusal(req, res, views, { status: 400, code: 'invalid_request', message });
    return false;
  };
}

const MALFORMED = Symbol('what is malformed in a request op() at the root of a host let go on');
type Noted = Request & { [MALFORMED]?: string };

/**
 * op() at the root of a host sees every request of the app, and the ones it does not answer go on
 * to the app's routes after it, which must get them as they came (as with op() under a path): a
 * malformed request oidc-provider answers (`answeredByProvider`) is refused at once; any other goes on,
 * noted, and is refused only where op() answers it after all (`refuseNoted`): its own Express
 * routes, and the 404, 405 or 204 it gives an API endpoint's path itself.
 *
 * @example
 * checkForwardedProto(atRoot ? refuseOwn(views, answeredByProvider(provider)) : refuseAtOnce(views));
 */
export function refuseOwn(views: Views, answeredByProvider: (req: Request) => boolean): RefuseMalformed {
  const refuse = refuseAtOnce(views);
  return (req, res, message) => {
    if (answeredByProvider(req)) return refuse(req, res, message);
    (req as Noted)[MALFORMED] ??= message;
    return true;
  };
}

/** Refuses the request `refuseOwn` let go on, now that op() answers it: false then, true for any other. */
export function refuseNoted(req: Request, res: Response, views: Views): boolean {
  const message = (req as Noted)[MALFORMED];
  return message === undefined || refuseAtOnce(views)(req, res, message);
}

/**
 * Every URL oidc-provider builds (the discovery document's endpoints, its redirects) takes the
 * issuer's host, whatever the request says. With `trustProxy`, a client's `X-Forwarded-Host` (which
 * nginx passes on unless told not to) named another host in the discovery document: the token
 * endpoint an app sends its secret to, should anything cache that answer. And a proxy that sends
 * `Host` without the port (nginx's `$host`) gave every endpoint the wrong port. The issuer is the
 * OP's one public address: `Host` is set to it, `X-Forwarded-Host` goes, and so does the origin of
 * an absolute-form request target. Behind a trusted proxy (`trustProxy`), an https issuer's scheme
 * is pinned too (`X-Forwarded-Proto: https`): a client's `X-Forwarded-Proto: http`, passed on the
 * same way, made every endpoint http://, and a cached discovery document would send secrets in clear.
 * An http issuer's is not: behind a TLS proxy its cookies (and an app's express-session before op(),
 * which reads the same header) must stay Secure; op() warns instead (`warnHttpIssuerOverHttps`).
 */
export function pinHost(issuer: string, trustProxy: boolean): RequestCheck {
  const host = new URL(issuer).host;
  const https = trustProxy && new URL(issuer).protocol === 'https:';
  return (req) => {
    req.headers.host = host;
    if (https) req.headers['x-forwarded-proto'] = 'https';
    if (req.headers['x-forwarded-host'] !== undefined) delete req.headers['x-forwarded-host'];
    // an absolute-form target (`GET http://other.example/op/...`), which Koa takes over `Host`: its path only
    if (req.url.charCodeAt(0) !== 47 /* / */) {
      req.url = req.url.replace(ABSOLUTE_ORIGIN, '') || '/';
      req.originalUrl = req.originalUrl.replace(ABSOLUTE_ORIGIN, '') || '/';
    }
    return true;
  };
}

/** The scheme and authority of an absolute-form request target. */
const ABSOLUTE_ORIGIN = /^https?:\/\/[^/?#]*/i;

/**
 * Express matches mount paths without regard to letter case (`/OP/jwks` reaches `app.use('/op')`),
 * but the issuer's path is case-sensitive: such a request is a 404 naming the right path, not a
 * misconfiguration. Any other mismatch is one, and `misconfigured` answers it.
 */
export function checkMount(mountPath: string, views: Views, misconfigured: (req: Request, res: Response) => void): RequestCheck {
  return (req, res) => {
    // originalUrl is the mount path and then url: the mount is right (read without `req.baseUrl`,
    // a property Express's router set a moment ago, which on Node 20 and 22 misses V8's inline cache)
    const { originalUrl, url } = req;
    if (originalUrl.length === mountPath.length + url.length && originalUrl.startsWith(mountPath) && originalUrl.endsWith(url)) return true;
    if (req.baseUrl === mountPath) return true;
    if (req.baseUrl.toLowerCase() !== mountPath.toLowerCase()) {
      misconfigured(req, res);
      return false;
    }
    void sendRefusal(req, res, views, {
      status: 404, code: 'not_found', message: `There is no such page here: paths are case-sensitive, the identity provider is at ${mountPath}${req.path}`,
    });
    return false;
  };
}

/**
 * Takes off the CORS headers a middleware before op() set (an app-wide `cors()` of the `cors`
 * package answers `Access-Control-Allow-Origin: *`): oidc-provider leaves alone a response that
 * already has one, so its per-client rule (the token, userinfo and introspection answers readable
 * only from a client's own origins) never ran, and a page on any site could read them. op() answers
 * CORS for its own paths.
 */
export const ownCors: RequestCheck = (_req, res) => {
  for (const name of corsHeadersSet(res)) res.removeHeader(name);
  return true;
};

/** The `Access-Control-*` headers set on `res` so far (none unless `Access-Control-Allow-Origin` is). */
export function corsHeadersSet(res: Response): string[] {
  return res.hasHeader('access-control-allow-origin') ? res.getHeaderNames().filter((name) => name.startsWith('access-control-')) : [];
}
