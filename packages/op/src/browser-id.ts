import { createHash } from 'node:crypto';
import type { Request } from 'express';

/** Where the browser's session keeps its id (see browserId). */
const BROWSER_ID = 'openidExpressOpBrowser';

type Bag = Record<string, unknown> | undefined;

/**
 * An id of this browser, kept in its express-session, for binding records of a sign-in under way
 * elsewhere (upstream's) to the browser that started it. Made from the session's id when first
 * needed, so two tabs that read a session without one at the same moment write the same value (the
 * session is saved whole: a random one each would leave only the last tab's), and kept when a sign-in
 * renews the session (`renewed`), so another tab's sign-in under way stays this browser's.
 */
export function browserId(req: Request): string {
  const session = req.session as unknown as Record<string, unknown>;
  const id = session[BROWSER_ID];
  if (typeof id === 'string') return id;
  return (session[BROWSER_ID] = createHash('sha256').update(req.sessionID).digest('base64url'));
}

/** The browser's id when its session has one (a callback reads it without making a session). */
export function knownBrowserId(req: Request): string | undefined {
  const id = (req.session as unknown as Bag)?.[BROWSER_ID];
  return typeof id === 'string' ? id : undefined;
}

/** Regenerates `req.session` (a new id, no data) keeping the browser's id. */
export function renewed(req: Request): Promise<void> {
  const id = knownBrowserId(req);
  return new Promise((resolve, reject) => req.session.regenerate((err: unknown) => {
    if (err) return reject(err);
    if (id) (req.session as unknown as Record<string, unknown>)[BROWSER_ID] = id;
    resolve();
  }));
}
