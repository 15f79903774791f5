/**
 * A session store that stalls (Redis stopped, a network partition) must become a 503, never a
 * request that hangs: the app's express-session middleware runs with a deadline, and every call
 * express-session makes to its store later (save, touch, destroy) gets the same deadline.
 */
import type { Request, RequestHandler, Response } from 'express';
import expressSession, { type SessionData, type Store } from 'express-session';
import { RpError, logRefusal, redisFailureMessage, redisRefusal } from './errors.js';
import { connectionLimitReply, recoverReadOnlyConnection, recoverStuckConnection } from './stuck-connection.js';

const BOUNDED = Symbol('openid-express:bounded-store');
const METHODS = ['get', 'set', 'touch', 'destroy'] as const;

/** A callback-style session / store operation as a promise; a store failure is `store_unavailable` (503). */
export function sessionOp<T>(fn: (cb: (err?: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(storeFailure(err)) : resolve(value as T))));
}

const unavailable = (why: string, cause?: unknown): RpError =>
  new RpError('store_unavailable', `the session store ${why}; check that it (e.g. Redis) is running and reachable`, { cause });

/**
 * A store's error as the RP's: already an `RpError` (e.g. our deadline), else `store_unavailable`; a
 * Redis refusal (connect-redis) says what to change, as redisCoordination's do.
 */
function storeFailure(err: unknown): RpError {
  if (err instanceof RpError) return err;
  const message = redisFailureMessage(err);
  const refusal = redisRefusal(message, 'the session store', 'every key under its prefix (~sess:* for connect-redis, or the prefix you gave it)');
  if (!refusal) return unavailable(`failed (${message})`, err);
  const failure = new RpError('store_unavailable', `the session store failed (${message}); ${refusal.hint}`, { cause: err, lasting: refusal.lasting });
  logRefusal(failure);
  return failure;
}

/**
 * The calls of one store (or one session middleware) waiting for their answer, oldest first. One
 * interval, running only while calls are pending, fails those past their deadline: a timer per call
 * cost 9.3 k instructions per get + touch, this 2.4 k (bench/RESULTS.md). A stalled call fails
 * between `timeoutMs` and `timeoutMs` plus an eighth. The waiting calls are a list linked through
 * the calls themselves: a `Set` reallocated its table every few calls as calls came and went, and
 * those tables outlived the scavenges that should have collected them (bench/RESULTS.md, 2026-12-03).
 */
class Deadlines {
  private first: Pending | undefined;
  private last: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly step: number;

  constructor(readonly timeoutMs: number) {
    this.step = Math.max(5, Math.ceil(timeoutMs / 8));
  }

  /** `cb` wrapped so that it is called once: with the answer, or with `late()` after the deadline. */
  start(cb: Cb, late: () => RpError): Pending {
    const call = new Pending(this, Date.now() + this.timeoutMs, cb, late);
    const last = this.last;
    if (last === undefined) this.first = call;
    else {
      last.next = call;
      call.prev = last;
    }
    this.last = call;
    this.timer ??= setInterval(() => this.sweep(), this.step);
    return call;
  }

