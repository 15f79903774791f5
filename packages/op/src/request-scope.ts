import debug from 'debug';
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import Provider, { errors, type Adapter } from 'oidc-provider';
import type { OpStore } from './adapters/types.js';
import { adapterMethods } from './bounded-store.js';
import { ResumeInProgressError } from './errors.js';

const log = debug('openid-express:op');

/**
 * What the oidc-provider request running now has consumed (an authorization code, a device code, a
 * rotated refresh token):
 * - `undo`: steps that give it back. When the store fails later in that request, the answer is a
 *   503 whose retry must find the code unspent: no token issued by this request ever reached the
 *   client.
 * - `settle`: steps that make it final, run before the answer is written (`runRequestScope`). A shared
 *   store keeps such a consume as a lease until then (see redisAdapter's `consume`), so an instance
 *   killed between the consume and its answer does not leave the code spent forever. Each resolves
 *   false when the consume could not be made final (the store failed, or the lease ran out and
 *   another request took it over): the answer must then not carry what the request made.
 * - `stop`: what keeps the leases alive (renewals), stopped when the response closes whatever happened.
 * Filled by op()'s own adapters once a consume succeeded; none outside a request.
 */
export interface RequestConsumes {
  undo: Array<() => Promise<void>>;
  settle: Array<() => Promise<Settled>>;
  stop: Array<() => void>;
  /** Deletes of records the request still stands on (see `destroyedOnceAnswered`), run once it has answered without failing. */
  destroys: Array<() => Promise<void>>;
  /** What gives back the request's claim on a resume (see `destroyedOnceAnswered`), run when its deletes are dropped. */
  releases: Array<() => Promise<void>>;
  /** The response has closed: nothing is held any more. */
  done: boolean;
  /** The resume claim op() took before oidc-provider ran (`claimDeviceResume`), which the interaction's delete adopts. */
  claimed?: ResumeClaim;
}

/** A resume's one-time claim on interaction `id`, taken by op() before oidc-provider ran. */
export interface ResumeClaim {
  id: string;
  /** Gives the claim back (once), and when it ends (`takeResumeClaim`). */
  release: ResumeRelease;
  /** The request's delete of the interaction took it over: given back, or kept, as a claim taken there is. */
  adopted: boolean;
}

/** Where a request carries the claim op() took for it (`claimDeviceResume`) to oidc-provider's request scope. */
export const RESUME_CLAIMED = Symbol('the resume claim op() took for this request');

/**
 * How a consume was made final: true; false when it could not be (the store failed, or another
 * request took it over), so a retry may redeem it; `'gone'` when the record no longer exists (its
 * grant was revoked meanwhile by a replay of it, or it expired), so no retry can.
 */
export type Settled = boolean | 'gone';

export const consumedInRequest = new AsyncLocalStorage<RequestConsumes>();

/** Records an undo step for the request running now (none outside one). */
export function recordConsumed(undo: () => Promise<void>): void {
  consumedInRequest.getStore()?.undo.push(undo);
}

/** A consume held by the request running now (see `holdUntilAnswered`). */
export interface HeldConsume {
  /** The consume succeeded: `settle` makes it final before the answer (see `runRequestScope`). */
  settleWith(settle: () => Promise<Settled>): void;
  /** The consume was refused: nothing of it to keep or settle. */
  release(): void;
}

/**
 * Holds a consume of the request running now from the moment it is sent: `renew` every `everyMs`
 * until it is released, settled before the answer, or the response closes. Undefined outside an
 * open request.
 */
export function holdUntilAnswered(renew: () => void, everyMs: number): HeldConsume | undefined {
  const scope = consumedInRequest.getStore();
  if (!scope || scope.done) return undefined;
  const timer = setInterval(renew, everyMs);
  timer.unref();
  const stop = () => clearInterval(timer);
  scope.stop.push(stop);
  return {
    // run in the request's own async context, as the renewals are
    settleWith: (settle) => void scope.settle.push(AsyncResource.bind(() => {
      stop();
      return settle();
    })),
    release: stop,
  };
}

