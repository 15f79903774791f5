import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/** What the OP's screens keep in `req.session` for one interaction (keyed by its uid). */
export interface InteractionState {
  /** CSRF token of this interaction's forms. */
  csrf: string;
  /** Failed attempts in this interaction. */
  attempts: number;
  /** The login name last tried, as the authenticator's `throttleKey` gives it (refills the field after a failure). */
  lastLogin?: string;
  /** The authenticator last used. */
  authenticator?: string;
  /** When the state was created (ms), to prune abandoned interactions. */
  createdAt: number;
}

/** The OP's part of `req.session`, and nothing else. */
export interface OpSessionData {
  interactions: Record<string, InteractionState>;
}

const SESSION_KEY = 'openidExpressOp';
const MAX_INTERACTIONS = 10;

function data(req: Request): OpSessionData {
  const session = req.session as unknown as Record<string, OpSessionData | undefined>;
  let d = session[SESSION_KEY];
  if (!d || typeof d.interactions !== 'object') {
    d = { interactions: {} };
    session[SESSION_KEY] = d;
  }
  return d;
}

/** Drops states older than `maxAgeMs`, and the oldest beyond ten, so the session stays small. */
function prune(d: OpSessionData, maxAgeMs: number): void {
  const now = Date.now();
  const entries = Object.entries(d.interactions)
    .filter(([, s]) => now - s.createdAt < maxAgeMs)
    .sort(([, a], [, b]) => b.createdAt - a.createdAt)
    .slice(0, MAX_INTERACTIONS);
  d.interactions = Object.fromEntries(entries);
}

/** The state of interaction `uid`, created (with a fresh CSRF token) when absent. */
export function stateFor(req: Request, uid: string, maxAgeMs: number): InteractionState {
  const d = data(req);
  prune(d, maxAgeMs);
  d.interactions[uid] ??= { csrf: randomBytes(24).toString('base64url'), attempts: 0, createdAt: Date.now() };
  return d.interactions[uid];
}

/** The state of interaction `uid` when the session has one (POSTs never create state). */
export function existingState(req: Request, uid: string): InteractionState | undefined {
  const d = (req.session as unknown as Record<string, OpSessionData | undefined>)[SESSION_KEY];
  return d?.interactions?.[uid];
}

/** Forgets interaction `uid` (it is finished). */
export function dropState(req: Request, uid: string): void {
  const d = (req.session as unknown as Record<string, OpSessionData | undefined>)[SESSION_KEY];
  if (d?.interactions) delete d.interactions[uid];
}

/** Constant-time comparison of the posted CSRF token with the expected one. */
export function csrfMatches(expected: string | undefined, posted: unknown): boolean {
  if (!expected || typeof posted !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(posted);
  return a.length === b.length && timingSafeEqual(a, b);
}
