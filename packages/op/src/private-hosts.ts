import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import debug from 'debug';
import { BlockList, isIP } from 'node:net';
import { OpConfigError } from './errors.js';

const log = debug('openid-express:op');

/** The `allowPrivateHosts` entries, parsed: host names, and addresses / networks. */
export interface AllowedHosts {
  names: ReadonlySet<string>;
  networks: BlockList;
  hasNetworks: boolean;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const family = (address: string) => (isIP(address) === 6 ? 'ipv6' : 'ipv4');
const bare = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();

function addEntry(entry: unknown, names: Set<string>, networks: BlockList): 'name' | 'network' | undefined {
  if (typeof entry !== 'string' || !entry) return undefined;
  const [address, bits, extra] = entry.split('/');
  const host = bare(address!);
  if (bits !== undefined) {
    const max = isIP(host) === 6 ? 128 : 32;
    if (!isIP(host) || extra !== undefined || !/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
    networks.addSubnet(host, Number(bits), family(host));
    return 'network';
  }
  if (isIP(host)) {
    networks.addAddress(host, family(host));
    return 'network';
  }
  if (!HOST_NAME.test(host)) return undefined;
  names.add(host);
  return 'name';
}

/**
 * Validates `allowPrivateHosts`: host names (`rp.internal`), IP addresses (`10.1.2.3`, `::1`) or
 * CIDR networks (`10.0.0.0/8`). Throws OpConfigError naming the bad entry.
 *
 * @example
 * const allowed = parseAllowedHosts(['rp.internal', '10.0.0.0/8']);
 */
export function parseAllowedHosts(list: unknown): AllowedHosts {
  const names = new Set<string>();
  const networks = new BlockList();
  if (list === undefined) return { names, networks, hasNetworks: false };
  if (!Array.isArray(list)) throw new OpConfigError('allowPrivateHosts', 'must be an array of host names, IP addresses or CIDR networks, e.g. [\'rp.internal\', \'10.0.0.0/8\']');
  let hasNetworks = false;
  list.forEach((entry, i) => {
    const kind = addEntry(entry, names, networks);
    if (!kind) {
      throw new OpConfigError(`allowPrivateHosts[${i}]`, `${JSON.stringify(entry)} is not a host name, an IP address or a CIDR network `
        + '(write "rp.internal", "10.1.2.3" or "10.0.0.0/8": no scheme, port, path or wildcard)');
    }
    hasNetworks ||= kind === 'network';
  });
  return { names, networks, hasNetworks };
}

/** How an outgoing request goes: to a listed host, to a name that resolves into listed networks, or guarded as usual. */
export type FetchRoute = 'listed' | 'network' | 'protected';

/**
 * Which way a request to `url` goes. Names resolving into the listed networks are 'network': they
 * are pinned there again when the socket connects (no DNS-rebinding window).
 *
 * @example
 * await fetchRouteFor(parseAllowedHosts(['127.0.0.1']), new URL('http://127.0.0.1:8080/bcl')); // 'listed'
 */
export async function fetchRouteFor(allowed: AllowedHosts, url: URL): Promise<FetchRoute> {
  const host = bare(url.hostname);
  if (allowed.names.has(host)) return 'listed';
  if (isIP(host)) return allowed.networks.check(host, family(host)) ? 'listed' : 'protected';
  if (!allowed.hasNetworks) return 'protected';
  const addresses = await lookup(host, { all: true }).catch(() => []);
  return addresses.length > 0 && addresses.every((a) => allowed.networks.check(a.address, family(a.address))) ? 'network' : 'protected';
}

/** A dispatcher (undici Agent) for the built-in fetch. */
type Dispatcher = object;
type AgentClass = new (options?: object) => Dispatcher;

/**
 * The built-in fetch's own undici Agent class, found as oidc-provider finds it (an Agent of the npm
 * `undici` package would not fit the built-in fetch). Undefined where it cannot be found (jest's VM).
 */
function builtinAgent(): AgentClass | undefined {
  void Response; // loads the built-in undici, which registers its global dispatcher
  const g = globalThis as Record<symbol, unknown>;
  const dispatcher = g[Symbol.for('undici.globalDispatcher.2')] ?? g[Symbol.for('undici.globalDispatcher.1')];
  return (dispatcher as { constructor?: AgentClass } | undefined)?.constructor;
}

type Lookup = (hostname: string, options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void;

// names chosen for 'network' connect only to addresses inside the listed networks, checked again here
function networksOnly(allowed: AllowedHosts): Lookup {
  return (hostname, options, callback) => dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    if (addresses.length === 0 || addresses.some((a) => !allowed.networks.check(a.address, family(a.address)))) {
      return callback(new Error(`${hostname} resolves outside the allowPrivateHosts networks`), '');
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

/** What the `fetch` of oidc-provider's configuration is called with. */
export type ProviderFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * oidc-provider's `fetch` (back-channel logout, `jwks_uri`, `sector_identifier_uri` ...) that lets
 * requests to `allowPrivateHosts` through its SSRF guard: those go out on a dispatcher of ours
 * (the listed destinations only); every other request keeps oidc-provider's guarded dispatcher.
 *
 * @example
 * const fetch = privateHostsFetch(parseAllowedHosts(['rp.internal', '10.0.0.0/8']));
 * new Provider(issuer, { fetch });
 */
export function privateHostsFetch(
  allowed: AllowedHosts, inner: ProviderFetch = (input, init) => globalThis.fetch(input, init),
): ProviderFetch {
  const Agent = builtinAgent();
  const listed = Agent ? new Agent() : undefined;
  const network = Agent && allowed.hasNetworks ? new Agent({ connect: { lookup: networksOnly(allowed) } }) : undefined;
  return async (input, init) => {
    const target = new URL(input instanceof Request ? input.url : String(input));
    let route = await fetchRouteFor(allowed, target);
    if (route === 'network' && !network) route = 'protected'; // cannot pin the address: stay guarded
    if (route === 'protected') return inner(input, init);
    log('outgoing request to %s: allowed by allowPrivateHosts', target.host);
    // without the Agent class (jest's VM), the global dispatcher: it has no SSRF check either
    return inner(input, { ...init, dispatcher: route === 'listed' ? listed : network } as RequestInit);
  };
}
