/**
 * SSRF guard for OPs found on the fly: a host named by a stranger (WebFinger, an issuer, the
 * endpoints in its metadata) must not make the app call into its own private network.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { CustomFetch } from 'openid-client';

/** Refused: the host resolves to a private, loopback or otherwise non-public address. */
export class PrivateNetworkError extends Error {
  readonly code = 'private_network';
  constructor(readonly host: string) {
    super(`refusing to contact ${host}: it resolves to a private or loopback address (set dynamic.allowPrivateNetwork for development)`);
    this.name = 'PrivateNetworkError';
  }
}

// Addresses that are not on the public Internet (RFC 6890 special-purpose registries).
const blocked4 = new BlockList();
const blocked6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked4.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7],
  ['fe80::', 10], ['ff00::', 8],
] as const) blocked6.addSubnet(net, prefix, 'ipv6');

/** True when the address (IPv4 or IPv6 literal) is not a public unicast address. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it carries.
  const mapped = mappedIPv4(address);
  if (mapped) return blocked4.check(mapped, 'ipv4');
  return family === 4 ? blocked4.check(address, 'ipv4') : blocked6.check(address, 'ipv6');
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address carries (RFC 4291 §2.5.5.2), in either spelling:
 * `::ffff:127.0.0.1`, or the hex one URLs serialize it to (`::ffff:7f00:1`); brackets allowed.
 */
export function mappedIPv4(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '');
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (dotted) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(bare);
  if (!hex) return undefined;
  const [hi, lo] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The whole body of a stranger's answer, refused past `limit` bytes (declared or streamed). */
export async function readCapped(response: Response, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`the response (${declared} bytes) is larger than ${limit} bytes`);
  }
  if (!response.body) return new Uint8Array(new ArrayBuffer(0));
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the response is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(new ArrayBuffer(size));
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** The {@link PrivateNetworkError} that `err` is or wraps (openid-client wraps fetch failures), if any. */
export function privateNetworkError(err: unknown): PrivateNetworkError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PrivateNetworkError) return e;
  }
  return undefined;
}

/**
 * Throws {@link PrivateNetworkError} when the URL's host is a private IP literal, or a name that
 * resolves to a private address (a pre-check: {@link guardedFetch} checks again at connect time).
 *
 * @example
 * ```ts
 * await assertPublicHost(new URL('https://op.example.org/.well-known/webfinger'));
 * ```
 */
export async function assertPublicHost(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) throw new PrivateNetworkError(url.host);
}

/** A socket `lookup` that refuses private addresses where the connection is made: no DNS rebinding window. */
function publicOnlyLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) return callback(new PrivateNetworkError(hostname), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}

/** A dispatcher (undici Agent) for the built-in fetch. */
type Dispatcher = object;

/**
 * The built-in fetch's own undici Agent class (the same one oidc-provider uses for its SSRF
 * protection): an Agent from the npm `undici` package would replace the process-wide dispatcher.
 */
function builtinAgentClass(): (new (options: object) => Dispatcher) | undefined {
  void Response; // loads the built-in undici, which registers its global dispatcher
  const g = globalThis as Record<symbol, unknown>;
  const dispatcher = g[Symbol.for('undici.globalDispatcher.2')] ?? g[Symbol.for('undici.globalDispatcher.1')];
  return (dispatcher as { constructor?: new (options: object) => Dispatcher } | undefined)?.constructor;
}

const dispatchers: { publicOnly?: Dispatcher; any?: Dispatcher } = {};

/**
 * A fetch for openid-client (`customFetch`) that never reaches a private or loopback address,
 * unless `allowPrivateNetwork`: IP literals are refused up front, names where the socket connects
 * (no DNS-rebinding window). Redirects are never followed. `fetchImpl` replaces the HTTP client (tests).
 *
 * @example
 * ```ts
 * const customFetch = guardedFetch({ allowPrivateNetwork: false });
 * ```
 */
export function guardedFetch(options: { allowPrivateNetwork?: boolean; fetchImpl?: typeof fetch }): CustomFetch {
  const { allowPrivateNetwork } = options;
  const fetchImpl = options.fetchImpl ?? fetch;
  const Agent = options.fetchImpl ? undefined : builtinAgentClass();
  // One code path with or without the opt-in: the opt-in only drops the address check.
  const dispatcher = Agent && (allowPrivateNetwork
    ? (dispatchers.any ??= new Agent({}))
    : (dispatchers.publicOnly ??= new Agent({ connect: { lookup: publicOnlyLookup } })));
  return async (url, init) => {
    const target = new URL(url);
    // IP literals never reach a lookup; without a connect-time check, names are checked up front.
    if (!allowPrivateNetwork && (isIP(target.hostname.replace(/^\[|\]$/g, '')) || !dispatcher)) await assertPublicHost(target);
    const response = await fetchImpl(url, { ...init, redirect: 'manual', ...(dispatcher ? { dispatcher } : {}) } as RequestInit);
    return capped(response, MAX_BODY);
  };
}

/** Bodies from OPs found on the fly are metadata, keys and tokens: a stranger's server may send more. */
const MAX_BODY = 1024 * 1024;

/** The response with its body cut off (as an error) past `limit` bytes. */
function capped(response: Response, limit: number): Response {
  if (!response.body || [101, 204, 205, 304].includes(response.status)) return response;
  let size = 0;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > limit) controller.error(new Error(`the response is larger than ${limit} bytes`));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
