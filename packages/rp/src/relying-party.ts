/**
 * The framework-free RP core (IdPyOIDC's RPHandler): provider info, authorization request,
 * finalize (token + user info), refresh, user info, end-session URL, logout tokens.
 * The Express router composes these operations; nothing here knows about HTTP requests.
 */
import { createHash } from 'node:crypto';
import createDebug from 'debug';
import * as client from 'openid-client';
import * as jose from 'jose';
import { RpError, atProvider, oneLine, opStatus, toRpError, type OpStep } from './errors.js';
import { DynamicProviderError, DynamicProviders, postLogoutRedirectUri as registeredPostLogoutUri } from './discovery/registration.js';
import { codeGrantWithTokenIssuer, configurationForIdToken, refreshWithTokenIssuer } from './issuer-per-token.js';
import { CLOCK_TOLERANCE, KeySets, claimsOfOwnLogoutToken, idTokenAlgorithms, isUnpublishedKey, verifyJwt, verifyLogoutToken, type JwtExpectations } from './id-token.js';
import { assertionClockHint, checkProvider, resolveOptions, type ProviderConfig, type ResolvedOptions, type RpOptions } from './options.js';
import { clientAuth, configure, OP_TIMEOUT_S } from './provider-metadata.js';
import { didYouMean } from './did-you-mean.js';
import { MAX_PER_ISSUER, setCapped } from './capped-map.js';
import { normalizeUser } from './user.js';
import { fetchUserInfo, needsOwnUserInfo, userInfoCanAdd } from './userinfo.js';
import { requestObject } from './request-object.js';
import { resolveClaimSources } from './claim-sources.js';
import { decryptIdToken, importKeys, type OwnKeys } from './keys.js';
import { expiryOf, type Authentication, type OidcSessionData, type StoredAccessToken, type Transaction } from './session.js';
import { SingleFlight } from './single-flight.js';
import { keptRefresh, rotatedRefresh, settleSharedRefresh, sharedRefresh } from './shared-refresh.js';
import { KeyQueue } from './key-queue.js';
import type { Coordination } from './coordination.js';
import { saveTransaction, takeTransaction } from './transactions.js';
import { boundKey, dpopAlg, dpopOptions, fetchWithToken, newDPoPKey, type DPoPBoundToken, type DPoPKey } from './dpop.js';
import { parRequiredError, pushedAuthorizationUrl, usesPar } from './par.js';
import type { Operation } from './operations.js';
import { clientCredentialsGrant, type ClientCredentialsOptions } from './client-credentials.js';
import { passwordGrantRequest, type PasswordGrantOptions } from './password-grant.js';
import { tokenExchangeGrant, type TokenExchangeOptions } from './token-exchange.js';
import { introspectToken, revokeToken, type Introspection, type TokenTypeHint } from './token-management.js';
import { startDeviceAuthorization, type DeviceAuthorization, type DeviceAuthorizationOptions } from './device.js';
import type { TokenResult } from './token-result.js';

const debug = createDebug('openid-express:rp');

/** A started login: where to send the browser and what to keep until the callback. */
export interface AuthorizationRequest {
  url: URL;
  state: string;
  transaction: Transaction;
}

/** What tokens of one OP must match, and its userinfo endpoint. */
type OpExpectations = JwtExpectations & { userinfoEndpoint?: string; claimsSupported?: string[] };

/** How long a refresh result is shared with requests that still hold the old refresh token (in this process). */
const REFRESH_GRACE_MS = 30_000;
/**
 * How long it is kept in the `coordination` store once the session holds the new tokens: as long as a
 * request that read the session before may still save it back (a load balancer lets one last 60 s),
 * so that save is put right (see `newerLogin`).
 */
const REFRESH_SHARED_GRACE_MS = 120_000;

/** Failures of a login met after its code was redeemed (userinfo down, say): the same answer cannot be used again. */
const afterExchange = new WeakSet<RpError>();
const spentCode = (err: RpError): RpError => (afterExchange.add(err), err);
/** True when `err` came after the login's code was redeemed at the OP: a retry of that callback cannot succeed, a new login can. */
export const failedAfterCodeSpent = (err: RpError): boolean => afterExchange.has(err);

/** A provider's metadata being discovered (or known). */
interface PendingConfig { promise: Promise<client.Configuration>; provider: ProviderConfig; startedAt: number; settled: boolean }
/** How long a pending discovery request is shared; a login after that asks again (the 10 s timeout ends the old one). */
const DISCOVERY_JOIN_MS = 500;
/**
 * How long it is kept when the session could not be given the new tokens (its store failed): the
 * session still holds the old, rotated refresh token, and a later request gets the result instead of
 * a replay the OP would answer by revoking the grant.
 */
const REFRESH_KEEP_MS = 24 * 3600 * 1000;
/**
 * How many such results this process keeps (a few KB each): a store that takes reads but refuses
 * writes for hours (a full Redis) must not grow the heap with every user who comes back meanwhile.
 */
const REFRESH_KEEP_MAX = 10_000;

/**
 * OP errors at the token endpoint that mean the grant is gone: only these end a login (RFC 6749 §5.2).
 * `invalid_client` is not among them: it says the app's credentials were refused (an instance whose
 * client secret differs while it is being changed, a misconfiguration), which is not this user's
 * grant; the login is kept and the answer is 500 `client_auth_failed` naming what to check, so a
 * request on a rightly configured instance (or once it is fixed) refreshes it. (At an OP found on
 * the fly the registration is forgotten, and that ends the login: see `refreshGrant`.)
 */
const GRANT_GONE = new Set(['invalid_grant', 'unauthorized_client']);

/**
 * The longest ID token `sid` a login takes, and so the longest a front-channel logout names: its URL then stays
 * within the 8000 octets every recipient should take (RFC 9110 §4.1). A longer one is refused at login, where the
 * message reaches the developer, rather than leave the login one front-channel logout cannot end.
 */
const MAX_SID_LENGTH = 4096; // (in percent-encoded characters, as the URL carries it)
/** The length of `sid` as a URL carries it (percent-encoded UTF-8): what MAX_SID_LENGTH bounds. */
const encodedLength = (sid: string): number => {
  try {
    return encodeURIComponent(sid).length;
  } catch {
    return Infinity; // a lone surrogate: no URL can carry it
  }
};

const now = (): number => Math.floor(Date.now() / 1000);

/** True when `result` carries another refresh token than `auth`'s (the OP rotated it). */
const newerRefreshToken = (result: Authentication, auth: Authentication): boolean =>
  result.refreshToken !== undefined && result.refreshToken !== auth.refreshToken;

/**
 * The single-flight and shared-result key of a refresh of `auth` (with `scope`). Without a scope it
 * also names the refresh token itself: the lock every refresh of it takes, whatever its scope.
 */
const refreshKey = (auth: Authentication, scope: string | undefined): string =>
  createHash('sha256').update(`${auth.provider}\n${scope ?? ''}\n${auth.refreshToken}`).digest('base64url');

/** The result of a plain refresh of `refreshToken` kept in `coordination`, else the latest of any scope that rotated it. */
const keptLogin = async (coordination: Coordination, key: string, refreshToken: string): Promise<Authentication | undefined> => {
  const [plain, rotated] = await Promise.all([keptRefresh(coordination, key, refreshToken), rotatedRefresh(coordination, key, refreshToken).catch(() => undefined)]);
  return plain ?? rotated;
};

/**
 * The Relying Party: every protocol operation of the RP, over `openid-client`, without Express.
 *
 * @example
 * ```ts
 * const relyingParty = new RelyingParty({ baseURL: 'https://app.example.com',
 *   providers: { corp: oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: 's' }) } });
 * const { url, state, transaction } = await relyingParty.authorizationRequest('corp', { returnTo: '/' });
 * // later, at the callback:
 * const auth = await relyingParty.finalize(transaction, state, callbackParams);
 * ```
 */
export class RelyingParty {
  readonly options: ResolvedOptions;
  private readonly configs = new Map<string, PendingConfig>();
  private readonly refreshes = new SingleFlight<Authentication>(REFRESH_GRACE_MS, REFRESH_KEEP_MAX);
  /** Refreshes of one refresh token run one after another, whatever their scope (by `refreshKey(auth, undefined)`). */
  private readonly refreshQueue = new KeyQueue();
  /** The latest result of a refresh that rotated a refresh token (any scope), by `refreshKey(auth, undefined)`. */
  private readonly rotations = new SingleFlight<Authentication>(REFRESH_GRACE_MS, REFRESH_KEEP_MAX);
  private readonly keySets: KeySets;
  private readonly expectations = new WeakMap<client.Configuration, OpExpectations>();
  /** When each lasting condition was last warned about (`warnAtMostHourly`), by a key naming it and its provider. */
  private readonly warned = new Map<string, number>();
  /** OPs found on the fly (`dynamic` option), kept apart from the configured ones (never listed). */
  readonly dynamic?: DynamicProviders;

