/**
 * A session store that stalls (Redis stopped, a network partition) must become a 503, never a
 * request that hangs: the app's express-session middleware runs with a deadline, and every call
 * express-session makes to its store later (save, touch, destroy) gets the same deadline.
 */
import type { RequestHandler } from 'express';
import type { Store } from 'express-session';
import { RpError } from './errors.js';

const BOUNDED = Symbol('openid-express:bounded-store');
const METHODS = ['get', 'set', 'touch', 'destroy'] as const;

/** A callback-style session / store operation as a promise; a store failure is `store_unavailable` (503). */
export function sessionOp<T>(fn: (cb: (err?: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(storeFailure(err)) : resolve(value as T))));
}

const unavailable = (why: string, cause?: unknown): RpError =>
  new RpError('store_unavailable', `the session store ${why}; check that it (e.g. Redis) is running and reachable`, { cause });

/** A store's error as the RP's: already an `RpError` (e.g. our deadline), else `store_unavailable`. */
const storeFailure = (err: unknown): RpError => (err instanceof RpError ? err : unavailable(`failed (${(err as Error)?.message ?? err})`, err));

/**
 * Runs `session` (the app's express-session middleware) so that a store failure or a store that
 * does not answer within `timeoutMs` becomes `next(RpError store_unavailable)` (a 503).
 */
export function guardedSession(session: RequestHandler, timeoutMs: number): RequestHandler {
  return (req, res, next) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return; // a late answer of the store, or a save error after the response: already handled
      done = true;
      clearTimeout(timer);
      next(err === undefined ? undefined : storeFailure(err));
    };
    const timer = setTimeout(() => finish(unavailable(`did not answer within ${timeoutMs} ms`)), timeoutMs);
    session(req, res, finish);
    if (req.sessionStore) boundStore(req.sessionStore, timeoutMs);
  };
}

/**
 * Gives each callback-style call of `store` a deadline (once per store): after `timeoutMs` the
 * callback gets an error and a late answer is ignored. express-session otherwise waits forever on
 * a stalled store before it ends the response.
 */
export function boundStore(store: Store, timeoutMs: number): void {
  const marked = store as Store & { [BOUNDED]?: true };
  if (marked[BOUNDED]) return;
  marked[BOUNDED] = true;
  for (const name of METHODS) {
    const original = (store as unknown as Record<string, unknown>)[name];
    if (typeof original !== 'function') continue;
    // (sid, cb) or (sid, session, cb), as express-session calls them: no argument arrays on this path
    (store as unknown as Record<string, unknown>)[name] = function bounded(this: Store, a: unknown, b: unknown) {
      const n = arguments.length;
      const cb = arguments[n - 1] as unknown;
      if (typeof cb !== 'function') return (original as (...args: unknown[]) => unknown).apply(this, arguments as unknown as unknown[]);
      let called = false;
      const once = (err?: unknown, value?: unknown): void => {
        if (called) return;
        called = true;
        clearTimeout(timer);
        (cb as (err?: unknown, value?: unknown) => void)(err, value);
      };
      // a timer per call: measured cheaper under load than one shared timer over a set of pending calls
      const timer = setTimeout(() => once(unavailable(`did not answer within ${timeoutMs} ms (${name})`)), timeoutMs);
      const call = original as (...args: unknown[]) => unknown;
      if (n === 2) return call.call(this, a, once);
      if (n === 3) return call.call(this, a, b, once);
      return call.apply(this, [...Array.prototype.slice.call(arguments, 0, -1), once]); // other arities: the general way
    };
  }
}
