/**
 * Loopback simulator of Google's OpenID Provider (accounts.google.com), after its documented wire
 * behaviour: discovery, code flow with PKCE, `access_type=offline` + `prompt=consent` for a refresh
 * token, `hd` for Workspace users, and ID tokens whose `iss` may lack the scheme.
 *
 * The user is already signed in at "Google": the authorization endpoint answers at once.
 */
import express from 'express';
import {
  CodeStore, bearer, clientCredentials, createSigner, halfHash, listen, now, oauthError, opaque, pkceOk, redirectWith,
  type Listening, type Signer,
} from './common.js';

export interface GoogleUser {
  sub: string;
  email: string;
  name?: string;
  picture?: string;
  /** Workspace domain; absent for consumer accounts. */
  hd?: string;
}

export interface GoogleSimulatorOptions {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  user: GoogleUser;
  /** Sign ID tokens with `iss: "<host>"` (no scheme), as Google does for some clients. Default false. */
  schemelessIss?: boolean;
  /** Misbehaviour for negative tests: sign this `iss` instead. */
  issOverride?: string;
}

export interface GoogleSimulator extends Listening {
  /** Issuer to give `google({ issuer })`. */
  issuer: string;
  options: GoogleSimulatorOptions;
  /** Query parameters of every authorization request received. */
  authorizationRequests: Record<string, string>[];
  /** Grant types of every token request received. */
  tokenRequests: string[];
}

export async function startGoogleSimulator(options: GoogleSimulatorOptions): Promise<GoogleSimulator> {
  const sim = { options, authorizationRequests: [], tokenRequests: [] } as unknown as GoogleSimulator;
  const google = new Google(sim, await createSigner());
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.get('/.well-known/openid-configuration', (_req, res) => void res.json(discovery(sim.issuer)));
  app.get('/oauth2/v3/certs', (_req, res) => void res.json(google.signer.jwks));
  app.get('/o/oauth2/v2/auth', (req, res) => google.authorize(req, res));
  app.post('/token', (req, res) => google.token(req, res));
  app.get('/v1/userinfo', (req, res) => google.userinfo(req, res));
  app.post('/revoke', (req, res) => google.revoke(req, res));
  const listening = await listen(app);
  return Object.assign(sim, listening, { issuer: listening.url });
}

/** Google's discovery document (accounts.google.com/.well-known/openid-configuration), on `issuer`. */
function discovery(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/o/oauth2/v2/auth`,
    device_authorization_endpoint: `${issuer}/device/code`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/v1/userinfo`,
    revocation_endpoint: `${issuer}/revoke`,
    jwks_uri: `${issuer}/oauth2/v3/certs`,
    response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'token id_token', 'code token id_token', 'none'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    // Google's reference lists it (developers.google.com/identity/openid-connect/reference), and it sends `iss`
    authorization_response_iss_parameter_supported: true,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'picture', 'sub'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
  };
}

/** How Google's token endpoint names the OIDC scopes it granted. */
const GRANTED_AS: Record<string, string> = {
  email: 'https://www.googleapis.com/auth/userinfo.email',
  profile: 'https://www.googleapis.com/auth/userinfo.profile',
};

/** The simulated endpoints and their state. */
class Google {
  private readonly codes = new CodeStore();
  private readonly accessTokens = new Map<string, GoogleUser>();
  private readonly refreshTokens = new Map<string, { scope: string }>();

  constructor(private readonly sim: GoogleSimulator, readonly signer: Signer) {}

  private get options(): GoogleSimulatorOptions {
    return this.sim.options;
  }

  authorize(req: express.Request, res: express.Response): void {
    const q = req.query as Record<string, string>;
    this.sim.authorizationRequests.push({ ...q });
    if (q.client_id !== this.options.clientId) return void res.status(401).type('text').send('Error 401: invalid_client');
    if (!this.options.redirectUris.includes(q.redirect_uri)) return void res.status(400).type('text').send('Error 400: redirect_uri_mismatch');
    if (q.response_type !== 'code') return redirectWith(res, q.redirect_uri, { error: 'unsupported_response_type', state: q.state });
    const code = this.codes.issue({
      clientId: q.client_id, redirectUri: q.redirect_uri, scope: q.scope ?? '', nonce: q.nonce,
      codeChallenge: q.code_challenge, codeChallengeMethod: q.code_challenge_method ?? (q.code_challenge ? 'plain' : undefined),
      // Google issues a refresh token only with access_type=offline, and again only with prompt=consent.
      offline: q.access_type === 'offline' && q.prompt === 'consent',
    }, '4/0A');
    // Google names itself in the authorization response (RFC 9207 style), with its https issuer.
    redirectWith(res, q.redirect_uri, { state: q.state, iss: this.sim.issuer, code, scope: q.scope, authuser: '0', prompt: 'none' });
  }

