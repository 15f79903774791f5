/**
 * ✔ behind a TLS-terminating proxy (an https baseURL, unless `behindProxy: false`), Express trusts it
 * (`app.set('trust proxy', …)`, or express-session's `proxy: true`); otherwise the app sees http
 * requests, express-session does not send a secure cookie, and every login fails (missing state).
 */
import { fail, pass, skip, type AppContext, type CheckResult } from './types.js';

export function checkTrustProxy(ctx: AppContext): CheckResult {
  const base = new URL(ctx.rp.options.baseURL);
  if (base.protocol !== 'https:') return pass(`not needed: baseURL ${base.origin} is http`);
  if (ctx.options.behindProxy === false) return pass('not needed: the app serves https itself (behindProxy: false)');
  if (ctx.session?.proxy === true) return pass('express-session trusts the proxy (proxy: true) and reads X-Forwarded-Proto');
  const app = ctx.options.app;
  if (!app) return skip(`the app is unknown: pass doctor(router, { app }) to check app.set('trust proxy') (needed behind a TLS-terminating proxy)`);
  const value = app.get('trust proxy') as unknown;
  if (value) return pass(`app 'trust proxy' is ${JSON.stringify(value)}: the app sees the https of ${base.origin} behind its proxy`);
  return fail(
    `baseURL ${base.origin} is https but the app does not trust a proxy ('trust proxy' is off): behind a TLS-terminating proxy (load balancer, nginx, a PaaS router) the app sees http, and express-session does not send a secure session cookie`,
    "app.set('trust proxy', 1) (the number of proxies in front of the app); if the app serves https itself, doctor(router, { behindProxy: false })",
  );
}
