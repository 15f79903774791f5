/**
 * One run per key at a time: concurrent callers share the pending promise, and its result stays
 * shared for a grace period (so a request that still holds the old refresh token gets the new
 * tokens instead of replaying a rotated refresh token).
 */
export class SingleFlight<T> {
  private readonly runs = new Map<string, Promise<T>>();

  constructor(private readonly graceMs: number) {}

  /** The pending or recent result of `key`, else a new run of `operation`. Failures are not kept. */
  run(key: string, operation: () => Promise<T>): Promise<T> {
    let pending = this.runs.get(key);
    if (!pending) {
      pending = operation();
      this.runs.set(key, pending);
      const forget = (): void => void this.runs.delete(key);
      pending.then(() => void setTimeout(forget, this.graceMs).unref(), forget);
    }
    return pending;
  }
}
