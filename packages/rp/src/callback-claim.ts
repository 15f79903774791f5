/**
 * One code exchange per login answer across every instance, and one outcome for every copy of it.
 *
 * The same answer can reach the callback more than once: a double click, a reload while the first
 * copy is still being answered, a load balancer that sends the GET again to another instance after
 * the first one died. Redeeming its code twice makes the OP revoke what it issued (RFC 6749 §4.1.2),
 * so one request (the owner) claims the answer and the copies wait for how it ended:
 * - **signed in**: a copy from the same browser (the same session cookie, and the same `state`) joins that login, so
 *   the browser ends signed in whichever answer it shows. The new session id is sealed with the
 *   browser's session cookie (whole, as express-session signed it), the `state` and the answer's code
 *   (or ID token): a copy must be the very answer the OP sent that browser, with that browser's cookie.
 *   The session id alone is not enough (a store's reader or a log line may know it: review-60), nor are
 *   the cookie and the `state` (someone who planted their session in the victim's browser, session
 *   fixation, and started that sign-in knows both);
 * - **failed for good** (the OP refused the code, a check failed): "already used";
 * - **failed for now** (the OP or the store down): a copy takes the claim over and tries again, from
 *   the session as the owner left it (with the OP's token answer when the code was already redeemed);
 * - **the owner died**: its claim is a lease (renewed while it works), so it frees itself within
 *   its lease and a copy takes over.
 */
import { randomUUID } from 'node:crypto';
import { hashedKey, type Coordination } from './coordination.js';
import { RpError } from './errors.js';
import { holdLease } from './lease.js';
import { open, seal } from './sealed.js';

/**
 * `leaseMs`: how long an owner's claim holds without renewal; it is renewed every `renewMs` while the
 * owner works. `waitMs`: how long a copy waits for the owner (longer than a dead owner's lease) before
 * it answers 503, asking every `pollMs`.
 */
const TIMING = { leaseMs: 6_000, renewMs: 2_000, waitMs: 8_000, pollMs: 100 };
type Timing = typeof TIMING;

/** The claim's value after the owner: failed for good, or failed after redeeming the code (the session keeps the OP's answer). */
const SPENT = 'spent';
const RETRY = 'retry';
const RUNNING = 'run:';
const DONE = 'done:';
/**
 * A finished login sealed with the browser's session cookie and the answer's code (see claimCallback).
 * Earlier versions sealed it with the bare session id (`p.`, or no tag): such a record is joined by no
 * copy, which is then told "already used" (a lost answer in the minutes of a rolling upgrade).
 */
const WITH_COOKIE = 'c.';
const PURPOSE = 'callback';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The claim of the request that finishes the login; it says how it ended, for the copies. The first outcome counts: later calls do nothing. */
export interface CallbackClaim {
  /**
   * True when another request held the claim before: the session this request read may be older
   * than what that request saved (read it again before using its pending login).
   */
  readonly waited: boolean;
  /** The login is saved under session `to` (`from`: the browser's session cookie, whole): copies from that browser join it. Never rejects. */
  signedIn(from: string, to: string): Promise<void>;
  /** Failed, and the code may be unspent (the OP could not be reached): the next copy tries it. */
  release(): Promise<void>;
  /** Failed after the code was redeemed, with the OP's answer saved in the session: the next copy finishes from it. */
  retry(): Promise<void>;
  /** Failed for good: copies get "already used". Never rejects. */
  spent(): Promise<void>;
}

/** What only the browser the OP answered holds of a sign-in answer: its code, else its ID token or access token (implicit). */
export const answerProof = (params: URLSearchParams): string => params.get('code') ?? params.get('id_token') ?? params.get('access_token') ?? '';

export type ClaimResult = { claim: CallbackClaim } | { joined: string };

export const alreadyUsed = (): RpError =>
  new RpError('invalid_state', 'this sign-in answer was already used (it arrived twice, or again after an error); it is used once. If you are not signed in, sign in again');

/**
 * Claims the login answer of `state` for this request (`{ claim }`), or, when a copy of it from the
 * same browser already signed in, the session of that login (`{ joined }`). `cookies`: the
 * browser's session cookies, whole (`s:<id>.<signature>`): the one its session came with, and those
 * naming sessions that are gone (a login replaced the session: a copy whose answer was lost still
 * sends its cookie); the owner's must be one of them.
 * `proof`: the answer's secret ({@link answerProof}), which a copy must carry too.
 * Throws "already used" when the answer failed for good or came from another browser, 503 when the
 * owner is still working after `timing.waitMs`, and `store_unavailable` when the store fails.
 */
