/** ✔ the app's express-session was found (and runs before rp(), for the callback path). */
import { storeName } from './session-facts.js';
import { fail, pass, skip, type AppContext, type CheckResult } from './types.js';

export function checkSession(ctx: AppContext): CheckResult {
  const s = ctx.session;
  if (!s) return skip(ctx.sessionUnknown ?? 'the session settings are unknown');
  if (s.problem) return fail(s.problem.detail, s.problem.fix);
  const parts = [
    s.name !== undefined ? `cookie "${s.name}"` : undefined,
    s.secure !== undefined ? `secure: ${JSON.stringify(s.secure)}` : undefined,
    s.sameSite !== undefined ? `sameSite: ${JSON.stringify(s.sameSite)}` : undefined,
    storeName(s.store) ? `store ${storeName(s.store)}` : undefined,
  ].filter(Boolean);
  return pass(`${s.source}${parts.length ? `: ${parts.join(', ')}` : ''}`);
}