  /** The RP's own keys (`keys` option), imported once; their public JWKS is served at {mountPath}/jwks. */
  readonly ownKeys: Promise<OwnKeys>;

  constructor(options: RpOptions) {
    this.options = resolveOptions(options);
    this.ownKeys = importKeys(this.options.keys);
    this.ownKeys.catch(() => undefined); // reported by every operation that awaits it
    this.keySets = new KeySets(this.options.jwksCooldown);
    const { dynamic } = this.options;
    if (dynamic.webfinger || dynamic.registration) this.dynamic = new DynamicProviders(dynamic, (name) => this.callbackUrl(name), this.options.coordination);
  }

  /**
   * The longest a request waits for a token operation (e.g. a refresh) before it answers 503: the OP's
   * timeout and one store deadline more. The operation itself goes on (see `RequestContext`).
   */
  get tokenBudgetMs(): number {
    return OP_TIMEOUT_S * 1000 + this.options.storeTimeout;
  }

  /** The configuration of provider `name`; throws `unknown_provider`. */
  provider(name: string): ProviderConfig {
    const p = Object.hasOwn(this.options.providers, name) ? this.options.providers[name] : this.dynamic?.cached(name);
    if (!p) throw unknownProvider(name, Object.keys(this.options.providers));
    return p;
  }

  /** Makes a dynamic OP registered earlier (maybe by another instance) known by `name`, from the registration store. */
  async loadProvider(name: string): Promise<void> {
    if (!Object.hasOwn(this.options.providers, name)) await this.dynamic?.get(name);
  }

  /** WebFinger → discovery → registration for `identifier` (alice@example.org); returns the provider name to log in with. */
  async discoverProvider(identifier: unknown): Promise<string> {
    if (!this.dynamic) throw new RpError('unknown_provider', 'logging in with an identifier needs the "dynamic" option');
    try {
      return (await this.dynamic.resolve(typeof identifier === 'string' ? identifier : '')).name;
    } catch (err) {
      if (err instanceof DynamicProviderError) {
        // an outage of the WebFinger host or the OP passes by itself: 503 with Retry-After, as every OP outage
        throw new RpError(err.transient ? 'op_unavailable' : err.code, err.message, { cause: err });
      }
      throw toRpError(err);
    }
  }

  /** Providers for login buttons. */
  listProviders(): Array<{ name: string; label: string; type: ProviderConfig['type'] }> {
    return Object.entries(this.options.providers).map(([name, p]) => ({ name, label: p.label ?? name, type: p.type }));
  }

  /** Adds (or replaces) a provider at run time, e.g. one found by WebFinger and registered dynamically. */
  addProvider(name: string, config: ProviderConfig): void {
    checkProvider(name, config);
    this.options.providers[name] = config;
    this.configs.delete(name);
  }

  /** The redirect_uri of provider `name`: `{baseURL}{mountPath}/callback/{name}`. */
  callbackUrl(name: string): string {
    return `${this.options.baseURL}${this.options.mountPath}/callback/${encodeURIComponent(name)}`;
  }

  /**
   * The OP refused the client's credentials at its token endpoint: what to check (a configured
   * provider); for an OP found on the fly, its registration is forgotten (the OP forgot the client,
   * or another instance registered anew), so the next login registers again.
   */
  private async clientRefused(name: string, p: ProviderConfig, config: client.Configuration, e: RpError): Promise<RpError> {
    const refused = clientAuthError(name, p, config, e);
    if (refused === e || !this.dynamic || Object.hasOwn(this.options.providers, name)) return refused;
    await this.dynamic.forget(name, p.clientId).catch((err: Error) => debug('registration at provider %s not forgotten: %s', name, err.message));
    return new RpError('invalid_grant',
      `the OpenID Provider ${config.serverMetadata().issuer} no longer accepts this app's registration (client ${p.clientId}): it has been forgotten here, and signing in again registers the app anew`,
      { opError: e.opError, cause: e });
  }

  /** Provider metadata (discovery or static `providerInfo`) as an openid-client Configuration; cached. */
  async providerInfo(name: string): Promise<client.Configuration> {
    let entry = this.configs.get(name);
    // a discovery request that has not answered for a while is left to its timeout: the OP may be
    // back by now (it was restarting), and this request asks again instead of waiting on it. An entry
    // replaced since (a dynamic OP's client registered anew) is configured again
    if (!entry || (!entry.settled && Date.now() - entry.startedAt > DISCOVERY_JOIN_MS) || (entry.settled && entry.provider !== this.provider(name))) {
      const provider = this.provider(name);
      const pending: PendingConfig = { promise: this.ownKeys.then((own) => configure(provider, own)), provider, startedAt: Date.now(), settled: false };
      entry = pending;
      // one per OP found on the fly too (strangers name them): the oldest goes, and is discovered again if used
      setCapped(this.configs, name, pending, MAX_PER_ISSUER);
      pending.promise.then(
        () => {
          pending.settled = true;
          // the first answer serves everyone, also while a newer request for the same entry is pending
          const current = this.configs.get(name);
          if (current && current !== pending && !current.settled && current.provider === provider) setCapped(this.configs, name, pending, MAX_PER_ISSUER);
        },
        () => void (this.configs.get(name) === pending && this.configs.delete(name)), // retry discovery next time
      );
    }
    try {
      return await entry.promise;
    } catch (err) {
      throw discoveryError(name, this.provider(name), err);
    }
  }

  /**
   * Starts a login: fresh `state`, `nonce` and PKCE S256 verifier; returns the authorization URL and
   * the transaction to keep (in the session) until the callback.
   */
  async authorizationRequest(
    name: string,
    opts: {
      returnTo: string; maxAge?: number; params?: Record<string, string>;
      /** Keeps a request object to be served by reference; returns its `request_uri` (needed with `requestObject.by: 'reference'`). */
      publishRequestObject?: (jwt: string) => Promise<string>;
    },
  ): Promise<AuthorizationRequest> {
    const p = this.provider(name);
    const config = await this.providerInfo(name);
    const state = client.randomState();
    const transaction: Transaction = { provider: name, returnTo: opts.returnTo, createdAt: Date.now() };
    const params: Record<string, string> = { ...p.authorizationParams, ...opts.params, redirect_uri: this.callbackUrl(name), scope: p.scope, state };
    const responseType = p.responseType ?? 'code';
    if (p.pkce !== false && responseType.startsWith('code')) { // PKCE binds a code; an implicit response has none
      transaction.codeVerifier = client.randomPKCECodeVerifier();
      params.code_challenge = pkceChallenge(transaction.codeVerifier);
      params.code_challenge_method = 'S256';
    }
    if (p.type === 'oidc') params.nonce = transaction.nonce = client.randomNonce();
    if (responseType !== 'code') params.response_type = responseType;
    // tokens in the front channel are posted (default) or read from the fragment by a same-origin page, never sent in a query
    const responseMode = p.responseMode ?? (responseType === 'code' ? 'query' : 'form_post');
    if (responseMode !== 'query') params.response_mode = responseMode;
    if (p.claims) params.claims = JSON.stringify(p.claims);
    if (params.resource) transaction.forResource = true;
    // a max_age given in authorizationParams is checked as ?maxAge= is (the ID token's auth_time, OIDC Core §3.1.3.7 step 13)
    const asked = opts.maxAge ?? (/^\d{1,10}$/.test(params.max_age ?? '') ? Number(params.max_age) : undefined);
    if (asked !== undefined) {
      params.max_age = String(asked);
      transaction.maxAge = asked;
    }
    debug('login started at provider %s', name);
    if (usesPar({ p, config })) return { url: await pushedAuthorizationUrl({ name, p, config }, params, responseType, await this.ownKeys), state, transaction };
    if (!p.requestObject) return { url: client.buildAuthorizationUrl(config, params), state, transaction };
    // OIDC Core 6.1: client_id, response_type and scope (with openid) also travel as plain parameters
    const metadata = config.serverMetadata();
    // RFC 9101 §6.3: the OP uses only the request object's parameters, so response_type (even the default "code") goes in it too
    const jwt = await requestObject(p, { issuer: metadata.issuer, jwksUri: metadata.jwks_uri }, { ...params, response_type: responseType }, await this.ownKeys);
    const url = new URL(metadata.authorization_endpoint!);
    url.searchParams.set('client_id', p.clientId);
    url.searchParams.set('response_type', params.response_type ?? 'code');
    url.searchParams.set('scope', params.scope);
    // an OP that takes no request_uri (request_uri_parameter_supported: false, oidc-provider's outside
    // PAR) or only registered ones (require_request_uri_registration: never this login's own URL, a new
    // one per login, op()'s case) would refuse every login: sent by value, said once an hour (probe27-dpop F2)
    const refusesOurs = metadata.request_uri_parameter_supported === false ? 'takes no request_uri (request_uri_parameter_supported is false)'
      : metadata.require_request_uri_registration === true ? 'takes only request_uris registered in advance (require_request_uri_registration), and each login\'s request object has a URL of its own'
        : undefined;
    const byReference = p.requestObject.by === 'reference' && !refusesOurs;
    if (p.requestObject.by === 'reference' && refusesOurs) {
      this.warnAtMostHourly(`request-uri-refused:${name}`, `providers.${name}.requestObject.by is "reference", but the OP (${metadata.issuer}) ${refusesOurs}: `
        + 'sent by value instead. Set requestObject: { by: \'value\' } to say so');
    }
    if (byReference) {
      if (!opts.publishRequestObject) throw new RpError('invalid_request', 'request objects by reference need a place to serve them: call authorizationRequest with publishRequestObject');
      url.searchParams.set('request_uri', await opts.publishRequestObject(jwt));
    } else {
      url.searchParams.set('request', jwt);
    }
    return { url, state, transaction };
  }

