import type { Adapter } from 'oidc-provider';
import { ADAPTER_METHODS } from './adapters/models.js';
import type { OpStore } from './adapters/types.js';
import { StoreUnavailableError } from './errors.js';

/** `promise`, or the error `late()` makes (a StoreUnavailableError) when it has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The store with every call bounded by `timeoutMs`: a store that stops answering (a stalled Redis,
 * a custom store without timeouts) makes the call reject with StoreUnavailableError, never hang.
 * Other errors (e.g. a refused consume) pass through unchanged.
 *
 * @example
 * const store = boundedStore(redisAdapter(client), 3000);
 */
export function boundedStore(store: OpStore, timeoutMs: number): OpStore {
  const bound = <A extends unknown[], R>(what: string, call: (...args: A) => Promise<R>) =>
    (...args: A) => withDeadline(Promise.resolve().then(() => call(...args)), timeoutMs,
      () => new StoreUnavailableError(`the store did not answer ${what} within ${timeoutMs} ms`));
  return {
    kind: store.kind,
    adapterFor(model) {
      const adapter = store.adapterFor(model);
      const out: Record<string, unknown> = {};
      for (const name of ADAPTER_METHODS) {
        const method = adapter[name] as ((...a: unknown[]) => Promise<unknown>) | undefined;
        if (method) out[name] = bound(`${model}.${name}`, method.bind(adapter));
      }
      return out as unknown as Adapter;
    },
    increment: bound('increment', store.increment.bind(store)),
    count: bound('count', store.count.bind(store)),
    reset: bound('reset', store.reset.bind(store)),
  };
}
