/**
 * What the login route checks of the session cookie before it sends the browser to the OP: the
 * cookie must come back with the callback, and on an https app it must never go over http. These are
 * express-session's settings and Express's `trust proxy`, which rp() cannot fix, but it can say which
 * one to change, at the first sign-in rather than with an "expired" page after the OP.
 */
import type { Request, Response } from 'express';
import { RpError } from './errors.js';
import type { RelyingParty } from './relying-party.js';

/**
 * Throws `cookie_not_sent` when express-session will send no cookie with this answer (a `secure`
 * cookie on a request Express sees as http, with no `X-Forwarded-Proto: https` that express-session's
 * `proxy: true` could read; a `SameSite=None` cookie without `Secure`, which browsers refuse): the
 * callback would find no pending login. Warns (at most hourly) when express-session may not send it
 * (that header, but `trust proxy` off: it depends on `proxy`; checked once the answer is sent), when
 * an https app (by `baseURL`) is reached over plain http with no proxy saying https, and else when
 * an https app's cookie has no `Secure` attribute; and when the browser came by another loopback name
 * than `baseURL`'s (127.0.0.1 and localhost), whose cookie the callback will not see.
 */
export function checkSessionCookie(req: Request, res: Response, rp: RelyingParty): void {
  const cookie = req.session?.cookie;
  if (!cookie) return;
  // a proxy in front that says the browser came over https (whether or not `trust proxy` lets Express believe it)
  const forwardedHttps = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim().toLowerCase() === 'https';
  if (cookie.secure === true && !req.secure) {
    if (!forwardedHttps) {
      throw new RpError('cookie_not_sent', 'the session cookie is set to `secure`, but Express sees this request as http (req.secure is false), so express-session '
        + 'sends no cookie and the sign-in could not finish. Behind a proxy or load balancer that terminates TLS, add app.set(\'trust proxy\', 1) '
        + 'and have it send X-Forwarded-Proto; in development on http, give express-session cookie: { secure: \'auto\' }');
    }
    res.once('finish', () => {
      const sent = String(res.getHeader('set-cookie') ?? '');
      if (!sent.includes(req.sessionID) && !req.headers.cookie?.includes(req.sessionID)) {
        rp.warnAtMostHourly('cookie-not-sent', 'express-session sent no session cookie with a sign-in: the cookie is `secure` and Express sees the request as http '
          + '(X-Forwarded-Proto is https, but trust proxy is off), so the callback will find no sign-in ("This sign-in has expired"). '
          + 'Add app.set(\'trust proxy\', 1) (or express-session\'s proxy: true)');
      }
    });
  } else if (cookie.sameSite === 'none' && !cookie.secure) {
    throw new RpError('cookie_not_sent', 'the session cookie is SameSite=None without Secure, which browsers refuse to keep, so the callback '
      + 'would find no sign-in ("This sign-in has expired"). Give express-session cookie: { sameSite: \'lax\' } (the OP sends the user back '
      + 'with a top-level GET, which a Lax cookie follows), or serve the app over https with cookie: { secure: true, sameSite: \'none\' }');
  }
  const https = rp.options.baseURL.startsWith('https:');
  if (https && !req.secure && !forwardedHttps) {
    rp.warnAtMostHourly('served-over-http', `this sign-in reached the app over http (${req.protocol}://${req.get('host') ?? ''}), but baseURL is `
      + `https (${rp.options.baseURL}), so the OP will send the user back to an https URL. In development on plain http, give rp() `
      + 'baseURL: "http://…" (the URL the browser uses); behind a proxy or load balancer that terminates TLS, have it send '
      + 'X-Forwarded-Proto: https and add app.set(\'trust proxy\', 1)');
  } else if (!cookie.secure && https) {
    rp.warnAtMostHourly('cookie-not-secure', `the session cookie has no Secure attribute although baseURL is https (${rp.options.baseURL}): `
      + 'a browser sends it over http too. Give express-session cookie: { secure: true } (behind a proxy that terminates TLS, with '
      + 'app.set(\'trust proxy\', 1)), or cookie: { secure: \'auto\' }');
  }
  checkLoopbackHost(req, rp);
}

/** The names a development machine answers to itself by; a browser keeps a separate cookie jar for each. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Warns (at most hourly) when the browser reached the app by one loopback name and `baseURL` names
 * another (`http://127.0.0.1:3000` opened, `baseURL: 'http://localhost:3000'`): the session cookie is
 * kept for the first, the OP sends the user back to the second, and the callback finds no sign-in.
 * Loopback names only: in production a proxy may well rewrite the Host header.
 */
function checkLoopbackHost(req: Request, rp: RelyingParty): void {
  const here = (req.hostname || '').toLowerCase();
  const there = new URL(rp.options.baseURL).hostname.toLowerCase();
  if (here === there || !LOOPBACK.has(here) || !LOOPBACK.has(there)) return;
  const opened = `${req.protocol}://${req.get('host') ?? here}`;
  rp.warnAtMostHourly('loopback-host', `this sign-in reached the app at ${opened}, but baseURL is ${rp.options.baseURL}: the browser keeps `
    + `the session cookie for ${here} and does not send it to ${there}, where the OP sends the user back, so the callback will find `
    + `no sign-in ("This sign-in has expired"). Open the app at ${rp.options.baseURL}, or give rp() baseURL: "${opened}"`);
}

/**
 * Warns (at most hourly) when the login route answers at a path that `baseURL` and `mountPath` do not
 * end with: rp() mounted under a path (`app.use('/x', rp(...))`) that `baseURL` lacks, so the OP sends
 * the user back to a callback URL this app does not serve (Express's bare "Cannot GET"). A proxy that
 * strips a prefix (`baseURL` longer than the path the app sees) is fine.
 */
export function checkRoutesPath(req: Request, rp: RelyingParty): void {
  const { routesPath, baseURL, mountPath } = rp.options;
  const here = req.baseUrl.replace(/\/+$/, '');
  if (routesPath.toLowerCase().endsWith(here.toLowerCase())) return;
  const under = here.slice(0, here.length - mountPath.length) || '/'; // (the resolved mountPath: '' at the root)
  rp.warnAtMostHourly('routes-path', `rp() answered this sign-in under ${JSON.stringify(here.slice(0, 200))}, but baseURL (${baseURL}) and mountPath `
    + `(${JSON.stringify(mountPath || '/')}) put its routes at ${JSON.stringify(routesPath || '/')}: the OP will send the user back to `
    + `${baseURL}${mountPath}/callback/…, which this app does not serve. rp() is mounted under ${JSON.stringify(under.slice(0, 200))}: put that `
    + `path in baseURL (e.g. baseURL: "${new URL(baseURL).origin}${under === '/' ? '' : under.slice(0, 200)}"), or mount rp() with app.use(rp(...))`);
}
