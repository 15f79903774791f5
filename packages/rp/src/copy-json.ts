/**
 * A deep copy of what `JSON.parse` made (objects, arrays, strings, numbers, booleans, null): a
 * caller changing the copy, at any depth, never changes the original (a stored record, a cached
 * ID-token payload). An own `__proto__` key (JSON.parse makes one from `{"__proto__": …}`) stays
 * an own property, never a prototype. Shared by both packages: op's `memoryAdapter()` copies its
 * records with it.
 *
 * @example
 * const claims = copyJson(cached.payload);
 */
export function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson) as T;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  // the spread made every key an own data property, so this sets it (even "__proto__") and never a prototype
  for (const key in out) {
    const v = out[key];
    if (typeof v === 'object' && v !== null) out[key] = copyJson(v);
  }
  return out as T;
}

/**
 * How deep the claims of a login may nest: far beyond any real claim (OpenID Connect for Identity Assurance's
 * `verified_claims` nest a few levels), and far within what the code that copies, compares and stores them
 * (copyJson, JSON.stringify, a session store) can recurse through before "Maximum call stack size exceeded".
 */
export const MAX_CLAIM_DEPTH = 100;

/**
 * Whether `value` nests objects or arrays more than `max` levels deep (`{ a: 1 }` is one level). It stops at the
 * first such branch, so it never recurses more than `max + 1` deep, and visits each value at most once.
 *
 * @example
 * if (nestedDeeperThan(claims.address, MAX_CLAIM_DEPTH)) throw new Error('claim "address" is nested too deep');
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (max === 0) return true;
  if (Array.isArray(value)) {
    for (const v of value) if (nestedDeeperThan(v, max - 1)) return true;
    return false;
  }
  for (const key in value) if (nestedDeeperThan((value as Record<string, unknown>)[key], max - 1)) return true;
  return false;
}
