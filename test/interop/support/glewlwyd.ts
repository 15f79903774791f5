/**
 * Runs Glewlwyd (Debian package `glewlwyd`, an OpenID-certified OP written by someone else) on
 * loopback, from a config and a SQLite database written to a temp dir: no system config, no service,
 * no web server in front. Configured through its own admin REST API (the packaged schema creates the
 * user `admin` / `password`): an OIDC plugin instance signing with an RS256 key made here, a user, a
 * confidential client (client_secret_basic).
 *
 * The end-user side of Glewlwyd is a single-page app (login.html) that only calls Glewlwyd's REST API;
 * `GlewlwydUser` makes the same calls the page makes (sign in, grant the scopes, "continue"; on logout
 * list the session, end it, sign out), so Glewlwyd itself issues every code, token and redirect.
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detachedServerDir, requireFiles, spawnOnFreePort } from './apache.js';

export const GLEWLWYD = '/usr/bin/glewlwyd';
export const MODULES = '/usr/lib/glewlwyd';
/** The SQLite schema + default data the package installs for dbconfig (not under /usr/share/doc, which slim images drop). */
export const SCHEMA = '/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3';
/** `glewlwyd` depends on the `sqlite3` package, so the CLI comes with it. */
export const SQLITE3 = '/usr/bin/sqlite3';
export const INSTALL = 'apt-get install -y glewlwyd';
/** Name of the OIDC plugin instance: its endpoints live under /api/<name>. */
export const PLUGIN = 'oidc';

/** Throws (never skips) with the install line when Glewlwyd, its modules, its schema or sqlite3 are missing. */
export function requireGlewlwyd(): void {
  requireFiles([GLEWLWYD, `${MODULES}/plugin/libprotocol_oidc.so`, `${MODULES}/user/libusermoddatabase.so`, SCHEMA, SQLITE3],
    'Glewlwyd (Debian package glewlwyd, which brings sqlite3)', INSTALL);
}

export interface GlewlwydUserAccount {
  username: string;
  password: string;
  name: string;
  email: string;
}

export interface GlewlwydClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  /** Default ['client_secret_basic']. */
  tokenEndpointAuthMethods?: string[];
  /** Back-channel logout URI (with backchannel_logout_session_required). */
  backchannelLogoutUri?: string;
}

export interface GlewlwydOptions {
  /** Confidential clients, with the code and refresh_token grants. */
  clients: GlewlwydClient[];
  user: GlewlwydUserAccount;
}

export interface Glewlwyd {
  origin: string;
  /** `${origin}/api/oidc`, what the plugin is told to put in `iss` (and where its discovery document is). */
  issuer: string;
  /** Glewlwyd's log so far (for failure messages). */
  log(): string;
  /** A Glewlwyd admin API call, signed in as `admin`. */
  admin(path: string, init?: { method?: string; json?: unknown }): Promise<Response>;
  /** A fresh end user at Glewlwyd (its own cookies). */
  user(): GlewlwydUser;
  stop(): Promise<void>;
}

const ADMIN = { username: 'admin', password: 'password' }; // from the packaged schema

/** glewlwyd.conf (libconfig); the keys are those of the packaged /etc/glewlwyd/glewlwyd.conf. */
function config(dir: string, port: number): string {
  return `# written by test/interop/support/glewlwyd.ts
port=${port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:${port}"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="${process.env.INTEROP_GLEWLWYD_LOG ?? 'INFO'}"
log_file="${dir}/glewlwyd.log"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
plugin_api_run_enabled=""
add_x_frame_option_header_deny=true
max_post_size=16778240
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="${MODULES}/user"
client_module_path="${MODULES}/client"
user_auth_scheme_module_path="${MODULES}/scheme"
plugin_module_path="${MODULES}/plugin"
use_secure_connection=false
# without these two Glewlwyd 2.7.5 refuses to start ("secure connection is active but certificate is
# not valid") even with use_secure_connection=false; they are never read
secure_connection_key_file="${dir}/unused.key"
secure_connection_pem_file="${dir}/unused.pem"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${dir}/glewlwyd.db"; };
static_files_mime_types = (
  { extension = ".html"; mime_type = "text/html"; },
  { extension = ".js"; mime_type = "application/javascript"; },
  { extension = ".json"; mime_type = "application/json"; },
  { extension = ".css"; mime_type = "text/css"; }
);
`;
}

