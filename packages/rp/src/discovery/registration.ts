/**
 * OPs found on the fly (IdPyOIDC's "" entry): identifier → WebFinger → discovery → dynamic client
 * registration (RFC 7591) → a provider entry. Registrations are kept per issuer in a store the app
 * can make persistent, and reused.
 */
import { createHash, randomBytes } from 'node:crypto';
import createDebug from 'debug';
import * as client from 'openid-client';
import type { ProviderConfig } from '../options.js';
import type { Coordination } from '../coordination.js';
import { OptionsError, oneLine, toRpError } from '../errors.js';
import { setCapped } from '../capped-map.js';
import { holdLease } from '../lease.js';
import { guardedFetch, privateNetworkError } from './network-guard.js';
import { WebFingerError, discoverIssuer } from './webfinger.js';

const debug = createDebug('openid-express:rp');

/** A client registered at an OP (what the store keeps). */
export interface RegisteredClient {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  tokenEndpointAuthMethod?: ProviderConfig['tokenEndpointAuthMethod'];
  /** The redirect URI it was registered with (a new one means registering again). */
  redirectUri: string;
  /** Seconds since the epoch; 0 or absent: the secret does not expire. */
  clientSecretExpiresAt?: number;
  /** RFC 7592 management credentials, when the OP gives them. */
  registrationAccessToken?: string;
  registrationClientUri?: string;
  /**
   * The grant types the OP registered (its answer, RFC 7591 §3.2.1); without "refresh_token" no refresh is attempted.
   * Absent in registrations stored by older versions: unknown, and refresh is attempted as before.
   */
  grantTypes?: string[];
  /** The `id_token_signed_response_alg` the OP registered, when its answer names one. */
  idTokenSignedResponseAlg?: string;
  /** True when the OP registered the client with `require_pushed_authorization_requests` (its logins then use PAR). */
  requirePushedAuthorizationRequests?: boolean;
}

/**
 * Where registrations live, keyed by the provider name derived from the issuer (`dyn-…`).
 * The default is in memory; give a persistent one so restarts do not register again.
 */
export interface RegistrationStore {
  get(key: string): Promise<RegisteredClient | undefined> | RegisteredClient | undefined;
  set(key: string, value: RegisteredClient): Promise<void> | void;
  /**
   * Optional: forgets the registration under `key` if it is still the client `clientId` (the OP no
   * longer accepts it). Without it, a registration the OP forgot is used until it expires.
   */
  forget?(key: string, clientId: string): Promise<void> | void;
}

/** `rp({ dynamic })`: unknown OPs found on the fly. */
export interface DynamicOptions {
  /** Find the OP of `identifier` (alice@example.org, acct:…, URL) by WebFinger. Without it, `identifier` is the issuer URL. */
  webfinger?: boolean | undefined;
  /** Register a client at OPs not yet in the store (RFC 7591). Without it, only stored registrations are used. */
  registration?: boolean | undefined;
  /** Which issuers may be used. Default: all public ones (private/loopback hosts are refused anyway). */
  allowIssuer?: ((issuer: string) => boolean | Promise<boolean>) | undefined;
  /**
   * Registration store. Default: the `coordination` store when rp() has one (shared by every
   * instance, e.g. Redis), else in memory (lost at restart, one per process).
   */
  store?: RegistrationStore | undefined;
  /** Scopes asked of dynamic OPs. Default "openid email profile". */
  scope?: string | undefined;
  /** Extra client metadata sent at registration (e.g. `client_name`, `logo_uri`, `contacts`). */
  clientMetadata?: Partial<client.ClientMetadata> | undefined;
  /** RFC 7591 initial access token, for OPs that require one. */
  initialAccessToken?: string | undefined;
  /** Development only: permit private / loopback hosts (refused by default against SSRF). */
  allowPrivateNetwork?: boolean | undefined;
  /** Development only: permit http:// OPs and WebFinger. */
  allowInsecureRequests?: boolean | undefined;
}

/**
 * Refused dynamic login; `code` is stable and `status` is what the router answers (the router
 * turns it into an `RpError` with the same code).
 *
 * @example
 * ```ts
 * try { await relyingParty.discoverProvider('alice@example.org'); }
 * catch (err) { if (err.code === 'issuer_not_allowed') showAllowedProviders(); }
 * ```
 */
