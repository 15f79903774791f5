/**
 * `console.warn` of a condition that lasts (every request meets it), at most once an hour per `key`,
 * so the log names it without being flooded. Each process says it for itself: what is rate-limited
 * here is the log, never a decision.
 */
const warnedAt = new Map<string, number>();

/**
 * Says `message` (with op()'s prefix) unless `key` was said within the hour; at most 100 keys are
 * remembered (past that the one said longest ago is forgotten: a few more lines, never unbounded, and
 * not every warning again at once).
 *
 * @example
 * warnAtMostHourly(`shared-namespace ${issuer}`, 'the OP at … was asked for a record of another OP …');
 */
export function warnAtMostHourly(key: string, message: string): void {
  const last = warnedAt.get(key);
  if (last !== undefined && Date.now() - last < 3600_000) return;
  warnedAt.delete(key);
  if (warnedAt.size >= 100) warnedAt.delete(warnedAt.keys().next().value!);
  warnedAt.set(key, Date.now());
  console.warn(`op(): ${message} (Said at most once an hour.)`);
}