  /** Keeps a transaction in session data, dropping expired ones and capping how many are pending. */
  saveTransaction(data: OidcSessionData, state: string, transaction: Transaction): void {
    saveTransaction(data, state, transaction, this.options.transactionTtl);
  }

  /** Removes and returns the transaction of `state` (single use); throws when missing, foreign or expired. */
  takeTransaction(data: OidcSessionData | undefined, state: string | null, name: string): Transaction {
    return takeTransaction(data, state, name, this.options.transactionTtl);
  }

  /**
   * Finishes a login (IdPyOIDC's finalize: access token + user info): validates the callback
   * parameters (state, `iss`, OP error), exchanges the code with the PKCE verifier, verifies the
   * ID token (signature, nonce, aud, iss, exp) and loads the user's claims.
   */
  async finalize(transaction: Transaction, state: string, callbackParams: URLSearchParams): Promise<Authentication> {
    const name = transaction.provider;
    await this.loadProvider(name);
    const p = this.provider(name);
    const config = await this.providerInfo(name);
    const currentUrl = new URL(this.callbackUrl(name));
    callbackParams.forEach((value, key) => currentUrl.searchParams.append(key, value));
    const implicit = p.responseType === 'id_token' || p.responseType === 'id_token token';
    try {
      const auth = implicit
        ? await this.finishImplicit(name, p, config, currentUrl, transaction, state)
        : await this.finishCode(name, p, config, currentUrl, transaction, state);
      debug('login finished at provider %s', name);
      return auth;
    } catch (err) {
      const refused = parRequiredError(name, await this.clientRefused(name, p, config, toRpError(err)));
      // (an implicit login's ID token comes from the front channel: no endpoint to name)
      const rpError = atOp(name, config, 'code exchange', refused, !implicit);
      if (failedAfterCodeSpent(refused)) spentCode(rpError);
      debug('callback of provider %s refused (%s): %s', name, rpError.code, rpError.message);
      throw rpError;
    }
  }

  private async finishCode(
    name: string, p: ProviderConfig, config: client.Configuration, currentUrl: URL, t: Transaction, state: string,
  ): Promise<Authentication> {
    if (t.redeemed) return this.finishLogin(name, p, config, t, t.redeemed);
    const front = await this.frontChannel(p, currentUrl); // `code token`, `code id_token token`: the access token is checked, then the token endpoint's is used
    if (p.responseType?.endsWith(' token') && !front.accessToken && !currentUrl.searchParams.has('error')) {
      throw new RpError('invalid_response', `the response has no access_token (response_type "${p.responseType}")`);
    }
    const hybrid = p.responseType === 'code id_token' || p.responseType === 'code id_token token';
    if (hybrid) {
      currentUrl.hash = currentUrl.searchParams.toString(); // openid-client reads a hybrid response from the fragment
      currentUrl.search = '';
      if (front.accessToken) await checkTokenHash(front.idToken ?? '', 'at_hash', front.accessToken);
    }
    const key = p.dpop ? await newDPoPKey(name, dpopAlg(p.dpop), config) : undefined; // DPoP: this login's own key (dpop.ts)
    // the keys to verify the ID token, before the code is spent: the OP's jwks_uri failing then is a 503 whose retry can still succeed
    if (p.type === 'oidc') await this.keySets.prepare(this.jwtExpectations(p, config), p);
    const tokens = await codeGrantWithTokenIssuer(p, config, clientAuth(p, await this.ownKeys), currentUrl, {
      pkceCodeVerifier: t.codeVerifier,
      expectedState: state,
      expectedNonce: t.nonce,
      idTokenExpected: p.type === 'oidc',
      maxAge: t.maxAge,
    }, await dpopOptions(config, key));
    const ahead = clockAhead(tokens.id_token); // (as the answer arrives)
    const dpop = boundKey(tokens, key);
    const redeemed = { idToken: tokens.id_token, accessToken: storedAccessToken(tokens), refreshToken: tokens.refresh_token };
    try {
      // hybrid: one user in both ID tokens, checked before what can fail for a while (keys, userinfo): an answer kept for the retry has passed it
      if (hybrid) sameUser(front.idToken ?? '', tokens.id_token);
      return await this.finishLogin(name, p, config, t, redeemed, dpop, ahead);
    } catch (err) {
      const failure = toRpError(err);
      // the code is spent now: a transient failure keeps the OP's answer with the pending login, so the
      // retry the 503 asks for goes on from it (not with a DPoP key, which lives in this process only)
      if (failure.retryAfter !== undefined && !dpop) t.redeemed = redeemed;
      else spentCode(failure);
      throw failure;
    }
  }

  /** A login from the token endpoint's answer: the ID token verified, the user's claims loaded. */
  private async finishLogin(
    name: string, p: ProviderConfig, config: client.Configuration, t: Transaction, redeemed: NonNullable<Transaction['redeemed']>, dpop?: DPoPBoundToken['dpop'],
    ahead = 0,
  ): Promise<Authentication> {
    const { accessToken } = redeemed;
    const idTokenClaims = redeemed.idToken ? await this.verifyIdToken(name, config, redeemed.idToken) : undefined;
    if (t.nonce !== undefined && idTokenClaims && idTokenClaims.nonce !== t.nonce) {
      throw new RpError('invalid_id_token', 'the ID token\'s nonce is not the one this login sent');
    }
    const claims = await this.claimSources(name, p, {
      ...(await this.loginClaims(name, p, config, accessToken, idTokenClaims, await dpopOptions(config, dpop), t.forResource)), ...idTokenClaims,
    });
    return {
      provider: name,
      user: normalizeUser(name, p, claims, idTokenClaims),
      idToken: redeemed.idToken,
      idTokenClaims,
      accessToken,
      refreshToken: redeemed.refreshToken,
      authTime: loginTime(idTokenClaims, ahead),
      ...(dpop ? { dpop } : {}),
    };
  }

  private async finishImplicit(
    name: string, p: ProviderConfig, config: client.Configuration, currentUrl: URL, t: Transaction, state: string,
  ): Promise<Authentication> {
    // openid-client reads an id_token response from the fragment (form_post params are moved there).
    const response = new URL(currentUrl.origin + currentUrl.pathname);
    const front = await this.frontChannel(p, currentUrl);
    const idToken = front.idToken ?? null;
    response.hash = currentUrl.searchParams.toString(); // the access token was moved out (openid-client expects an id_token response)
    const idConfig = configurationForIdToken(p, config, clientAuth(p, await this.ownKeys), idToken);
    await client.implicitAuthentication(idConfig, response, t.nonce!, { expectedState: state, maxAge: t.maxAge });
    const idTokenClaims = await this.verifyIdToken(name, config, idToken!);
    let accessToken: StoredAccessToken | undefined;
    let claims = idTokenClaims;
    if (p.responseType === 'id_token token') {
      if (!front.accessToken) throw new RpError('invalid_response', 'the response has no access_token (response_type "id_token token")');
      await checkTokenHash(idToken!, 'at_hash', front.accessToken);
      accessToken = storedAccessToken({ access_token: front.accessToken, token_type: (front.tokenType ?? 'bearer') as 'bearer', expires_in: front.expiresIn, scope: front.scope });
      claims = { ...(await this.loginClaims(name, p, config, accessToken, idTokenClaims)), ...idTokenClaims };
    }
    claims = await this.claimSources(name, p, claims);
    return {
      provider: name,
      user: normalizeUser(name, p, claims, idTokenClaims),
      idToken: idToken!,
      idTokenClaims,
      ...(accessToken ? { accessToken } : {}),
      authTime: loginTime(idTokenClaims),
    };
  }

