/**
 * Finding things in an Express app (4 or 5) without running it: the `rp()` routers and the
 * express-session middleware (a function named "session") in the order they are mounted.
 */
import type { Application, RequestHandler } from 'express';
import type { RpRouter } from '../router.js';

interface Layer {
  handle?: unknown;
  name?: string;
}

export interface AppInventory {
  routers: RpRouter[];
  /** express-session middleware mounted before the first rp() router. */
  sessionBefore?: RequestHandler;
  /** express-session middleware mounted after it (too late for rp()). */
  sessionAfter?: RequestHandler;
}

/** The middleware stack of an app: `app._router.stack` (Express 4), `app.router.stack` (Express 5). */
function stackOf(app: unknown): Layer[] {
  const a = app as { _router?: { stack?: Layer[] }; router?: { stack?: Layer[] }; stack?: Layer[] };
  if (Array.isArray(a.stack)) return a.stack; // an express.Router()
  if (Array.isArray(a._router?.stack)) return a._router.stack;
  try {
    return Array.isArray(a.router?.stack) ? a.router.stack : []; // Express 4 throws on app.router
  } catch {
    return [];
  }
}

export const isRpRouter = (value: unknown): value is RpRouter =>
  typeof value === 'function' && !!(value as { relyingParty?: unknown }).relyingParty && typeof (value as { stack?: unknown }).stack === 'object';

/** True for an Express application (`express()`: it has `settings`), not a router. */
export const isApp = (value: unknown): value is Application =>
  typeof value === 'function' && typeof (value as { use?: unknown }).use === 'function' && typeof (value as { settings?: unknown }).settings === 'object' && !isRpRouter(value);

export function inspectApp(app: Application): AppInventory {
  const found: AppInventory = { routers: [] };
  const walk = (stack: Layer[], depth: number): void => {
    for (const layer of stack) {
      const handle = layer.handle;
      if (isRpRouter(handle)) {
        found.routers.push(handle);
      } else if (typeof handle === 'function' && handle.name === 'session') {
        if (found.routers.length === 0) found.sessionBefore ??= handle as RequestHandler;
        else found.sessionAfter ??= handle as RequestHandler;
      } else if (depth < 5 && typeof handle === 'function' && Array.isArray((handle as { stack?: unknown }).stack)) {
        walk((handle as unknown as { stack: Layer[] }).stack, depth + 1); // a nested express.Router()
      }
    }
  };
  walk(stackOf(app), 0);
  return found;
}
