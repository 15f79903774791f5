import type { Request } from 'express';
import proxyaddr from 'proxy-addr';

const ONE_HOP = (_address: string, hop: number) => hop < 1;

/**
 * The client's address as login throttling counts it: with `trustProxy`, the address the one
 * trusted proxy hop saw (the last `X-Forwarded-For` entry, Express's `trust proxy: 1`); without it,
 * `req.ip` as the app op() is mounted in sets it (the socket's address unless that app trusts a
 * proxy), except when that app trusts every hop (`trust proxy: true`): `req.ip` is then the first
 * `X-Forwarded-For` entry, which the client writes, and one socket could try passwords under any
 * address it likes. The address the nearest hop saw is counted then, as with `trustProxy`. The same
 * on every route: the API endpoints' requests do not pass through op()'s own app.
 *
 * @example
 * clientIp(req, o.trustProxy) // '203.0.113.7'
 */
export function clientIp(req: Request, trustProxy: boolean): string {
  if (trustProxy || trustsEveryProxy(req)) return proxyaddr(req, ONE_HOP) ?? 'unknown';
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** True when the app's `trust proxy` is `true` (every hop trusted: `req.ip` is whatever the client wrote first in `X-Forwarded-For`). */
export function trustsEveryProxy(req: Request): boolean {
  return req.app?.get('trust proxy') === true;
}
