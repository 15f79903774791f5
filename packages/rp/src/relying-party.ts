/**
 * The framework-free RP core (the seed's RPHandler): provider info, authorization request,
 * finalize (token + user info), refresh, user info, end-session URL, logout tokens.
 * The Express router composes these operations; nothing here knows about HTTP requests.
 */
import { createHash } from 'node:crypto';
import createDebug from 'debug';
import * as client from 'openid-client';
import { RpError, toRpError } from './errors.js';
import { DynamicProviderError, DynamicProviders } from './discovery/registration.js';
import { codeGrantWithTokenIssuer, configurationForIdToken, refreshWithTokenIssuer } from './issuer-per-token.js';
import { KeySets, idTokenAlgorithms, verifyJwt, verifyLogoutToken, type JwtExpectations } from './id-token.js';
import { checkProvider, resolveOptions, type ProviderConfig, type ResolvedOptions, type RpOptions } from './options.js';
import { clientAuth, configure } from './provider-metadata.js';
import { normalizeUser } from './user.js';
import type { Authentication, OidcSessionData, StoredAccessToken, Transaction } from './session.js';
import { SingleFlight } from './single-flight.js';
import { sharedRefresh } from './shared-refresh.js';
import { saveTransaction, takeTransaction } from './transactions.js';

const debug = createDebug('openid-express:rp');

/** A started login: where to send the browser and what to keep until the callback. */
export interface AuthorizationRequest {
  url: URL;
  state: string;
  transaction: Transaction;
}

/** What tokens of one OP must match, and its userinfo endpoint. */
type OpExpectations = JwtExpectations & { userinfoEndpoint?: string };

/** How long a refresh result is shared with requests that still hold the old refresh token. */
const REFRESH_GRACE_MS = 30_000;

/** OP errors at the token endpoint that mean the grant is gone: only these end a login (RFC 6749 §5.2). */
const GRANT_GONE = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);

