/**
 * Aggregated and distributed claims (OpenID Connect Core 1.0 §5.6.2).
 *
 * An OP may say that some claims are held by another party, a Claims Provider: the userinfo
 * response (or ID token) then names them in `_claim_names` (claim → source) and describes the
 * sources in `_claim_sources`, either as a signed JWT (aggregated: `{ JWT }`) or as an endpoint
 * that returns one (distributed: `{ endpoint, access_token? }`).
 *
 * Trust model: a claim is only ever taken from a JWT whose signature verifies with the keys of its
 * own `iss` (found by OpenID discovery of that issuer). A source that cannot be fetched, is too
 * big, is too slow, or does not verify (bad signature, `alg: none`, HMAC, expired, other issuer's
 * key) loses its claims — they are dropped, never taken unverified — and the failure is logged
 * (`DEBUG=openid-express:rp`). The login itself never fails because of a claims source.
 *
 * Every host contacted (the distributed endpoint, the issuer's discovery document, its JWKS) is
 * named by someone else, so each request goes through the package's SSRF guard (no private or
 * loopback hosts unless `allowPrivateNetwork`, no redirects), must be https unless
 * `allowInsecureRequests`, times out, and has a capped body.
 */
import createDebug from 'debug';
import * as jose from 'jose';
import { guardedFetch, readCapped } from './discovery/network-guard.js';
import { putMember } from './user.js';
import { setCapped } from './capped-map.js';

const debug = createDebug('openid-express:rp');

/** The keys that verify JWTs of `issuer` (a jose key function, e.g. from `jose.createRemoteJWKSet`). */
export type IssuerKeys = (issuer: string) => jose.JWTVerifyGetKey | Promise<jose.JWTVerifyGetKey>;

/** Options of {@link resolveClaimSources} (all optional; the defaults are the safe ones). */
export interface ClaimSourceOptions {
  /** HTTP client (e.g. a proxy wrapper). It is still wrapped by the SSRF guard, the timeout and the size cap. Default: the built-in fetch. */
  fetch?: typeof fetch;
  /** Development only: permit http:// issuers, JWKS and endpoints. */
  allowInsecureRequests?: boolean;
  /** Development only: permit private / loopback hosts (refused by default against SSRF). */
  allowPrivateNetwork?: boolean;
  /**
   * The keys of a source JWT's issuer. Default: OpenID discovery of the issuer, then its `jwks_uri`
   * (see {@link issuerKeys}), cached per issuer and per `jwks_uri`.
   */
  keys?: IssuerKeys;
  /** Which claims issuers are believed at all (called before any key is fetched). Default: every issuer. */
  acceptIssuer?: (issuer: string, source: string) => boolean;
  /** Bearer token for a distributed source that carries no `access_token` (pre-negotiated with that Claims Provider). */
  accessTokenFor?: (source: string, endpoint: string) => string | undefined;
  /** Milliseconds each HTTP request (endpoint, discovery, JWKS) may take, body included. Default 5000. */
  timeoutMs?: number;
  /** Most sources resolved per call; the claims of further sources are dropped. Default 10. */
  maxSources?: number;
  /** Largest response body accepted, in bytes. Default 64 KiB. */
  maxResponseBytes?: number;
  /**
   * Called once for each source whose claims are dropped, with the claims it held and why (e.g. its
   * JWT expired, which is how a clock apart from the Claims Provider's shows). Default: none (the
   * drop is logged with `DEBUG=openid-express:rp`). `rp()` uses it to warn once an hour.
   */
  onDropped?: (source: string, claims: string[], reason: string) => void;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_SOURCES = 10;
const DEFAULT_MAX_BYTES = 64 * 1024;
/** Seconds of clock difference tolerated with a Claims Provider (exp / nbf). */
const CLOCK_TOLERANCE = 30;
/** Signature algorithms accepted on a claims JWT: asymmetric only (no `none`, no HMAC). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** Claims a source never replaces: the OP's identity and protocol claims, and the ones that would corrupt the object. */
const PROTECTED = new Set([
  'sub', 'iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'auth_time', 'acr', 'amr', 'at_hash', 'c_hash', 's_hash', 'sid',
  '_claim_names', '_claim_sources', '__proto__',
]);
/** How long a discovered `jwks_uri` is kept, and how many issuers / key sets are cached at most. */
const DISCOVERY_TTL_MS = 10 * 60 * 1000;
const MAX_CACHED = 100;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Replaces the claims named in `_claim_names` by their values from `_claim_sources` (aggregated
 * JWTs and distributed endpoints), each verified with the keys of the source JWT's `iss`. The
 * result has no `_claim_names` / `_claim_sources`. Never rejects:
 *
 * - a named claim holds its source's verified value, or is absent (its source is missing, failed
 *   to fetch, or failed to verify — logged with `debug`); an OP-side value of a named claim is not kept;
 * - claims that are not named stay as they are; `sub` and the ID token protocol claims are never replaced;
 * - at most `maxSources` sources, all in parallel; each HTTP request ends after `timeoutMs`
 *   (a source makes at most: endpoint, discovery, JWKS, one JWKS re-download for an unknown `kid`);
 * - a distributed endpoint must answer 200 with a signed JWT (JSON answers are refused, §5.6.2);
 *   its `access_token` is sent as `Authorization: Bearer`, or `accessTokenFor()`'s, or none.
 *
 * Without `_claim_names` and `_claim_sources`, `claims` itself is returned.
 *
 * @example
 * ```ts
 * const userinfo = await client.fetchUserInfo(config, accessToken, sub);
 * // { sub: 'alice', _claim_names: { shoe_size: 'src1' }, _claim_sources: { src1: { JWT: 'eyJ…' } } }
 * const claims = await resolveClaimSources(userinfo, { timeoutMs: 3000 });
 * // { sub: 'alice', shoe_size: 8 }   (or { sub: 'alice' } if src1's JWT does not verify)
 * ```
 */
