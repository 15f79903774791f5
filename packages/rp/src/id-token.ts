/**
 * Signature checks of the JWTs an OP sends us (ID tokens, logout tokens) against its JWKS.
 *
 * openid-client checks the claims of an ID token but, by default, trusts the TLS channel of the
 * token endpoint for its signature; we verify the signature always, with a cached JWKS that is
 * downloaded again once when a token names an unknown `kid` (key rotation).
 */
import * as jose from 'jose';
import { RpError, algNotAccepted, opRetryAfter, toRpError } from './errors.js';
import type { ProviderConfig } from './options.js';
import { MAX_PER_ISSUER, setCapped } from './capped-map.js';

type KeyResolver = jose.JWTVerifyGetKey;

/**
 * Per-OP cache of JWKS (one per `jwks_uri`). A token naming a `kid` the cache does not hold makes
 * the set download again at once (an OP that rotated its key is followed on the next login), with
 * the OP protected differently: at most one download in flight per `jwks_uri` (jose shares it), and
 * at least `minGapSeconds` between two downloads (a request that needs one sooner waits for it).
 * An OP whose keys answer 5xx or 429 is `op_unavailable` (transient: a refresh then keeps the
 * login), and a download that fails once the cache is stale keeps serving the keys it had: a token
 * signed with a key we hold still verifies while the OP's `jwks_uri` is down.
 */
export class KeySets {
  private readonly sets = new Map<string, KeyResolver>();
  private readonly remotes = new Map<string, ReturnType<typeof jose.createRemoteJWKSet>>();
  /** When each set was last downloaded (epoch ms): the gap between downloads, and `reloadIfOlder`. */
  private readonly downloaded = new Map<string, number>();

  /** `cacheMaxAgeMs`: how long a downloaded set is used before it is downloaded again (10 minutes). */
  constructor(private readonly minGapSeconds: number, private readonly cacheMaxAgeMs = 10 * 60 * 1000) {}

  /** The cached key set of `jwksUri`. */
  get(jwksUri: string, provider: ProviderConfig): KeyResolver {
    let set = this.sets.get(jwksUri);
    if (!set) {
      const fetchImpl = (provider.customFetch as unknown as jose.FetchImplementation | undefined) ?? ((url, init) => fetch(url, init));
      const spaced: jose.FetchImplementation = async (url, init) => {
        const wait = (this.downloaded.get(jwksUri) ?? 0) + this.minGapSeconds * 1000 - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        setCapped(this.downloaded, jwksUri, Date.now(), MAX_PER_ISSUER);
        const res = await fetchImpl(url, init);
        if (res.status >= 500 || res.status === 429) {
          await res.body?.cancel().catch(() => undefined);
          throw new RpError('op_unavailable', `the OP's keys at ${jwksUri} are unavailable (HTTP ${res.status}); try again shortly`, {
            retryAfter: opRetryAfter(res.headers),
          });
        }
        return res;
      };
      const remote = jose.createRemoteJWKSet(new URL(jwksUri), {
        cooldownDuration: 0, // the gap between downloads is ours (`spaced`): an unknown kid always gets one
        cacheMaxAge: this.cacheMaxAgeMs,
        timeoutDuration: 10_000 + Math.ceil(this.minGapSeconds * 1000),
        [jose.customFetch]: spaced,
      });
      set = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          // the download failed (the cache stays stale): the keys we had still serve a kid they hold
          const held = remote.fresh ? undefined : remote.jwks();
          if (!held) throw err;
          try {
            return await jose.createLocalJWKSet(held)(header, token);
          } catch {
            throw err;
          }
        }
      };
      // one per jwks_uri, which OPs found on the fly choose: the oldest goes (downloaded again if used)
      setCapped(this.sets, jwksUri, set, MAX_PER_ISSUER);
      setCapped(this.remotes, jwksUri, remote, MAX_PER_ISSUER);
    }
    return set;
  }

  /**
   * Downloads the set of `jwksUri` again unless that happened after `since` (epoch ms): for a token
   * whose signature the cached keys refuse although one of them was picked for it (it names no
   * `kid`, or a `kid` the OP gave to a new key). True when it was downloaded again.
   */
  async reloadIfOlder(jwksUri: string, since: number): Promise<boolean> {
    const remote = this.remotes.get(jwksUri);
    if (!remote || (this.downloaded.get(jwksUri) ?? 0) >= since) return false;
    await remote.reload();
    return true;
  }

  /**
   * Makes sure keys of `expect.jwksUri` are at hand before a grant whose answer carries an ID token
   * (a refresh): when none were downloaded yet, or the set is stale, it downloads them now, so an OP
   * whose `jwks_uri` is down fails the request *before* the OP spends (and, rotating, replaces) the
   * refresh token, not after, when its new tokens could not be verified and would be lost. A stale
   * set that cannot be downloaded again still serves.
   */
  async prepare(expect: JwtExpectations, provider: ProviderConfig): Promise<void> {
    if (!expect.jwksUri || expect.algorithms.every((a) => a.startsWith('HS'))) return;
    this.get(expect.jwksUri, provider);
    const remote = this.remotes.get(expect.jwksUri)!;
    if (remote.fresh) return;
    try {
      await remote.reload();
    } catch (err) {
      if (remote.jwks()) return;
      // named as the keys' download: before the grant, where nothing else was asked of the OP yet
      const failure = toRpError(err);
      if (failure.message.includes(expect.jwksUri)) throw failure;
      throw new RpError(failure.code, `the OP's keys at ${expect.jwksUri} could not be downloaded: ${failure.message}`,
        { cause: err, retryAfter: failure.retryAfter, opError: failure.opError, lasting: failure.lasting });
    }
  }
}

