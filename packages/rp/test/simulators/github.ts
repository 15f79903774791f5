/**
 * Loopback simulator of GitHub's OAuth app flow (GitHub Enterprise Server layout: `/login/oauth/*`
 * and the REST API under `/api/v3`), after its documented wire behaviour:
 * - the token endpoint answers `application/x-www-form-urlencoded` unless asked for JSON by `Accept`,
 *   and reports errors (bad code, bad refresh token, wrong secret) with HTTP 200 and an `error` field;
 * - scopes come back comma-separated;
 * - "expiring user tokens" (optional) add `expires_in`, `refresh_token`, `refresh_token_expires_in`;
 * - `GET /user` needs a User-Agent; `email` is null when private, then `GET /user/emails` (scope
 *   `user:email`) lists addresses with `primary` and `verified`.
 * No discovery, no ID token, no end-session endpoint.
 */
import express from 'express';
import { CodeStore, bearer, listen, opaque, pkceOk, redirectWith, type Listening } from './common.js';

export interface GitHubAccount {
  id: number;
  login: string;
  name: string | null;
  /** Public profile email; null when the user keeps it private. */
  email: string | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean; visibility: string | null }>;
}

export interface GitHubSimulatorOptions {
  clientId: string;
  clientSecret: string;
  /** The OAuth app's callback URL. */
  callbackUrl: string;
  account: GitHubAccount;
  /** Issue expiring user tokens with refresh tokens (a GitHub App setting). Default false. */
  expiringTokens?: boolean;
  /**
   * Answer this API path as over a rate limit (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api):
   * `primary` is a 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` `resetIn` seconds away; `secondary` a 403
   * (or 429) with `retry-after`.
   */
  rateLimited?: { path: '/user' | '/user/emails'; kind: 'primary' | 'secondary'; status?: 403 | 429; resetIn?: number; retryAfter?: number };
}

export interface GitHubSimulator extends Listening {
  /** Give this as `github({ baseURL })` (Enterprise Server layout). */
  baseURL: string;
  options: GitHubSimulatorOptions;
  /** Accept header of each token request, and whether it answered an error with HTTP 200. */
  tokenRequests: Array<{ grantType: string; accept: string; error?: string }>;
  /** User-Agent of each API request. */
  apiRequests: Array<{ path: string; userAgent?: string }>;
  /** The user revokes the app's tokens (Settings → Applications): the API answers them 401 "Bad credentials". */
  revokeTokens(): void;
}

export async function startGitHubSimulator(options: GitHubSimulatorOptions): Promise<GitHubSimulator> {
  const sim = { options, tokenRequests: [], apiRequests: [] } as unknown as GitHubSimulator;
  const gh = new GitHub(sim);
  sim.revokeTokens = () => gh.revokeTokens();
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.get('/login/oauth/authorize', (req, res) => gh.authorize(req, res));
  app.post('/login/oauth/access_token', (req, res) => gh.accessToken(req, res));
  const api = express.Router();
  api.use((req, res, next) => gh.authenticateApi(req, res, next));
  api.get('/user', (_req, res) => gh.user(res));
  api.get('/user/emails', (_req, res) => gh.emails(res));
  app.use('/api/v3', api);
  const listening = await listen(app);
  return Object.assign(sim, listening, { baseURL: listening.url });
}

const TROUBLESHOOTING = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors';

/** The simulated endpoints and their state. */
class GitHub {
  private readonly codes = new CodeStore();
  private readonly tokens = new Map<string, { scope: string }>();
  private readonly refreshTokens = new Map<string, { scope: string }>();

  constructor(private readonly sim: GitHubSimulator) {}

  revokeTokens(): void {
    this.tokens.clear();
    this.refreshTokens.clear();
  }

  private get options(): GitHubSimulatorOptions {
    return this.sim.options;
  }

  authorize(req: express.Request, res: express.Response): void {
    const q = req.query as Record<string, string>;
    if (q.client_id !== this.options.clientId) return void res.status(404).type('html').send('<h1>404</h1>');
    const redirectUri = q.redirect_uri ?? this.options.callbackUrl;
    if (!redirectUri.startsWith(this.options.callbackUrl)) {
      return redirectWith(res, this.options.callbackUrl, {
        error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.', state: q.state,
      });
    }
    const code = this.codes.issue({
      clientId: q.client_id, redirectUri, scope: (q.scope ?? '').split(/[ ,]+/).filter(Boolean).join(','),
      codeChallenge: q.code_challenge, codeChallengeMethod: q.code_challenge_method,
    });
    redirectWith(res, redirectUri, { code, state: q.state });
  }

