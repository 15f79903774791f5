/**
 * `console.warn` of a condition that lasts (every request meets it), at most once an hour per `key`,
 * so the log names it without being flooded. Each process says it for itself: what is rate-limited
 * here is the log, never a decision.
 */
const saidThisHour = onceEvery(3600_000);

/**
 * Says `message` (with op()'s prefix) unless `key` was said within the hour (see {@link onceEvery}).
 *
 * @example
 * warnAtMostHourly(`shared-namespace ${issuer}`, 'the OP at … was asked for a record of another OP …');
 */
export function warnAtMostHourly(key: string, message: string): void {
  if (saidThisHour(key)) console.warn(`op(): ${message} (Said at most once an hour.)`);
}

/**
 * A log's rate limit: the function it returns answers whether `key` may be said now (not said within
 * `windowMs`; it then counts as said now). At most 100 keys are remembered: past that the one said
 * longest ago is forgotten (a few more lines, never unbounded, and not every key again at once).
 *
 * @example
 * const saidThisMinute = onceEvery(60_000);
 * if (saidThisMinute(kind)) console.warn(line);
 */
export function onceEvery(windowMs: number): (key: string) => boolean {
  const saidAt = new Map<string, number>();
  return (key) => {
    const now = Date.now();
    if (now - (saidAt.get(key) ?? -Infinity) <= windowMs) return false;
    saidAt.delete(key);
    if (saidAt.size >= 100) saidAt.delete(saidAt.keys().next().value!);
    saidAt.set(key, now);
    return true;
  };
}
