import type { Request } from 'express';
import { trustsEveryProxy } from './client-ip.js';

/** The warning `op()` logs once when it sees `X-Forwarded-For` with `trustProxy` off. */
export const PROXY_WARNING = 'openid-express op(): a request came with X-Forwarded-For but `trustProxy` is off, so the OP '
  + 'counts failed logins per the address your app\'s own `trust proxy` gives (without it, the proxy\'s: every client\'s). '
  + 'Behind a load balancer that means five typos by anyone lock everybody out, and the OP may also build http:// URLs. If a proxy you run sets this header, '
  + 'pass `trustProxy: true` to op() and set `app.set(\'trust proxy\', 1)` (or the number of proxy hops) on your outer app.';

/** The warning `op()` logs once when the app trusts every proxy hop. */
export const PERMISSIVE_PROXY_WARNING = 'openid-express op(): your app has `trust proxy` set to true (every hop trusted), so req.ip is '
  + 'the first X-Forwarded-For entry, which a client writes itself: op() counts failed logins per the address the nearest proxy '
  + 'saw instead (the last entry), which behind two proxies (a CDN, then a load balancer) is the first proxy\'s for everyone. '
  + 'Set `app.set(\'trust proxy\', N)` to the number of proxies in front of the app (op() then counts req.ip), or, behind exactly one, '
  + 'pass `trustProxy: true` to op().';

/**
 * Warns once (console.warn) at the first request that carries `X-Forwarded-For` while `trustProxy`
 * is off: the sign that the OP runs behind a proxy it does not trust.
 *
 * @example
 * const checks = o.trustProxy ? [] : [warnUntrustedProxyOnce()]; // a RequestCheck: always goes on
 */
export function warnUntrustedProxyOnce() {
  let warned = false;
  return (req: Request): true => {
    if (!warned && req.headers['x-forwarded-for'] !== undefined) {
      warned = true;
      console.warn(trustsEveryProxy(req) ? PERMISSIVE_PROXY_WARNING : PROXY_WARNING);
    }
    return true;
  };
}