/** Seconds of clock difference tolerated between the OP and us. */
export const CLOCK_TOLERANCE = 30;
/** What a token refused for its times says about the clocks (also what tells such a refusal apart). */
export const CLOCKS_DIFFER = 'the clocks of this server and the OP differ';

/** What a signature check needs to know about the OP and the client. */
export interface JwtExpectations {
  jwksUri: string | undefined;
  issuer: string;
  audience: string;
  /** Accepted `alg` values; asymmetric only (a JWKS has no shared secrets). */
  algorithms: string[];
}

/** The signing algorithms an OP's metadata allows for ID tokens, minus `none` and HMAC (unless the client registered one). */
export function idTokenAlgorithms(metadata: Record<string, unknown>, clientAlg?: string): string[] {
  if (clientAlg) return [clientAlg];
  const listed = metadata.id_token_signing_alg_values_supported;
  const algs = Array.isArray(listed) ? listed.filter((a): a is string => typeof a === 'string') : ['RS256'];
  return algs.filter((a) => a !== 'none' && !a.startsWith('HS'));
}

/**
 * Verifies the signature, `iss`, `aud` and time claims of a JWT; returns its claims.
 * The issuer may depend on the token itself (`expectedIssuer` hook of a provider).
 */
export async function verifyJwt(
  jwt: string,
  expect: JwtExpectations,
  keySets: KeySets,
  provider: ProviderConfig,
  extra: Partial<jose.JWTVerifyOptions> = {},
): Promise<jose.JWTPayload> {
  // HMAC (HS256…) only when the provider entry registered it: the key is the client secret, never a JWKS
  const hmac = expect.algorithms.length > 0 && expect.algorithms.every((a) => a.startsWith('HS'));
  if (!hmac && !expect.jwksUri) throw new Error('the OP publishes no jwks_uri, so its token signature cannot be verified');
  const issuer = provider.expectedIssuer ? provider.expectedIssuer(jose.decodeJwt(jwt), expect.issuer) : expect.issuer;
  const key = hmac ? new TextEncoder().encode(provider.clientSecret ?? '') : keySets.get(expect.jwksUri!, provider);
  let payload: jose.JWTPayload;
  const options = { issuer, audience: expect.audience, algorithms: expect.algorithms, clockTolerance: CLOCK_TOLERANCE, ...extra };
  const started = Date.now();
  try {
    try {
      ({ payload } = await verifyWithCandidates(jwt, key, expect.jwksUri, options));
    } catch (err) {
      // the cached key the token was matched with does not verify it: the OP may have rotated to a key
      // without a kid (OIDC Core §10.1.1 allows one when its JWKS holds a single key) or under the same
      // kid, which jose's download on an unknown kid never notices. Downloaded once more (spaced as any)
      if (hmac || !(err instanceof jose.errors.JWSSignatureVerificationFailed) || !(await keySets.reloadIfOlder(expect.jwksUri!, started).catch(() => false))) throw err;
      ({ payload } = await verifyWithCandidates(jwt, key, expect.jwksUri, options));
    }
  } catch (err) {
    if (err instanceof jose.errors.JWKSNoMatchingKey) throw new jose.errors.JWKSNoMatchingKey(unpublishedKey(jwt, expect.jwksUri));
    // (jose's JWTExpired, for exp and a too old iat, is not a JWTClaimValidationFailed)
    if ((err instanceof jose.errors.JWTClaimValidationFailed || err instanceof jose.errors.JWTExpired) && ['iat', 'exp', 'nbf'].includes(err.claim)) {
      const Refusal = err instanceof jose.errors.JWTExpired ? jose.errors.JWTExpired : jose.errors.JWTClaimValidationFailed;
      throw new Refusal(withClockHint(err.message, err.claim, err.payload), err.payload, err.claim, err.reason);
    }
    // jose refuses some keys with a bare TypeError (an OP's RSA key under 2048 bits, a key its alg cannot use):
    // the OP's token is refused, naming why (not an app bug, also when jose is bundled where no stack names it)
    if (err instanceof TypeError && !(err instanceof jose.errors.JOSEError) && err.message !== 'fetch failed' && err.cause === undefined) {
      throw new jose.errors.JWSInvalid(`the OP's key cannot verify it: ${err.message}`);
    }
    if (!(err instanceof jose.errors.JOSEAlgNotAllowed)) throw err;
    let alg: unknown;
    try {
      alg = jose.decodeProtectedHeader(jwt).alg;
    } catch { /* no alg */ }
    throw new jose.errors.JOSEAlgNotAllowed(algNotAccepted(alg, expect.algorithms));
  }
  // jose checks iat only with maxTokenAge: a token "issued" in the future is forged or from a broken clock
  if (typeof payload.iat === 'number' && payload.iat > Math.floor(Date.now() / 1000) + CLOCK_TOLERANCE) {
    throw new jose.errors.JWTClaimValidationFailed(withClockHint('"iat" claim timestamp check failed (it should be in the past)', 'iat', payload), payload, 'iat', 'check_failed');
  }
  return payload;
}