  /** The front-channel tokens of an implicit / hybrid response: the access token taken out, an encrypted ID token decrypted in place. */
  private async frontChannel(p: ProviderConfig, url: URL): Promise<ReturnType<typeof frontChannelTokens>> {
    const front = frontChannelTokens(url);
    if (front.idToken) {
      front.idToken = await decryptIdToken(p, await this.ownKeys, front.idToken);
      url.searchParams.set('id_token', front.idToken);
    }
    return front;
  }

  /**
   * Signature + claims of an ID token (openid-client checked nonce/auth_time already, and `azp` when
   * there are several audiences). An `azp` names the client the token was issued to: another
   * client's is refused with one audience too (OIDC Core 3.1.3.7 step 5).
   */
  private async verifyIdToken(name: string, config: client.Configuration, idToken: string): Promise<Record<string, unknown>> {
    const p = this.provider(name);
    const claims = await verifyJwt(idToken, this.jwtExpectations(p, config), this.keySets, p);
    if (claims.azp !== undefined && claims.azp !== p.clientId) {
      throw new RpError('invalid_id_token', `the ID token's "azp" (authorized party) is ${JSON.stringify(String(claims.azp).slice(0, 80))}, `
        + `not this app's client_id "${p.clientId}": the OpenID Provider issued it to another client (OIDC Core 3.1.3.7)`);
    }
    if (typeof claims.sid === 'string' && encodedLength(claims.sid) > MAX_SID_LENGTH) {
      throw new RpError('invalid_id_token', `the ID token's "sid" is ${encodedLength(claims.sid)} characters long in a URL, longer than ${MAX_SID_LENGTH}: `
        + 'a front-channel logout could not name it in a URL; the OpenID Provider must issue shorter session ids');
    }
    try {
      p.validateIdToken?.(claims);
    } catch (err) {
      throw new RpError('invalid_id_token', `the token was refused: ${(err as Error).message}`, { cause: err });
    }
    return claims;
  }

  /** What tokens of this OP must match; worked out once per Configuration (its metadata never changes). */
  private jwtExpectations(p: ProviderConfig, config: client.Configuration): OpExpectations {
    let expect = this.expectations.get(config);
    if (!expect) {
      const metadata = config.serverMetadata(); // a deep copy each call: read it once
      const clientAlg = config.clientMetadata().id_token_signed_response_alg as string | undefined;
      expect = { jwksUri: metadata.jwks_uri, issuer: metadata.issuer, audience: p.clientId, algorithms: idTokenAlgorithms(metadata, clientAlg),
        userinfoEndpoint: metadata.userinfo_endpoint,
        claimsSupported: Array.isArray(metadata.claims_supported) ? metadata.claims_supported.filter((c): c is string => typeof c === 'string') : undefined };
      this.expectations.set(config, expect);
    }
    return expect;
  }

