/**
 * A cross-instance lock held as a lease: set for `leaseMs` and renewed every `renewMs` while its
 * owner works, so the lock of an instance that dies mid-work frees itself within `leaseMs`, and a
 * live owner keeps it however long the work takes. Used by the shared refresh and the callback claim.
 */
import type { Coordination } from './coordination.js';

/** Renews `key` (held by `owner`) until `stop()`; `stop()` resolves once no renewal can write it back. */
export function holdLease(coordination: Coordination, key: string, owner: string, leaseMs: number, renewMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let tick: Promise<unknown> = Promise.resolve();
  const renew = setInterval(() => {
    // in one step where the coordination can (a lease that ran out and was taken meanwhile stays taken)
    tick = (coordination.renewIfEquals
      ? coordination.renewIfEquals(key, owner, leaseMs)
      : coordination.get(key).then((holder) => (!stopped && holder === owner ? coordination.set(key, owner, leaseMs) : undefined))
    ).catch(() => undefined);
  }, renewMs).unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(renew);
      await tick; // a renewal under way must not write the lease back after it is released or replaced
    },
  };
}
