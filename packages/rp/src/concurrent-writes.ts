/**
 * A refresh saves the session in the middle of its request, so that new tokens are never lost after
 * the answer. express-session saves a session whole, as the request read it: another request of the
 * same session that saved meanwhile (the app's `lastSeen`, a login started in another tab, a cart
 * emptied) had its write undone by the refresh's save, which landed last. So the refresh reads the
 * session again just before it saves, and keeps what other requests wrote since this one read it:
 * a three-way merge, member by member (and within `req.session.oidc`), against the session as this
 * request read it. What this request changed itself, and the new login, are its own and win.
 */
import type { Request } from 'express';
import type { Session, SessionData, Store } from 'express-session';
import { sessionOp } from './session-guard.js';
import { sameJson } from './stored-login.js';

/**
 * The sessions, as their requests read them (JSON, without the cookie), of the requests that may
 * refresh: kept for the request's life only (the session object is the request's).
 */
const asRead = new WeakMap<object, string>();

/** A login's access token that expires within this many seconds at the start of a request may be refreshed by it. */
const SOON_S = 60;

type Members = Record<string, unknown>;

/**
 * Keeps the session as the request read it when the request may refresh its login: the access token
 * has expired or is about to, and there is a refresh token (or `force`: a refresh asked for). Called
 * before any of the app's handlers; costs a few property reads on every other request.
 */
export function noteSessionAsRead(session: Session & Partial<SessionData> | undefined, force = false): void {
  const auth = session?.oidc?.auth;
  if (!auth?.refreshToken) return;
  if (!force) {
    const expiresAt = auth.accessToken?.expiresAt;
    if (expiresAt === undefined || expiresAt > Date.now() / 1000 + SOON_S) return;
  }
  if (!asRead.has(session!)) asRead.set(session!, asReadJson(session!));
}

const NOTES = Symbol.for('@openid-express/rp notes sessions as read');

/**
 * Makes `store` note each session as it is read ({@link noteSessionAsRead}), once per store: at the
 * moment express-session makes it, so an app's middleware between express-session and rp() that
 * writes to the session counts as the request's own write. `refreshes`: whether a request refreshes
 * whatever its token's expiry (a POST to the refresh route). (rp() also notes the session at its
 * first layer, for a request made before it learned the store.)
 */
export function noteSessionsAsRead(store: Store, refreshes: (req: Request) => boolean): void {
  const marked = store as Store & { [NOTES]?: Array<(req: Request) => boolean> };
  // each rp() on the store (another mount path) adds its own refresh route
  if (marked[NOTES]) return void (marked[NOTES].includes(refreshes) || marked[NOTES].push(refreshes));
  const routes = (marked[NOTES] = [refreshes]);
  const create = store.createSession;
  if (typeof create !== 'function') return;
  store.createSession = function createAndNote(this: Store, req, data) {
    const session = create.call(this, req, data);
    noteSessionAsRead(session as Session & Partial<SessionData>, routes.some((refreshing) => refreshing(req as Request)));
    return session;
  };
}

/**
 * Before a refresh saves `req.session` (or, refused, leaves it to be saved without its login): reads
 * the session in the store, and takes into `req.session` every member (and member of `oidc`, but
 * `auth`) that another request changed, added or removed since this request read it, where this
 * request left it as it was. Nothing when the request's session was not noted as read
 * ({@link noteSessionAsRead}: a refresh the app asked for on a fresh token). False when the store no
 * longer has the session: it was destroyed meanwhile (a sign-out, the app's own included; a sign-in
 * that renewed the session id), and must not be written back. A store failure rejects
 * (`store_unavailable`), as the save would. `wait.over`: the caller stopped waiting (nothing is merged).
 */
export async function takeOthersWrites(req: Request, wait?: { over: boolean }): Promise<boolean> {
  const session = req.session as (Session & Partial<SessionData>) | undefined;
  const read = session && asRead.get(session);
  if (!read || !req.sessionStore) return true;
  const stored = await sessionOp<Partial<SessionData> | null | undefined>((cb) => req.sessionStore.get(req.sessionID, cb));
  if (!stored || typeof stored !== 'object') return false;
  if (wait?.over) return true; // (the caller went on without it)
  const before = JSON.parse(read) as Members;
  merge(session as unknown as Members, before, stored as Members, 'cookie', 'oidc');
  const oidc = session.oidc as Members | undefined;
  if (oidc) merge(oidc, (before.oidc ?? {}) as Members, (stored.oidc ?? {}) as Members, 'auth');
  // what this request saves now is the base of a second refresh in the same request (another scope)
  asRead.set(session, asReadJson(session));
  return true;
}

/** The session's members but its cookie, as JSON. */
function asReadJson(session: Session): string {
  const { cookie: _cookie, ...members } = session as unknown as Members;
  return JSON.stringify(members);
}

/** `mine` gets `theirs`'s value of each member it holds as in `base` (but `skip`); its own changes stay. */
function merge(mine: Members, base: Members, theirs: Members, ...skip: string[]): void {
  for (const key of new Set([...Object.keys(base), ...Object.keys(theirs)])) {
    // (`__proto__`: JSON.parse makes it an own member; assigned, it would replace the session's prototype)
    if (key === '__proto__' || skip.includes(key) || !sameJson(asJson(mine[key]), base[key]) || sameJson(theirs[key], base[key])) continue;
    if (theirs[key] === undefined) delete mine[key];
    else mine[key] = theirs[key];
  }
}

/** `value` as the store would give it back (a `Date` as its string, `undefined` members gone). */
const asJson = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)) as unknown);
