import { randomBytes } from 'node:crypto';
import { finished } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { csrfMatches } from './interaction-state.js';

const KEY = 'openidExpressOpLogoutCsrf';
/** oidc-provider's `xsrf` secret of this browser's logout form, kept with our token (see `sameLogoutXsrf`). */
const XSRF = 'openidExpressOpLogoutXsrf';
const LIMIT = 16 * 1024;

type Bag = Record<string, string | undefined>;

/** The CSRF token of the logout confirmation form, kept in `req.session` (created when absent). */
export function logoutCsrfFor(req: Request): string {
  const session = req.session as unknown as Bag;
  session[KEY] ??= randomBytes(24).toString('base64url');
  return session[KEY];
}

/**
 * The `xsrf` secret the logout form of this browser carries: the one of its earlier "Sign out?" page
 * while that page is not confirmed and asked the same (the same client, `post_logout_redirect_uri`
 * and `state`), else oidc-provider's fresh one (`state`, which it put in the form and keeps in the OP
 * session, is set to it). oidc-provider makes a new secret at every end-session GET, so a second tab's
 * "Sign out?" page made the first one's form stale: "xsrf token invalid", and the user stayed signed in
 * at the OP. Only for the same request: oidc-provider keeps one pending logout per browser (the last
 * page's), so an earlier page of another app (or one another site opened) would act on the later one's
 * client and redirect (review). Used up with our token when a confirmation passes.
 */
export function sameLogoutXsrf(req: Request, state: { secret: string; clientId?: string; postLogoutRedirectUri?: string; state?: string }): string {
  const session = req.session as unknown as Bag;
  const asked = JSON.stringify([state.clientId ?? '', state.postLogoutRedirectUri ?? '', state.state ?? '']);
  const [earlier, of] = (session[XSRF] ?? '').split('\n');
  if (earlier && of === asked) state.secret = earlier;
  else session[XSRF] = `${state.secret}\n${asked}`;
  return state.secret;
}

/** Resolves at the stream's next `readable`; rejects when it errors or closes first (the client went away). */
function readable(req: Request): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      req.off('readable', onReadable).off('error', settle).off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReadable = () => settle();
    const onClose = () => settle(Object.assign(new Error('request aborted'), { status: 400, type: 'request.aborted' }));
    req.on('readable', onReadable).on('error', settle).on('close', onClose);
  });
}

/**
 * A form body an app's catch-all parser before op() (express.raw() or express.text() for every
 * content type, kept for webhook signatures) left as the bytes that came, read as a form; undefined
 * for a body parsed already (an object) or none.
 */
export function formBytes(body: unknown): URLSearchParams | undefined {
  return typeof body === 'string' || Buffer.isBuffer(body) ? new URLSearchParams(body.toString('utf8')) : undefined;
}

/** A body an app's parser made (`express.urlencoded()`) as form fields. */
function fieldsOf(body: unknown): URLSearchParams {
  const bytes = formBytes(body);
  if (bytes) return bytes;
  const out = new URLSearchParams();
  if (body && typeof body === 'object') {
    for (const [name, value] of Object.entries(body)) for (const v of [value].flat()) if (typeof v === 'string') out.append(name, v);
  }
  return out;
}

/**
 * Refuses a body over LIMIT (413) once the rest of it has been read off and dropped, as body-parser
 * does: left unread (a read() makes Node skip its own drain at the answer's end), it held up the
 * keep-alive connection, and the next request on it (another user's, through a pooling proxy) hung.
 */
function tooLarge(req: Request): Promise<never> {
  return new Promise((_resolve, reject) => {
    finished(req, () => reject(Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' })));
    req.resume();
  });
}

/**
 * The fields of a urlencoded POST body, read without using it up: the bytes are put back on the
 * stream (`unshift`, before its `end`), so oidc-provider, which parses the same body after us, reads
 * it from the stream as it expects. (An Express body parser here would make it print "already
 * parsed request body detected".)
 */
export async function peekForm(req: Request): Promise<URLSearchParams> {
  if (req.readableEnded) return fieldsOf(req.body); // the app's own body parser ran before op()
  if (!req.is('application/x-www-form-urlencoded') || req.headers['content-length'] === '0') return new URLSearchParams();
  if (Number(req.headers['content-length']) > LIMIT) return tooLarge(req);
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const chunk = req.read() as Buffer | null;
    if (chunk !== null) {
      size += chunk.length;
      if (size > LIMIT) return tooLarge(req);
      chunks.push(chunk);
    } else if (req.complete) {
      break;
    } else {
      await readable(req);
    }
  }
  // synchronous from the last read: the stream has not emitted `end` yet, so the bytes can go back
  const body = Buffer.concat(chunks, size);
  if (size) req.unshift(body);
  return new URLSearchParams(body.toString('utf8'));
}

/**
 * Refuses a logout confirmation POST whose `csrf` field does not match the session's token:
 * 403 and nothing changes. oidc-provider's own `xsrf` check still runs after this one, on the same
 * body (see `peekForm`). A browser that was never shown our logout page has no token: without an
 * OP session, oidc-provider skips the page and auto-posts its own form, guarded by its `xsrf` alone.
 * A token is used up by the confirmation it guarded, so a browser that signed out once is such a
 * browser again at its next logout.
 */
export function checkLogoutCsrf(onRefused: (req: Request, res: Response) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    peekForm(req).then((fields) => {
      const expected = (req.session as unknown as Bag | undefined)?.[KEY];
      const posted = fields.getAll('csrf');
      // no token of ours in this browser session: never shown our page, or its token already used (a
      // sign-out clicked twice): oidc-provider's own `xsrf`, kept in the OP session, still guards it
      if (expected === undefined) return next();
      if (posted.length !== 1 || !csrfMatches(expected, posted[0])) return onRefused(req, res);
      // single use: the next logout of this browser, once the OP session is gone, is oidc-provider's
      // auto-posted form (no page of ours, so no token), which must not meet this one
      delete (req.session as unknown as Bag)[KEY];
      delete (req.session as unknown as Bag)[XSRF];
      // a session that held nothing else is deleted, not written back empty (every logout left an
      // empty record for the store's TTL); one the app also keeps its own data in is kept
      if (Object.keys(req.session).every((key) => key === 'cookie')) return void req.session.destroy((err?: unknown) => next(err));
      next();
    }, next);
  };
}
