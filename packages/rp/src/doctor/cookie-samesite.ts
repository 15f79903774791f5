/** ✔ the session cookie's SameSite lets it come back with the OP's redirect to the callback. */
import { fail, pass, skip, type AppContext, type CheckResult } from './types.js';

export function checkCookieSameSite(ctx: AppContext): CheckResult {
  const s = ctx.session;
  if (!s || s.problem || s.secure === undefined) return skip('the session cookie settings are unknown (see session)');
  const sameSite = s.sameSite === true ? 'strict' : typeof s.sameSite === 'string' ? s.sameSite.toLowerCase() : undefined;
  if (sameSite === 'strict') {
    return pass('SameSite strict: the cookie stays behind when the OP sends the user back to the callback (a navigation from another site); '
      + 'rp() then answers with a page of the app that posts the answer to itself, with the cookie (one more step, done by a script or a button)');
  }
  if (sameSite === 'none' && s.secure === false) {
    return fail('the session cookie is SameSite=None but not secure: browsers refuse such a cookie', 'session({ ..., cookie: { sameSite: \'lax\' } }), or secure: true with SameSite=None');
  }
  if (sameSite === undefined) {
    // Chromium treats a cookie without SameSite as Lax; Firefox and Safari send it with other sites' requests too
    return pass('SameSite not set: the cookie comes back with the OP\'s redirect. Chromium treats it as Lax, but Firefox and Safari also send it '
      + 'with requests other sites make (their form posts to your routes): set session({ ..., cookie: { sameSite: \'lax\' } }) to have that everywhere');
  }
  return pass(`SameSite ${sameSite}: the cookie comes back with the OP's redirect`);
}
