import express, { type Request, type Response } from 'express';

/**
 * Answers a form POST with a 303 to the same path as a GET with the posted fields as the query.
 * OIDC Core 3.1.2.1 and RP-Initiated Logout 2 want POST at the authorization and end-session
 * endpoints; oidc-provider only takes it with SameSite=None session cookies, and the GET after a
 * 303 is a top-level navigation that carries our SameSite=Lax cookies.
 *
 * @example
 * app.post('/auth', postToGet('/op'));
 */
export function postToGet(mountPath: string): express.RequestHandler[] {
  const parse = express.urlencoded({ extended: false, limit: '16kb' });
  return [parse, (req: Request, res: Response) => {
    const query = new URLSearchParams();
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, string | string[]>;
    // repeated fields stay repeated so the provider refuses them as it would in a query
    for (const [name, value] of Object.entries(body)) for (const v of [value].flat()) query.append(name, String(v));
    res.set('Cache-Control', 'no-store');
    res.redirect(303, `${mountPath}${req.path}?${query.toString()}`);
  }];
}