export class DynamicProviderError extends Error {
  readonly status: number;
  /** The WebFinger host or the OP could not be reached or answered 5xx / 429: it may pass by itself (a 503 with Retry-After from rp()). */
  readonly transient: boolean;
  constructor(
    readonly code: 'invalid_identifier' | 'webfinger_failed' | 'issuer_not_allowed' | 'registration_failed' | 'registration_disabled',
    message: string,
    options?: { cause?: unknown; transient?: boolean },
  ) {
    super(message, options);
    this.name = 'DynamicProviderError';
    this.transient = options?.transient ?? false;
    this.status = code === 'invalid_identifier' || code === 'issuer_not_allowed' || code === 'registration_disabled' ? 400 : 502;
  }
}

/**
 * A registration store in memory, holding at most `max` OPs (oldest dropped first).
 *
 * @example
 * ```ts
 * rp({ ..., dynamic: { webfinger: true, registration: true, store: memoryRegistrationStore() } });
 * ```
 */
export function memoryRegistrationStore(max = 1000): RegistrationStore {
  const map = new Map<string, RegisteredClient>();
  return {
    get: (key) => map.get(key),
    set: (key, value) => void setCapped(map, key, value, max),
    forget: (key, clientId) => void (map.get(key)?.clientId === clientId && map.delete(key)),
  };
}

/** How long a registration without a secret expiry is kept in the coordination store (re-registered after). */
const REGISTRATION_TTL_MS = 365 * 24 * 3600 * 1000;

/**
 * Registrations kept in rp()'s `coordination` store (`oidc-dynreg:<provider>` keys), so every
 * instance uses the client one of them registered: a login started on one instance finishes on another.
 */
export function coordinationRegistrationStore(coordination: Coordination): RegistrationStore {
  return {
    get: async (key) => {
      const stored = await coordination.get(`oidc-dynreg:${key}`);
      return stored ? (JSON.parse(stored) as RegisteredClient) : undefined;
    },
    set: async (key, value) => {
      const expires = value.clientSecretExpiresAt ?? 0;
      const ttl = expires > 0 ? Math.max(60_000, expires * 1000 - Date.now()) : REGISTRATION_TTL_MS;
      await coordination.set(`oidc-dynreg:${key}`, JSON.stringify(value), ttl);
    },
    forget: async (key, clientId) => {
      const stored = await coordination.get(`oidc-dynreg:${key}`);
      // only that client: another instance may have registered a new one meanwhile
      if (stored && (JSON.parse(stored) as RegisteredClient).clientId === clientId) await coordination.deleteIfEquals(`oidc-dynreg:${key}`, stored);
    },
  };
}

/**
 * The registration lock is a lease (held `REGISTRATION_LEASE_MS`, renewed while the registration
 * runs), so an instance killed mid-registration frees it within that; another instance waits at
 * most `REGISTRATION_WAIT_MS` for the stored result before answering 503. A request to the OP is
 * given `OP_TIMEOUT_S`, as every call to an OP.
 */
const REGISTRATION_LEASE_MS = 6_000;
const REGISTRATION_WAIT_MS = 8_000;
const OP_TIMEOUT_S = 10;
/** How often (per OP, per process) a stored registration is checked against the OP (RFC 7592). */
const VERIFY_EVERY_MS = 60_000;
/**
 * How long (per OP, per process) a registration that failed is not tried again: each attempt costs
 * requests to the host a stranger named (discovery twice, then the registration), and a login page
 * reloaded at an OP whose registration fails made them all again each time.
 */
const FAILED_FOR_MS = 30_000;

/** The provider name of a dynamic OP: stable, URL-safe, one per issuer (hence one redirect URI per OP). */
export function dynamicProviderName(issuer: string): string {
  return `dyn-${createHash('sha256').update(issuer).digest('base64url').slice(0, 22)}`;
}

