/**
 * How long the session store keeps a session that holds nothing but pending logins: a browser that
 * came to sign in and did nothing else. Every anonymous visit of the login route writes one, and the
 * store's default life (connect-redis: a day) would let a flood of them fill it (with Redis on
 * `noeviction`, a full store stops every sign-in). Such a session is written to the store with an
 * expiry `lifeMs` from now (stores take their TTL from `cookie.expires`), and read back with the
 * app's own cookie settings (`createSession`): the browser's cookie is never changed, and once the session holds a
 * login or the app's own data (a cart), it is written with the app's settings again.
 */
import type { SessionData, Store } from 'express-session';
import { storeWrapper } from './session-guard.js';

const WRAPPED = Symbol('openid-express:pending-life');
/** Where the stored copy keeps the app's own `expires` (the stored one is the shortened life). */
const APP_EXPIRES = 'oidcAppExpires';

type Cb = (err?: unknown, value?: unknown) => void;
type Stored = { cookie?: Record<string, unknown> } & Record<string, unknown>;

/** True when `session` holds no login and nothing of the app's: only its cookie and pending logins. */
export function holdsOnlyPendingLogins(session: object | null | undefined): boolean {
  if (!session) return false;
  const { oidc } = session as Partial<SessionData>;
  if (oidc?.auth !== undefined) return false;
  for (const key of Object.keys(session)) if (key !== 'cookie' && key !== 'oidc') return false;
  return true;
}

/** Makes `store` keep sessions that only hold pending logins `lifeMs` at most (once per store). */
export function shortLivedPendingLogins(store: Store, lifeMs: number): void {
  const marked = store as Store & { [WRAPPED]?: true };
  if (marked[WRAPPED]) return;
  marked[WRAPPED] = true;
  const { set, touch, createSession } = store as unknown as Record<'set' | 'touch' | 'createSession', ((...args: unknown[]) => unknown) | undefined>;
  store.set = storeWrapper(function shortSet(this: Store, sid: string, session: SessionData, cb?: Cb) {
    return set!.call(this, sid, shortened(session, lifeMs), cb);
  }, set);
  if (typeof touch === 'function') {
    store.touch = storeWrapper(function shortTouch(this: Store, sid: string, session: SessionData, cb?: Cb) {
      return touch.call(this, sid, shortened(session, lifeMs), cb);
    }, touch);
  }
  // express-session makes `req.session` of what the store gave back here (no allocation on the way for other sessions)
  (store as unknown as { createSession: unknown }).createSession = function restoringCreate(this: Store, req: unknown, session: Stored) {
    return createSession!.call(this, req, restored(session));
  };
}

/** What the store is given for `session`: a copy that expires within `lifeMs` when it holds only pending logins. */
function shortened(session: SessionData, lifeMs: number): SessionData {
  if (!holdsOnlyPendingLogins(session) || !session.cookie) return session;
  const cookie = session.cookie as unknown as { toJSON?: () => Record<string, unknown>; expires?: Date | string | null };
  const until = Date.now() + lifeMs;
  const appExpires = cookie.expires ? new Date(cookie.expires).getTime() : null;
  if (appExpires !== null && appExpires <= until) return session; // the app's own life is shorter
  const data = typeof cookie.toJSON === 'function' ? cookie.toJSON() : { ...cookie };
  return { ...session, cookie: { ...data, expires: new Date(until), [APP_EXPIRES]: appExpires === null ? null : new Date(appExpires) } } as unknown as SessionData;
}

/** A session as the store gave it back, with the app's own cookie expiry again. */
function restored(session: Stored | null | undefined): Stored | null | undefined {
  const cookie = session?.cookie;
  if (!cookie || !(APP_EXPIRES in cookie)) return session;
  const { [APP_EXPIRES]: appExpires, ...rest } = cookie;
  return { ...session, cookie: { ...rest, expires: appExpires ?? null } };
}