/**
 * jose's `jwtVerify`, trying each candidate key of a token that names no `kid` when the JWKS holds
 * several that could verify it (jose refuses such a token with JWKSMultipleMatchingKeys): the first
 * whose signature verifies is used; none does, the signature is refused.
 */
async function verifyWithCandidates(
  jwt: string, key: KeyResolver | Uint8Array, jwksUri: string | undefined, options: jose.JWTVerifyOptions,
): Promise<jose.JWTVerifyResult> {
  try {
    return await jose.jwtVerify(jwt, key as Uint8Array, options);
  } catch (err) {
    if (!(err instanceof jose.errors.JWKSMultipleMatchingKeys)) throw err;
    let tried = 0;
    for await (const candidate of err) {
      tried += 1;
      try {
        return await jose.jwtVerify(jwt, candidate, options);
      } catch (refused) {
        // the signature verified with this key, and a claim is wrong: that is the answer
        if (refused instanceof jose.errors.JWTClaimValidationFailed) throw refused;
        // else not this key: its signature does not verify, or jose will not use it (an RSA key under 2048 bits)
      }
    }
    throw new jose.errors.JWSSignatureVerificationFailed(`no key of the OP's JWKS (${jwksUri}) verifies the token's signature (it names no "kid"; ${tried} keys tried)`);
  }
}

