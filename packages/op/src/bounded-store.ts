import type { Adapter, AdapterPayload } from 'oidc-provider';
import { EXPIRED_DEVICE_CODE_GRACE } from './adapters/models.js';
import type { OpStore } from './adapters/types.js';
import { namedFailure, StoreUnavailableError } from './errors.js';

/** `promise`, or the error `late()` makes (a StoreUnavailableError) when it has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A call of the app's own code (its account store, an authenticator's `verify()`, `upstream()`'s
 * `account()`): one that has not answered within `ms` rejects with a StoreUnavailableError saying
 * `late` (a 503, never a request that hangs), and one that fails is named `what` in the log (`namedFailure`).
 */
export function appCall<T>(call: () => T | Promise<T>, ms: number, late: string, what: string): Promise<T> {
  return withDeadline(Promise.resolve().then(call), ms, () => new StoreUnavailableError(late)).catch(namedFailure(what));
}

const ADAPTER_METHODS = ['upsert', 'find', 'findByUid', 'findByUserCode', 'consume', 'destroy', 'revokeByGrantId'] as const;

type Method = (...args: unknown[]) => Promise<unknown>;

/**
 * The methods `adapter` has, each as `wrap` makes it of the method bound to the adapter itself (it
 * may use private fields).
 */
export function adapterMethods(adapter: Adapter, wrap: (name: string, method: Method) => Method): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ADAPTER_METHODS) {
    const method = adapter[name] as Method | undefined;
    if (method) out[name] = wrap(name, method.bind(adapter));
  }
  return out;
}

/**
 * An app's own store (`adapter`) as op() uses it. Every call is bounded by `timeoutMs`: a store
 * that stops answering (a custom store without timeouts) makes the call reject with
 * StoreUnavailableError, never hang; other errors (e.g. a refused consume) pass through unchanged.
 * And device codes are passed an `expiresIn` longer by the grace our own stores keep them (see
 * `ttlSeconds`), so a late poll gets `expired_token` whatever the store. Every method is called on
 * the app's adapter itself (it may use private fields).
 *
 * @example
 * const store = appStore(myStore, 3000);
 */
export function appStore(store: OpStore, timeoutMs: number): OpStore {
  const bound = <A extends unknown[], R>(what: string, call: (...args: A) => Promise<R>) =>
    (...args: A) => withDeadline(Promise.resolve().then(() => call(...args)), timeoutMs,
      () => new StoreUnavailableError(`the store did not answer ${what} within ${timeoutMs} ms`));
  return {
    kind: store.kind,
    adapterFor(model) {
      const out = adapterMethods(store.adapterFor(model), (name, method) => bound(`${model}.${name}`, method));
      if (model === 'DeviceCode') {
        const upsert = out.upsert as Adapter['upsert'];
        out.upsert = (id: string, payload: AdapterPayload, expiresIn: number) =>
          upsert(id, payload, Number.isFinite(expiresIn) ? expiresIn + EXPIRED_DEVICE_CODE_GRACE : expiresIn);
      }
      return out as unknown as Adapter;
    },
    increment: bound('increment', store.increment.bind(store)),
    count: bound('count', store.count.bind(store)),
    ...(store.decrement ? { decrement: bound('decrement', store.decrement.bind(store)) } : {}),
    reset: bound('reset', store.reset.bind(store)),
    ...(store.schedule && store.takeDue
      ? { schedule: bound('schedule', store.schedule.bind(store)), takeDue: bound('takeDue', store.takeDue.bind(store)) }
      : {}),
  };
}
