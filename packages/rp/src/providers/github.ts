/**
 * `github()`: GitHub (or GitHub Enterprise Server) as an OAuth 2.0 server. Its quirks live here:
 * static endpoints, urlencoded token answers, errors reported with HTTP 200, the user from
 * `GET /user` (+ `/user/emails` when the email is private), the numeric `id` as `sub`.
 */
import type { CustomFetch } from 'openid-client';
import type { ProviderConfig } from '../options.js';
import { asString, getJson, oauth2, requireString, requireUrl, userEndpointError } from './oauth2.js';

/** Options of {@link github}. */
export interface GitHubOptions {
  clientId: string;
  clientSecret: string;
  /** Space-separated scopes. Default: "read:user user:email". */
  scope?: string | undefined;
  /** GitHub Enterprise Server origin, e.g. "https://github.example.com". Default: https://github.com. */
  baseURL?: string | undefined;
  /** REST API root. Default: https://api.github.com, or `${baseURL}/api/v3` with a `baseURL`. */
  apiURL?: string | undefined;
  /** Label for login buttons. Default: "GitHub". */
  label?: string | undefined;
  /** Allow http:// endpoints (tests against loopback only). */
  allowInsecureRequests?: boolean | undefined;
}

/** The parts of GitHub's `GET /user` answer this preset reads. */
export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  email: string | null;
  avatar_url: string;
  [key: string]: unknown;
}

/** One entry of GitHub's `GET /user/emails` answer. */
interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

// GitHub refuses API requests without a User-Agent; the version header pins the REST API.
const API_HEADERS = {
  accept: 'application/vnd.github+json',
  'user-agent': 'openid-express',
  'x-github-api-version': '2022-11-28',
};

/**
 * The GitHub provider entry (OAuth 2.0, no OpenID Connect: no ID token, no discovery, local logout).
 *
 * @example
 * ```ts
 * rp({ baseURL, providers: {
 *   github: github({ clientId: process.env.GITHUB_ID!, clientSecret: process.env.GITHUB_SECRET! }),
 *   ghes: github({ clientId, clientSecret, baseURL: 'https://github.example.com' }),
 * } });
 * ```
 */
export function github(options: GitHubOptions): ProviderConfig {
  const where = 'github()';
  requireString(where, options, 'clientId');
  requireString(where, options, 'clientSecret');
  if (options.baseURL !== undefined) requireUrl(where, options, 'baseURL');
  if (options.apiURL !== undefined) requireUrl(where, options, 'apiURL');
  const baseURL = (options.baseURL ?? 'https://github.com').replace(/\/+$/, '');
  const apiURL = (options.apiURL ?? (options.baseURL ? `${baseURL}/api/v3` : 'https://api.github.com')).replace(/\/+$/, '');
  const tokenEndpoint = `${baseURL}/login/oauth/access_token`;
  return oauth2({
    label: options.label ?? 'GitHub',
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    // GitHub documents client_id + client_secret as body parameters of the token request.
    tokenEndpointAuthMethod: 'client_secret_post',
    issuer: baseURL,
    authorizationEndpoint: `${baseURL}/login/oauth/authorize`,
    tokenEndpoint,
    userinfoEndpoint: `${apiURL}/user`,
    scope: options.scope ?? 'read:user user:email',
    fetchUser: (accessToken, fetchImpl) => fetchGitHubUser(apiURL, accessToken, fetchImpl),
    profile: (claims) => ({
      sub: asString(claims.sub),
      name: asString(claims.name) ?? asString(claims.login),
      email: asString(claims.email),
      emailVerified: typeof claims.email_verified === 'boolean' ? claims.email_verified : undefined,
      picture: asString(claims.avatar_url),
    }),
    customFetch: githubTokenFetch(tokenEndpoint),
    allowInsecureRequests: options.allowInsecureRequests,
  });
}

