/**
 * Loopback simulator of Microsoft Entra ID v2.0 (login.microsoftonline.com), after its documented
 * wire behaviour: per-tenant discovery whose multi-tenant documents (`common`, `organizations`,
 * `consumers`) carry the issuer template ".../{tenantid}/v2.0"; ID tokens whose `iss` is that
 * template filled with the user's `tid`; code flow, and `id_token` with `response_mode=form_post`.
 *
 * The user is already signed in: the authorization endpoint answers at once.
 */
import express from 'express';
import {
  CodeStore, clientCredentials, createSigner, formPostPage, listen, now, oauthError, opaque, pkceOk, redirectWith,
  type Listening, type Signer,
} from './common.js';

/** The tenant id of personal Microsoft accounts. */
export const CONSUMERS_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';

export interface MicrosoftUser {
  /** Pairwise subject. */
  sub: string;
  oid: string;
  /** Home tenant id of the account. */
  tid: string;
  name: string;
  preferred_username: string;
  email?: string;
}

export interface MicrosoftSimulatorOptions {
  clientId: string;
  clientSecret?: string;
  redirectUris: string[];
  user: MicrosoftUser;
  /** Tenant domains → tenant ids, for single-tenant discovery by domain. */
  domains?: Record<string, string>;
  /** Misbehaviour for negative tests: sign this `iss` instead of the user's tenant issuer. */
  issOverride?: string;
  /** Host name the simulator puts in its URLs (e.g. 'localhost' vs '127.0.0.1' for cross-site tests). */
  host?: string;
  /** Put the `login_hint` optional claim in ID tokens (an app registration setting), as Entra does once it is configured. */
  loginHintClaim?: boolean;
}

export interface MicrosoftSimulator extends Listening {
  /** Authority to give `microsoft({ authority })`. */
  authority: string;
  /**
   * The user's Entra session id, the `sid` of its ID tokens. Entra's single sign-out calls each app's front-channel
   * logout URL with `?sid=` alone (no `iss`; learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#single-sign-out,
   * MicrosoftDocs/entra-docs#333).
   */
  sid: string;
  options: MicrosoftSimulatorOptions;
  authorizationRequests: Record<string, string>[];
  tokenRequests: string[];
  /** Query parameters of every sign-out request received. */
  logoutRequests: Record<string, string>[];
}

export async function startMicrosoftSimulator(options: MicrosoftSimulatorOptions): Promise<MicrosoftSimulator> {
  const sim = { options, authorizationRequests: [], tokenRequests: [], logoutRequests: [], sid: crypto.randomUUID() } as unknown as MicrosoftSimulator;
  const entra = new Entra(sim, await createSigner());
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.get('/:tenant/v2.0/.well-known/openid-configuration', (req, res) => void res.json(entra.discovery(req.params.tenant)));
  app.get('/:tenant/discovery/v2.0/keys', (_req, res) => void res.json(entra.signer.jwks));
  app.get('/:tenant/oauth2/v2.0/authorize', (req, res) => entra.authorize(req, res));
  app.post('/:tenant/oauth2/v2.0/token', (req, res) => entra.token(req, res));
  app.get('/:tenant/oauth2/v2.0/logout', (req, res) => entra.logout(req, res));
  const listening = await listen(app, options.host);
  return Object.assign(sim, listening, { authority: listening.url });
}

/** The simulated endpoints and their state. */
class Entra {
  private readonly codes = new CodeStore();
  private readonly refreshTokens = new Set<string>();

  constructor(private readonly sim: MicrosoftSimulator, readonly signer: Signer) {}

  private get options(): MicrosoftSimulatorOptions {
    return this.sim.options;
  }

  private tenantId(tenant: string): string {
    return this.options.domains?.[tenant] ?? tenant;
  }

  private issuerOf(tid: string): string {
    return `${this.sim.authority}/${tid}/v2.0`;
  }

