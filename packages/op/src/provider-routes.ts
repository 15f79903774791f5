import debug from 'debug';
import type { Request } from 'express';
import type Provider from 'oidc-provider';

const log = debug('openid-express:op');

type Dispatch = (ctx: object, next: () => Promise<void>) => unknown;

/**
 * Whether oidc-provider answers a request, by its method and path as its router decides (any letter
 * case, a trailing slash, `/auth/:uid`, `/.well-known/oauth-authorization-server`, the routes of the
 * features that are on): its route dispatcher, the last of the provider's Koa middleware
 * (`provider.use` adds before it), is run on a stand-in context that stops it where a matched route
 * would start (`ctx.router` is set). An OPTIONS request that is no CORS preflight is answered by
 * none (its CORS routes leave it alone). Should oidc-provider route otherwise, every request is
 * taken for one of its own, as op() at the root took them before.
 *
 * @example
 * const answers = answeredByProvider(provider);
 * answers(req); // GET /.well-known/oauth-authorization-server: true; GET /api/data: false
 */
export function answeredByProvider(provider: Provider): (req: Request) => boolean {
  const dispatch = provider.middleware.at(-1) as unknown as Dispatch;
  const routed = (method: string, path: string): boolean => {
    let matched = false;
    const probe = { method, path, params: {}, set router(_router: unknown) { matched = true; throw STOP; } };
    try {
      Promise.resolve(dispatch(probe, () => Promise.resolve())).catch(() => undefined);
    } catch (error) {
      if (error !== STOP) matched = true; // (anything else: taken for one of its own, the safe side)
    }
    return matched;
  };
  if (!routed('GET', '/.well-known/openid-configuration') || routed('GET', '/.well-known/openid-configuration/none')) {
    log('oidc-provider\'s routes could not be read: at the root of a host, every request with a malformed Host, X-Forwarded-Host or X-Forwarded-Proto is refused');
    return () => true;
  }
  // (oidc-provider takes an OPTIONS request for a CORS preflight only with a non-empty Access-Control-Request-Method)
  return (req) => (req.method !== 'OPTIONS' || Boolean(req.headers['access-control-request-method'])) && routed(req.method, req.path);
}

const STOP = Symbol('a route matched');