/** `GET /user`, then `GET /user/emails` when the profile email is private (null). */
async function fetchGitHubUser(apiURL: string, accessToken: string, fetchImpl: typeof fetch): Promise<Record<string, unknown>> {
  const user = (await getJson(fetchImpl, `${apiURL}/user`, accessToken, API_HEADERS)) as GitHubUser;
  if (typeof user.id !== 'number' && typeof user.id !== 'string') {
    throw new Error('GitHub /user answer has no "id"');
  }
  const claims: Record<string, unknown> = { ...user, sub: String(user.id) };
  if (!user.email) {
    const primary = await primaryVerifiedEmail(apiURL, accessToken, fetchImpl);
    if (primary) Object.assign(claims, { email: primary, email_verified: true });
  }
  return claims;
}

/** The primary verified address from `/user/emails`, or undefined (e.g. without the user:email scope). */
async function primaryVerifiedEmail(apiURL: string, accessToken: string, fetchImpl: typeof fetch): Promise<string | undefined> {
  const response = await fetchImpl(`${apiURL}/user/emails`, {
    headers: { ...API_HEADERS, authorization: `Bearer ${accessToken}` },
    redirect: 'manual',
  });
  // a rate limit passes: a 503 and the login kept, not a user signed in without the address
  if (response.status === 429 || response.status === 403) {
    const failure = userEndpointError(`${apiURL}/user/emails`, response);
    if (failure.status === 429) throw failure;
  }
  if (!response.ok) return undefined;
  const emails: unknown = await response.json().catch(() => undefined);
  if (!Array.isArray(emails)) return undefined;
  const found = (emails as GitHubEmail[]).find((e) => e && e.primary === true && e.verified === true);
  return typeof found?.email === 'string' ? found.email : undefined;
}

/**
 * Wraps requests to GitHub's token endpoint: asks for JSON, turns an urlencoded answer into JSON,
 * and an HTTP 200 carrying `error` into the HTTP 400 OAuth error it means (RFC 6749 §5.2), with
 * GitHub's own error names (`bad_refresh_token` …) as the standard ones (`invalid_grant` …).
 *
 * @example
 * ```ts
 * const customFetch = githubTokenFetch('https://github.com/login/oauth/access_token');
 * ```
 */
export function githubTokenFetch(tokenEndpoint: string, fetchImpl: typeof fetch = fetch): CustomFetch {
  return async (url, init) => {
    if (url.split('?')[0] !== tokenEndpoint) return fetchImpl(url, init as RequestInit);
    const headers = { ...init.headers };
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'accept')) headers.accept = 'application/json';
    const response = await fetchImpl(url, { ...init, headers } as RequestInit);
    if (response.status !== 200) return response;
    const body = await parseTokenBody(response);
    if (!body) return new Response('{"error":"invalid_response"}', { status: 502, headers: { 'content-type': 'application/json' } });
    // GitHub returns scopes comma-separated ("repo,gist"); RFC 6749 §3.3 says space-separated.
    if (typeof body.scope === 'string') body.scope = body.scope.split(',').map((s) => s.trim()).filter(Boolean).join(' ');
    const status = typeof body.error === 'string' ? 400 : 200;
    const standard = typeof body.error === 'string' ? GITHUB_ERRORS[body.error] : undefined;
    if (standard) { // GitHub's own names for the RFC 6749 errors that end a login; its name stays in the description
      body.error_description = `${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}`;
      body.error = standard;
    }
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
  };
}

/** GitHub's token endpoint error names and the RFC 6749 §5.2 error each one is. */
const GITHUB_ERRORS: Record<string, string> = {
  bad_refresh_token: 'invalid_grant', bad_verification_code: 'invalid_grant', redirect_uri_mismatch: 'invalid_grant', incorrect_client_credentials: 'invalid_client',
};

/** A token endpoint body as an object, whether JSON or application/x-www-form-urlencoded. */
async function parseTokenBody(response: Response): Promise<Record<string, unknown> | undefined> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('application/x-www-form-urlencoded')) {
    const body: Record<string, unknown> = Object.fromEntries(new URLSearchParams(text));
    for (const key of ['expires_in', 'refresh_token_expires_in']) {
      if (typeof body[key] === 'string' && /^\d+$/.test(body[key] as string)) body[key] = Number(body[key]);
    }
    return body;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
