import debug from 'debug';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { StoreUnavailableError, withoutSecrets } from './errors.js';

const log = debug('openid-express:op');

const BOUNDED = Symbol.for('openid-express:bounded-session-store');

type Callback = (...results: unknown[]) => void;
type SessionStore = Record<string | symbol, unknown>;

// express-session waits on its store's callbacks (get before the route, set/touch inside res.end):
// each wrapped call calls back with a StoreUnavailableError after `ms` when the store has not, once.
function boundSessionStore(store: SessionStore | undefined, ms: number): void {
  if (!store || store[BOUNDED]) return;
  store[BOUNDED] = true;
  for (const name of ['get', 'set', 'touch', 'destroy']) {
    const original = store[name];
    if (typeof original !== 'function') continue;
    store[name] = function bounded(this: unknown, ...args: unknown[]) {
      const callback = typeof args.at(-1) === 'function' ? (args.pop() as Callback) : undefined;
      if (!callback) return original.apply(this, args);
      // once called, lets go of the callback (and the request it holds), though the store may keep `once`
      let pending: Callback | undefined = callback;
      const once: Callback = (...results) => {
        const cb = pending;
        if (cb === undefined) return;
        pending = undefined;
        clearTimeout(timer);
        cb(...results);
      };
      const timer = setTimeout(() => once(new StoreUnavailableError(`the session store's ${name} did not answer within ${ms} ms`)), ms);
      timer.unref();
      return original.call(this, ...args, once);
    };
  }
}

/**
 * Runs the app's session middleware (express-session) with a deadline: when it has not called
 * `next` within `timeoutMs`, calls `next(err)`, or leaves no `req.session`, the request is answered
 * by `unavailable` (a 503) with a StoreUnavailableError naming why, instead of waiting. The session
 * store's calls are bounded too.
 *
 * @example
 * app.post('/interaction/:uid/login', guardSession(session({ secret, store }), 3000, send503));
 */
export function guardSession(
  session: RequestHandler, timeoutMs: number, unavailable: (req: Request, res: Response, err: StoreUnavailableError) => void,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) {
        if (err) log('session store failed after the answer was decided: %s', (err as Error).message ?? err);
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (!err && req.session) return next();
      const failure = sessionFailure(err);
      log('session unavailable: %s', failure.message);
      unavailable(req, res, failure);
    };
    const timer = setTimeout(() => settle(new StoreUnavailableError(`the session middleware did not answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      void session(req, res, settle);
    } catch (err) {
      settle(err ?? new Error('session middleware threw'));
    }
    boundSessionStore((req as unknown as { sessionStore?: SessionStore }).sessionStore, timeoutMs);
  };
}

/** Why the session step failed, as a StoreUnavailableError whose message names the session store (without its secrets). */
function sessionFailure(err: unknown): StoreUnavailableError {
  if ((err as { code?: unknown } | undefined)?.code === 'store_unavailable') return err as StoreUnavailableError;
  if (!err) {
    return new StoreUnavailableError('the session middleware left no req.session: its store is disconnected (connect-redis: '
      + 'check that its Redis is running and reachable), or the session cookie\'s path does not cover the OP');
  }
  const message = err instanceof Error ? err.message || err.name : String(err);
  return new StoreUnavailableError(`the session store failed (${withoutSecrets(message)}): check that it (e.g. Redis) is running and reachable`, { cause: err });
}