/** The OIDC plugin instance (parameter names: Glewlwyd's docs/OIDC.md and its admin app's defaults). */
function oidcPlugin(issuer: string): Record<string, unknown> {
  // PEM straight from the generation (no export of the job's KeyObjects afterwards: see ../../support/private-jwk.ts)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    module: 'oidc', name: PLUGIN, display_name: 'OpenID Connect', enabled: true,
    parameters: {
      iss: issuer,
      'jwt-type': 'rsa', 'jwt-key-size': '256', // RS256
      key: privateKey,
      cert: publicKey,
      'jwks-show': true,
      'access-token-duration': 3600, 'refresh-token-duration': 1209600, 'code-duration': 600, 'refresh-token-rolling': true,
      'allow-non-oidc': false,
      'auth-type-code-enabled': true, 'auth-type-refresh-enabled': true, 'auth-type-id-token-enabled': true,
      'auth-type-token-enabled': false, 'auth-type-none-enabled': false, 'auth-type-password-enabled': false,
      'auth-type-client-enabled': false, 'auth-type-device-enabled': false,
      'subject-type': 'public',
      'name-claim': 'mandatory', 'email-claim': 'mandatory',
      'allowed-scope': ['openid', 'email'],
      'pkce-allowed': true, 'pkce-method-plain-allowed': false,
      'request-parameter-allow': false,
      // RP-initiated logout: end_session_endpoint (and the `sid` claim)
      'session-management-allowed': true, 'session-cookie-name': 'GLEWLWYD2_OIDC_SID', 'session-cookie-expiration': 3600,
      'back-channel-logout-allowed': true,
    },
  };
}

/** A cookie jar for one origin: name=value pairs, as a browser would send them back. */
class Jar {
  private cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /;\s*max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * One end user's browser at Glewlwyd, making the API calls Glewlwyd's login page (login.html, a
 * React app) makes: `POST /api/auth/` to sign in, `PUT /api/auth/grant/<client>` for the consent
 * screen's "Grant", then the page's "Continue" (the authorization URL again, with `g_continue`).
 */
export class GlewlwydUser {
  private jar = new Jar();
  /** Every request this user made, `METHOD URL` (to show that a later step needed no trip here). */
  readonly requests: string[] = [];
  constructor(private readonly origin: string) {}

  async fetch(url: string | URL, init: { method?: string; json?: unknown } = {}): Promise<Response> {
    const headers: Record<string, string> = { cookie: this.jar.header() };
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    const method = init.method ?? (init.json === undefined ? 'GET' : 'POST');
    this.requests.push(`${method} ${url}`);
    const res = await fetch(url, { method, headers, body: init.json === undefined ? undefined : JSON.stringify(init.json), redirect: 'manual' });
    this.jar.take(res);
    return res;
  }

  async signIn(account: { username: string; password: string }): Promise<void> {
    const res = await this.fetch(`${this.origin}/api/auth/`, { json: account });
    if (res.status !== 200) throw new Error(`Glewlwyd refused ${account.username}'s password: ${res.status} ${await res.text()}`);
  }

  /**
   * Follows an authorization URL (the RP's redirect) as the user: Glewlwyd sends an unknown user to
   * its login page; the user signs in, grants the scopes asked, and continues. Returns where Glewlwyd
   * finally redirects (the RP's callback URL with code and state, or an error), not yet fetched.
   */
  async authorize(authorizationUrl: string, account: { username: string; password: string }): Promise<URL> {
    const first = await this.fetch(authorizationUrl);
    if (first.status !== 302) throw new Error(`authorization endpoint answered ${first.status}: ${await first.text()}`);
    const loginPage = new URL(first.headers.get('location')!, this.origin);
    if (loginPage.pathname !== '/login.html') return loginPage; // an error sent straight back to the client
    const callback = loginPage.searchParams.get('callback_url');
    const clientId = loginPage.searchParams.get('client_id');
    const scope = loginPage.searchParams.get('scope');
    if (!callback || !clientId || !scope) throw new Error(`unexpected login page URL ${loginPage.href}`);
    await this.signIn(account);
    const grant = await this.fetch(`${this.origin}/api/auth/grant/${encodeURIComponent(clientId)}`, { method: 'PUT', json: { scope } });
    if (grant.status !== 200) throw new Error(`grant answered ${grant.status}: ${await grant.text()}`);
    const done = await this.fetch(`${callback}${callback.includes('?') ? '&' : '?'}g_continue`);
    if (done.status !== 302) throw new Error(`authorization (continued) answered ${done.status}: ${await done.text()}`);
    return new URL(done.headers.get('location')!);
  }

  /**
   * Follows an end-session URL (the RP's logout redirect): Glewlwyd sends the browser to its login page
   * with `prompt=end_session`; on "Logout" the page ends that OIDC session (`DELETE /api/oidc/session/<sid>`,
   * which also revokes the session's tokens and sends the back-channel logout tokens), signs the user
   * out (`DELETE /api/auth/`) and goes to `callback_url` (the post_logout_redirect_uri with the RP's
   * state). Glewlwyd puts `post_redirect_to` on the page URL only when it accepted that URI (registered,
   * with a valid id_token_hint); without it the page stays at Glewlwyd and `back` is null. (The page's
   * front-channel logout iframes are left out: no client here registers one.)
   */
  async endSession(endSessionUrl: string): Promise<{ page: URL; back: URL | null }> {
    const first = await this.fetch(endSessionUrl);
    if (first.status !== 302) throw new Error(`end_session answered ${first.status}: ${await first.text()}`);
    const page = new URL(first.headers.get('location')!, this.origin);
    const sid = page.searchParams.get('sid');
    const plugin = page.searchParams.get('plugin');
    if (page.searchParams.get('prompt') !== 'end_session' || !sid || !plugin) throw new Error(`unexpected end-session page ${page.href}`);
    const ended = await this.fetch(`${this.origin}/api/${plugin}/session/${encodeURIComponent(sid)}`, { method: 'DELETE' });
    if (ended.status !== 200) throw new Error(`ending OIDC session ${sid} answered ${ended.status}: ${await ended.text()}`);
    const signedOut = await this.fetch(`${this.origin}/api/auth/`, { method: 'DELETE' });
    if (signedOut.status !== 200) throw new Error(`sign-out answered ${signedOut.status}`);
    const callback = page.searchParams.get('callback_url');
    return { page, back: callback && page.searchParams.get('post_redirect_to') ? new URL(callback) : null };
  }

