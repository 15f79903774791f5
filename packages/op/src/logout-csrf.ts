import { randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { csrfMatches } from './interaction-state.js';

const KEY = 'openidExpressOpLogoutCsrf';

type Bag = Record<string, string | undefined>;

/** The CSRF token of the logout confirmation form, kept in `req.session` (created when absent). */
export function logoutCsrfFor(req: Request): string {
  const session = req.session as unknown as Bag;
  session[KEY] ??= randomBytes(24).toString('base64url');
  return session[KEY];
}

/**
 * Refuses a logout confirmation POST whose `csrf` field does not match the session's token:
 * 403 and nothing changes. oidc-provider's own `xsrf` check still runs after this one.
 * A browser that was never shown our logout page has no token: without an OP session,
 * oidc-provider skips the page and auto-posts its own form, guarded by its `xsrf` alone.
 */
export function checkLogoutCsrf(onRefused: (req: Request, res: Response) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    const expected = (req.session as unknown as Bag | undefined)?.[KEY];
    const posted = (req.body as Bag | undefined)?.csrf;
    if (expected === undefined && posted === undefined) return next();
    if (!csrfMatches(expected, posted)) return onRefused(req, res);
    next();
  };
}
