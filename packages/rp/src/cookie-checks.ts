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
 * `proxy: true` could read): the callback would find no pending login. Warns (at most hourly) when
 * express-session may not send it (that header, but `trust proxy` off: it depends on `proxy`; checked
 * once the answer is sent), and when an https app's cookie has no `Secure` attribute.
 */
export function checkSessionCookie(req: Request, res: Response, rp: RelyingParty): void {
  const cookie = req.session?.cookie;
  if (!cookie) return;
  if (cookie.secure === true && !req.secure) {
    const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim().toLowerCase();
    if (proto !== 'https') {
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
  } else if (!cookie.secure && rp.options.baseURL.startsWith('https:')) {
    rp.warnAtMostHourly('cookie-not-secure', `the session cookie has no Secure attribute although baseURL is https (${rp.options.baseURL}): `
      + 'a browser sends it over http too. Give express-session cookie: { secure: true } (behind a proxy that terminates TLS, with '
      + 'app.set(\'trust proxy\', 1)), or cookie: { secure: \'auto\' }');
  }
}
