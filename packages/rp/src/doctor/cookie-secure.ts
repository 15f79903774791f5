/** ✔ the session cookie's `secure` flag fits baseURL: secure (or "auto") on https, not secure on http. */
import { fail, pass, skip, type AppContext, type CheckResult } from './types.js';

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

export function checkCookieSecure(ctx: AppContext): CheckResult {
  const s = ctx.session;
  if (!s || s.problem || s.secure === undefined) return skip('the session cookie settings are unknown (see session)');
  const base = new URL(ctx.rp.options.baseURL);
  if (base.protocol === 'https:') {
    if (s.secure === true) return pass(`the session cookie is secure, as baseURL ${base.origin} is https`);
    if (s.secure === 'auto') return pass(`the session cookie is secure: "auto" (secure on https requests: behind a proxy that needs trust proxy, see trust-proxy)`);
    return fail(
      `baseURL ${base.origin} is https but the session cookie is not secure (${s.source}): the browser also sends it over plain http`,
      'session({ ..., cookie: { secure: true } }) (behind a TLS-terminating proxy also app.set(\'trust proxy\', 1))',
    );
  }
  if (s.secure === true) {
    return fail(
      `the session cookie is secure but baseURL ${base.origin} is http: express-session never sends a secure cookie over http, so every login fails (missing state)`,
      `serve the app over https and set rp({ baseURL: "https://…" }); for local development over http, cookie: { secure: 'auto' } or secure: false`,
    );
  }
  if (process.env.NODE_ENV === 'production' && !LOOPBACK.test(base.hostname)) {
    return fail(
      `baseURL ${base.origin} is http with NODE_ENV=production: the session cookie (a login) travels unencrypted`,
      'serve the app over https, set rp({ baseURL: "https://…" }) and session({ cookie: { secure: true } })',
    );
  }
  return pass(`the session cookie is not secure${s.secure === 'auto' ? ' ("auto")' : ''}, as an http baseURL (${base.origin}, development) needs`);
}