  accessToken(req: express.Request, res: express.Response): void {
    const body = req.body as Record<string, string>;
    const answer = (params: Record<string, string | number>) => {
      this.sim.tokenRequests.push({ grantType: body.grant_type ?? 'authorization_code', accept: req.headers.accept ?? '', error: params.error as string });
      // Errors too are HTTP 200: GitHub's documented (non-RFC) behaviour. urlencoded unless JSON is asked for.
      if ((req.headers.accept ?? '').includes('application/json')) return void res.status(200).json(params);
      res.status(200).type('application/x-www-form-urlencoded; charset=utf-8')
        .send(new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString());
    };
    const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':') : [];
    if ((body.client_id ?? basic[0]) !== this.options.clientId || (body.client_secret ?? basic[1]) !== this.options.clientSecret) {
      return answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.', error_uri: `${TROUBLESHOOTING}/#incorrect-client-credentials` });
    }
    if (body.grant_type === 'refresh_token') {
      const known = this.refreshTokens.get(body.refresh_token);
      this.refreshTokens.delete(body.refresh_token);
      if (!known) return answer({ error: 'bad_refresh_token', error_description: 'The refresh token passed is incorrect or expired.', error_uri: `${TROUBLESHOOTING}/#bad-refresh-token` });
      return answer(this.issue(known.scope));
    }
    const grant = this.codes.consume(body.code);
    if (grant && body.redirect_uri && body.redirect_uri !== grant.redirectUri) {
      return answer({ error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.', error_uri: `${TROUBLESHOOTING}/#redirect-uri-mismatch2` });
    }
    if (!grant || !pkceOk(grant, body.code_verifier)) {
      return answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.', error_uri: `${TROUBLESHOOTING}/#bad-verification-code` });
    }
    answer(this.issue(grant.scope));
  }

  private issue(scope: string): Record<string, string | number> {
    const accessToken = opaque(this.options.expiringTokens ? 'ghu_' : 'gho_');
    this.tokens.set(accessToken, { scope });
    if (!this.options.expiringTokens) return { access_token: accessToken, scope, token_type: 'bearer' };
    const refreshToken = opaque('ghr_');
    this.refreshTokens.set(refreshToken, { scope });
    return { access_token: accessToken, expires_in: 28800, refresh_token: refreshToken, refresh_token_expires_in: 15811200, scope, token_type: 'bearer' };
  }

  /** The REST API wants a User-Agent and a token; it says which scopes the token has. */
  authenticateApi(req: express.Request, res: express.Response, next: express.NextFunction): void {
    this.sim.apiRequests.push({ path: req.path, userAgent: req.headers['user-agent'] });
    if (!req.headers['user-agent']) {
      return void res.status(403).type('text').send('Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).');
    }
    const token = this.tokens.get(bearer(req) ?? '');
    if (!token) return void res.status(401).json({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    const limit = this.options.rateLimited;
    if (limit && limit.path === req.path) {
      res.set({ 'x-ratelimit-limit': '5000', 'x-ratelimit-used': limit.kind === 'primary' ? '5000' : '12', 'x-ratelimit-resource': 'core' });
      if (limit.kind === 'primary') {
        res.set({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + (limit.resetIn ?? 60)) });
        return void res.status(limit.status ?? 403).json({ message: 'API rate limit exceeded for user ID 583231.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api', status: String(limit.status ?? 403) });
      }
      res.set({ 'x-ratelimit-remaining': '4988', 'retry-after': String(limit.retryAfter ?? 60) });
      return void res.status(limit.status ?? 403).json({ message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits', status: String(limit.status ?? 403) });
    }
    res.locals.scopes = token.scope.split(',');
    res.set('x-oauth-scopes', token.scope);
    next();
  }

  user(res: express.Response): void {
    const a = this.options.account;
    res.json({
      login: a.login, id: a.id, node_id: 'MDQ6VXNlcjE=', avatar_url: `https://avatars.githubusercontent.com/u/${a.id}?v=4`, type: 'User',
      site_admin: false, name: a.name, company: null, blog: '', location: null, email: a.email, bio: null, public_repos: 2,
      followers: 0, following: 0, created_at: '2011-01-25T18:44:36Z',
    });
  }

  /** Needs the user:email (or user) scope; GitHub answers 404 otherwise. */
  emails(res: express.Response): void {
    if (!(res.locals.scopes as string[]).some((s) => s === 'user:email' || s === 'user')) {
      return void res.status(404).json({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user', status: '404' });
    }
    res.json(this.options.account.emails);
  }
}
