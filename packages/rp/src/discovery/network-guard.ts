/**
 * SSRF guard for OPs found on the fly: a host named by a stranger (WebFinger, an issuer, the
 * endpoints in its metadata) must not make the app call into its own private network.
 */
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
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked4.check(mapped[1], 'ipv4');
  return family === 4 ? blocked4.check(address, 'ipv4') : blocked6.check(address, 'ipv6');
}

/** The {@link PrivateNetworkError} that `err` is or wraps (openid-client wraps fetch failures), if any. */
export function privateNetworkError(err: unknown): PrivateNetworkError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PrivateNetworkError) return e;
  }
  return undefined;
}

/**
 * Resolves the URL's host and throws {@link PrivateNetworkError} if any of its addresses is private.
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

/**
 * A fetch for openid-client (`customFetch`) that checks every destination host first, unless
 * `allowPrivateNetwork`. Redirects are never followed (openid-client asks for `redirect: 'manual'`).
 *
 * @example
 * ```ts
 * const customFetch = guardedFetch({ allowPrivateNetwork: false });
 * ```
 */
export function guardedFetch(options: { allowPrivateNetwork?: boolean; fetchImpl?: typeof fetch }): CustomFetch {
  const fetchImpl = options.fetchImpl ?? fetch;
  return async (url, init) => {
    if (!options.allowPrivateNetwork) await assertPublicHost(new URL(url));
    return fetchImpl(url, { ...init, redirect: 'manual' } as RequestInit);
  };
}