/**
 * Runs `next` as one request's scope (the response closing ends it) and, before its answer is
 * written, makes what it consumed final. `settled` false when that failed: the caller answers 503
 * instead (and the consumes are given back where they are still this request's), or, when `gone`
 * (a record it consumed no longer exists: no retry can redeem it), `invalid_grant`. `failure`: the
 * store's error when a settle failed (for the 503's log line and wording), not when another request took the consume over.
 */
export async function runRequestScope(
  res: NodeJS.EventEmitter, next: () => Promise<void>, claimed?: ResumeClaim,
): Promise<{ settled: boolean; gone: boolean; failure?: unknown; scope: RequestConsumes }> {
  const scope: RequestConsumes = { undo: [], settle: [], stop: [], destroys: [], releases: [], done: false, claimed };
  res.once('close', () => {
    scope.done = true;
    for (const stop of scope.stop.splice(0)) stop();
  });
  await consumedInRequest.run(scope, next);
  let failure: unknown;
  const outcomes = await Promise.all(scope.settle.splice(0).map((settle) => settle().catch((err: unknown): Settled => {
    failure ??= err;
    return false;
  })));
  return { settled: outcomes.every((o) => o === true), gone: outcomes.includes('gone'), failure, scope };
}

/**
 * Records a request deletes before it has finished with what they stand for: oidc-provider deletes
 * the sign-in under way (`Interaction`) as the resume after the login or consent begins, and the
 * OP session it replaces (`Session`, the old id) before it saves the new one. A store failure after
 * that answered 503 with nothing left to retry: the user's retry met "this sign-in has expired"
 * (a Redis stall or an instance killed at that moment). So inside a request these deletes wait for
 * its answer (`destroyOnceSent`) and are dropped when it fails; an instance that dies before its
 * answer went out leaves them (a retry elsewhere resumes), and they expire.
 */
const KEPT_UNTIL_ANSWERED: ReadonlySet<string> = new Set(['Interaction', 'Session']);

/**
 * How long a resume's claim on its interaction lasts when its request never says how it ended (its
 * instance died): a retry resumes after that. A request that fails or closes unanswered gives it back at once.
 */
export const RESUME_CLAIM_SECONDS = 10;

/** Gives a resume's claim back (once); `until`: when it lapses, on this instance's clock (ms since the epoch). */
export type ResumeRelease = (() => Promise<void>) & { until: number };

/**
 * How long before its claim lapses a resume must have its answer ready: the answer's write and the
 * interaction's delete after it (one store call) take the rest. A resume that would answer later
 * answers 503 (the retry resumes): after that, a waiting resume may take the lapsed claim and, the
 * interaction still there, issue a second code for the same authorization request.
 */
const RESUME_ANSWER_MARGIN_MS = 3000;

/**
 * Takes the one-time claim on resuming interaction `id` (`increment`, atomic in every store): what gives it
 * back (once), or undefined when another request holds it (until it gives it back, or RESUME_CLAIM_SECONDS).
 */
export async function takeResumeClaim(store: OpStore, id: string): Promise<ResumeRelease | undefined> {
  const key = `openid-express:resumed:${id}`;
  // measured before the store starts the claim's expiry: never later than it
  const until = Date.now() + RESUME_CLAIM_SECONDS * 1000;
  if (await store.increment(key, RESUME_CLAIM_SECONDS) > 1) return undefined;
  let given = false;
  return Object.assign(async () => {
    // once lapsed, the key (if any) is another request's claim
    if (given || Date.now() >= until) return;
    given = true;
    await store.reset(key);
  }, { until });
}

/**
 * Marks interaction `id` answered (`increment`, atomic in every store) just before a resume's answer is
 * written: true for the first resume only. A resume that took a lapsed claim over (its holder slow, or its
 * delete of the interaction slow or failed) sees the mark and is refused, so one authorization request is
 * answered once (RFC 6749 §4.1.2). What takes the mark back (an answer that never went out: the retry resumes).
 */
