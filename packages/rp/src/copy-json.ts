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