  async token(req: express.Request, res: express.Response): Promise<void> {
    const body = req.body as Record<string, string>;
    this.sim.tokenRequests.push(body.grant_type);
    const client = clientCredentials(req);
    if (client.clientId !== this.options.clientId || client.clientSecret !== this.options.clientSecret) {
      return oauthError(res, 401, 'invalid_client', 'The OAuth client was not found.');
    }
    if (body.grant_type === 'authorization_code') {
      const grant = this.codes.consume(body.code);
      if (!grant || grant.redirectUri !== body.redirect_uri || grant.clientId !== client.clientId) {
        return oauthError(res, 400, 'invalid_grant', 'Malformed auth code.');
      }
      if (!pkceOk(grant, body.code_verifier)) return oauthError(res, 400, 'invalid_grant', 'Invalid code verifier.');
      const refresh = grant.offline ? opaque('1//0g') : undefined;
      if (refresh) this.refreshTokens.set(refresh, { scope: grant.scope });
      return void res.json(await this.tokenResponse(grant.scope, grant.nonce, refresh));
    }
    if (body.grant_type === 'refresh_token') {
      const known = this.refreshTokens.get(body.refresh_token);
      if (!known) return oauthError(res, 400, 'invalid_grant', 'Token has been expired or revoked.');
      return void res.json(await this.tokenResponse(body.scope ?? known.scope, undefined, undefined));
    }
    oauthError(res, 400, 'unsupported_grant_type', 'Invalid grant_type: ' + body.grant_type);
  }

  /**
   * Revocation (developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke): `token` in the form, an
   * access or a refresh token; 200 when done, 400 `invalid_token` for one it does not know. Revoking a refresh token
   * ends its access tokens too.
   */
  revoke(req: express.Request, res: express.Response): void {
    const token = (req.body as Record<string, string>).token ?? '';
    if (this.refreshTokens.delete(token)) {
      this.accessTokens.clear();
      return void res.status(200).end();
    }
    if (this.accessTokens.delete(token)) return void res.status(200).end();
    oauthError(res, 400, 'invalid_token', 'Token expired or revoked');
  }

  userinfo(req: express.Request, res: express.Response): void {
    const user = this.accessTokens.get(bearer(req) ?? '');
    if (!user) {
      res.set('www-authenticate', 'Bearer realm="https://accounts.google.com/", error="invalid_token"');
      return void res.status(401).json({ error: 'invalid_request', error_description: 'Invalid Credentials' });
    }
    res.json({ sub: user.sub, name: user.name, picture: user.picture, email: user.email, email_verified: true, ...(user.hd ? { hd: user.hd } : {}) });
  }

  private async tokenResponse(scope: string, nonce: string | undefined, refreshToken: string | undefined) {
    const accessToken = opaque('ya29.');
    const { user, clientId } = this.options;
    this.accessTokens.set(accessToken, user);
    const idToken = scope.split(' ').includes('openid')
      ? await this.signer.sign({
          iss: this.options.issOverride ?? (this.options.schemelessIss ? new URL(this.sim.issuer).host : this.sim.issuer),
          azp: clientId, aud: clientId, sub: user.sub, ...(user.hd ? { hd: user.hd } : {}),
          email: user.email, email_verified: true, at_hash: halfHash(accessToken), ...(nonce ? { nonce } : {}),
          name: user.name, picture: user.picture, iat: now(), exp: now() + 3600,
        })
      : undefined;
    // Google names the granted email and profile scopes as API URLs in its answers
    const granted = scope.split(' ').map((name) => GRANTED_AS[name] ?? name).join(' ');
    return {
      access_token: accessToken, expires_in: 3599, scope: granted, token_type: 'Bearer',
      ...(idToken ? { id_token: idToken } : {}),
      ...(refreshToken ? { refresh_token: refreshToken, refresh_token_expires_in: 604799 } : {}),
    };
  }
}
