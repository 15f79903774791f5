import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import type { OpStore } from './adapters/types.js';

/** What the OP's screens keep for one interaction, in the `adapter` store under its uid. */
export interface InteractionState {
  /** CSRF token of this interaction's forms. */
  csrf: string;
  /** Failed attempts in this interaction. */
  attempts: number;
  /** The login name last tried, as the authenticator's `throttleKey` gives it (refills the field after a failure). */
  lastLogin?: string;
  /** The authenticator last used. */
  authenticator?: string;
}

/** Reads and writes interaction states; each expires with its interaction. */
export interface InteractionStates {
  /** The state of interaction `uid`, created (with a fresh CSRF token) when absent. */
  stateFor(uid: string, expiresAt?: number, found?: Promise<InteractionState | undefined>): Promise<InteractionState>;
  /** The state of interaction `uid`, if it has one (POSTs never create state). */
  existing(uid: string): Promise<InteractionState | undefined>;
  /** Writes `state` back (after a failed attempt). */
  save(uid: string, state: InteractionState, expiresAt?: number): Promise<void>;
  /** Forgets interaction `uid` (it is finished). */
  drop(uid: string): Promise<void>;
}

/** The store's model name: ours, apart from oidc-provider's models. */
export const INTERACTION_STATE_MODEL = 'OpInteractionState';

function isState(v: unknown): v is InteractionState {
  return typeof v === 'object' && v !== null && typeof (v as InteractionState).csrf === 'string'
    && typeof (v as InteractionState).attempts === 'number';
}

/**
 * Interaction states in the `adapter` store, one record per interaction uid, so two logins of one
 * browser (two tabs) or two OP instances never overwrite each other's state. The interaction itself
 * is bound to the browser by oidc-provider's interaction cookie.
 *
 * @example
 * const states = interactionStates(store, 3600);
 * const { csrf } = await states.stateFor(uid, interaction.exp);
 */
export function interactionStates(store: OpStore, ttlSeconds: number): InteractionStates {
  const adapter = store.adapterFor(INTERACTION_STATE_MODEL);
  // the record lives as long as its interaction (`exp`, epoch seconds), else the Interaction ttl
  const expiresIn = (exp?: number) => (exp ? Math.max(exp - Math.floor(Date.now() / 1000), 1) : ttlSeconds);
  const existing = async (uid: string) => {
    const found: unknown = await adapter.find(uid);
    return isState(found) ? found : undefined;
  };
  const save = (uid: string, state: InteractionState, exp?: number) =>
    adapter.upsert(uid, { ...state } as AdapterPayload, expiresIn(exp));
  return {
    existing,
    save,
    // `known`: the read already under way (started with the interaction's, see interactions.ts)
    async stateFor(uid, exp, known) {
      const found = await (known ?? existing(uid));
      if (found) return found;
      const state: InteractionState = { csrf: randomBytes(24).toString('base64url'), attempts: 0 };
      await save(uid, state, exp);
      return state;
    },
    drop: (uid) => adapter.destroy(uid),
  };
}

/** Constant-time comparison of the posted CSRF token with the expected one. */
export function csrfMatches(expected: string | undefined, posted: unknown): boolean {
  if (!expected || typeof posted !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(posted);
  return a.length === b.length && timingSafeEqual(a, b);
}