async function markAnswered(store: OpStore, id: string): Promise<(() => Promise<void>) | undefined> {
  if (await store.increment(answeredKey(id), RESUME_ANSWERED_SECONDS) > 1) return undefined;
  let taken = false;
  return async () => {
    if (taken) return; // once: by then another resume's mark may be there
    taken = true;
    await store.reset(answeredKey(id));
  };
}
const answeredKey = (id: string): string => `openid-express:resume-answered:${id}`;
/** Longer than any interaction lives (oidc-provider's default is an hour): the mark outlives the record it guards. */
const RESUME_ANSWERED_SECONDS = 24 * 3600;

/** How long a resume that finds the claim held waits for it (a little more than the claim's life), asking every RESUME_POLL_MS. */
const RESUME_WAIT_MS = RESUME_CLAIM_SECONDS * 1000 + 1000;
const RESUME_POLL_MS = 200;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The claim on resuming interaction `id` for a request that found it held by another: the request holding it
 * finished (the interaction is gone): refused as a finished sign-in's resume is (a replay never gets a second
 * code); it gave the claim back (it failed) or the claim lapsed (its instance died): taken, once the interaction
 * is found still there; still held after RESUME_WAIT_MS (the holder is alive, and slow): 503 with `Retry-After`.
 */
async function waitForResumeClaim(store: OpStore, id: string, find: Adapter['find'], scope: RequestConsumes): Promise<ResumeRelease> {
  log('a resume of interaction %s waits: another request holds its claim (the same resume sent twice, or an instance that stopped mid-resume)', id);
  const deadline = Date.now() + RESUME_WAIT_MS;
  for (;;) {
    const release = await takeResumeClaim(store, id);
    // (what oidc-provider loaded before this wait may be stale: the holder may have finished and deleted it,
    // or answered and not deleted it yet, or not at all: a slow or failed delete, whose claim then lapses)
    let finished: boolean;
    try {
      finished = !(await find(id)) || await store.count(answeredKey(id)) > 0;
    } catch (err) {
      await release?.().catch(() => undefined); // the retry must not wait for a claim nobody uses
      throw err;
    }
    if (finished) return refuseCompleted(id, release, 'the request that held its claim completed the sign-in');
    if (release) {
      log('a resume of interaction %s goes on: the claim was given back or lapsed (the request holding it failed, or its instance stopped)', id);
      return release;
    }
    if (Date.now() > deadline || scope.done) {
      leaveSessionAsItIs();
      log('a resume of interaction %s answered 503: its claim is still held after %d ms (another request is completing it)', id, RESUME_WAIT_MS);
      throw new ResumeInProgressError(`another request still holds the claim on resuming interaction ${id} after ${RESUME_WAIT_MS} ms`);
    }
    await sleep(RESUME_POLL_MS);
  }
}

/**
 * Refuses a resume of interaction `id` as the resume of a finished sign-in is (SessionNotFound: "expired or
 * already completed"), giving back the claim it took (`release`) and leaving the OP session as it is.
 */
async function refuseCompleted(id: string, release: (() => Promise<void>) | undefined, why: string): Promise<never> {
  await release?.();
  leaveSessionAsItIs();
  log('a resume of interaction %s refused: %s', id, why);
  throw new errors.SessionNotFound('interaction session not found (another request completed this sign-in)');
}

/**
 * A resume refused after its wait loaded the OP session before the request holding the claim changed it:
 * oidc-provider writes a request's session back when it ends, even a failed one's, and that stale copy (and
 * its cookie) undid the holder's, whose code then found no session ("authorization code not found").
 * Marked as oidc-provider marks a session it ended, so it is not written back.
 */
function leaveSessionAsItIs(): void {
  const session = Provider.ctx?.oidc?.session as { destroyed?: boolean } | undefined;
  if (session) session.destroyed = true;
}

/**
 * `adapter` (of `model`), whose deletes inside a request wait for its answer when `model` is one of KEPT_UNTIL_ANSWERED.
 *
 * The Interaction's delete is also where oidc-provider's resume (`/auth/:uid`) takes the sign-in, before it
 * issues anything: with `store`, it is a one-time claim there (`increment`, atomic in every store). Two resumes
 * of one interaction at the same moment (a consent posted twice whose two redirects were both followed, on two
 * instances: both read it before either deleted it) each gave a code for one authorization request (RFC 6749
 * §4.1.2 answers a request once). A resume that finds the claim held waits for it (`waitForResumeClaim`): refused
 * as the resume of a finished sign-in is (SessionNotFound: "expired or already completed") once the holder
 * finished, resumed once the claim is free again (the holder failed, or its instance died: a load balancer's
 * retry used to get that final page although the sign-in was intact), 503 while it is still held. The device
 * flow's resume takes its claim before oidc-provider runs (`claimDeviceResume`): the delete adopts that one.
 */
