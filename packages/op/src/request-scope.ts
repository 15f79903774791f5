import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';

/**
 * What the oidc-provider request running now has consumed (an authorization code, a device code, a
 * rotated refresh token):
 * - `undo`: steps that give it back. When the store fails later in that request, the answer is a
 *   503 whose retry must find the code unspent: no token issued by this request ever reached the
 *   client.
 * - `answered`: steps run once the request's answer is written (or its connection is gone). A
 *   shared store keeps such a consume as a lease until then (see redisAdapter's `consume`), so an
 *   instance killed between the consume and its answer does not leave the code spent forever.
 * Filled by op()'s own adapters once a consume succeeded; none outside a request.
 */
export interface RequestConsumes {
  undo: Array<() => Promise<void>>;
  answered: Array<() => void>;
  /** The answer is written (or the connection closed): nothing is waited for any more. */
  done: boolean;
}

export const consumedInRequest = new AsyncLocalStorage<RequestConsumes>();

/** Records an undo step for the request running now (none outside one). */
export function recordConsumed(undo: () => Promise<void>): void {
  consumedInRequest.getStore()?.undo.push(undo);
}

/**
 * Runs `whileOpen` every `everyMs` until the request running now has answered, then `answered` once.
 * Outside a request (or after its answer) it runs `answered` at once and returns false.
 */
export function untilAnswered(whileOpen: () => void, answered: () => void, everyMs: number): boolean {
  const scope = consumedInRequest.getStore();
  if (!scope || scope.done) {
    answered();
    return false;
  }
  const timer = setInterval(whileOpen, everyMs);
  timer.unref();
  // run in the request's own async context, as the renewals are (the response's 'close' is not)
  scope.answered.push(AsyncResource.bind(() => {
    clearInterval(timer);
    answered();
  }));
  return true;
}

/** True inside a request that has not answered yet (a consume made now can be held as a lease). */
export function requestOpen(): boolean {
  const scope = consumedInRequest.getStore();
  return scope !== undefined && !scope.done;
}

/** Runs `next` as one request's scope; `res` closing (answer written or connection gone) ends it. */
export function runRequestScope(res: NodeJS.EventEmitter, next: () => Promise<void>): Promise<void> {
  const scope: RequestConsumes = { undo: [], answered: [], done: false };
  res.once('close', () => {
    scope.done = true;
    for (const step of scope.answered.splice(0)) step();
  });
  return consumedInRequest.run(scope, next);
}