  /**
   * Aggregated and distributed claims (OIDC Core 5.6.2) named in `_claim_names`: taken from their
   * sources' JWTs once each signature checks out, else left out (never taken unverified).
   */
  private claimSources(name: string, p: ProviderConfig, claims: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!('_claim_names' in claims)) return Promise.resolve(claims);
    return resolveClaimSources(claims, {
      // the OP names the sources, not a visitor: a source that fails fails every user's sign-in alike
      onDropped: (source, names, reason) => this.warnAtMostHourly(`claims-source:${name}:${source}`,
        `provider "${name}": ${names.join(', ')} left out of the user's claims, as the claims source "${source}" holding them `
        + `(OIDC Core §5.6.2) failed: ${oneLine(reason, 500)} (said at most once an hour)`),
      allowInsecureRequests: p.allowInsecureRequests,
      // development OPs on loopback (allowInsecureRequests) have their claims sources there too
      allowPrivateNetwork: !!p.allowInsecureRequests || !!this.options.dynamic.allowPrivateNetwork,
    });
  }

  /**
   * The user's claims at login, from the userinfo endpoint (or the provider's `fetchUser`) — by
   * default only when it can add to the ID token's (`userInfoCanAdd`: a claim the granted scopes can
   * release is missing from the ID token); `fetchUserInfo: true` always, `false` never.
   */
  private loginClaims(
    name: string, p: ProviderConfig, config: client.Configuration, accessToken: StoredAccessToken, idTokenClaims: Record<string, unknown> | undefined, dpop?: client.DPoPOptions,
    forResource?: boolean,
  ): Promise<Record<string, unknown>> {
    if (p.fetchUserInfo === undefined && forResource) {
      debug('userinfo not fetched: the login asked an access token for a resource (RFC 8707), which is not for userinfo');
      return Promise.resolve({});
    }
    if (p.fetchUserInfo === undefined && !userInfoCanAdd(p, accessToken.scope ?? p.scope, this.jwtExpectations(p, config).claimsSupported, idTokenClaims)) {
      debug('userinfo not fetched: the ID token carries every claim the granted scopes can release');
      return Promise.resolve({});
    }
    return this.loadClaims(name, p, config, accessToken.value, idTokenClaims?.sub as string | undefined, dpop);
  }

  /** Claims from the userinfo endpoint or the provider's `fetchUser` hook. */
  private async loadClaims(
    name: string, p: ProviderConfig, config: client.Configuration, accessToken: string, sub: string | undefined, dpop?: client.DPoPOptions,
  ): Promise<Record<string, unknown>> {
    try {
      if (p.fetchUser) return await p.fetchUser(accessToken, p.customFetch ? (p.customFetch as unknown as typeof fetch) : fetch);
      const expect = this.jwtExpectations(p, config);
      if (p.fetchUserInfo === false || !expect.userinfoEndpoint) return {};
      if (needsOwnUserInfo(p)) {
        return await fetchUserInfo(p, { endpoint: expect.userinfoEndpoint, accessToken, expectedSub: sub, expect, keySets: this.keySets, own: await this.ownKeys });
      }
      return await client.fetchUserInfo(config, accessToken, sub ?? client.skipSubjectCheck, dpop);
    } catch (err) {
      // (a provider's own fetchUser calls an endpoint of its own: only the provider is named)
      throw atOp(name, config, 'userinfo', toRpError(err), !p.fetchUser);
    }
  }

  /**
   * Refresh grant, optionally for a narrower `scope`. Concurrent calls with the same refresh token
   * share one grant (and its result for a short while) — across instances too with the
   * `coordination` option — so rotating refresh tokens survive parallel requests. Only an OP answer
   * that says the grant is gone (or a 400 / 401 without an error body) ends the login
   * (`refresh_failed`, 401); an OP that is down or answers 5xx or 429 is `op_unreachable` /
   * `op_unavailable` and the login is kept.
   */
  refresh(auth: Authentication, opts: { scope?: string } = {}): Promise<Authentication> {
    if (!auth.refreshToken) return Promise.reject(new RpError('no_refresh_token', 'this login has no refresh token (ask for offline_access)'));
    const grants = this.options.providers[auth.provider]?.grantTypes ?? this.dynamic?.cached(auth.provider)?.grantTypes;
    if (grants && !grants.includes('refresh_token')) {
      return Promise.reject(new RpError('no_refresh_token', `the client registered at provider "${auth.provider}" may not use refresh tokens (grant_types has no "refresh_token")`));
    }
    return this.refreshFrom(auth, opts.scope, 0);
  }

  /**
   * A refresh result kept from earlier (shared for a while, or kept a day after a failed session
   * save) serves while its access token is valid. Once that has expired, a result that carries a
   * newer refresh token is refreshed in turn (the OP rotated: the old token must not be replayed);
   * one with the same refresh token (the OP does not rotate) is of no use, and a new grant runs.
   */
  private async refreshFrom(
    auth: Authentication, scope: string | undefined, depth: number, seen: ReadonlySet<string> = new Set([auth.refreshToken!]),
  ): Promise<Authentication> {
    const key = refreshKey(auth, scope);
    const token = refreshKey(auth, undefined);
    const { coordination } = this.options;
    // goes on from a newer refresh token, at most 3 steps and never back to one this refresh has had (an OP
    // that hands back an earlier token): that one's refresh may be this very run, which would wait on itself
    const onwards = (result: Authentication): boolean =>
      newerRefreshToken(result, auth) && depth < 3 && !seen.has(result.refreshToken!);
    const from = (result: Authentication): Promise<Authentication> => this.refreshFrom(result, scope, depth + 1, new Set([...seen, result.refreshToken!]));
    const grant = async (): Promise<Authentication> => {
      // a refresh of this token with another scope ran just before (a plain one beside a narrowed one):
      // the OP may have rotated it, and replaying it would make the OP revoke the grant (RFC 9700
      // §4.14.2), so this refresh goes on from that one's result
      const rotated = this.rotations.settled(token) ?? (coordination ? await rotatedRefresh(coordination, token, auth.refreshToken!) : undefined);
      if (rotated && onwards(rotated)) return from(rotated);
      const fresh = await this.refreshGrant(auth, scope);
      if (newerRefreshToken(fresh, auth)) this.rotations.remember(token, fresh);
      return fresh;
    };
    const usable = (result: Authentication): boolean => !isTokenExpired(result.accessToken) || newerRefreshToken(result, auth);
    // one refresh of a refresh token at a time, whatever its scope: in this process (the queue) and
    // across instances (`coordination`'s lock is the token's; its shared result is told apart by scope)
    const run = (): Promise<Authentication> => this.refreshQueue.run(token,
      coordination ? () => sharedRefresh(coordination, key, auth.refreshToken!, REFRESH_KEEP_MS, grant, usable, token) : grant);
    const result = await this.refreshes.run(key, run, usable);
    return isTokenExpired(result.accessToken) && onwards(result) ? from(result) : result;
  }

  /**
   * Tells the refresh of `previous` (with `scope`) whether the session now holds its result `fresh`.
   * Saved: the shared result is only kept for the requests that read the session before. Not saved
   * (the store failed): it is kept for a day, in this process and with the `coordination` option,
   * so the session's next request gets the new tokens instead of replaying the rotated one.
   */
  refreshSettled(previous: Authentication, fresh: Authentication, saved: boolean, scope?: string): void {
    if (!previous.refreshToken || fresh === previous) return;
    const key = refreshKey(previous, scope);
    // (one that rotated the token is kept under the token too, whatever its scope: `rotations` here,
    // `refresh-rotated:` with `coordination`. A copy of the session read before it finds the newer login
    // there (`newerLogin`), and a refresh of that copy, with any scope, goes on from it instead of
    // replaying the spent token)
    const token = refreshKey(previous, undefined);
    const { coordination } = this.options;
    if (!saved) {
      this.rotations.keep(token, REFRESH_KEEP_MS);
      if (this.refreshes.keep(key, REFRESH_KEEP_MS)) return;
      return this.warnAtMostHourly('refresh-keep', `${REFRESH_KEEP_MAX} refresh results its session store did not take are kept in this process `
        + `already (a store that refuses writes: a full Redis?); more are not kept here, so a session whose next request comes after ${REFRESH_GRACE_MS / 1000} s `
        + 'and finds no result in the `coordination` store either refreshes again, which an OP that rotates refresh tokens may answer by ending that login. Fix the session store.');
    }
    if (coordination) {
      settleSharedRefresh(coordination, key, previous.refreshToken, fresh, REFRESH_SHARED_GRACE_MS, token)
        .catch((err) => debug('refresh result of provider %s kept a day (not shortened): %s', previous.provider, (err as Error).message));
    }
  }

  /**
   * The login that replaced one holding `refreshToken` at provider `provider`, when a refresh lately
   * rotated that token (in this process, or on any instance with `coordination`), following later
   * rotations; undefined when there is none. A session saved with the old token then is a copy read
   * before that refresh (a request of the same session that was under way), and it must not stay:
   * its next refresh would replay the spent token, which an OP that rotates refresh tokens answers by
   * revoking the grant (RFC 9700 §4.14.2) — the user logged out at random.
   */
  async newerLogin(provider: string, refreshToken: string): Promise<Authentication | undefined> {
    const { coordination } = this.options;
    let latest: Authentication | undefined;
    let token = refreshToken;
    for (let i = 0; i < 4; i++) {
      const key = refreshKey({ provider, refreshToken: token } as Authentication, undefined);
      // (a plain refresh's result, else the latest of any scope that rotated the token)
      const next = this.refreshes.settled(key) ?? this.rotations.settled(key) ?? (coordination ? await keptLogin(coordination, key, token) : undefined);
      if (!next?.refreshToken || next.refreshToken === token) break;
      latest = next;
      token = next.refreshToken;
    }
    return latest;
  }

  /**
   * The path of rp()'s login route for provider `name`, back to `returnTo` when it is a path of this
   * site of at most 1 KB (a longer one is left out: encoded again it would make a redirect of several KB).
   * @internal
   */
  loginPath(name: string, returnTo?: string): string {
    const back = returnTo !== undefined && returnTo !== '/' && returnTo.length <= 1024 && returnTo.startsWith('/') && !returnTo.startsWith('//')
      ? `?returnTo=${encodeURIComponent(returnTo)}` : '';
    return `${this.options.routesPath}/login/${encodeURIComponent(name)}${back}`;
  }

  /** `console.warn` of `message`, at most once an hour per `key`: a condition that lasts (every refresh meets it) must not flood the log. */
  warnAtMostHourly(key: string, message: string): void {
    const last = this.warned.get(key);
    if (last !== undefined && Date.now() - last < 3600_000) return;
    if (this.warned.size >= 1000) this.warned.clear(); // (one key per provider: bounded with many dynamic OPs too)
    this.warned.set(key, Date.now());
    console.warn(`[@openid-express/rp] ${message}`);
  }

  private async refreshGrant(auth: Authentication, scope: string | undefined): Promise<Authentication> {
    await this.loadProvider(auth.provider);
    const p = this.provider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    try {
      // the keys to verify the refreshed ID token, before the refresh token is spent
      await this.keySets.prepare(this.jwtExpectations(p, config), p);
      // DPoP: the login's key signs the refresh too, so the new access token stays bound to it
      const tokens = await refreshWithTokenIssuer(p, config, clientAuth(p, await this.ownKeys), auth.refreshToken!, scope ? { scope } : undefined, await dpopOptions(config, auth.dpop));
      let idTokenClaims = auth.idTokenClaims;
      let idToken = auth.idToken;
      if (tokens.id_token) {
        const verified = await this.verifyIdToken(auth.provider, config, tokens.id_token).catch((err: unknown) => {
          // Signed with a key the OP does not publish (yet): the grant is done and its tokens are good, and
          // ending the login for it would log everyone out while an OP changes its key on one instance
          // first. The login keeps its ID token (verified), and the new one is not used.
          if (!isUnpublishedKey(err)) throw err;
          this.warnAtMostHourly(`unpublished-key:${auth.provider}`, `provider "${auth.provider}": a refreshed ID token was not used (the login `
            + `keeps its earlier one, and the new access and refresh tokens): ${(err as Error).message}`);
          return undefined;
        });
        if (verified && verified.sub !== auth.user.sub) throw new RpError('invalid_id_token', 'the refreshed ID token is for another subject');
        if (verified) ({ idTokenClaims, idToken } = { idTokenClaims: verified, idToken: tokens.id_token });
      }
      debug('tokens refreshed at provider %s', auth.provider);
      return {
        ...auth,
        idToken,
        idTokenClaims,
        accessToken: storedAccessToken(tokens),
        refreshToken: tokens.refresh_token ?? auth.refreshToken,
        ...(auth.dpop ? { dpop: boundKey(tokens, auth.dpop) } : {}),
      };
    } catch (err) {
      const rpError = toRpError(err);
      debug('refresh at provider %s refused (%s%s)', auth.provider, rpError.code, rpError.opError ? ` ${rpError.opError}` : '');
      // a refreshed ID token that fails its checks ends the login too: it is never half-trusted; so
      // does a 400 or 401 without RFC 6749 §5.2's error body (Glewlwyd answers a revoked refresh token
      // with a bare 400): the OP refused this grant, and every later refresh would be refused alike
      const gone = rpError.code === 'invalid_id_token' || (rpError.opError !== undefined && GRANT_GONE.has(rpError.opError))
        || (rpError.code === 'invalid_response' && err instanceof Error && [400, 401].includes(opStatus(err) ?? 0));
      const named = (e: RpError): RpError => atOp(auth.provider, config, 'refresh', e);
      if (gone) throw named(new RpError('refresh_failed', `the refresh was refused: ${rpError.message}`, { opError: rpError.opError, cause: err }));
      if (rpError.opError !== 'invalid_client') throw named(rpError);
      // an OP found on the fly that no longer takes its registration: forgotten, and the login ends (the next one registers anew)
      const refused = await this.clientRefused(auth.provider, p, config, rpError);
      if (refused.code === 'invalid_grant') throw named(new RpError('refresh_failed', `the refresh was refused: ${refused.message}`, { opError: rpError.opError, cause: err }));
      throw named(refused);
    }
  }

  /** Fresh claims from the userinfo endpoint (or the provider's `fetchUser`). */
  async userInfo(auth: Authentication): Promise<Record<string, unknown>> {
    await this.loadProvider(auth.provider);
    const p = this.provider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    if (!auth.accessToken) throw noAccessToken(auth);
    try {
      return await this.loadClaims(auth.provider, { ...p, fetchUserInfo: true }, config, auth.accessToken.value, auth.user.sub, await dpopOptions(config, auth.dpop));
    } catch (err) {
      throw toRpError(err);
    }
  }

  /** True when `auth` exists, its tokens are usable (or refreshable) and, with `maxAge`, the user authenticated recently enough. */
  hasActiveAuthentication(auth: Authentication | undefined, maxAge?: number): boolean {
    if (!auth) return false;
    if (maxAge !== undefined && now() - auth.authTime > maxAge) return false;
    if (!auth.accessToken) return true; // response_type=id_token: no access token, the login lasts as long as the session
    return !(isTokenExpired(auth.accessToken) && !auth.refreshToken);
  }

  /** `auth` itself while its access token is valid, else `auth` after a (single-flight) refresh. */
  async validAccessToken(auth: Authentication): Promise<Authentication> {
    if (!auth.accessToken) throw noAccessToken(auth);
    if (!isTokenExpired(auth.accessToken)) return auth;
    // (as hasActiveAuthentication() and requireAuth() have it: such a login ends with its access token)
    if (!auth.refreshToken) {
      throw new RpError('login_ended', `this login at provider "${auth.provider}" has ended: its access token expired and it has no refresh token to get another (ask for offline_access to keep logins going); sign in again`);
    }
    return this.refresh(auth);
  }

  /** RP-initiated logout URL at the OP (with `id_token_hint`), or undefined when the OP has no end_session_endpoint. */
  async endSessionUrl(auth: Authentication, postLogoutRedirectUri: string, state?: string): Promise<URL | undefined> {
    await this.loadProvider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = { client_id: this.provider(auth.provider).clientId };
    // an OP found on the fly knows only the post-logout URI registered with it (the app's root):
    // another one is left out, and the OP shows its own "signed out" page instead of refusing
    const dynamic = !Object.hasOwn(this.options.providers, auth.provider);
    if (!dynamic || postLogoutRedirectUri === registeredPostLogoutUri(this.callbackUrl(auth.provider))) {
      params.post_logout_redirect_uri = postLogoutRedirectUri;
      if (state) params.state = state;
    }
    if (auth.idToken) params.id_token_hint = auth.idToken;
    // Entra's `login_hint` claim (an optional claim) is what its sign-out takes as `logout_hint`, so it signs
    // out that account without asking which one (RP-Initiated Logout 1.0 §2 names the parameter)
    const loginHint = auth.idTokenClaims?.login_hint;
    if (typeof loginHint === 'string' && loginHint && loginHint.length <= 512) params.logout_hint = loginHint;
    return client.buildEndSessionUrl(config, params);
  }

  /** The configured provider whose issuer is `iss` (a third-party-initiated login names the OP by issuer); throws `unknown_provider`. */
  providerByIssuer(iss: unknown): string {
    const found = typeof iss === 'string' && Object.entries(this.options.providers).find(([, p]) => p.issuer !== undefined && sameIssuer(p.issuer, iss));
    if (!found) throw new RpError('unknown_provider', 'the login was started for an issuer (iss) that is none of the configured providers');
    return found[0];
  }

  /**
   * Checks a third-party-initiated login (OIDC Core 4) for provider `name`: `iss` must be that OP's
   * issuer, and `target_link_uri` (when given) a URL of this app; returns the path to go to after login.
   *
   * @example
   * ```ts
   * const returnTo = await relyingParty.thirdPartyLogin('corp', { iss: 'https://id.example.com', target_link_uri: 'https://app.example.com/reports' });
   * ```
   */
  async thirdPartyLogin(name: string, input: { iss?: unknown; target_link_uri?: unknown }): Promise<string> {
    await this.loadProvider(name);
    const config = await this.providerInfo(name);
    if (typeof input.iss !== 'string' || input.iss !== config.serverMetadata().issuer) {
      throw new RpError('invalid_request', `the login was started for issuer "${oneLine(String(input.iss), 200)}", which is not provider "${name}"'s issuer`);
    }
    if (input.target_link_uri === undefined) return '/';
    const base = new URL(this.options.baseURL);
    let target: URL | undefined;
    try {
      target = typeof input.target_link_uri === 'string' && input.target_link_uri.length <= 2048 ? new URL(input.target_link_uri) : undefined;
    } catch {
      target = undefined;
    }
    // "<app>//evil.example" (or "<app>/.//evil.example") is this origin, but its path alone is protocol-relative
    if (!target || target.origin !== base.origin || target.pathname.startsWith('//') || /[\u0000-\u001f\u007f\\]/.test(input.target_link_uri as string)) {
      throw new RpError('invalid_request', `target_link_uri must be a URL of this app (${base.origin}); another site cannot be the target of a login`);
    }
    return `${target.pathname}${target.search}${target.hash}`;
  }

  /**
   * Checks a front-channel logout request from provider `name` (OpenID Front-Channel Logout 1.0 §3):
   * `iss` must be its issuer and `sid` given; returns the `sid` whose sessions end.
   */
  async frontchannelLogout(name: string, iss: unknown, sid: unknown): Promise<string> {
    await this.loadProvider(name);
    const p = this.provider(name);
    if (p.type !== 'oidc' || p.frontchannelLogout === false) throw new RpError('unknown_provider', `provider "${name}" does not use front-channel logout`);
    const config = await this.providerInfo(name);
    // Entra sends `sid` alone; it is looked up among this provider's logins only, so it names no other OP's session
    const sidAlone = iss === undefined && p.frontchannelLogout === 'sid';
    if (!sidAlone && (typeof iss !== 'string' || iss !== config.serverMetadata().issuer)) {
      throw new RpError('invalid_request', `the front-channel logout request must carry iss="${config.serverMetadata().issuer}" (register frontchannel_logout_session_required: true)`);
    }
    if (typeof sid !== 'string' || !sid) {
      throw new RpError('invalid_request', 'the front-channel logout request has no sid (register frontchannel_logout_session_required: true at the OP)');
    }
    if (encodedLength(sid) > MAX_SID_LENGTH) {
      throw new RpError('invalid_request', `the front-channel logout request's sid is ${encodedLength(sid)} characters long in a URL, longer than any login takes (${MAX_SID_LENGTH})`);
    }
    return sid;
  }

  /** Verifies a back-channel logout token from provider `name`; returns the `sid` / `sub` to log out and its `jti` / `iat` (replay check). */
  async logoutToken(name: string, jwt: string): Promise<{ sid?: string; sub?: string; jti: string; iat: number }> {
    const p = this.provider(name);
    if (p.type !== 'oidc' || p.backchannelLogout === false) throw new RpError('unknown_provider', `provider "${name}" does not use back-channel logout`);
    const config = await this.providerInfo(name);
    const expectations = this.jwtExpectations(p, config);
    try {
      return await verifyLogoutToken(jwt, expectations, this.keySets, p);
    } catch (err) {
      // signed with a key the OP does not publish yet (one of its instances signs with a new key first): a 503 the OP
      // retries. Not for a token whose claims are not this OP's logout token for this app: made up with any `kid`,
      // it answered 503 op_unavailable (an OP outage on dashboards) where a forged token gets 400 (§2.8)
      if (isUnpublishedKey(err) && claimsOfOwnLogoutToken(jwt, expectations)) {
        throw new RpError('op_unavailable', `the logout token was not verified: ${(err as Error).message}`, { retryAfter: 5, cause: err });
      }
      if (isUnpublishedKey(err)) {
        throw new RpError('invalid_logout_token', `the logout token was refused: it is signed with a key the OP does not publish, and its iss, aud or event are not those of ${name}'s logout token for this app`, { cause: err });
      }
      const rpError = toRpError(err, 'invalid_logout_token');
      // an OP whose keys cannot be fetched right now (down, 5xx): a 503 the OP retries, not a 400 that loses the logout
      if (rpError.retryAfter !== undefined || rpError.code === 'invalid_logout_token') throw rpError;
      throw new RpError('invalid_logout_token', `the logout token was refused: ${(err as Error).message}`, { cause: err });
    }
  }

  // Tier-2 operations (not routes): each one lives in a file of its own; these methods only find the provider.

  /**
   * Client credentials grant (RFC 6749 §4.4; IdPyOIDC: the `client_credentials` service): an access
   * token for the app itself. With `dpop` on the provider entry it is DPoP-bound (`result.dpop`).
   *
   * @example
   * ```ts
   * const tokens = await relyingParty.clientCredentials('corp', { scope: 'stock:read', resource: 'https://api.example.com' });
   * const response = await relyingParty.fetchResource(tokens, 'https://api.example.com/stock');
   * ```
   */
  async clientCredentials(name: string, opts: ClientCredentialsOptions = {}): Promise<TokenResult> {
    return clientCredentialsGrant(await this.operation(name), opts);
  }

  /**
   * The resource owner password credentials grant (RFC 6749 §4.3; IdPyOIDC:
   * `resource_owner_password_credentials`): tokens for a user's username and password, without a
   * browser. OAuth 2.1 removes it; only for trusted first-party clients, and the OP must enable it.
   *
   * @example
   * ```ts
   * const tokens = await relyingParty.passwordGrant('corp', { username: 'alice', password, scope: 'read' });
   * ```
   */
  async passwordGrant(name: string, opts: PasswordGrantOptions): Promise<TokenResult> {
    return passwordGrantRequest(await this.operation(name), opts);
  }

  /**
   * Token exchange (RFC 8693; IdPyOIDC: the `token_exchange` service): trades `subjectToken` (by
   * default an access token) for a token for another `audience` / `resource` / `scope`.
   *
   * @example
   * ```ts
   * const { accessToken } = await relyingParty.tokenExchange('corp', { subjectToken: req.oidc.accessToken!.value, audience: 'billing-api' });
   * ```
   */
  async tokenExchange(name: string, opts: TokenExchangeOptions): Promise<TokenResult> {
    return tokenExchangeGrant(await this.operation(name), opts);
  }

  /**
   * Token revocation (RFC 7009; IdPyOIDC: the `token_revocation` service) at provider `name`.
   * Revoking a refresh token usually ends its whole grant (its access tokens too).
   *
   * @example
   * ```ts
   * await relyingParty.revoke(auth.provider, auth.refreshToken!, { tokenTypeHint: 'refresh_token' });
   * ```
   */
  async revoke(name: string, token: string, opts: { tokenTypeHint?: TokenTypeHint } = {}): Promise<void> {
    return revokeToken(await this.operation(name), token, opts);
  }

  /**
   * Token introspection (RFC 7662; IdPyOIDC: the `introspection` service) at provider `name`:
   * `{ active: false }` for an expired, revoked or unknown token, else what the OP says about it.
   *
   * @example
   * ```ts
   * const { active, scope, sub, cnf } = await relyingParty.introspect('corp', token);
   * ```
   */
  async introspect(name: string, token: string, opts: { tokenTypeHint?: TokenTypeHint } = {}): Promise<Introspection> {
    return introspectToken(await this.operation(name), token, opts);
  }

  /**
   * Device authorization grant (RFC 8628; no IdPyOIDC RPHandler counterpart): returns the code to
   * show and `poll()`, which resolves to the login once the user approved at the OP (`pollTokens()`:
   * the tokens only). Polling follows `interval` / `slow_down`, ends at expiry and on `signal`.
   *
   * @example
   * ```ts
   * const device = await relyingParty.deviceAuthorization('corp', { scope: 'openid profile offline_access' });
   * console.log(`Open ${device.verificationUri} and enter ${device.userCode}`);
   * const auth = await device.poll({ signal: AbortSignal.timeout(600_000) });
   * ```
   */
  async deviceAuthorization(name: string, opts: DeviceAuthorizationOptions = {}): Promise<DeviceAuthorization> {
    const op = await this.operation(name);
    return startDeviceAuthorization(op, opts, (tokens, key) => this.authenticationFromGrant(op, tokens, key));
  }

  /**
   * `fetch` to a resource server with the access token of a login or a grant result: `Authorization:
   * Bearer`, or for a DPoP-bound token `Authorization: DPoP` with a fresh proof signed by its key
   * (one retry when the server asks for a `DPoP-Nonce`). `req.oidc.fetch()` uses it for DPoP logins.
   *
   * @example
   * ```ts
   * const response = await relyingParty.fetchResource(auth, 'https://api.example.com/orders', { method: 'POST', body });
   * ```
   */
  fetchResource(tokens: DPoPBoundToken, url: string | URL, init?: RequestInit): Promise<Response> {
    return fetchWithToken(tokens, url, init);
  }

  /** Provider `name` (a dynamic one loaded from the registration store), ready for a tier-2 operation. */
  private async operation(name: string): Promise<Operation> {
    await this.loadProvider(name);
    const p = this.provider(name);
    return { name, p, config: await this.providerInfo(name) };
  }

  /** A login from a grant that is not a callback (device authorization): the ID token checked, the user's claims loaded. */
  private async authenticationFromGrant({ name, p, config }: Operation, tokens: client.TokenEndpointResponse, key: DPoPKey | undefined): Promise<Authentication> {
    if (!tokens.id_token) throw new RpError('invalid_response', `provider "${name}" answered without an ID token: ask for the "openid" scope, or use pollTokens()`);
    const ahead = clockAhead(tokens.id_token);
    const idTokenClaims = await this.verifyIdToken(name, config, tokens.id_token);
    const dpop = boundKey(tokens, key);
    const accessToken = storedAccessToken(tokens);
    let claims: Record<string, unknown>;
    try {
      claims = await this.claimSources(name, p, { ...(await this.loginClaims(name, p, config, accessToken, idTokenClaims, await dpopOptions(config, dpop))), ...idTokenClaims });
    } catch (err) {
      throw toRpError(err);
    }
    return {
      provider: name,
      user: normalizeUser(name, p, claims, idTokenClaims),
      idToken: tokens.id_token,
      idTokenClaims,
      accessToken,
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      authTime: loginTime(idTokenClaims, ahead),
      ...(dpop ? { dpop } : {}),
    };
  }
}