export async function resolveClaimSources(claims: Record<string, unknown>, options: ClaimSourceOptions = {}): Promise<Record<string, unknown>> {
  if (!Object.hasOwn(claims, '_claim_names') && !Object.hasOwn(claims, '_claim_sources')) return claims;
  const { _claim_names: names, _claim_sources: sources, ...result } = claims;
  if (!isObject(names) || !isObject(sources)) {
    debug('claims sources ignored: _claim_names and _claim_sources must both be objects');
    return result;
  }

  // source name → the claims it holds
  const wanted = new Map<string, string[]>();
  for (const [claim, source] of Object.entries(names)) {
    if (PROTECTED.has(claim)) {
      debug('claim %s is never taken from a claims source', claim);
      continue;
    }
    delete result[claim]; // a named claim's only value is the one its source vouches for
    if (typeof source !== 'string' || !Object.hasOwn(sources, source)) {
      debug('claim %s dropped: its source %s is not in _claim_sources', claim, String(source));
      continue;
    }
    wanted.set(source, [...(wanted.get(source) ?? []), claim]);
  }

  const maxSources = options.maxSources ?? DEFAULT_MAX_SOURCES;
  const all = [...wanted.keys()];
  for (const source of all.slice(maxSources)) debug('claims source %s dropped (claims %s): more than %d sources', source, wanted.get(source)!.join(', '), maxSources);

  const http = boundedFetch(options);
  const keys = options.keys ?? sharedIssuerKeys(options);
  const resolved = await Promise.all(all.slice(0, maxSources).map(async (source) => {
    try {
      return [source, await loadSource(source, sources[source], options, http, keys)] as const;
    } catch (err) {
      const reason = (err as Error).message;
      debug('claims source %s dropped (claims %s): %s', source, wanted.get(source)!.join(', '), reason);
      options.onDropped?.(source, wanted.get(source)!, reason);
      return [source, undefined] as const;
    }
  }));

  for (const [source, payload] of resolved) {
    if (!payload) continue;
    for (const claim of wanted.get(source)!) {
      if (Object.hasOwn(payload, claim)) putMember(result, claim, payload[claim]);
      else debug('claim %s dropped: its source %s does not hold it', claim, source);
    }
  }
  return result;
}

