import type { TLSSocket } from 'node:tls';
import type { Request } from 'express';
import { trustsEveryProxy } from './client-ip.js';
import { warnAtMostHourly } from './hourly-warning.js';

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
 * The warning `op()` logs once when a proxy says the browser came over https but `trustProxy` is
 * off: oidc-provider then sees http, and publishes its endpoints (discovery, the login form's
 * action, the redirects) with http:// under an https issuer, which RPs refuse.
 */
export function insecureEndpointsWarning(issuer: string): string {
  return `openid-express op(): a request came over http with X-Forwarded-Proto: https, but \`trustProxy\` is off, so the OP `
    + `takes it for http and publishes http:// endpoints under its https issuer (${issuer}): its discovery document names them, `
    + 'and RPs refuse them. If a proxy you run terminates TLS and sets this header, pass `trustProxy: true` to op().';
}

/**
 * Warns once (console.warn) at the first request that carries `X-Forwarded-For` while `trustProxy`
 * is off: the sign that the OP runs behind a proxy it does not trust. And, with an https issuer,
 * once at the first request that came over plain http with `X-Forwarded-Proto: https`: the OP's
 * URLs say http:// (without `trustProxy` the scheme is the connection's; only the host is pinned to the issuer's).
 *
 * @example
 * const checks = o.trustProxy ? [] : [warnUntrustedProxyOnce(o.issuer)]; // a RequestCheck: always goes on
 */
export function warnUntrustedProxyOnce(issuer: string) {
  let warned = false;
  let warnedProto = !issuer.startsWith('https:');
  return (req: Request): true => {
    if (!warned && req.headers['x-forwarded-for'] !== undefined) {
      warned = true;
      console.warn(trustsEveryProxy(req) ? PERMISSIVE_PROXY_WARNING : PROXY_WARNING);
    }
    if (!warnedProto && req.headers['x-forwarded-proto'] !== undefined && !(req.socket as TLSSocket).encrypted
      && String(req.headers['x-forwarded-proto']).split(',')[0]!.trim().toLowerCase() === 'https') {
      warnedProto = true;
      console.warn(insecureEndpointsWarning(issuer));
    }
    return true;
  };
}

/**
 * With `trustProxy` and an http issuer, warns (at most once an hour) when the proxy says a request came
 * over https: the endpoints follow the request's scheme (https://, and cookies Secure), while discovery's
 * `issuer` and every token's `iss` stay http://, so the issuer should say https. A RequestCheck: always goes on.
 *
 * @example
 * const checks = o.trustProxy && o.issuerUrl.protocol === 'http:' ? [warnHttpIssuerOverHttps(o.issuer)] : [];
 */
export function warnHttpIssuerOverHttps(issuer: string) {
  const https = `https${issuer.slice('http'.length)}`;
  return (req: Request): true => {
    const proto = req.headers['x-forwarded-proto'];
    if (proto !== undefined && String(proto).split(',')[0]!.trim().toLowerCase() === 'https') {
      warnAtMostHourly(`http-issuer-over-https ${issuer}`, `the issuer is ${issuer} but requests arrive over https (X-Forwarded-Proto): `
        + `set issuer to ${https} — discovery and tokens name the issuer as configured, while the endpoints it publishes follow the request (https://).`);
    }
    return true;
  };
}
