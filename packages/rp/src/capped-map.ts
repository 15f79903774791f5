/**
 * Maps of what strangers can name (issuers, claim sources, OPs found on the fly) stay bounded: an
 * entry set again moves to the end, and past `max` the oldest goes.
 */

/** Sets `key` to `value` in `map` as its newest entry, dropping the oldest beyond `max`; returns `value`. */
export function setCapped<K, V>(map: Map<K, V>, key: K, value: V, max: number): V {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
  return value;
}

/** The most entries kept per cache of what strangers can name (one per issuer, `jwks_uri` ...). */
export const MAX_PER_ISSUER = 1000;
