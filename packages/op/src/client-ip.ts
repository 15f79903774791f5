import type { Request } from 'express';
import proxyaddr from 'proxy-addr';

const ONE_HOP = (_address: string, hop: number) => hop < 1;

/**
 * The client's address as login throttling counts it: with `trustProxy`, the address the one
 * trusted proxy hop saw (the last `X-Forwarded-For` entry, Express's `trust proxy: 1`); without it,
 * `req.ip` as the app op() is mounted in sets it (the socket's address unless that app trusts a
 * proxy). The same on every route: the API endpoints' requests do not pass through op()'s own app.
 *
 * @example
 * clientIp(req, o.trustProxy) // '203.0.113.7'
 */
export function clientIp(req: Request, trustProxy: boolean): string {
  return (trustProxy ? proxyaddr(req, ONE_HOP) : req.ip ?? req.socket.remoteAddress) ?? 'unknown';
}
