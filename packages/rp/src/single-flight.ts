/**
 * One run per key at a time: concurrent callers share the pending promise, and its result stays
 * shared for a grace period (so a request that still holds the old refresh token gets the new
 * tokens instead of replaying a rotated refresh token).
 */
export class SingleFlight<T> {
  private readonly runs = new Map<string, Run<T>>();
  /** The keys `keep` holds longer than the grace period: at most `maxKept` of them. */
  private readonly kept = new Set<string>();

  constructor(private readonly graceMs: number, private readonly maxKept = Infinity) {}

  /**
   * The pending or recent result of `key`, else a new run of `operation`. Failures are not kept, nor
   * is a result `usable` says no to any more (e.g. tokens that have expired since).
   */
  run(key: string, operation: () => Promise<T>, usable: (value: T) => boolean = () => true): Promise<T> {
    const known = this.runs.get(key);
    if (known && (!known.settled || usable(known.value as T))) return known.pending;
    if (known) this.forget(key, known);
    const run: Run<T> = { pending: operation(), settled: false };
    this.runs.set(key, run);
    run.pending.then((value) => {
      run.settled = true;
      run.value = value;
      this.keep(key, this.graceMs);
    }, () => this.forget(key, run));
    return run.pending;
  }

  /**
   * Keeps `value` as the settled result of `key` for `ms` (a result a run under another key gave), unless
   * `key` has a run of its own; false when that would pass `maxKept` (see `keep`).
   */
  remember(key: string, value: T, ms = this.graceMs): boolean {
    if (this.runs.has(key)) return true;
    this.runs.set(key, { pending: Promise.resolve(value), settled: true, value });
    if (this.keep(key, ms)) return true;
    this.runs.delete(key);
    return false;
  }

  /** The result of `key` while it is kept (settled, and not yet forgotten), else undefined. */
  settled(key: string): T | undefined {
    const run = this.runs.get(key);
    return run?.settled ? run.value : undefined;
  }

  /**
   * Keeps the result of `key` (if any) for `ms` from now instead; false (and nothing changed) when
   * `maxKept` results are already held longer than the grace period.
   */
  keep(key: string, ms: number): boolean {
    const run = this.runs.get(key);
    if (!run) return false;
    if (ms > this.graceMs && !this.kept.has(key)) {
      if (this.kept.size >= this.maxKept) return false;
      this.kept.add(key);
    }
    clearTimeout(run.timer);
    run.timer = setTimeout(() => this.forget(key, run), ms).unref();
    return true;
  }

  private forget(key: string, run: Run<T>): void {
    clearTimeout(run.timer);
    if (this.runs.get(key) === run) {
      this.runs.delete(key);
      this.kept.delete(key);
    }
  }
}

interface Run<T> {
  pending: Promise<T>;
  settled: boolean;
  value?: T;
  timer?: NodeJS.Timeout;
}
