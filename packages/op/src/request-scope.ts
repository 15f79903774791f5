import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';

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
  settle: Array<() => Promise<boolean>>;
  stop: Array<() => void>;
  /** The response has closed: nothing is held any more. */
  done: boolean;
}

export const consumedInRequest = new AsyncLocalStorage<RequestConsumes>();

/** Records an undo step for the request running now (none outside one). */
export function recordConsumed(undo: () => Promise<void>): void {
  consumedInRequest.getStore()?.undo.push(undo);
}

/** A consume held by the request running now (see `holdUntilAnswered`). */
export interface HeldConsume {
  /** The consume succeeded: `settle` makes it final before the answer (see `runRequestScope`). */
  settleWith(settle: () => Promise<boolean>): void;
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
 * written, makes what it consumed final. Resolves false when that failed: the caller answers 503
 * instead (and the consumes are given back where they are still this request's).
 */
export async function runRequestScope(res: NodeJS.EventEmitter, next: () => Promise<void>): Promise<{ settled: boolean; scope: RequestConsumes }> {
  const scope: RequestConsumes = { undo: [], settle: [], stop: [], done: false };
  res.once('close', () => {
    scope.done = true;
    for (const stop of scope.stop.splice(0)) stop();
  });
  await consumedInRequest.run(scope, next);
  const outcomes = await Promise.all(scope.settle.splice(0).map((settle) => settle().catch(() => false)));
  return { settled: outcomes.every(Boolean), scope };
}