export function destroyedOnceAnswered(model: string, adapter: Adapter, store?: OpStore): Adapter {
  if (!KEPT_UNTIL_ANSWERED.has(model)) return adapter;
  const wrapped = adapterMethods(adapter, (_name, method) => method);
  const destroy = wrapped.destroy as (id: string) => Promise<void>;
  const claims = model === 'Interaction' ? store : undefined;
  wrapped.destroy = async (id: string): Promise<void> => {
    const scope = consumedInRequest.getStore();
    if (!scope || scope.done) return destroy(id);
    if (claims) {
      // taken already when op() claimed this resume before oidc-provider ran (the device flow's, `claimDeviceResume`)
      const early = scope.claimed?.id === id ? scope.claimed : undefined;
      if (early) early.adopted = true;
      const taken = early?.release ?? await takeResumeClaim(claims, id);
      // a free claim of a sign-in already answered (its claim lapsed, its delete slow or failed): refused as finished
      if (taken && await claims.count(answeredKey(id)).catch(async (err: unknown) => { await taken(); throw err; }) > 0) {
        await refuseCompleted(id, taken, 'it was answered already (its record not deleted yet)');
      }
      const release = taken ?? await waitForResumeClaim(claims, id, wrapped.find as Adapter['find'], scope);
      // given back once: at a store failure before its 503 is written (`undo`, so the retry finds it free), or by `destroyOnceSent`
      scope.undo.push(release);
      scope.releases.push(release);
      // no answer after the claim's life (a store slow at each call): a resume waiting for it would take it over (503 instead)
      scope.settle.push(async () => {
        if (Date.now() >= release.until - RESUME_ANSWER_MARGIN_MS) {
          log('a resume of interaction %s answered 503: its work outlasted its claim (another request may take the claim over)', id);
          return false;
        }
        const unmark = await markAnswered(claims, id);
        if (!unmark) {
          log('a resume of interaction %s answered 503: another resume of it has answered (it took over a lapsed claim)', id);
          return false;
        }
        // taken back with the claim when the answer does not go out (a store failure after this, the connection closed)
        scope.undo.push(unmark);
        scope.releases.push(unmark);
        return true;
      });
    }
    scope.destroys.push(() => destroy(id));
  };
  return wrapped as unknown as Adapter;
}

/**
 * Runs the deletes `scope` kept (see `destroyedOnceAnswered`) once `res` has been sent, when the
 * request answered without failing (`succeeded`); drops them otherwise, or when the connection
 * closes before the answer went out (the browser retries, and finds what it needs). A delete that
 * fails leaves the record to expire.
 */
export function destroyOnceSent(scope: RequestConsumes, res: NodeJS.EventEmitter & { writableFinished?: boolean; destroyed?: boolean }, succeeded: boolean): void {
  const destroys = scope.destroys.splice(0);
  const releases = scope.releases.splice(0);
  // a resume claimed but not answered: the retry may resume (the claim lapses anyway, RESUME_CLAIM_SECONDS)
  const release = (): void => {
    for (const give of releases) give().catch((err: unknown) => log('a resume\'s claim was not given back (it lapses): %s', (err as Error)?.message));
  };
  if (!succeeded) return release();
  if (destroys.length === 0) return;
  const run = (): void => {
    res.off('close', unanswered);
    for (const destroy of destroys) destroy().catch((err: unknown) => log('a record the request had finished with was not deleted (it expires): %s', (err as Error)?.message));
  };
  const unanswered = (): void => {
    if (!res.writableFinished) release();
  };
  if (res.writableFinished) return run();
  // closed before it answered, already (the browser gave up while the resume ran): its 'close' has been
  if (res.destroyed) return release();
  res.once('finish', run);
  if (releases.length) res.once('close', unanswered);
}