  /** The users Glewlwyd's session cookie holds (what its login page shows: GET /api/profile_list; 401 = none). */
  async signedIn(): Promise<string[]> {
    const res = await this.fetch(`${this.origin}/api/profile_list`);
    if (res.status === 401) return [];
    if (res.status !== 200) throw new Error(`profile_list answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as Array<{ username: string }>).map((u) => u.username);
  }
}

/** Starts Glewlwyd on a free loopback port and configures it; `stop()` kills it and removes the temp dir. */
export async function startGlewlwyd(o: GlewlwydOptions): Promise<Glewlwyd> {
  requireGlewlwyd();
  const { dir, started, stop } = detachedServerDir('interop-glewlwyd-');
  const logFile = join(dir, 'glewlwyd.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  try {
    // the packaged schema and default data (admin user, database user and client backends), in one
    // transaction without fsync: 60 ms instead of 2 s
    const schema = `PRAGMA journal_mode=OFF;\nPRAGMA synchronous=OFF;\nBEGIN;\n${readFileSync(SCHEMA, 'utf8')}\nCOMMIT;\n`;
    const init = spawnSync(SQLITE3, ['-bail', join(dir, 'glewlwyd.db')], { input: schema, encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`sqlite3 could not create the database from ${SCHEMA}:\n${init.stderr}`);

    const conf = join(dir, 'glewlwyd.conf');
    const port = await spawnOnFreePort('glewlwyd', 10_000, (at) => {
      writeFileSync(conf, config(dir, at));
      return spawn(GLEWLWYD, ['-c', conf], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    }, started);
    const origin = `http://127.0.0.1:${port}`;
    const issuer = `${origin}/api/${PLUGIN}`;

    const adminUser = new GlewlwydUser(origin);
    await adminUser.signIn(ADMIN);
    const admin = async (path: string, init: { method?: string; json?: unknown } = {}) => adminUser.fetch(`${origin}/api${path}`, init);
    const must = async (what: string, res: Promise<Response>) => {
      const r = await res;
      if (r.status !== 200) throw new Error(`Glewlwyd admin API: ${what} answered ${r.status}: ${await r.text()}`);
      return r;
    };

    // the client backend stores only the properties its data-format lists; post_logout_redirect_uris
    // (what the OIDC plugin checks at end_session) is not among the packaged ones
    const clientModule = await (await must('GET client module', admin('/mod/client/database'))).json() as { parameters: { 'data-format': Record<string, unknown> } };
    clientModule.parameters['data-format'].post_logout_redirect_uris = { multiple: true, read: true, write: true };
    await must('PUT client module', admin('/mod/client/database', { method: 'PUT', json: clientModule }));
    await must('reset client module', admin('/mod/client/database/reset', { method: 'PUT' }));

    await must('POST scope email', admin('/scope/', { json: { name: 'email', display_name: 'E-mail', description: 'Your e-mail address', password_required: true, password_max_age: 0, scheme: {} } }));
    await must('POST plugin oidc', admin('/mod/plugin/', { json: oidcPlugin(issuer) }));
    await must('POST user', admin('/user/', { json: { ...o.user, scope: ['openid', 'email'], enabled: true } }));
    for (const c of o.clients) {
      await must(`POST client ${c.clientId}`, admin('/client/', {
        json: {
          client_id: c.clientId, name: `openid-express RP (${c.clientId})`, enabled: true, confidential: true,
          password: c.clientSecret, // a confidential client's secret (Glewlwyd keeps a hash of it)
          redirect_uri: c.redirectUris, post_logout_redirect_uris: c.postLogoutRedirectUris,
          authorization_type: ['code', 'refresh_token'], token_endpoint_auth_method: c.tokenEndpointAuthMethods ?? ['client_secret_basic'], scope: [],
          ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: 'yes' } : {}),
        },
      }));
    }

    return { origin, issuer, log, admin, user: () => new GlewlwydUser(origin), stop };
  } catch (err) {
    const text = log();
    await stop();
    throw new Error(`${(err as Error).message}${text ? `\n--- glewlwyd.log (last lines) ---\n${text.split('\n').slice(-30).join('\n')}` : ''}`);
  }
}
