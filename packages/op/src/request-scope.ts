import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the oidc-provider request running now has consumed (an authorization code, a device code, a
 * rotated refresh token), as steps that undo it. When the store fails later in that request, the
 * answer is a 503 whose retry must find the code unspent: no token issued by this request ever
 * reached the client. Filled by op()'s own adapters once a consume succeeded; empty outside a request.
 */
export const consumedInRequest = new AsyncLocalStorage<Array<() => Promise<void>>>();

/** Records an undo step for the request running now (none outside one). */
export function recordConsumed(undo: () => Promise<void>): void {
  consumedInRequest.getStore()?.push(undo);
}
