/** Deeper than any record oidc-provider writes; past it the copy takes the JSON round trip (which refuses a cycle). */
const MAX_DEPTH = 64;
const UNUSUAL: unique symbol = Symbol('unusual');

/**
 * What `JSON.parse(JSON.stringify(value))` gives, without writing the text when `value` is plain
 * data: objects with Object's prototype (or none), arrays, strings, finite numbers, booleans and
 * null. As in JSON, a key whose value is `undefined`, a function or a symbol is left out, and a
 * `"__proto__"` key stays an own property. Anything else (a `Date`, an object with `toJSON`, a class
 * instance, `NaN`, an array hole, a bigint) sends the whole value through JSON itself, so the copy
 * is always what a JSON store such as `redisAdapter()` would give back, errors included.
 * `omit`: one top-level key left out (the memory store keeps `consumed` beside the record).
 *
 * @example
 * const stored = jsonCopy(payload, 'consumed'); // nothing the caller holds reaches `stored`
 */
export function jsonCopy<T extends object>(value: T, omit?: string): T {
  const copy = copyPlain(value, 0, omit);
  if (copy !== UNUSUAL) return copy as T;
  let source: object = value;
  if (omit !== undefined && Object.hasOwn(value, omit)) {
    const { [omit]: _left, ...rest } = value as Record<string, unknown>;
    source = rest;
  }
  return JSON.parse(JSON.stringify(source)) as T;
}

function copyPlain(value: unknown, depth: number, omit?: string): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : UNUSUAL;
    case 'object':
      break;
    default:
      return UNUSUAL;
  }
  if (value === null) return null;
  if (depth > MAX_DEPTH) return UNUSUAL;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i += 1) {
      const item = copyPlain(value[i], depth + 1);
      if (item === UNUSUAL) return UNUSUAL;
      out.push(item);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if ((proto !== Object.prototype && proto !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return UNUSUAL;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (key === omit) continue;
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    const item = copyPlain(v, depth + 1);
    if (item === UNUSUAL) return UNUSUAL;
    // an own "__proto__" key, as JSON.parse makes it: a plain assignment would set the prototype
    if (key === '__proto__') Object.defineProperty(out, key, { value: item, writable: true, enumerable: true, configurable: true });
    else out[key] = item;
  }
  return out;
}
