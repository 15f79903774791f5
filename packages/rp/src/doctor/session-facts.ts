/**
 * What the doctor can learn about the app's express-session: from `doctor({ session })` (the options given
 * to `session()`, or its middleware), `rp({ session })`, or the middleware mounted in `app` before `rp()`.
 *
 * A middleware is read by running it on synthetic requests for the callback path, without a cookie:
 * express-session then only generates a new session in memory (no store call), which shows its cookie
 * options and its store; marking that session modified and starting the response headers shows the
 * cookie's name. The synthetic response is never ended, so nothing is saved.
 */
import type { RequestHandler } from 'express';
import type { SessionOptions } from 'express-session';
import type { RelyingParty } from '../relying-party.js';
import { inspectApp } from './app.js';
import type { DoctorOptions, SessionFacts } from './types.js';

interface Run {
  handled: boolean;
  error?: unknown;
  session?: { cookie?: { secure?: boolean; sameSite?: SessionFacts['sameSite']; path?: string } };
  store?: object;
  cookieName?: string;
}

/** Runs `middleware` once on a synthetic GET of `path`. */
function run(middleware: RequestHandler, path: string, opts: { encrypted: boolean; forwardedHttps?: boolean }): Run {
  const headers: Record<string, string> = { host: 'doctor.invalid' };
  if (opts.forwardedHttps) headers['x-forwarded-proto'] = 'https';
  const socket = { encrypted: opts.encrypted };
  const req = { method: 'GET', url: path, originalUrl: path, path, headers, connection: socket, socket, secure: false, get: (n: string) => headers[n.toLowerCase()] } as Record<string, unknown>;
  const resHeaders = new Map<string, unknown>();
  const res = {
    statusCode: 200,
    headersSent: false,
    getHeader: (n: string) => resHeaders.get(n.toLowerCase()),
    setHeader: (n: string, v: unknown) => void resHeaders.set(n.toLowerCase(), v),
    removeHeader: (n: string) => void resHeaders.delete(n.toLowerCase()),
    writeHead: () => res,
    write: () => true,
    end: () => res,
    on: () => res,
    once: () => res,
  };
  const out: Run = { handled: false };
  try {
    middleware(req as never, res as never, (err?: unknown) => {
      out.handled = true;
      out.error = err;
    });
  } catch (err) {
    return { handled: true, error: err };
  }
  const session = req.session as (Record<string, unknown> & Run['session']) | undefined;
  out.session = session;
  out.store = req.sessionStore as object | undefined;
  if (session) {
    session.openidExpressDoctor = true; // modified: express-session sets its cookie when the headers start
    res.writeHead();
    const set = resHeaders.get('set-cookie');
    const first = Array.isArray(set) ? set[0] : set;
    if (typeof first === 'string') out.cookieName = decodeURIComponent(first.split('=')[0]);
  }
  return out;
}

/** Reads an express-session middleware (see the file comment). */
export function probeMiddleware(middleware: RequestHandler, callbackPath: string, source: string): SessionFacts | undefined {
  const plain = run(middleware, callbackPath, { encrypted: false });
  if (!plain.handled) return undefined; // not express-session itself (a wrapper that waits for something)
  if (plain.error) {
    return { source, problem: { detail: `the session middleware (${source}) failed: ${(plain.error as Error).message ?? plain.error}`, fix: 'give session() a secret: session({ secret, resave: false, saveUninitialized: false })' } };
  }
  if (!plain.session) {
    return {
      source,
      problem: {
        detail: `the session middleware (${source}) made no session for the callback path ${callbackPath}: its cookie path does not cover it, or its store is disconnected`,
        fix: `let the session cookie cover the RP's routes (cookie.path "/" or a prefix of ${callbackPath}) and check the store's connection`,
      },
    };
  }
  const tls = run(middleware, callbackPath, { encrypted: true });
  const forwarded = run(middleware, callbackPath, { encrypted: false, forwardedHttps: true });
  const plainSecure = plain.session.cookie?.secure === true;
  const tlsSecure = tls.session?.cookie?.secure === true;
  const secure: SessionFacts['secure'] = plainSecure ? true : tlsSecure ? 'auto' : false;
  // with `proxy: true`, express-session believes X-Forwarded-Proto: the secure cookie is set / 'auto' turns secure
  const proxy = secure === 'auto' ? forwarded.session?.cookie?.secure === true : secure === true ? forwarded.cookieName !== undefined : undefined;
  return {
    source,
    name: tls.cookieName,
    secure,
    sameSite: tls.session?.cookie?.sameSite,
    path: tls.session?.cookie?.path,
    store: plain.store,
    proxy: proxy || undefined,
  };
}

/** From the options object given to `session()`. */
function fromOptions(o: SessionOptions, source: string): SessionFacts {
  const cookie = typeof o.cookie === 'object' && o.cookie ? o.cookie : {};
  return {
    source,
    name: o.name ?? 'connect.sid',
    secure: cookie.secure ?? false,
    sameSite: cookie.sameSite as SessionFacts['sameSite'],
    path: cookie.path ?? '/',
    store: o.store ?? { constructor: { name: 'MemoryStore' } },
    proxy: o.proxy,
  };
}

/** Everything known about the session, or why nothing is. */
export function sessionFacts(rp: RelyingParty, options: DoctorOptions): { facts?: SessionFacts; unknown?: string } {
  const callbackPath = new URL(`${rp.options.baseURL}${rp.options.mountPath}/callback/x`).pathname.replace(/x$/, '');
  const unreadable = (source: string) => ({
    unknown: `the session middleware of ${source} did not answer a synthetic request at once, so its settings could not be read: pass doctor(router, { session: sessionOptions }) (the options given to session())`,
  });
  const probe = (mw: RequestHandler, source: string): { facts?: SessionFacts; unknown?: string } => {
    const facts = probeMiddleware(mw, callbackPath, source);
    return facts ? { facts } : unreadable(source);
  };
  const s = options.session;
  if (typeof s === 'function') return probe(s, 'the session middleware given to doctor()');
  if (s && typeof s === 'object') return { facts: fromOptions(s, 'the session options given to doctor()') };
  if (rp.options.session) return probe(rp.options.session, 'express-session given as rp({ session })');
  if (!options.app) return { unknown: 'the session settings are unknown: pass doctor(router, { app }) or { session: sessionOptions }, or give rp({ session })' };
  const found = inspectApp(options.app);
  if (found.sessionBefore) return probe(found.sessionBefore, 'express-session mounted in the app before rp()');
  if (found.sessionAfter) {
    const facts = probeMiddleware(found.sessionAfter, callbackPath, 'express-session mounted in the app after rp()');
    if (!facts) return unreadable('the app');
    return {
      facts: {
        ...facts,
        problem: facts.problem ?? {
          detail: 'express-session is mounted after rp(): the RP routes run without a session (session_missing)',
          fix: 'app.use(session({ ... })) before app.use(rp({ ... })), or pass it as rp({ session: session({ ... }) })',
        },
      },
    };
  }
  return { unknown: 'no express-session middleware (a function named "session") was found in the app before rp(): pass doctor(router, { session: sessionOptions }) to check it, or rp({ session })' };
}

/** The class name of a store ("MemoryStore", "RedisStore" …). */
export function storeName(store: object | undefined): string | undefined {
  const name = (store as { constructor?: { name?: unknown } } | undefined)?.constructor?.name;
  return typeof name === 'string' && name ? name : undefined;
}
