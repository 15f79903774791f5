/**
 * A cross-instance lock held as a lease: set for `leaseMs` and renewed every `renewMs` while its
 * owner works, so the lock of an instance that dies mid-work frees itself within `leaseMs`, and a
 * live owner keeps it however long the work takes. Used by the shared refresh and the callback claim;
 * {@link underLock} is the short form for work of a few store round trips (a login start's save).
 */
import { randomBytes } from 'node:crypto';
import type { Coordination } from './coordination.js';

/**
 * Runs `work` while holding `key` across instances: taken with `setIfAbsent` for `leaseMs`, asked
 * for again every `pollMs` while another instance holds it. After `leaseMs` of waiting, `work` runs
 * anyway (a holder that died has freed it by then; a live one is stuck on a stalled store, which this
 * work meets too). Released when `work` settles (not waited for); a failed release is left to the lease's expiry.
 */
export async function underLock<T>(coordination: Coordination, key: string, leaseMs: number, work: () => Promise<T>, pollMs = 10): Promise<T> {
  const owner = randomBytes(12).toString('base64url');
  const deadline = Date.now() + leaseMs;
  let held = await coordination.setIfAbsent(key, owner, leaseMs);
  while (!held && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    held = await coordination.setIfAbsent(key, owner, leaseMs);
  }
  try {
    return await work();
  } finally {
    // not waited for: the answer need not wait a round trip for it (a start that meets it still held asks again)
    if (held) void coordination.deleteIfEquals(key, owner).catch(() => undefined);
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