  /** Takes `call` off the list (once: a call already taken off is left alone). */
  end(call: Pending): void {
    const { prev, next } = call;
    if (prev !== undefined) prev.next = next;
    else if (this.first === call) this.first = next;
    else return;
    if (next !== undefined) next.prev = prev;
    else this.last = prev;
    call.prev = call.next = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    // every call has the same timeout, so the calls are in deadline order; settling a call takes it off
    for (let call = this.first; call !== undefined && call.deadline <= now; call = this.first) call.settle(call.late());
    if (this.first === undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

type Cb = (err?: unknown, value?: unknown) => void;

/** One call under a deadline; `settle` passes on the first answer only (a late answer is ignored). */
class Pending {
  private cb: Cb | undefined;
  /** Neighbours in the list of waiting calls (see `Deadlines`). */
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;

  constructor(
    private readonly deadlines: Deadlines,
    readonly deadline: number,
    cb: Cb,
    readonly late: () => RpError,
  ) {
    this.cb = cb;
  }

  settle(err?: unknown, value?: unknown): void {
    const cb = this.cb;
    if (cb === undefined) return;
    // A settled call holds on to nothing of its request. The store may keep `once` (and so this
    // call) after the answer; while this kept `cb`, V8's scavenges found most requests still alive
    // and began allocating them in the old generation: 9 instead of 2-3 us of GC per request
    // natively (bench/RESULTS.md, 2026-12-03).
    this.cb = undefined;
    this.deadlines.end(this);
    cb(err, value);
  }
}

/**
 * Runs `session` (the app's express-session middleware) so that a store failure or a store that
 * does not answer within `timeoutMs` becomes `next(RpError store_unavailable)` (a 503).
 */
export function guardedSession(session: RequestHandler, timeoutMs: number): RequestHandler {
  // bound (and checked) now, not at the first request: a store that refuses this instance is said at start-up
  const store = storeOf(session);
  if (store) checkStore(store, timeoutMs);
  const deadlines = new Deadlines(timeoutMs);
  const late = () => unavailable(`did not answer within ${timeoutMs} ms`);
  return (req, res, next) => {
    // a late answer of the store, or a save error after the response, is already handled
    const call = deadlines.start((err) => next(err === undefined ? undefined : storeFailure(err)), late);
    session(req, res, (err?: unknown) => call.settle(err));
    if (req.sessionStore) boundStore(req.sessionStore, timeoutMs);
  };
}

/**
 * The store of `session` (an express-session middleware), as it gives it to each request
 * (`req.sessionStore`), learned by running it once on a request made up here: without a cookie it
 * reads nothing, and the response never ends, so it writes nothing. Undefined for a middleware of
 * another kind, or a cookie path that leaves out `/` (the store is then bound at the first request).
 */
function storeOf(session: RequestHandler): Store | undefined {
  const req = { method: 'GET', url: '/', originalUrl: '/', headers: {}, connection: {}, socket: {} } as unknown as Request;
  try {
    // (a middleware of the app's that returns a promise, a wrapper around express-session: its failure on this made-up request is nobody's)
    const ran = session(req, {} as Response, () => undefined) as unknown;
    if (ran instanceof Promise) ran.catch(() => undefined);
  } catch {
    // (express-session names its store on the request before anything that could throw on a made-up one)
  }
  return req.sessionStore;
}

/** The session the start-up check writes and deletes: an id express-session never makes (rp()'s own records start `oidc-` too). */
const CHECK_ID = 'oidc-startup-check';
const checked = new WeakSet<Store>();

/**
 * Says at start-up what would otherwise show only at the first sign-ins, as redisCoordination's
 * start-up check does: a store that refuses this instance (a Redis ACL user without the store's key
 * pattern, a password it was not given) is said in the log with what to change (`storeFailure`). A
 * session is written (for 5 s) and deleted, in the background: nothing is said when that works, and a
 * store not reachable yet, or too slow, is left to the requests' own 503s. Once per store; binds it
 * (`boundStore`) too.
 */
export function checkStore(store: Store, timeoutMs: number): void {
  boundStore(store, timeoutMs);
  if (checked.has(store) || cannotStall(store)) return; // (express-session's MemoryStore refuses nothing either)
  checked.add(store);
  const session = { cookie: { originalMaxAge: 5_000, expires: new Date(Date.now() + 5_000) } } as unknown as SessionData;
  sessionOp<void>((cb) => store.set(CHECK_ID, session, cb))
    .then(() => sessionOp<void>((cb) => store.destroy(CHECK_ID, cb)))
    .catch(() => undefined);
}

/**
 * express-session's own `MemoryStore`, as it comes: it answers every call on the next turn of the
 * event loop, from this process's memory, so it cannot stall and a deadline would only cost each
 * request (two calls) an allocation and a list entry. A subclass, another copy of express-session,
 * or a method replaced on the instance gets the deadline.
 */
function cannotStall(store: Store): boolean {
  return inThisProcess(store) && METHODS.every((name) => !Object.hasOwn(store, name));
}

/**
 * Whether `store` is express-session's own `MemoryStore`: sessions no other process (no other instance) can read.
 * Not when a session method was replaced on the instance (a library writing through to a shared store),
 * unless by one of rp()'s own wrappers over the MemoryStore's method ({@link storeWrapper}).
 */
export function inThisProcess(store: Store): boolean {
  const memory = expressSession.MemoryStore.prototype as unknown as Record<string, unknown>;
  return Object.getPrototypeOf(store) === memory && METHODS.every((name) => underWrappers((store as unknown as Record<string, unknown>)[name]) === memory[name]);
}

/** rp()'s own wrappers of a store's methods, each with the method it wraps. */
const wrapped = new WeakMap<object, unknown>();

/** Registers `wrapper`, which rp() puts on a store in place of `original` (for {@link inThisProcess}); returns it. */
export function storeWrapper<F extends object>(wrapper: F, original: unknown): F {
  wrapped.set(wrapper, original);
  return wrapper;
}

/** The method under rp()'s wrappers of it. */
function underWrappers(method: unknown): unknown {
  while (typeof method === 'function' && wrapped.has(method)) method = wrapped.get(method);
  return method;
}

/**
 * Gives each callback-style call of `store` a deadline (once per store): after `timeoutMs` (and at
 * most an eighth more) the callback gets an error and a late answer is ignored. express-session
 * otherwise waits forever on a stalled store before it ends the response.
 */
export function boundStore(store: Store, timeoutMs: number): void {
  const marked = store as Store & { [BOUNDED]?: true };
  if (marked[BOUNDED]) return;
  marked[BOUNDED] = true;
  if (cannotStall(store)) return;
  const deadlines = new Deadlines(timeoutMs);
  // a failed call only (nothing on a successful call's path): READONLY from the old master after a
  // failover behind one endpoint, where a new connection may reach the new one; a client reconnecting
  // in vain because Redis is at its connection limit, which node-redis does not say
  const client = (): unknown => (store as { client?: unknown }).client;
  const failed = (err: unknown): unknown => {
    if (String((err as Error)?.message).startsWith('READONLY')) recoverReadOnlyConnection(client(), 'the session store');
    const limit = connectionLimitReply(client());
    // node-redis's TimeoutError has no message: said with the client's timeout, which only the client knows
    return limit ? new Error(limit, { cause: err }) : (err as Error)?.message === '' ? new Error(redisFailureMessage(err, client()), { cause: err }) : err;
  };
  for (const name of METHODS) {
    const original = (store as unknown as Record<string, unknown>)[name];
    if (typeof original !== 'function') continue;
    const late = () => {
      // a store over node-redis (connect-redis keeps it as `client`): is its connection dead while Redis answers?
      recoverStuckConnection(client(), timeoutMs, 'the session store');
      const limit = connectionLimitReply(client());
      return limit ? storeFailure(new Error(limit)) : unavailable(`did not answer within ${timeoutMs} ms (${name})`);
    };
    // (sid, cb) or (sid, session, cb), as express-session calls them: no argument arrays on this path
    (store as unknown as Record<string, unknown>)[name] = storeWrapper(function bounded(this: Store, a: unknown, b: unknown) {
      const n = arguments.length;
      const cb = arguments[n - 1] as unknown;
      if (typeof cb !== 'function') return (original as (...args: unknown[]) => unknown).apply(this, arguments as unknown as unknown[]);
      const call = deadlines.start(cb as Cb, late);
      const once: Cb = (err, value) => call.settle(err ? failed(err) : err, value);
      const fn = original as (...args: unknown[]) => unknown;
      if (n === 2) return fn.call(this, a, once);
      if (n === 3) return fn.call(this, a, b, once);
      return fn.apply(this, [...Array.prototype.slice.call(arguments, 0, -1), once]); // other arities: the general way
    }, original);
  }
}