/**
 * Resolves identifiers to provider entries and back from names, for the router.
 *
 * @example
 * ```ts
 * const dynamic = new DynamicProviders({ webfinger: true, registration: true }, (name) => `${base}/auth/callback/${name}`);
 * const { name, config } = await dynamic.resolve('alice@example.org');
 * ```
 */
export class DynamicProviders {
  private readonly store: RegistrationStore;
  private readonly pending = new Map<string, Promise<RegisteredClient>>();
  /** Entries of the dynamic OPs this process has met (bounded: issuers are chosen by strangers). */
  private readonly known = new Map<string, ProviderConfig>();
  /** When this process last found each registration still known to its OP ("name clientId" → ms). */
  private readonly verifiedAt = new Map<string, number>();
  /** Registrations that failed lately, by provider name (see FAILED_FOR_MS; bounded, as `known`). */
  private readonly failed = new Map<string, { at: number; error: DynamicProviderError }>();

  constructor(
    private readonly options: DynamicOptions,
    private readonly redirectUriFor: (name: string) => string,
    /** rp()'s `coordination`: shares registrations (unless `options.store` is given) and lets one instance register per OP. */
    private readonly coordination?: Coordination,
  ) {
    if (options.scope !== undefined && (typeof options.scope !== 'string' || !options.scope.split(' ').includes('openid'))) {
      throw new OptionsError('dynamic.scope', 'must be a space-separated string including "openid"');
    }
    this.store = options.store ?? (coordination ? coordinationRegistrationStore(coordination) : memoryRegistrationStore());
  }

  /** Identifier → issuer (WebFinger or as given) → allowed? → registration (stored or new) → entry. */
  async resolve(identifier: string): Promise<{ name: string; issuer: string; config: ProviderConfig }> {
    const issuer = await this.issuerOf(identifier);
    if (this.options.allowIssuer && !(await this.options.allowIssuer(issuer))) {
      throw new DynamicProviderError('issuer_not_allowed', `the OpenID Provider ${issuer} is not allowed here`);
    }
    const name = dynamicProviderName(issuer);
    debug('identifier resolved to issuer %s (provider %s)', issuer, name);
    const registered = await this.registration(name, issuer);
    return { name, issuer, config: this.remember(name, registered) };
  }

  /**
   * The entry of a dynamic OP registered under `name` (for its callback), if any: as the store holds
   * it now (another instance may have registered a new client since this one met the OP); the entry
   * this process knows when the store cannot answer.
   */
  async get(name: string): Promise<ProviderConfig | undefined> {
    if (!name.startsWith('dyn-')) return undefined;
    const cached = this.known.get(name);
    let registered: RegisteredClient | undefined;
    try {
      registered = await this.store.get(name);
    } catch (err) {
      if (cached) return cached;
      throw err;
    }
    return registered && dynamicProviderName(registered.issuer) === name ? this.remember(name, registered) : undefined;
  }

  /**
   * The OP refused client `clientId` of `name` (it forgot it, or its secret changed): the registration
   * is forgotten here and in the store (if it is still that client), so the next login registers anew.
   */
  async forget(name: string, clientId: string | undefined): Promise<void> {
    if (!clientId) return;
    if (this.known.get(name)?.clientId === clientId) this.known.delete(name);
    await this.store.forget?.(name, clientId);
    debug('registration of client %s at provider %s forgotten: the OP refused it', clientId, name);
  }

  /** The entry of `name` if this process has met it (synchronous; `get()` loads it from the store). */
  cached(name: string): ProviderConfig | undefined {
    return this.known.get(name);
  }

  private remember(name: string, registered: RegisteredClient): ProviderConfig {
    const known = this.known.get(name);
    // the same client as before: the same entry (rp() keeps its discovery and keys by entry)
    if (known && known.clientId === registered.clientId && known.clientSecret === registered.clientSecret
      && known.tokenEndpointAuthMethod === registered.tokenEndpointAuthMethod) return known;
    return setCapped(this.known, name, this.toConfig(registered), 1000);
  }