/**
 * `e`, a failure of `step` at provider `name`, naming the provider, its issuer and, when `atEndpoint`,
 * the endpoint of the OP's metadata that was called (the token endpoint, or userinfo's; see `atProvider`).
 */
function atOp(name: string, config: client.Configuration, step: OpStep, e: RpError, atEndpoint = true): RpError {
  const metadata = config.serverMetadata();
  const url = step === 'userinfo' ? metadata.userinfo_endpoint : metadata.token_endpoint;
  return atProvider(e, { provider: name, issuer: metadata.issuer, step, url: atEndpoint ? url : undefined });
}

/** Discovery (or the provider's keys) failed: what was fetched, what came back, and which option to check. */
function discoveryError(name: string, p: ProviderConfig, err: unknown): RpError {
  const e = toRpError(err);
  if (e.code === 'invalid_options' || e.code === 'unknown_provider') return e;
  const url = p.providerInfo ? 'its static providerInfo' : `${p.issuer!.replace(/\/$/, '')}/.well-known/${p.type === 'oauth2' ? 'oauth-authorization-server' : 'openid-configuration'}`;
  const cause = discoveryCause(name, p, err) ?? e.message;
  if (e.code === 'op_unreachable' || e.code === 'op_unavailable') {
    return new RpError(e.code, `provider "${name}": ${url} ${e.code === 'op_unreachable' ? 'could not be reached' : `is unavailable (${cause})`}`, { cause: err });
  }
  return new RpError('discovery_failed', `discovery of provider "${name}" at ${url} failed: ${cause}. Check providers.${name}.issuer (it must be the OP's exact issuer identifier)`, { cause: err });
}