const now = (): number => Math.floor(Date.now() / 1000);

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
  private readonly configs = new Map<string, Promise<client.Configuration>>();
  private readonly refreshes = new SingleFlight<Authentication>(REFRESH_GRACE_MS);
  private readonly keySets: KeySets;
  private readonly expectations = new WeakMap<client.Configuration, OpExpectations>();
  /** OPs found on the fly (`dynamic` option), kept apart from the configured ones (never listed). */
  readonly dynamic?: DynamicProviders;

  constructor(options: RpOptions) {
    this.options = resolveOptions(options);
    this.keySets = new KeySets(this.options.jwksCooldown);
    const { dynamic } = this.options;
    if (dynamic.webfinger || dynamic.registration) this.dynamic = new DynamicProviders(dynamic, (name) => this.callbackUrl(name));
  }

  /** The configuration of provider `name`; throws `unknown_provider`. */
  provider(name: string): ProviderConfig {
    const p = Object.hasOwn(this.options.providers, name) ? this.options.providers[name] : this.dynamic?.cached(name);
    if (!p) throw new RpError('unknown_provider', `no provider is named "${name}"`);
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
      if (err instanceof DynamicProviderError) throw new RpError(err.code, err.message, { cause: err });
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

  /** Provider metadata (discovery or static `providerInfo`) as an openid-client Configuration; cached. */
  async providerInfo(name: string): Promise<client.Configuration> {
    let pending = this.configs.get(name);
    if (!pending) {
      pending = configure(this.provider(name));
      this.configs.set(name, pending);
      pending.catch(() => this.configs.delete(name)); // retry discovery next time
    }
    try {
      return await pending;
    } catch (err) {
      throw toRpError(err);
    }
  }

  /**
   * Starts a login: fresh `state`, `nonce` and PKCE S256 verifier; returns the authorization URL and
   * the transaction to keep (in the session) until the callback.
   */
  async authorizationRequest(
    name: string,
    opts: { returnTo: string; maxAge?: number; params?: Record<string, string> },
  ): Promise<AuthorizationRequest> {
    const p = this.provider(name);
    const config = await this.providerInfo(name);
    const state = client.randomState();
    const transaction: Transaction = { provider: name, returnTo: opts.returnTo, createdAt: Date.now() };
    const params: Record<string, string> = { ...p.authorizationParams, ...opts.params, redirect_uri: this.callbackUrl(name), scope: p.scope, state };
    if (p.pkce !== false && p.responseType !== 'id_token') { // PKCE binds a code; an id_token response has none
      transaction.codeVerifier = client.randomPKCECodeVerifier();
      params.code_challenge = pkceChallenge(transaction.codeVerifier);
      params.code_challenge_method = 'S256';
    }
    if (p.type === 'oidc') params.nonce = transaction.nonce = client.randomNonce();
    if (p.responseType === 'id_token') params.response_type = 'id_token';
    if (p.responseMode === 'form_post' || p.responseType === 'id_token') params.response_mode = 'form_post';
    if (opts.maxAge !== undefined) {
      params.max_age = String(opts.maxAge);
      transaction.maxAge = opts.maxAge;
    }
    debug('login started at provider %s', name);
    return { url: client.buildAuthorizationUrl(config, params), state, transaction };
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
   * Finishes a login (the seed's finalize: access token + user info): validates the callback
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
    try {
      const auth = p.responseType === 'id_token'
        ? await this.finishImplicit(name, p, config, currentUrl, transaction, state)
        : await this.finishCode(name, p, config, currentUrl, transaction, state);
      debug('login finished at provider %s', name);
      return auth;
    } catch (err) {
      const rpError = toRpError(err);
      debug('callback of provider %s refused (%s): %s', name, rpError.code, rpError.message);
      throw rpError;
    }
  }

  private async finishCode(
    name: string, p: ProviderConfig, config: client.Configuration, currentUrl: URL, t: Transaction, state: string,
  ): Promise<Authentication> {
    const tokens = await codeGrantWithTokenIssuer(p, config, clientAuth(p), currentUrl, {
      pkceCodeVerifier: t.codeVerifier,
      expectedState: state,
      expectedNonce: t.nonce,
      idTokenExpected: p.type === 'oidc',
      maxAge: t.maxAge,
    });
    const idTokenClaims = tokens.id_token ? await this.verifyIdToken(name, config, tokens.id_token) : undefined;
    const accessToken = storedAccessToken(tokens);
    const claims = { ...(await this.loadClaims(p, config, accessToken.value, idTokenClaims?.sub as string | undefined)), ...idTokenClaims };
    return {
      provider: name,
      user: normalizeUser(name, p, claims, idTokenClaims),
      idToken: tokens.id_token,
      idTokenClaims,
      accessToken,
      refreshToken: tokens.refresh_token,
      authTime: typeof idTokenClaims?.auth_time === 'number' ? idTokenClaims.auth_time : now(),
    };
  }

  private async finishImplicit(
    name: string, p: ProviderConfig, config: client.Configuration, currentUrl: URL, t: Transaction, state: string,
  ): Promise<Authentication> {
    // openid-client reads an id_token response from the fragment (form_post params are moved there).
    const response = new URL(currentUrl.origin + currentUrl.pathname);
    response.hash = currentUrl.searchParams.toString();
    const idToken = currentUrl.searchParams.get('id_token');
    const idConfig = configurationForIdToken(p, config, clientAuth(p), idToken);
    await client.implicitAuthentication(idConfig, response, t.nonce!, { expectedState: state, maxAge: t.maxAge });
    const idTokenClaims = await this.verifyIdToken(name, config, idToken!);
    return {
      provider: name,
      user: normalizeUser(name, p, idTokenClaims, idTokenClaims),
      idToken: idToken!,
      idTokenClaims,
      authTime: typeof idTokenClaims.auth_time === 'number' ? idTokenClaims.auth_time : now(),
    };
  }

  /** Signature + claims of an ID token (openid-client checked nonce/azp/auth_time already). */
  private async verifyIdToken(name: string, config: client.Configuration, idToken: string): Promise<Record<string, unknown>> {
    const p = this.provider(name);
    const claims = await verifyJwt(idToken, this.jwtExpectations(p, config), this.keySets, p);
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
        userinfoEndpoint: metadata.userinfo_endpoint };
      this.expectations.set(config, expect);
    }
    return expect;
  }

  /** Claims from the userinfo endpoint or the provider's `fetchUser` hook. */
  private async loadClaims(p: ProviderConfig, config: client.Configuration, accessToken: string, sub: string | undefined): Promise<Record<string, unknown>> {
    if (p.fetchUser) return p.fetchUser(accessToken, p.customFetch ? (p.customFetch as unknown as typeof fetch) : fetch);
    if (p.fetchUserInfo === false || !this.jwtExpectations(p, config).userinfoEndpoint) return {};
    return client.fetchUserInfo(config, accessToken, sub ?? client.skipSubjectCheck);
  }

  /**
   * Refresh grant, optionally for a narrower `scope`. Concurrent calls with the same refresh token
   * share one grant (and its result for a short while) — across instances too with the
   * `coordination` option — so rotating refresh tokens survive parallel requests. Only an OP answer
   * that says the grant is gone ends the login (`refresh_failed`, 401); an OP that is down or
   * answers 5xx is `op_unreachable` / `op_unavailable` and the login is kept.
   */
  refresh(auth: Authentication, opts: { scope?: string } = {}): Promise<Authentication> {
    if (!auth.refreshToken) return Promise.reject(new RpError('no_refresh_token', 'this login has no refresh token (ask for offline_access)'));
    const key = createHash('sha256').update(`${auth.provider}\n${opts.scope ?? ''}\n${auth.refreshToken}`).digest('base64url');
    const { coordination } = this.options;
    const grant = (): Promise<Authentication> => this.refreshGrant(auth, opts.scope);
    return this.refreshes.run(key, coordination ? () => sharedRefresh(coordination, key, auth.refreshToken!, REFRESH_GRACE_MS, grant) : grant);
  }

  private async refreshGrant(auth: Authentication, scope: string | undefined): Promise<Authentication> {
    await this.loadProvider(auth.provider);
    const p = this.provider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    try {
      const tokens = await refreshWithTokenIssuer(p, config, clientAuth(p), auth.refreshToken!, scope ? { scope } : undefined);
      let idTokenClaims = auth.idTokenClaims;
      if (tokens.id_token) {
        idTokenClaims = await this.verifyIdToken(auth.provider, config, tokens.id_token);
        if (idTokenClaims.sub !== auth.user.sub) throw new RpError('invalid_id_token', 'the refreshed ID token is for another subject');
      }
      debug('tokens refreshed at provider %s', auth.provider);
      return {
        ...auth,
        idToken: tokens.id_token ?? auth.idToken,
        idTokenClaims,
        accessToken: storedAccessToken(tokens),
        refreshToken: tokens.refresh_token ?? auth.refreshToken,
      };
    } catch (err) {
      const rpError = toRpError(err);
      debug('refresh at provider %s refused (%s%s)', auth.provider, rpError.code, rpError.opError ? ` ${rpError.opError}` : '');
      // a refreshed ID token that fails its checks ends the login too: it is never half-trusted
      const gone = rpError.code === 'invalid_id_token' || (rpError.opError !== undefined && GRANT_GONE.has(rpError.opError));
      if (gone) throw new RpError('refresh_failed', `the refresh was refused: ${rpError.message}`, { opError: rpError.opError, cause: err });
      throw rpError;
    }
  }

  /** Fresh claims from the userinfo endpoint (or the provider's `fetchUser`). */
  async userInfo(auth: Authentication): Promise<Record<string, unknown>> {
    await this.loadProvider(auth.provider);
    const p = this.provider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    if (!auth.accessToken) throw new RpError('not_authenticated', 'this login has no access token');
    try {
      return await this.loadClaims({ ...p, fetchUserInfo: true }, config, auth.accessToken.value, auth.user.sub);
    } catch (err) {
      throw toRpError(err);
    }
  }

  /** True when `auth` exists, its tokens are usable (or refreshable) and, with `maxAge`, the user authenticated recently enough. */
  hasActiveAuthentication(auth: Authentication | undefined, maxAge?: number): auth is Authentication {
    if (!auth) return false;
    if (maxAge !== undefined && now() - auth.authTime > maxAge) return false;
    if (!auth.accessToken) return true; // response_type=id_token: no access token, the login lasts as long as the session
    return !(isTokenExpired(auth.accessToken) && !auth.refreshToken);
  }

  /** `auth` itself while its access token is valid, else `auth` after a (single-flight) refresh. */
  async validAccessToken(auth: Authentication): Promise<Authentication> {
    if (!auth.accessToken) throw new RpError('not_authenticated', 'this login has no access token');
    return isTokenExpired(auth.accessToken) ? this.refresh(auth) : auth;
  }

  /** RP-initiated logout URL at the OP (with `id_token_hint`), or undefined when the OP has no end_session_endpoint. */
  async endSessionUrl(auth: Authentication, postLogoutRedirectUri: string): Promise<URL | undefined> {
    await this.loadProvider(auth.provider);
    const config = await this.providerInfo(auth.provider);
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri };
    if (auth.idToken) params.id_token_hint = auth.idToken;
    return client.buildEndSessionUrl(config, params);
  }

  /** Verifies a back-channel logout token from provider `name`; returns the `sid` / `sub` to log out and its `jti` / `iat` (replay check). */
  async logoutToken(name: string, jwt: string): Promise<{ sid?: string; sub?: string; jti: string; iat: number }> {
    const p = this.provider(name);
    if (p.type !== 'oidc' || p.backchannelLogout === false) throw new RpError('unknown_provider', `provider "${name}" does not use back-channel logout`);
    const config = await this.providerInfo(name);
    try {
      return await verifyLogoutToken(jwt, this.jwtExpectations(p, config), this.keySets, p);
    } catch (err) {
      const rpError = toRpError(err, 'invalid_logout_token');
      if (rpError.code === 'op_unreachable' || rpError.code === 'invalid_logout_token') throw rpError;
      throw new RpError('invalid_logout_token', `the logout token was refused: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The PKCE S256 code_challenge (RFC 7636 §4.2), hashed synchronously: WebCrypto's async digest costs more than the hash. */
function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** True when the OP said when the token expires and that moment has passed. */
export function isTokenExpired(token: StoredAccessToken | undefined): boolean {
  return !token || (token.expiresAt !== undefined && token.expiresAt <= now());
}

function storedAccessToken(tokens: client.TokenEndpointResponse): StoredAccessToken {
  const expiresIn = tokens.expires_in;
  return {
    value: tokens.access_token,
    tokenType: tokens.token_type,
    ...(tokens.scope ? { scope: tokens.scope } : {}),
    ...(typeof expiresIn === 'number' ? { expiresAt: now() + expiresIn } : {}),
  };
}
