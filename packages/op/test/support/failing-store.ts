import { StoreUnavailableError, type OpStore } from '@openid-express/op';

/**
 * `real`, whose next `upsert` of model `state.failNext` (e.g. the consent's `Grant`, a code
 * exchange's `AccessToken`) rejects as a Redis that stalls or drops does: the store failing in the
 * middle of a request, after what the request already wrote.
 */
export function storeFailingOnce(real: OpStore): { store: OpStore; state: { failNext: string } } {
  const state = { failNext: '' };
  const store: OpStore = {
    kind: 'failing-once',
    adapterFor(model) {
      const adapter = real.adapterFor(model);
      return new Proxy(adapter, {
        get: (target, name: string) => {
          const value = (target as unknown as Record<string, unknown>)[name];
          if (typeof value !== 'function') return value;
          if (name !== 'upsert') return value.bind(target);
          return (...args: unknown[]) => {
            if (state.failNext !== model) return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            state.failNext = '';
            return Promise.reject(new StoreUnavailableError('redis: command timed out'));
          };
        },
      });
    },
    increment: (key, ttl) => real.increment(key, ttl),
    count: (key) => real.count(key),
    reset: (key) => real.reset(key),
    ...(real.decrement ? { decrement: (key: string) => real.decrement!(key) } : {}),
  };
  return { store, state };
}