/**
 * What came back from a discovery that failed, for a reader: the HTTP status of an error answer; an
 * answer that is not JSON (a login page, a proxy's page: HTTP 200 alone read like success); the
 * issuer the OP's metadata names when it is not the configured one (a trailing slash, another path).
 */
function discoveryCause(name: string, p: ProviderConfig, err: unknown): string | undefined {
  const causes = [(err as { cause?: unknown })?.cause, ((err as { cause?: { cause?: unknown } })?.cause)?.cause];
  for (const c of causes) {
    if (c instanceof Response) {
      const type = c.headers.get('content-type')?.split(';')[0]?.trim();
      if (!c.ok) return `it answered HTTP ${c.status}`;
      return `it answered HTTP ${c.status} with ${type ? JSON.stringify(type.slice(0, 80)) : 'no content type'}, not the OP's JSON metadata (is this the OP's issuer URL? a login page or a proxy's page answers there)`;
    }
    const compared = c as { attribute?: unknown; body?: { issuer?: unknown } } | undefined;
    if (compared?.attribute === 'issuer' && typeof compared.body?.issuer === 'string') {
      const announced = JSON.stringify(compared.body.issuer.slice(0, 200));
      return `the OP's metadata names its issuer ${announced}, not ${JSON.stringify(p.issuer)} (issuers compare exactly, a trailing slash too): give providers.${name}.issuer: ${announced}`;
    }
    const status = (c as { status?: unknown } | undefined)?.status;
    if (typeof status === 'number') return `it answered HTTP ${status}`;
  }
  return undefined;
}