  /** The discovery document of a tenant segment; multi-tenant ones name the "{tenantid}" template. */
  discovery(tenant: string): Record<string, unknown> {
    const base = `${this.sim.authority}/${tenant}`;
    const tid = tenant === 'common' || tenant === 'organizations' ? '{tenantid}' : tenant === 'consumers' ? CONSUMERS_TENANT : this.tenantId(tenant);
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: this.issuerOf(tid),
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  async authorize(req: express.Request, res: express.Response): Promise<void> {
    const q = req.query as Record<string, string>;
    this.sim.authorizationRequests.push({ ...q });
    if (q.client_id !== this.options.clientId || !this.options.redirectUris.includes(q.redirect_uri)) {
      return void res.status(400).type('html').send('<h1>AADSTS50011: The redirect URI specified in the request does not match</h1>');
    }
    const mode = q.response_mode ?? (q.response_type === 'code' ? 'query' : 'fragment');
    const answer = (params: Record<string, string | undefined>) =>
      mode === 'form_post' ? formPostPage(res, q.redirect_uri, params) : redirectWith(res, q.redirect_uri, params);
    const tenantError = tenantRefusal(req.params.tenant as string, this.options.user.tid, (t) => this.tenantId(t));
    if (tenantError) return answer({ error: 'access_denied', error_description: tenantError, state: q.state });
    const sessionState = opaque();
    if (q.response_type === 'id_token') {
      if (!q.nonce) return answer({ error: 'invalid_request', error_description: 'AADSTS900144: nonce is required', state: q.state });
      return answer({ id_token: await this.idToken(q.nonce), state: q.state, session_state: sessionState });
    }
    if (q.response_type !== 'code') return answer({ error: 'unsupported_response_type', state: q.state });
    const code = this.codes.issue({
      clientId: q.client_id, redirectUri: q.redirect_uri, scope: q.scope ?? '', nonce: q.nonce,
      codeChallenge: q.code_challenge, codeChallengeMethod: q.code_challenge_method ?? (q.code_challenge ? 'plain' : undefined),
    }, '0.A');
    answer({ code, state: q.state, session_state: sessionState });
  }

  /**
   * RP-initiated sign-out (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#send-a-sign-out-request):
   * back to `post_logout_redirect_uri` (registered as a redirect URI of the app) with `state`; `logout_hint` names the
   * account to sign out without the account picker. Without a registered URI Entra shows its own "signed out" page.
   */
  logout(req: express.Request, res: express.Response): void {
    const q = req.query as Record<string, string>;
    this.sim.logoutRequests.push({ ...q });
    const back = q.post_logout_redirect_uri;
    const registered = back && this.options.redirectUris.some((uri) => new URL(uri).origin === new URL(back).origin);
    if (!registered) return void res.status(200).type('html').send('<h1>You signed out of your account</h1>');
    redirectWith(res, back, { ...(q.state ? { state: q.state } : {}) });
  }

  async token(req: express.Request, res: express.Response): Promise<void> {
    const body = req.body as Record<string, string>;
    this.sim.tokenRequests.push(body.grant_type);
    const client = clientCredentials(req);
    if (client.clientId !== this.options.clientId || client.clientSecret !== this.options.clientSecret) {
      return oauthError(res, 401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
    }
    if (body.grant_type === 'refresh_token') {
      // Entra rotates refresh tokens: the old one is spent.
      if (!this.refreshTokens.delete(body.refresh_token ?? '')) {
        return oauthError(res, 400, 'invalid_grant', 'AADSTS70000: The provided value for the refresh token is not valid.');
      }
      return void res.set('cache-control', 'no-store').json(await this.tokens(true, undefined));
    }
    const grant = body.grant_type === 'authorization_code' ? this.codes.consume(body.code) : undefined;
    if (!grant || grant.redirectUri !== body.redirect_uri || !pkceOk(grant, body.code_verifier)) {
      return oauthError(res, 400, 'invalid_grant', 'AADSTS70008: The provided authorization code or refresh token has expired or is invalid.');
    }
    res.set('cache-control', 'no-store').json(await this.tokens(grant.scope.split(' ').includes('offline_access'), grant.nonce));
  }

  private async tokens(offline: boolean, nonce: string | undefined) {
    const refreshToken = offline ? opaque('0.A') : undefined;
    if (refreshToken) this.refreshTokens.add(refreshToken);
    return {
      token_type: 'Bearer', scope: 'openid profile email', expires_in: 3920, ext_expires_in: 3920,
      access_token: opaque('eyJ0eXAi'), id_token: await this.idToken(nonce),
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    };
  }

  private idToken(nonce: string | undefined): Promise<string> {
    const u = this.options.user;
    return this.signer.sign({
      ver: '2.0', iss: this.options.issOverride ?? this.issuerOf(u.tid), sub: u.sub, aud: this.options.clientId,
      exp: now() + 3600, iat: now(), nbf: now(), ...(nonce ? { nonce } : {}),
      name: u.name, preferred_username: u.preferred_username, oid: u.oid, tid: u.tid,
      ...(u.email ? { email: u.email } : {}), aio: opaque(), sid: this.sim.sid,
      // the optional claim Entra's sign-out takes back as logout_hint
      ...(this.options.loginHintClaim ? { login_hint: `O.${Buffer.from(`${u.oid}:${u.tid}`).toString('base64url')}` } : {}),
    });
  }
}

/** Entra refuses accounts the tenant segment does not admit (AADSTS50020 / AADSTS50194-style). */
function tenantRefusal(tenant: string, userTid: string, tenantId: (t: string) => string): string | undefined {
  if (tenant === 'common') return undefined;
  if (tenant === 'consumers') return userTid === CONSUMERS_TENANT ? undefined : 'AADSTS50020: work accounts cannot use /consumers';
  if (tenant === 'organizations') return userTid !== CONSUMERS_TENANT ? undefined : 'AADSTS50020: personal accounts cannot use /organizations';
  return tenantId(tenant) === userTid ? undefined : `AADSTS50020: user account from another tenant does not exist in tenant ${tenant}`;
}
