import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { OpApp } from './router.js';

const METADATA = '/.well-known/oauth-authorization-server';

/**
 * A router for the app's root serving the OP's RFC 8414 metadata where RFC 8414 puts it for an
 * issuer with a path: `/.well-known/oauth-authorization-server/op` for `https://host/op`
 * (oidc-provider itself answers under the mount: `/op/.well-known/...`). OAuth 2.0 clients that
 * discover by RFC 8414 (openid-client with `algorithm: 'oauth2'`) need it.
 *
 * @example
 * const provider = op({ issuer: 'https://id.example.com/op', accounts });
 * app.use('/op', provider);
 * app.use(authorizationServerMetadata(provider));
 */
export function authorizationServerMetadata(opApp: OpApp): Router {
  const mountPath = new URL(opApp.issuer).pathname.replace(/\/$/, '');
  const router = express.Router();
  if (!mountPath) return router; // at the root, oidc-provider's own route is the RFC 8414 one
  router.get(`${METADATA}${mountPath}`, (req: Request, res: Response, next: NextFunction) => {
    // hand the request to op() as if it had come in under the mount
    req.url = METADATA;
    req.originalUrl = `${mountPath}${METADATA}`;
    req.baseUrl = mountPath;
    opApp(req, res, next);
  });
  return router;
}