/** The OP refused the client's credentials at its token endpoint: say so, and what to check, instead of a bare "invalid_client". */
function clientAuthError(name: string, p: ProviderConfig, config: client.Configuration, e: RpError): RpError {
  const atTokenEndpoint = ['ResponseBodyError', 'WWWAuthenticateChallengeError'].includes((e.cause as Error | undefined)?.name ?? '');
  if (!atTokenEndpoint || (e.opError !== 'invalid_client' && e.opError !== 'unauthorized_client')) return e;
  const method = p.tokenEndpointAuthMethod ?? (p.clientSecret ? 'client_secret_basic' : 'none');
  return new RpError('client_auth_failed',
    `provider "${name}": the token endpoint ${config.serverMetadata().token_endpoint} refused the client's credentials (${e.opError}). ` +
    `Check providers.${name}.clientId ("${p.clientId}"), clientSecret and tokenEndpointAuthMethod ("${method}") against the client registered at ${config.serverMetadata().issuer}${assertionClockHint(p)}`,
    { opError: e.opError, cause: e });
}

/**
 * `unknown_provider` for a name no provider has: the configured names (what `/providers` lists to
 * anyone), and the one meant when it is close (a case or a letter off). A dynamic OP's name is not
 * a configured one: its own message says whether the registration store knows it.
 */
function unknownProvider(name: string, names: string[]): RpError {
  const shown = JSON.stringify(name.slice(0, 100));
  if (name.startsWith('dyn-')) return new RpError('unknown_provider', `no provider is named ${shown} (an OpenID Provider found on the fly that this app has no registration for)`);
  const near = didYouMean(name, names);
  return new RpError('unknown_provider', `no provider is named ${shown}${near ? `: did you mean "${near}"?` : ''} `
    + `(the providers are: ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'none configured'}; each is a key of the providers option)`);
}

/** Issuer identifiers compare exactly (OIDC Discovery 4.3), but a configured one may carry a trailing slash the OP's lacks. */
const sameIssuer = (a: string, b: string): boolean => a === b || a.replace(/\/$/, '') === b.replace(/\/$/, '');

/** Takes the front-channel access token (implicit / hybrid responses) out of the callback parameters; the ID token stays. */
function frontChannelTokens(url: URL): { idToken?: string; accessToken?: string; tokenType?: string; expiresIn?: number; scope?: string } {
  const q = url.searchParams;
  const take = (k: string): string | undefined => {
    const v = q.get(k) ?? undefined;
    q.delete(k);
    return v;
  };
  const accessToken = take('access_token');
  const tokenType = take('token_type');
  const expires = take('expires_in');
  const scope = accessToken ? take('scope') : undefined;
  return { idToken: q.get('id_token') ?? undefined, accessToken, tokenType, expiresIn: expires && /^\d{1,9}$/.test(expires) ? Number(expires) : undefined, scope };
}

/**
 * Checks an ID token's `at_hash` / `c_hash` (OIDC Core 3.2.2.9, 3.3.2.11): the left half of the
 * hash of the value, with the hash of the token's `alg`. Missing or wrong: `invalid_id_token`.
 */
async function checkTokenHash(idToken: string, claim: 'at_hash' | 'c_hash', value: string): Promise<void> {
  let header: jose.ProtectedHeaderParameters;
  let claims: jose.JWTPayload;
  try {
    header = jose.decodeProtectedHeader(idToken);
    claims = jose.decodeJwt(idToken);
  } catch {
    throw new RpError('invalid_id_token', 'the ID token is not a JWT');
  }
  const alg = header.alg ?? '';
  const bits = alg === 'EdDSA' || alg === 'Ed25519' ? 512 : Number(alg.slice(-3));
  if (![256, 384, 512].includes(bits)) throw new RpError('invalid_id_token', `cannot check ${claim} of an ID token signed with ${alg}`);
  const digest = createHash(`sha${bits}`).update(value, 'ascii').digest();
  const expected = digest.subarray(0, digest.length / 2).toString('base64url');
  if (claims[claim] === undefined) throw new RpError('invalid_id_token', `the ID token has no ${claim}, required when the OP returns that token with it`);
  if (claims[claim] !== expected) throw new RpError('invalid_id_token', `the ID token's ${claim} does not match the token it came with (substituted?)`);
}

/**
 * Hybrid flow (OIDC Core 3.3.3.6): the `iss` and `sub` of the front-channel ID token (its signature,
 * `c_hash` and nonce checked by openid-client) and of the token endpoint's (verified next, in
 * `finishLogin`) MUST be identical: each is valid on its own, and together they must name one user.
 */
function sameUser(frontIdToken: string, idToken: string | undefined): void {
  const front = jose.decodeJwt(frontIdToken);
  const back = idToken ? jose.decodeJwt(idToken) : {};
  for (const claim of ['iss', 'sub'] as const) {
    if (back[claim] === front[claim]) continue;
    const shown = (v: unknown): string => (v === undefined ? 'none' : JSON.stringify(String(v).slice(0, 80)));
    throw new RpError('invalid_id_token', `the token endpoint's ID token has "${claim}" ${shown(back[claim])}, the one in the authorization response `
      + `${shown(front[claim])}: they must be identical (OIDC Core 3.3.3.6), so one of them was substituted or the OP is broken; nobody is signed in, sign in again`);
  }
}

/** The PKCE S256 code_challenge (RFC 7636 §4.2), hashed synchronously: WebCrypto's async digest costs more than the hash. */
function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * When the user authenticated, on this server's clock, for `maxAge`: the ID token's `auth_time`;
 * without one, when the OP issued the ID token (`iat`); never later than now (a clock ahead of ours
 * does not make a login newer). Moved by `ahead`, how far our clock is ahead of the OP's (see
 * `clockAhead`): without it, `requireAuth({ maxAge: 20 })` on a server 25 s ahead found every login
 * too old, also one made a moment ago, and sent the user back to the OP for ever.
 */
export function loginTime(idTokenClaims: Record<string, unknown> | undefined, ahead = 0): number {
  const at = now();
  const iat = typeof idTokenClaims?.iat === 'number' ? idTokenClaims.iat : undefined;
  if (typeof idTokenClaims?.auth_time === 'number') return Math.min(idTokenClaims.auth_time + ahead, at);
  return iat !== undefined ? Math.min(iat + ahead, at) : at;
}

/**
 * How many seconds this server's clock is ahead of the OP's, read from an ID token the token endpoint
 * has just issued (its `iat`), when that is more than a few seconds and within the 30 s tolerated; else
 * 0. Read as the answer arrives: later (a retry from a kept answer, a slow userinfo) it would count the
 * time since as skew, and make an older sign-in look fresher.
 */
export function clockAhead(idToken: string | undefined): number {
  if (!idToken) return 0;
  let iat: unknown;
  try {
    iat = jose.decodeJwt(idToken).iat;
  } catch {
    return 0; // (an encrypted or malformed one: its verification says so)
  }
  const gap = typeof iat === 'number' ? now() - iat : 0;
  return gap > CLOCK_NOISE_S && gap <= CLOCK_TOLERANCE ? gap : 0;
}

/** Clocks this close are taken as one (whole seconds, and the trip from the OP). */
const CLOCK_NOISE_S = 2;

/** True when the OP said when the token expires and its `expiresAt` (that moment less a margin: `expiryOf`) has passed. */
export function isTokenExpired(token: StoredAccessToken | undefined): boolean {
  return !token || (token.expiresAt !== undefined && token.expiresAt <= now());
}

function storedAccessToken(tokens: client.TokenEndpointResponse): StoredAccessToken {
  const expiresIn = tokens.expires_in;
  return {
    value: tokens.access_token,
    tokenType: tokens.token_type,
    ...(tokens.scope ? { scope: tokens.scope } : {}),
    ...(typeof expiresIn === 'number' ? { expiresAt: expiryOf(expiresIn) } : {}),
  };
}

/** For a token operation on a login that has no access token (signed in with `response_type: 'id_token'`). */
function noAccessToken(auth: Authentication): RpError {
  return new RpError('no_access_token', `this login at provider "${auth.provider}" has no access token (it signed in with response_type "id_token", which gives none): `
    + 'use response_type "code" for the provider to call APIs or its user info endpoint');
}