export async function claimCallback(
  coordination: Coordination, state: string, cookies: readonly string[], proof: string, until: number, timing: Timing = TIMING,
): Promise<ClaimResult> {
  const { leaseMs, waitMs, pollMs } = timing;
  const key = hashedKey('oidc-cb:', state);
  const running = RUNNING + randomUUID(); // (from a pool of random bytes: a call to the RNG per login less)
  const deadline = Date.now() + waitMs;
  const ttl = () => Math.max(1000, until - Date.now());
  for (let waited = false; ; waited = true) {
    if (waited && Date.now() > deadline) {
      throw new RpError('op_unavailable', 'another request is still finishing this sign-in (the same answer arrived twice); try again in a moment', { retryAfter: 2 });
    }
    const taken = await coordination.setIfAbsent(key, running, leaseMs).catch(async (err: unknown) => {
      // the store may have taken the claim and lost only its reply: taken back (if it is ours), so the retry the 503 asks for can claim it
      await coordination.deleteIfEquals(key, running).catch(() => undefined);
      throw err;
    });
    if (taken) return { claim: ownClaim(coordination, key, running, `${state}\n${proof}`, waited, ttl, timing) };
    const value = await coordination.get(key);
    if (value === undefined) continue; // released or expired meanwhile
    if (value === RETRY) {
      await coordination.deleteIfEquals(key, RETRY);
      continue;
    }
    if (value.startsWith(DONE)) {
      const joined = joinedFrom(value.slice(DONE.length), cookies, state, proof);
      if (joined) return { joined };
      throw alreadyUsed(); // signed in, but from another browser's session
    }
    if (!value.startsWith(RUNNING)) throw alreadyUsed(); // spent, or the claim of an earlier version
    await sleep(pollMs);
  }
}

/**
 * The session of the login that the answer of `state` finished for the browser of one of
 * `cookies` (its session cookies, whole), if it did: read without claiming (that browser no longer holds the pending login).
 */
export async function finishedLogin(coordination: Coordination, state: string, proof: string, cookies: readonly string[]): Promise<string | undefined> {
  if (cookies.length === 0) return undefined;
  const value = await coordination.get(hashedKey('oidc-cb:', state));
  return value?.startsWith(DONE) ? joinedFrom(value.slice(DONE.length), cookies, state, proof) : undefined;
}

/** The session id a finished login's record holds for a copy from the browser with one of `cookies`. */
function joinedFrom(record: string, cookies: readonly string[], state: string, proof: string): string | undefined {
  if (!record.startsWith(WITH_COOKIE)) return undefined;
  for (const cookie of cookies) {
    const joined = openSessionId(record.slice(WITH_COOKIE.length), cookie, state, proof);
    if (joined) return joined;
  }
  return undefined;
}

function ownClaim(
  coordination: Coordination, key: string, running: string, answer: string, waited: boolean, ttl: () => number, timing: Timing,
): CallbackClaim {
  const lease = holdLease(coordination, key, running, timing.leaseMs, timing.renewMs);
  let ended = false;
  const end = (): boolean => !ended && (ended = true);
  const mark = async (value: string): Promise<void> => {
    await lease.stop();
    await coordination.set(key, value, ttl());
  };
  return {
    waited,
    async signedIn(from, to) {
      if (!end()) return;
      const done = DONE + WITH_COOKIE + seal(to, `${from}\n${answer}`, PURPOSE);
      for (const wait of [0, 300, 1000, 2000]) {
        // tried again within the lease's remaining life: once it expires, a copy would redeem the code again
        if (wait) await sleep(wait);
        if (await mark(done).then(() => true, () => false)) return;
      }
    },
    release: async () => {
      if (!end()) return;
      await lease.stop();
      await coordination.deleteIfEquals(key, running);
    },
    retry: async () => void (end() && (await mark(RETRY))),
    // not written: the lease expires, and a copy's exchange of the spent code is refused
    spent: async () => void (end() && (await mark(SPENT).catch(() => undefined))),
  };
}

/** The session id a finished login's sealed record holds for a copy from the browser with session cookie `cookie`. */
function openSessionId(sealed: string, cookie: string, state: string, proof: string): string | undefined {
  try {
    return open(sealed, `${cookie}\n${state}\n${proof}`, PURPOSE);
  } catch {
    return undefined;
  }
}
