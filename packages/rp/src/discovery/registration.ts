/**
 * OPs found on the fly (the seed's "" entry): identifier → WebFinger → discovery → dynamic client
 * registration (RFC 7591) → a provider entry. Registrations are kept per issuer in a store the app
 * can make persistent, and reused.
 */
import { createHash } from 'node:crypto';
import createDebug from 'debug';
import * as client from 'openid-client';
import type { ProviderConfig } from '../options.js';
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
}

/**
 * Where registrations live, keyed by the provider name derived from the issuer (`dyn-…`).
 * The default is in memory; give a persistent one so restarts do not register again.
 */
export interface RegistrationStore {
  get(key: string): Promise<RegisteredClient | undefined> | RegisteredClient | undefined;
  set(key: string, value: RegisteredClient): Promise<void> | void;
}

/** `rp({ dynamic })`: unknown OPs found on the fly. */
export interface DynamicOptions {
  /** Find the OP of `identifier` (alice@example.org, acct:…, URL) by WebFinger. Without it, `identifier` is the issuer URL. */
  webfinger?: boolean;
  /** Register a client at OPs not yet in the store (RFC 7591). Without it, only stored registrations are used. */
  registration?: boolean;
  /** Which issuers may be used. Default: all public ones (private/loopback hosts are refused anyway). */
  allowIssuer?: (issuer: string) => boolean | Promise<boolean>;
  /** Registration store. Default: in memory (lost at restart). */
  store?: RegistrationStore;
  /** Scopes asked of dynamic OPs. Default "openid email profile". */
  scope?: string;
  /** Extra client metadata sent at registration (e.g. `client_name`, `logo_uri`, `contacts`). */
  clientMetadata?: Partial<client.ClientMetadata>;
  /** RFC 7591 initial access token, for OPs that require one. */
  initialAccessToken?: string;
  /** Development only: permit private / loopback hosts (refused by default against SSRF). */
  allowPrivateNetwork?: boolean;
  /** Development only: permit http:// OPs and WebFinger. */
  allowInsecureRequests?: boolean;
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
  constructor(
    readonly code: 'invalid_identifier' | 'webfinger_failed' | 'issuer_not_allowed' | 'registration_failed' | 'registration_disabled',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DynamicProviderError';
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
    set: (key, value) => {
      map.delete(key);
      map.set(key, value);
      if (map.size > max) map.delete(map.keys().next().value!);
    },
  };
}

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

  constructor(private readonly options: DynamicOptions, private readonly redirectUriFor: (name: string) => string) {
    if (options.scope !== undefined && (typeof options.scope !== 'string' || !options.scope.split(' ').includes('openid'))) {
      throw new TypeError('rp(): option "dynamic.scope" must be a space-separated string including "openid"');
    }
    this.store = options.store ?? memoryRegistrationStore();
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

  /** The entry of a dynamic OP already registered under `name` (for its callback), if any. */
  async get(name: string): Promise<ProviderConfig | undefined> {
    if (!name.startsWith('dyn-')) return undefined;
    const cached = this.known.get(name);
    if (cached) return cached;
    const registered = await this.store.get(name);
    return registered && dynamicProviderName(registered.issuer) === name ? this.remember(name, registered) : undefined;
  }

  /** The entry of `name` if this process has met it (synchronous; `get()` loads it from the store). */
  cached(name: string): ProviderConfig | undefined {
    return this.known.get(name);
  }

  private remember(name: string, registered: RegisteredClient): ProviderConfig {
    const config = this.toConfig(registered);
    this.known.delete(name);
    this.known.set(name, config);
    if (this.known.size > 1000) this.known.delete(this.known.keys().next().value!);
    return config;
  }

  private async issuerOf(identifier: string): Promise<string> {
    try {
      if (this.options.webfinger) return await discoverIssuer(identifier, this.options);
      const url = new URL(identifier);
      const ok = url.protocol === 'https:' || (this.options.allowInsecureRequests && url.protocol === 'http:');
      if (!ok || url.search || url.hash) throw new TypeError('not an issuer URL');
      return url.pathname === '/' ? url.origin : url.href;
    } catch (err) {
      if (err instanceof WebFingerError) throw new DynamicProviderError(err.code, err.message);
      const refused = privateNetworkError(err);
      if (refused) throw new DynamicProviderError('issuer_not_allowed', refused.message);
      throw new DynamicProviderError('invalid_identifier', 'the identifier must be the https URL of an OpenID Provider');
    }
  }

  private async registration(name: string, issuer: string): Promise<RegisteredClient> {
    const stored = await this.store.get(name);
    if (stored && this.usable(stored, name, issuer)) return stored;
    if (!this.options.registration) {
      throw new DynamicProviderError('registration_disabled', `no client is registered at ${issuer} and dynamic registration is off`);
    }
    // One registration per issuer at a time, however many logins start at once.
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.register(name, issuer).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return pending;
  }

  private usable(stored: RegisteredClient, name: string, issuer: string): boolean {
    const expires = stored.clientSecretExpiresAt ?? 0;
    return stored.issuer === issuer && stored.redirectUri === this.redirectUriFor(name) && (expires === 0 || expires > Date.now() / 1000 + 60);
  }

  private async register(name: string, issuer: string): Promise<RegisteredClient> {
    const redirectUri = this.redirectUriFor(name);
    let configuration: client.Configuration;
    try {
      configuration = await client.dynamicClientRegistration(
        new URL(issuer),
        {
          client_name: 'openid-express',
          ...this.options.clientMetadata,
          redirect_uris: [redirectUri],
          response_types: ['code'],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
          application_type: 'web',
        },
        undefined,
        {
          [client.customFetch]: guardedFetch(this.options),
          execute: this.options.allowInsecureRequests ? [client.allowInsecureRequests] : [],
          initialAccessToken: this.options.initialAccessToken,
          timeout: 15,
        },
      );
    } catch (err) {
      const refused = privateNetworkError(err);
      if (refused) throw new DynamicProviderError('issuer_not_allowed', refused.message);
      throw new DynamicProviderError('registration_failed', `registration at ${issuer} failed: ${(err as Error).message}`, { cause: err });
    }
    const metadata = configuration.clientMetadata();
    const registered: RegisteredClient = {
      issuer,
      clientId: metadata.client_id,
      clientSecret: metadata.client_secret,
      tokenEndpointAuthMethod: metadata.client_secret ? 'client_secret_basic' : 'none',
      redirectUri,
      clientSecretExpiresAt: typeof metadata.client_secret_expires_at === 'number' ? metadata.client_secret_expires_at : 0,
      registrationAccessToken: metadata.registration_access_token as string | undefined,
      registrationClientUri: metadata.registration_client_uri as string | undefined,
    };
    await this.store.set(name, registered);
    debug('client registered at %s (provider %s)', issuer, name);
    return registered;
  }

  private toConfig(registered: RegisteredClient): ProviderConfig {
    return {
      type: 'oidc',
      label: new URL(registered.issuer).host,
      clientId: registered.clientId,
      clientSecret: registered.clientSecret,
      tokenEndpointAuthMethod: registered.tokenEndpointAuthMethod,
      issuer: registered.issuer,
      scope: this.options.scope ?? 'openid email profile',
      responseType: 'code',
      pkce: true,
      // Every later request to this OP (discovery, keys, token, userinfo) passes the SSRF guard too.
      customFetch: guardedFetch(this.options),
      allowInsecureRequests: this.options.allowInsecureRequests,
    };
  }
}