  private async issuerOf(identifier: string): Promise<string> {
    try {
      if (this.options.webfinger) return await discoverIssuer(identifier, this.options);
      const url = new URL(identifier);
      const ok = url.protocol === 'https:' || (this.options.allowInsecureRequests && url.protocol === 'http:');
      if (!ok || url.search || url.hash) throw new TypeError('not an issuer URL');
      return url.pathname === '/' ? url.origin : url.href;
    } catch (err) {
      if (err instanceof WebFingerError) throw new DynamicProviderError(err.code, err.message, { transient: err.transient });
      const refused = privateNetworkError(err);
      if (refused) throw new DynamicProviderError('issuer_not_allowed', refused.message);
      throw new DynamicProviderError('invalid_identifier', 'the identifier must be the https URL of an OpenID Provider');
    }
  }

  private async registration(name: string, issuer: string): Promise<RegisteredClient> {
    const stored = await this.store.get(name);
    if (stored && this.usable(stored, name, issuer) && (await this.stillRegistered(name, stored))) return stored;
    if (!this.options.registration) {
      throw new DynamicProviderError('registration_disabled', `no client is registered at ${issuer} and dynamic registration is off`);
    }
    const failed = this.failed.get(name);
    if (failed && Date.now() - failed.at < FAILED_FOR_MS) {
      const left = Math.ceil((failed.at + FAILED_FOR_MS - Date.now()) / 1000);
      throw new DynamicProviderError(failed.error.code, `${failed.error.message} (${Math.round((Date.now() - failed.at) / 1000)} s ago; tried again in ${left} s)`, { transient: failed.error.transient });
    }
    // One registration per issuer at a time, however many logins start at once (in every instance)
    let pending = this.pending.get(name);
    if (!pending) {
      pending = (this.coordination ? this.registerOnce(this.coordination, name, issuer) : this.register(name, issuer)).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return pending;
  }

  /**
   * Registers under a lock in the coordination store: two instances meeting a new OP at once would
   * otherwise register two clients, each keep its own, and a login started on one would fail its
   * code exchange on the other. The instance that does not get the lock waits for the stored result.
   */
  private async registerOnce(coordination: Coordination, name: string, issuer: string): Promise<RegisteredClient> {
    const lock = `oidc-dynreg-lock:${name}`;
    const owner = randomBytes(12).toString('base64url');
    const deadline = Date.now() + REGISTRATION_WAIT_MS;
    for (;;) {
      if (await coordination.setIfAbsent(lock, owner, REGISTRATION_LEASE_MS)) {
        const lease = holdLease(coordination, lock, owner, REGISTRATION_LEASE_MS, REGISTRATION_LEASE_MS / 3);
        try {
          const stored = await this.store.get(name); // registered by another instance meanwhile
          return stored && this.usable(stored, name, issuer) ? stored : await this.register(name, issuer);
        } finally {
          await lease.stop();
          await coordination.deleteIfEquals(lock, owner).catch(() => undefined);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stored = await this.store.get(name);
      if (stored && this.usable(stored, name, issuer)) return stored;
      if (Date.now() > deadline) {
        throw new DynamicProviderError('registration_failed', `another instance is still registering a client at ${issuer}; try again shortly`, { transient: true });
      }
    }
  }

  /**
   * Whether the OP still knows the client (RFC 7592 read with its registration access token), asked
   * at most every `VERIFY_EVERY_MS` per OP in this process: an OP that forgot it (its store reset)
   * would otherwise answer every login at its authorization endpoint with its own error page, which
   * this app never sees. Forgotten here too when the OP says so (401, 403, 404); an OP that cannot
   * be asked now, or has no RFC 7592, is trusted.
   */
  private async stillRegistered(name: string, stored: RegisteredClient): Promise<boolean> {
    if (!stored.registrationClientUri || !stored.registrationAccessToken) return true;
    const verified = this.verifiedAt.get(verifiedKey(name, stored.clientId));
    if (verified !== undefined && Date.now() - verified < VERIFY_EVERY_MS) return true;
    let status: number;
    try {
      status = await this.manage(stored, 'GET');
    } catch (err) {
      debug('registration of client %s at provider %s not checked: %s', stored.clientId, name, (err as Error).message);
      return true;
    }
    if (status === 401 || status === 403 || status === 404) {
      await this.forget(name, stored.clientId);
      return false;
    }
    this.markVerified(name, stored.clientId);
    return true;
  }

  /** The OP knows client `clientId` of `name` now (registered or checked): not asked again for a while. */
  private markVerified(name: string, clientId: string): void {
    setCapped(this.verifiedAt, verifiedKey(name, clientId), Date.now(), 1000);
  }

  /** An RFC 7592 request about a registered client (read or delete) with its registration access token: the answer's status. */
  private async manage(stored: RegisteredClient, method: 'GET' | 'DELETE'): Promise<number> {
    const response = await guardedFetch(this.options)(stored.registrationClientUri!, {
      method, headers: { authorization: `Bearer ${stored.registrationAccessToken}`, accept: 'application/json' }, body: undefined, redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel().catch(() => undefined);
    return response.status;
  }

  private usable(stored: RegisteredClient, name: string, issuer: string): boolean {
    const expires = stored.clientSecretExpiresAt ?? 0;
    return stored.issuer === issuer && stored.redirectUri === this.redirectUriFor(name) && (expires === 0 || expires > Date.now() / 1000 + 60);
  }

  /**
   * Registers a client at `issuer`: reads its discovery document, asks only for what it advertises
   * (`registrationRequest`), and keeps what it answers (`registeredClient`). Every request passes the SSRF guard.
   */
  private async register(name: string, issuer: string): Promise<RegisteredClient> {
    const redirectUri = this.redirectUriFor(name);
    const options = {
      [client.customFetch]: guardedFetch(this.options),
      execute: this.options.allowInsecureRequests ? [client.allowInsecureRequests] : [],
      timeout: OP_TIMEOUT_S,
    };
    let step = 'discovery';
    let asked: RegistrationRequest;
    let answer: client.ClientMetadata;
    try {
      // openid-client needs a client_id to discover with; this one is never sent anywhere.
      const server = (await client.discovery(new URL(issuer), 'unregistered', undefined, undefined, options)).serverMetadata();
      asked = registrationRequest(issuer, server);
      step = 'registration';
      const configuration = await client.dynamicClientRegistration(
        new URL(issuer),
        // The app's extras first: they cannot replace what the login depends on.
        // where a sign-out returns (the app's root, as rp()'s logout sends it), when the OP has RP-initiated logout
        {
          client_name: 'openid-express',
          ...(server.end_session_endpoint ? { post_logout_redirect_uris: [postLogoutRedirectUri(redirectUri)] } : {}),
          // signing out at the OP ends the app's session too, when the OP sends back-channel logout tokens
          ...(server.backchannel_logout_supported === true ? {
            backchannel_logout_uri: backchannelLogoutUri(redirectUri),
            backchannel_logout_session_required: server.backchannel_logout_session_supported === true,
          } : {}),
          ...this.options.clientMetadata, ...asked, redirect_uris: [redirectUri], application_type: 'web',
        },
        undefined,
        { ...options, initialAccessToken: this.options.initialAccessToken },
      );
      answer = configuration.clientMetadata();
    } catch (err) {
      // what the OP (or the way to it) answered, kept a while (FAILED_FOR_MS): not the store's failures below
      const failure = (error: DynamicProviderError): DynamicProviderError => {
        setCapped(this.failed, name, { at: Date.now(), error }, 1000);
        return error;
      };
      if (err instanceof DynamicProviderError) throw failure(err);
      const refused = privateNetworkError(err);
      if (refused) throw failure(new DynamicProviderError('issuer_not_allowed', refused.message));
      const said = err instanceof client.ResponseBodyError ? ` (the OP answered ${err.error}${err.error_description ? `: ${err.error_description}` : ''})` : '';
      throw failure(new DynamicProviderError('registration_failed', `${step} at ${issuer} failed: ${reasons(err)}${said}`, {
        cause: err, transient: toRpError(err).retryAfter !== undefined,
      }));
    }
    const registered = registeredClient(issuer, redirectUri, asked, answer);
    try {
      await this.store.set(name, registered);
    } catch (err) {
      // nobody will find this client again (the next login registers anew): deleted at the OP
      // (RFC 7592) when it allows, rather than left there for good
      if (registered.registrationClientUri && registered.registrationAccessToken) {
        void this.manage(registered, 'DELETE').then(
          (status) => debug('client %s kept nowhere (the store failed): deleted at %s (%d)', registered.clientId, issuer, status),
          (error: unknown) => debug('client %s kept nowhere (the store failed), not deleted at %s: %s', registered.clientId, issuer, (error as Error).message));
      }
      throw err;
    }
    this.markVerified(name, registered.clientId);
    debug('client registered at %s (provider %s, grant types %o, %s)', issuer, name, registered.grantTypes, registered.tokenEndpointAuthMethod);
    return registered;
  }

  private toConfig(registered: RegisteredClient): ProviderConfig {
    return {
      type: 'oidc',
      label: new URL(registered.issuer).host,
      clientId: registered.clientId,
      clientSecret: registered.clientSecret,
      tokenEndpointAuthMethod: registered.tokenEndpointAuthMethod,
      // undefined for registrations stored before grant types were kept: refresh is attempted as before
      grantTypes: registered.grantTypes,
      // the alg the OP will sign ID tokens with; never "none" (unsigned ID tokens are not accepted whatever was registered)
      idTokenSignedResponseAlg: registered.idTokenSignedResponseAlg === 'none' ? undefined : registered.idTokenSignedResponseAlg,
      // a client the OP requires to push its requests (RFC 9126 §6); else PAR follows the OP's metadata
      ...(registered.requirePushedAuthorizationRequests ? { pushedAuthorizationRequests: true } : {}),
      issuer: registered.issuer,
      scope: this.options.scope ?? 'openid email profile',
      // offline_access (a refresh token) is granted only with prompt=consent (OIDC Core §11)
      ...((this.options.scope ?? '').split(' ').includes('offline_access') ? { authorizationParams: { prompt: 'consent' } } : {}),
      responseType: 'code',
      pkce: true,
      // Every later request to this OP (discovery, keys, token, userinfo) passes the SSRF guard too.
      customFetch: guardedFetch(this.options),
      allowInsecureRequests: this.options.allowInsecureRequests,
    };
  }
}

/**
 * openid-client's message and the ones it wraps, which say what the OP got wrong: "invalid response encountered:
 * "response" body "client_id" property must be a string", "parsing error occured: … larger than 1048576 bytes".
 */
function reasons(err: unknown): string {
  const messages: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) if (!messages.includes(e.message)) messages.push(e.message);
  return oneLine(messages.join(': '), 500);
}

/** The key of `verifiedAt`: one provider's one client. */
const verifiedKey = (name: string, clientId: string): string => `${name} ${clientId}`;

/** The post-logout redirect URI registered at OPs found on the fly: the root of the app's origin (where `GET /logout` returns by default). */
export function postLogoutRedirectUri(redirectUri: string): string {
  return `${new URL(redirectUri).origin}/`;
}

/** The back-channel logout URI registered at OPs found on the fly: rp()'s route for that provider, beside its callback. */
export function backchannelLogoutUri(redirectUri: string): string {
  return redirectUri.replace(/\/callback\/([^/]+)$/, '/backchannel-logout/$1');
}

/** What OpenID Connect Discovery 1.0 §3 says an OP supports when its discovery document omits the field. */
const DISCOVERY_DEFAULTS = {
  grant_types_supported: ['authorization_code', 'implicit'],
  token_endpoint_auth_methods_supported: ['client_secret_basic'],
};

/** How openid-express asks to authenticate at the token endpoint (always with a secret), preferred first. */
const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

/** What openid-express can authenticate with, whatever the OP registered instead. */
const USABLE_METHODS: ReadonlyArray<string> = [...SECRET_METHODS, 'none'];

/** The part of the registration request that depends on the OP's metadata. */
interface RegistrationRequest {
  response_types: ['code'];
  grant_types: string[];
  token_endpoint_auth_method: (typeof SECRET_METHODS)[number];
}

/** A metadata field as a list of strings; undefined when absent or not a list. */
function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/**
 * Asks only for what the OP advertises (absent fields: the OpenID Connect Discovery 1.0 §3 defaults): the code flow,
 * "refresh_token" only when offered, and client_secret_basic, else client_secret_post. An OP offering neither the code
 * flow nor a secret-based method cannot be registered at: a `registration_failed` saying what it offers.
 */
function registrationRequest(issuer: string, server: client.ServerMetadata): RegistrationRequest {
  const responseTypes = strings(server.response_types_supported);
  const grants = strings(server.grant_types_supported) ?? DISCOVERY_DEFAULTS.grant_types_supported;
  if (!responseTypes?.includes('code') || !grants.includes('authorization_code')) {
    throw new DynamicProviderError(
      'registration_failed',
      `the OpenID Provider ${issuer} does not offer the authorization code flow (response_types_supported: ` +
        `${JSON.stringify(server.response_types_supported ?? null)}, grant_types_supported: ${JSON.stringify(grants)}); ` +
        'openid-express logs in with response_type "code" only, so this OP cannot be used',
    );
  }
  const methods = strings(server.token_endpoint_auth_methods_supported) ?? DISCOVERY_DEFAULTS.token_endpoint_auth_methods_supported;
  const method = SECRET_METHODS.find((m) => methods.includes(m));
  if (!method) {
    throw new DynamicProviderError(
      'registration_failed',
      `the OpenID Provider ${issuer} offers token_endpoint_auth_methods_supported ${JSON.stringify(methods)}, neither ` +
        'client_secret_basic nor client_secret_post; openid-express registers clients with a secret: register a client ' +
        'at this OP by hand and configure it with oidc() instead',
    );
  }
  return {
    response_types: ['code'],
    grant_types: grants.includes('refresh_token') ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    token_endpoint_auth_method: method,
  };
}

/**
 * The client as the OP registered it: RFC 7591 §3.2.1 lets the OP replace requested values and makes it return all it
 * registered, so its answer wins over what was asked.
 * - `grant_types` absent: the RFC 7591 §2 / OpenID Connect Registration §2 default, ["authorization_code"] (no refresh
 *   attempts; an OP that omits the field registered the default, whatever was asked).
 * - `token_endpoint_auth_method` absent: what was asked, or "none" when the OP gave no secret (a public client).
 * A method openid-express cannot use, a secret-based method without a secret, or grant types without
 * "authorization_code" are a `registration_failed` naming the field.
 */
function registeredClient(issuer: string, redirectUri: string, asked: RegistrationRequest, answer: client.ClientMetadata): RegisteredClient {
  const fail = (field: string, value: unknown, why: string): DynamicProviderError =>
    new DynamicProviderError('registration_failed', `the OpenID Provider ${issuer} registered the client with ${field} ${JSON.stringify(value)}, ${why}`);
  const method = answer.token_endpoint_auth_method ?? (answer.client_secret ? asked.token_endpoint_auth_method : 'none');
  if (typeof method !== 'string' || !USABLE_METHODS.includes(method)) {
    throw fail('token_endpoint_auth_method', method, `which openid-express cannot use (it authenticates with ${USABLE_METHODS.join(', ')}): register a client at this OP by hand and configure it with oidc() instead`);
  }
  if (method !== 'none' && !answer.client_secret) throw fail('token_endpoint_auth_method', method, 'but gave no client_secret to use it with');
  const grantTypes = strings(answer.grant_types) ?? ['authorization_code'];
  if (!grantTypes.includes('authorization_code')) throw fail('grant_types', grantTypes, 'without "authorization_code": no login is possible with it');
  return {
    issuer,
    clientId: answer.client_id,
    clientSecret: answer.client_secret,
    tokenEndpointAuthMethod: method as RegisteredClient['tokenEndpointAuthMethod'],
    grantTypes,
    idTokenSignedResponseAlg: typeof answer.id_token_signed_response_alg === 'string' ? answer.id_token_signed_response_alg : undefined,
    ...(answer.require_pushed_authorization_requests === true ? { requirePushedAuthorizationRequests: true } : {}),
    redirectUri,
    clientSecretExpiresAt: typeof answer.client_secret_expires_at === 'number' ? answer.client_secret_expires_at : 0,
    registrationAccessToken: answer.registration_access_token as string | undefined,
    registrationClientUri: answer.registration_client_uri as string | undefined,
  };
}