/** The verified payload of one source. */
async function loadSource(
  source: string, spec: unknown, options: ClaimSourceOptions, http: BoundedFetch, keys: IssuerKeys,
): Promise<jose.JWTPayload> {
  if (!isObject(spec)) throw new Error('the source is not an object');
  if (typeof spec.JWT === 'string') return verifyClaimsJwt(spec.JWT, source, options, keys);
  if (typeof spec.endpoint !== 'string') throw new Error('the source has neither JWT nor endpoint');

  const endpoint = spec.endpoint;
  const token = typeof spec.access_token === 'string' && spec.access_token !== '' ? spec.access_token : options.accessTokenFor?.(source, endpoint);
  const headers: Record<string, string> = { accept: 'application/jwt' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await http(endpoint, { method: 'GET', headers });
  if (response.status !== 200) throw new Error(`the endpoint answered HTTP ${response.status}`);
  const body = (await response.text()).trim();
  if (body.startsWith('{')) throw new Error('the endpoint answered JSON; a claims source must return a signed JWT');
  return verifyClaimsJwt(body, source, options, keys);
}

/** Signature (with the keys of the JWT's own `iss`), `iss`, `exp` and `nbf` of a claims JWT. */
async function verifyClaimsJwt(jwt: string, source: string, options: ClaimSourceOptions, keys: IssuerKeys): Promise<jose.JWTPayload> {
  let alg: string | undefined;
  let iss: unknown;
  try {
    alg = jose.decodeProtectedHeader(jwt).alg;
    iss = jose.decodeJwt(jwt).iss;
  } catch (err) {
    throw new Error(`not a signed JWT (${(err as Error).message})`);
  }
  // checked before any key is fetched: an unsigned or HMAC "signature" is never worth a request
  if (!alg || !ALGORITHMS.includes(alg)) throw new Error(`alg ${String(alg)} is refused (asymmetric signatures only)`);
  if (typeof iss !== 'string' || iss === '') throw new Error('the JWT has no iss, so its keys cannot be found');
  if (options.acceptIssuer && !options.acceptIssuer(iss, source)) throw new Error(`issuer ${iss} is not accepted`);
  const getKey = await keys(iss);
  try {
    const { payload } = await jose.jwtVerify(jwt, getKey, { issuer: iss, algorithms: ALGORITHMS, clockTolerance: CLOCK_TOLERANCE });
    return payload;
  } catch (err) {
    // an expired or not-yet-valid JWT straight from its issuer: old, or the two clocks are apart
    const claim = err instanceof jose.errors.JWTExpired ? 'exp' : err instanceof jose.errors.JWTClaimValidationFailed ? err.claim : undefined;
    if (claim !== 'exp' && claim !== 'nbf') throw err;
    throw new Error(`its JWT from ${iss} is ${claim === 'exp' ? 'expired' : 'not valid yet'} ("${claim}" claim, ${CLOCK_TOLERANCE} s tolerated): `
      + `the JWT is stale, or the clocks of this server and the Claims Provider ${iss} differ; keep both in time (NTP)`, { cause: err });
  }
}

/** A GET with the SSRF guard, the https rule, a timeout and a buffered, size-capped body. */
type BoundedFetch = (url: string, init: { method?: string; headers?: HeadersInit; signal?: AbortSignal }) => Promise<Response>;

function boundedFetch(options: ClaimSourceOptions): BoundedFetch {
  const guarded = guardedFetch({ allowPrivateNetwork: options.allowPrivateNetwork, fetchImpl: options.fetch }) as unknown as
    (url: string, init: RequestInit) => Promise<Response>;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const limit = options.maxResponseBytes ?? DEFAULT_MAX_BYTES;
  return async (url, init) => {
    checkUrl(url, options);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const response = await guarded(url, { ...init, signal, redirect: 'manual' });
      const body = await readCapped(response, limit);
      const nullBody = [204, 205, 304].includes(response.status);
      return new Response(nullBody ? null : body, { status: response.status, headers: response.headers });
    } catch (err) {
      if (timeout.aborted) throw new Error(`${new URL(url).host} did not answer within ${timeoutMs} ms`, { cause: err });
      throw err;
    }
  };
}

