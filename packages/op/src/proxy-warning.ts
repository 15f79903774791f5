import type { Request } from 'express';

/** The warning `op()` logs once when it sees `X-Forwarded-For` with `trustProxy` off. */
export const PROXY_WARNING = 'openid-express op(): a request came with X-Forwarded-For but `trustProxy` is off, so the OP '
  + 'sees the proxy\'s address as every client\'s IP. Failed logins are throttled per client IP: behind a load balancer, '
  + 'five typos by anyone lock everybody out, and the OP may also build http:// URLs. If a proxy you run sets this header, '
  + 'pass `trustProxy: true` to op() and set `app.set(\'trust proxy\', 1)` (or the number of proxy hops) on your outer app.';

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
      console.warn(PROXY_WARNING);
    }
    return true;
  };
}
