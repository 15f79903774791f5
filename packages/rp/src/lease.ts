/**
 * A cross-instance lock held as a lease: set for `leaseMs` and renewed every `renewMs` while its
 * owner works, so the lock of an instance that dies mid-work frees itself within `leaseMs`, and a
 * live owner keeps it however long the work takes. Used by the shared refresh and the callback claim;
 * {@link underLock} is the short form for work of a few store round trips (a login start's save).
 */
import { randomBytes } from 'node:crypto';
import type { Coordination } from './coordination.js';
import { RpError } from './errors.js';

/**
 * Runs `work` while holding `key` across instances: taken with `setIfAbsent` for `leaseMs` and renewed
 * every `renewMs` while `work` runs (so a slow store never lets another instance in mid-work, and an
 * instance that dies frees it within `leaseMs`), asked for again every `pollMs` while another holds it.
 * Not taken within `waitMs` (the holder is alive and its store is slow): 503 `store_unavailable` with
 * `Retry-After`, never `work` without it. Released when `work` settles (not waited for).
 */
export async function underLock<T>(
  coordination: Coordination, key: string, o: { leaseMs: number; renewMs: number; waitMs: number; pollMs?: number; what: string }, work: () => Promise<T>,
): Promise<T> {
  const owner = randomBytes(12).toString('base64url');
  const deadline = Date.now() + o.waitMs;
  while (!(await coordination.setIfAbsent(key, owner, o.leaseMs))) {
    if (Date.now() >= deadline) {
      throw new RpError('store_unavailable', `${o.what} has held its lock for over ${o.waitMs} ms (the session store is slow): try again in a moment`, { retryAfter: 2 });
    }
    await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 10));
  }
  const lease = holdLease(coordination, key, owner, o.leaseMs, o.renewMs);
  try {
    return await work();
  } finally {
    // not waited for: the answer need not wait a round trip for it (a start that meets it still held asks again)
    void lease.stop().then(() => coordination.deleteIfEquals(key, owner)).catch(() => undefined);
  }
}

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
