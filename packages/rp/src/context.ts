/**
 * `req.oidc`: the per-request view of the login kept in the session, and the operations on it.
 */
import type { Request } from 'express';
import { RpError } from './errors.js';
import type { NormalizedUser } from './options.js';
import { isTokenExpired, type RelyingParty } from './relying-party.js';
import type { Authentication } from './session.js';
import { sessionOp } from './session-guard.js';
import { readStoredLogin, toStoredLogin } from './stored-login.js';

/** The access token as `req.oidc.accessToken` shows it. */
export interface AccessToken {
  value: string;
  tokenType: string;
  scope?: string;
  /** Epoch seconds. */
  expiresAt?: number;
  isExpired(): boolean;
}

/**
 * What `req.oidc` offers: the login kept in the session and the operations on it. An interface
 * of plain members, so that two copies of the package (e.g. sources and build) agree on its type.
 */
export interface OidcContext {
  /** The login kept in the session, if any. */
  readonly authentication: Authentication | undefined;
  /** True when the session holds a login. */
  isAuthenticated(): boolean;
  /** The normalized user, or undefined when not logged in. */
  readonly user: NormalizedUser | undefined;
  /** The verified claims of the ID token. */
  readonly idTokenClaims: Record<string, unknown> | undefined;
  /** The current access token (possibly expired: see `getValidAccessToken()`). */
  readonly accessToken: AccessToken | undefined;
  /** Refresh grant (optionally a narrower `scope`); a refused refresh ends the login. */
  refresh(opts?: { scope?: string }): Promise<AccessToken>;
  /** Claims from the OP's userinfo endpoint (or the provider's user endpoint). */
  fetchUserInfo(): Promise<Record<string, unknown>>;
  /** True when logged in and, with `maxAgeSeconds`, authenticated at the OP at most that long ago. */
  hasActiveAuthentication(maxAgeSeconds?: number): boolean;
  /** An unexpired access token, refreshing it first when it has expired. */
  getValidAccessToken(): Promise<AccessToken>;
  /** `fetch` to a resource server with `Authorization: Bearer <access token>` (refreshed when expired); a DPoP-bound token with a DPoP proof. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
}

/**
 * `req.oidc`, set by `rp()` on every request.
 *
 * @example
 * ```ts
 * app.get('/api/orders', requireAuth(), async (req, res) => {
 *   const response = await req.oidc.fetch('https://api.example.com/orders');
 *   res.json(await response.json());
 * });
 * ```
 */
export class RequestContext implements OidcContext {
  constructor(
    private readonly req: Request,
    /** The RP core behind this request. */
    readonly relyingParty: RelyingParty,
  ) {}

  /** What `authentication` was last read from (the session's record), and what it read. */
  private readFrom: unknown;
  private login: Authentication | undefined;

  /** The login kept in the session, if any (read from its compact form once per request, or after it changed). */
  get authentication(): Authentication | undefined {
    const stored = this.req.session?.oidc?.auth;
    if (stored !== this.readFrom) {
      this.readFrom = stored;
      try {
        this.login = stored === undefined ? undefined : readStoredLogin(stored);
      } catch {
        this.login = undefined; // a record this version cannot read (no sub): no login
      }
    }
    return this.login;
  }

  /** True when the session holds a login. */
  isAuthenticated(): boolean {
    return this.authentication !== undefined;
  }

  /** The normalized user, or undefined when not logged in. */
  get user(): NormalizedUser | undefined {
    return this.authentication?.user;
  }

  /** The verified claims of the ID token. */
  get idTokenClaims(): Record<string, unknown> | undefined {
    return this.authentication?.idTokenClaims;
  }

  /** The current access token (possibly expired: see `getValidAccessToken()`). */
  get accessToken(): AccessToken | undefined {
    const token = this.authentication?.accessToken;
    return token && { ...token, isExpired: () => isTokenExpired(token) };
  }

  /** Refresh grant (optionally a narrower `scope`); a refused refresh ends the login. */
  async refresh(opts: { scope?: string } = {}): Promise<AccessToken> {
    const auth = this.requireAuthentication();
    return this.store(() => this.relyingParty.refresh(auth, opts));
  }

  /** Claims from the OP's userinfo endpoint (or the provider's user endpoint). */
  async fetchUserInfo(): Promise<Record<string, unknown>> {
    return this.relyingParty.userInfo(this.requireAuthentication());
  }

  /** True when logged in and, with `maxAgeSeconds`, authenticated at the OP at most that long ago. */
  hasActiveAuthentication(maxAgeSeconds?: number): boolean {
    return this.relyingParty.hasActiveAuthentication(this.authentication, maxAgeSeconds);
  }

  /** An unexpired access token, refreshing it first when it has expired. */
  async getValidAccessToken(): Promise<AccessToken> {
    const auth = this.requireAuthentication();
    return this.store(() => this.relyingParty.validAccessToken(auth));
  }

  /** `fetch` to a resource server with `Authorization: Bearer <access token>` (refreshed when expired). */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const token = await this.getValidAccessToken();
    // DPoP-bound (`dpop` provider option): a proof signed by the login's key goes with each request
    if (token.tokenType.toLowerCase() === 'dpop') return this.relyingParty.fetchResource(this.requireAuthentication(), url, init);
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token.value}`);
    return fetch(url, { ...init, headers });
  }

  private requireAuthentication(): Authentication {
    const auth = this.authentication;
    if (!auth) throw new RpError('not_authenticated', 'log in first');
    return auth;
  }

  /** Runs a token operation and keeps its result in the session; only a refresh the OP refused (`refresh_failed`) logs out. */
  private async store(operation: () => Promise<Authentication>): Promise<AccessToken> {
    try {
      const auth = await operation();
      const session = this.req.session;
      if (session?.oidc && auth !== this.authentication) {
        session.oidc.auth = toStoredLogin(auth);
        // saved now, so a store failure is a 503 here rather than new tokens silently lost after the answer
        await sessionOp<void>((cb) => session.save(cb));
      }
      return this.accessToken!;
    } catch (err) {
      if (err instanceof RpError && err.code === 'refresh_failed' && this.req.session?.oidc) delete this.req.session.oidc.auth;
      throw err;
    }
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `rp()`: the login of this session and its operations. */
      oidc: OidcContext;
    }
  }
}