/**
 * What to do about a token whose key the OP's JWKS does not publish, even downloaded again (jose's
 * "no applicable key found" names neither): an OP whose instances sign with a key that not all of
 * them publish yet (a signing key changed on one instance of several first), or a forged token.
 */
function unpublishedKey(jwt: string, jwksUri: string | undefined): string {
  let kid: unknown;
  try {
    kid = jose.decodeProtectedHeader(jwt).kid;
  } catch { /* no header */ }
  return `no key of the OP's JWKS (${jwksUri}) matches the token's "kid" (${typeof kid === 'string' ? JSON.stringify(kid.slice(0, 80)) : 'none'}), `
    + 'even downloaded again. If the OP is changing its signing key: publish the new key on every OP instance before any of them signs with it';
}

/** True for a token refused only because the OP's JWKS does not publish its key (see `unpublishedKey`). */
export function isUnpublishedKey(err: unknown): boolean {
  return err instanceof jose.errors.JWKSNoMatchingKey;
}

/**
 * Whether `jwt`'s claims, unverified, are those of a logout token of this OP for this app (its `iss`,
 * an `aud` naming the client, the back-channel logout event): only such a token signed with a key
 * the OP does not publish may be genuine and worth the OP's retry (see {@link isUnpublishedKey}).
 */
export function claimsOfOwnLogoutToken(jwt: string, expect: JwtExpectations): boolean {
  let claims: jose.JWTPayload;
  try {
    claims = jose.decodeJwt(jwt);
  } catch {
    return false;
  }
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  return claims.iss === expect.issuer && audiences.includes(expect.audience) && hasLogoutEvent(claims);
}

/**
 * A time claim refused (jose's message), with what it says about the clocks: a token "issued" or
 * "valid from" ahead of this server's clock, or expired (too old) when the OP has just sent it, means
 * the clocks of this server and the OP differ, the usual cause, which jose's message does not name.
 */
function withClockHint(message: string, claim: string, payload: jose.JWTPayload): string {
  const now = Math.floor(Date.now() / 1000);
  const at = payload[claim];
  if (typeof at !== 'number') return message;
  const fix = `${CLOCKS_DIFFER}: keep both in time (NTP, e.g. chrony or systemd-timesyncd)`;
  if (at > now) return `${message}: it is ${at - now} s ahead of this server's clock (${CLOCK_TOLERANCE} s are tolerated), so ${fix}`;
  const issued = typeof payload.iat === 'number' ? `, issued ${now - payload.iat} s ago by this server's clock` : '';
  return `${message}${issued}: if the OP sent it just now, ${fix}`;
}

/** Seconds a logout token is accepted after its `iat` (also how long its `jti` is remembered). */
export const LOGOUT_TOKEN_MAX_AGE = 600;

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `claims` carry the back-channel logout event, whose value MUST be a JSON object (§2.4: null and arrays are not). */
const hasLogoutEvent = (claims: jose.JWTPayload): boolean => isObject(claims.events) && isObject(claims.events[BACKCHANNEL_EVENT]);

/**
 * Verifies a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6): signature, iss, aud,
 * iat (at most 10 minutes old), jti, the logout event, no nonce, and a `sid` or `sub`.
 */
export async function verifyLogoutToken(
  jwt: string,
  expect: JwtExpectations,
  keySets: KeySets,
  provider: ProviderConfig,
): Promise<{ sid?: string; sub?: string; jti: string; iat: number }> {
  const claims = await verifyJwt(jwt, expect, keySets, provider, { requiredClaims: ['iat', 'jti'], maxTokenAge: LOGOUT_TOKEN_MAX_AGE });
  if (!hasLogoutEvent(claims)) throw new Error('the logout token has no back-channel logout event');
  if ('nonce' in claims) throw new Error('a logout token must not contain a nonce');
  const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
  if (!sid && !sub) throw new Error('the logout token names neither a sid nor a sub');
  if (typeof claims.jti !== 'string' || claims.jti.length > 256) throw new Error('the logout token has no usable jti');
  return { sid, sub, jti: claims.jti, iat: claims.iat! };
}