/** https only (http with `allowInsecureRequests`), no credentials in the URL. */
function checkUrl(url: string, options: ClaimSourceOptions): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${url} is not a URL`);
  }
  if (!(parsed.protocol === 'https:' || (options.allowInsecureRequests && parsed.protocol === 'http:'))) {
    throw new Error(`${parsed.origin} is refused: https only (http only with allowInsecureRequests)`);
  }
  if (parsed.username || parsed.password) throw new Error('URLs with credentials are refused');
  return parsed;
}

/** Map with a size cap: the oldest entry goes first (sources are named by others: no unbounded growth). */
const remember = <K, V>(map: Map<K, V>, key: K, value: V): V => setCapped(map, key, value, MAX_CACHED);

/**
 * The default {@link IssuerKeys}: OpenID discovery of the issuer
 * (`{issuer}/.well-known/openid-configuration`, whose `issuer` must be the same string), then a
 * `jose.createRemoteJWKSet` of its `jwks_uri`, cached per `jwks_uri` (a JWT with an unknown `kid`
 * downloads it again, at most every 30 s). Discovery answers are kept 10 minutes; failures are not kept.
 * Each request goes through the same guard as the sources (SSRF, https, timeout, size cap).
 *
 * @example
 * ```ts
 * const keys = issuerKeys({ timeoutMs: 3000 });   // keep it: it holds the caches
 * const claims = await resolveClaimSources(userinfo, { keys });
 * ```
 */
export function issuerKeys(options: Omit<ClaimSourceOptions, 'keys' | 'acceptIssuer' | 'accessTokenFor' | 'maxSources'> = {}): (issuer: string) => Promise<jose.JWTVerifyGetKey> {
  const http = boundedFetch(options);
  const discovered = new Map<string, { at: number; jwksUri: Promise<string> }>();
  const sets = new Map<string, jose.JWTVerifyGetKey>();

  const discover = async (issuer: string): Promise<string> => {
    const base = checkUrl(issuer, options);
    if (base.search || base.hash) throw new Error(`issuer ${issuer} has a query or fragment`);
    const response = await http(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { method: 'GET', headers: { accept: 'application/json' } });
    if (response.status !== 200) throw new Error(`discovery of ${issuer} answered HTTP ${response.status}`);
    const metadata: unknown = await response.json().catch(() => undefined);
    if (!isObject(metadata)) throw new Error(`discovery of ${issuer} did not answer a JSON object`);
    if (metadata.issuer !== issuer) throw new Error(`discovery of ${issuer} names another issuer (${String(metadata.issuer)})`);
    if (typeof metadata.jwks_uri !== 'string') throw new Error(`${issuer} publishes no jwks_uri`);
    checkUrl(metadata.jwks_uri, options);
    return metadata.jwks_uri;
  };

  return async (issuer) => {
    let entry = discovered.get(issuer);
    if (!entry || Date.now() - entry.at > DISCOVERY_TTL_MS) {
      const jwksUri = discover(issuer);
      entry = remember(discovered, issuer, { at: Date.now(), jwksUri });
      jwksUri.catch(() => { if (discovered.get(issuer) === entry) discovered.delete(issuer); });
    }
    const jwksUri = await entry.jwksUri;
    return sets.get(jwksUri) ?? remember(sets, jwksUri, jose.createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      cooldownDuration: 30_000,
      cacheMaxAge: DISCOVERY_TTL_MS,
      [jose.customFetch]: http as jose.FetchImplementation,
    }));
  };
}

/** One default {@link issuerKeys} per set of options (and per `fetch`), so its caches outlive a call. */
const shared = new Map<string, IssuerKeys>();
const sharedByFetch = new WeakMap<typeof fetch, Map<string, IssuerKeys>>();

function sharedIssuerKeys(options: ClaimSourceOptions): IssuerKeys {
  const { fetch: fetchImpl, allowInsecureRequests, allowPrivateNetwork, timeoutMs, maxResponseBytes } = options;
  const id = JSON.stringify([!!allowInsecureRequests, !!allowPrivateNetwork, timeoutMs ?? DEFAULT_TIMEOUT_MS, maxResponseBytes ?? DEFAULT_MAX_BYTES]);
  let byOptions = fetchImpl ? sharedByFetch.get(fetchImpl) : shared;
  if (!byOptions) sharedByFetch.set(fetchImpl!, (byOptions = new Map()));
  return byOptions.get(id) ?? remember(byOptions, id, issuerKeys({ fetch: fetchImpl, allowInsecureRequests, allowPrivateNetwork, timeoutMs, maxResponseBytes }));
}
