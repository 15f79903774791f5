/**
 * One run per key at a time: concurrent callers share the pending promise, and its result stays
 * shared for a grace period (so a request that still holds the old refresh token gets the new
 * tokens instead of replaying a rotated refresh token).
 */
export class SingleFlight<T> {
  private readonly runs = new Map<string, { pending: Promise<T>; timer?: NodeJS.Timeout }>();

  constructor(private readonly graceMs: number) {}

  /** The pending or recent result of `key`, else a new run of `operation`. Failures are not kept. */
  run(key: string, operation: () => Promise<T>): Promise<T> {
    const known = this.runs.get(key);
    if (known) return known.pending;
    const run: { pending: Promise<T>; timer?: NodeJS.Timeout } = { pending: operation() };
    this.runs.set(key, run);
    run.pending.then(() => this.keep(key, this.graceMs), () => this.forget(key, run));
    return run.pending;
  }

  /** Keeps the result of `key` (if any) for `ms` from now instead. */
  keep(key: string, ms: number): void {
    const run = this.runs.get(key);
    if (!run) return;
    clearTimeout(run.timer);
    run.timer = setTimeout(() => this.forget(key, run), ms).unref();
  }

  private forget(key: string, run: { pending: Promise<T> }): void {
    if (this.runs.get(key) === run) this.runs.delete(key);
  }
}
