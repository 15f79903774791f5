/**
 * Runs the LemonLDAP::NG 2.16 portal (Debian packages `lemonldap-ng`, `lemonldap-ng-fastcgi-server`;
 * an OpenID-certified OP written by someone else) on loopback, from a config written to a temp dir:
 * no system config, no service, no web server in front. The packaged portal PSGI app
 * (/usr/share/lemonldap-ng/portal/htdocs/index.psgi) is served by `plackup` (libplack-perl, which
 * lemonldap-ng-fastcgi-server depends on) with Plack's own single-process HTTP server; the portal finds
 * its `lemonldap-ng.ini` through LLNG_DEFAULTCONFFILE, and that ini points at a File configuration
 * backend in the temp dir holding `lmConf-1.json`: the packaged one, with the portal moved to
 * 127.0.0.1, sessions in the temp dir, the OIDC issuer turned on (RS256 key made here) and our clients.
 * Users are those of the Demo backend (dwho/dwho, rtyler/rtyler, msmith/msmith).
 *
 * The end user's side is LL::NG's own HTML: `LlngUser` reads its forms (login, consent, logout
 * confirmation) and posts them back with their hidden fields as a browser would, so LL::NG itself
 * issues every code, token and redirect.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detachedServerDir, requireFiles, spawnOnFreePort } from './apache.js';

export const PLACKUP = '/usr/bin/plackup';
/** The portal as a PSGI app, as the packaged nginx config hands it to llng-fastcgi-server. */
export const PORTAL_PSGI = '/usr/share/lemonldap-ng/portal/htdocs/index.psgi';
export const OIDC_ISSUER = '/usr/share/perl5/Lemonldap/NG/Portal/Issuer/OpenIDConnect.pm';
/** The configuration the package installs (Demo authentication), the base of ours. */
export const PACKAGED_CONF = '/var/lib/lemonldap-ng/conf/lmConf-1.json';
export const TEMPLATES = '/usr/share/lemonldap-ng/portal/templates';
export const INSTALL = 'apt-get install -y lemonldap-ng lemonldap-ng-fastcgi-server';

/** Throws (never skips) with the install line when the LL::NG portal or plackup is missing. */
export function requireLemonldap(): void {
  requireFiles([PLACKUP, PORTAL_PSGI, OIDC_ISSUER, PACKAGED_CONF, TEMPLATES],
    'LemonLDAP::NG (its portal, and its FastCGI server, which brings plackup)', INSTALL);
  try {
    accessSync(PACKAGED_CONF, constants.R_OK);
  } catch {
    throw new Error(`cannot read ${PACKAGED_CONF} (the package makes it root:www-data 0640): run as root or as a member of www-data`);
  }
}

/** The Demo backend's accounts (Lemonldap::NG::Portal::UserDB::Demo): the password is the login. */
export const DEMO_USERS = {
  dwho: { username: 'dwho', password: 'dwho', name: 'Doctor Who', email: 'dwho@badwolf.org' },
  rtyler: { username: 'rtyler', password: 'rtyler', name: 'Rose Tyler', email: 'rtyler@badwolf.org' },
} as const;

export interface LlngClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  /** More `oidcRPMetaDataOptions*` for this client (they win over the ones set here). */
  options?: Record<string, string | number>;
}

export interface LlngOptions {
  clients: LlngClient[];
}

export interface Lemonldap {
  /** `http://127.0.0.1:<port>`; also the OIDC issuer (LL::NG's `iss` is the portal URL without its '/'). */
  origin: string;
  issuer: string;
  /** The portal's log so far (Lemonldap::NG::Common::Logger::Std on stderr; for failure messages). */
  log(): string;
  /** A fresh end user's browser at LL::NG (its own cookies). */
  user(): LlngUser;
  /** Whether LL::NG still stores the SSO session `id` (Apache::Session::File keeps one file per session). */
  hasSession(id: string): boolean;
  stop(): Promise<void>;
}

/** The packaged lmConf-1.json with the keys this test needs changed (key names: Lemonldap::NG::Manager::Build::Attributes). */
function config(dir: string, origin: string, clients: LlngClient[]): Record<string, unknown> {
  const packaged = JSON.parse(readFileSync(PACKAGED_CONF, 'utf8')) as Record<string, unknown>;
  // PEM straight from the generation (no export of the job's KeyObjects afterwards: see ../../support/private-jwk.ts)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const rps = Object.fromEntries(clients.map((c, i) => [`rp${i}`, c]));
  return {
    ...packaged,
    cfgNum: 1,
    cfgAuthor: 'test/interop/support/lemonldap-ng.ts',
    portal: `${origin}/`,
    domain: '127.0.0.1',
    securedCookie: 0,
    // Demo: the built-in Doctor Who accounts
    authentication: 'Demo', userDB: 'Same', passwordDB: 'Demo', registerDB: 'Demo',
    globalStorage: 'Apache::Session::File',
    globalStorageOptions: {
      Directory: `${dir}/sessions`, LockDirectory: `${dir}/sessions/lock`,
      generateModule: 'Lemonldap::NG::Common::Apache::Session::Generate::SHA256',
    },
    persistentStorage: 'Apache::Session::File',
    persistentStorageOptions: { Directory: `${dir}/psessions`, LockDirectory: `${dir}/psessions/lock` },
    localSessionStorage: 'Cache::FileCache',
    localSessionStorageOptions: { namespace: 'lemonldap-ng-sessions', default_expires_in: 600, directory_umask: '007', cache_root: `${dir}/cache`, cache_depth: 3 },
    notification: 0,
    notificationStorageOptions: { dirName: `${dir}/notifications` },
    // the packaged example hosts (auth/manager/test1.example.com) are of no use here
    reloadUrls: {}, exportedHeaders: {}, applicationList: {},
    locationRules: { '127.0.0.1': { default: 'accept' } },
    // the OpenID Connect issuer, at the packaged default path ^/oauth2/
    issuerDBOpenIDConnectActivation: 1,
    oidcServiceMetaDataIssuer: origin,
    oidcServicePrivateKeySig: privateKey,
    oidcServicePublicKeySig: publicKey,
    oidcServiceKeyIdSig: 'interop-rs256',
    oidcRPMetaDataOptions: Object.fromEntries(Object.entries(rps).map(([key, c]) => [key, {
      oidcRPMetaDataOptionsDisplayName: `openid-express RP (${c.clientId})`,
      oidcRPMetaDataOptionsClientID: c.clientId,
      oidcRPMetaDataOptionsClientSecret: c.clientSecret,
      oidcRPMetaDataOptionsRedirectUris: c.redirectUris.join(' '),
      oidcRPMetaDataOptionsPostLogoutRedirectUris: c.postLogoutRedirectUris.join(' '),
      oidcRPMetaDataOptionsIDTokenSignAlg: 'RS256', // LL::NG's default is HS512
      // no consent page (then LL::NG honours offline_access without prompt=consent, OIDC Core 11)
      oidcRPMetaDataOptionsBypassConsent: 1,
      oidcRPMetaDataOptionsAllowOffline: 1, // offline_access gives a refresh token (an "offline session")
      oidcRPMetaDataOptionsRequirePKCE: 1,
      oidcRPMetaDataOptionsLogoutBypassConfirm: 0, // the user confirms the RP-initiated logout
      ...c.options,
    }])),
    oidcRPMetaDataExportedVars: Object.fromEntries(Object.keys(rps).map((key) => [key, { email: 'mail', name: 'cn', preferred_username: 'uid' }])),
  };
}

function ini(dir: string): string {
  return `; written by test/interop/support/lemonldap-ng.ts
[all]
logLevel = ${process.env.INTEROP_LLNG_LOG ?? 'notice'}
logger = Lemonldap::NG::Common::Logger::Std
userLogger = Lemonldap::NG::Common::Logger::Std
checkTime = 1

[configuration]
type = File
dirName = ${dir}/conf

[portal]
staticPrefix = /static
templateDir = ${TEMPLATES}
languages = en

[handler]
status = 0
`;
}

/** A cookie jar for one origin: name=value pairs, as a browser would send them back (domain and path ignored). */
class Jar {
  private cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = /;\s*max-age=0/i.test(line) || /;\s*expires=[^;]*\b(19\d\d|20[01]\d)\b/i.test(line);
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get(name: string): string | undefined {
    return this.cookies.get(name);
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#x2F': '/', '#47': '/' };
const unescape = (s: string) => s.replace(/&(#?\w+);/g, (m, e: string) => ENTITIES[e] ?? m);
const attr = (tag: string, name: string) => {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? unescape(m[1] ?? m[2]) : undefined;
};

/** The first form of a portal page: where it posts and its named fields (hidden ones with their values). */
export interface PortalForm {
  action: URL;
  method: string;
  fields: URLSearchParams;
  /** Names of the non-hidden inputs (e.g. user, password). */
  visible: string[];
}

export function readForm(html: string, page: URL): PortalForm | undefined {
  const form = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const open = /<form\b[^>]*>/i.exec(form[0])![0];
  const action = attr(open, 'action') ?? '';
  const fields = new URLSearchParams();
  const visible: string[] = [];
  for (const [input] of form[1].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, 'name');
    if (!name) continue;
    const type = (attr(input, 'type') ?? 'text').toLowerCase();
    if (type === 'hidden') fields.append(name, attr(input, 'value') ?? '');
    else if (type !== 'checkbox' && type !== 'submit') visible.push(name);
  }
  const target = new URL(action === '' || action === '#' ? page.href : action, page);
  target.hash = '';
  return { action: target, method: (attr(open, 'method') ?? 'get').toUpperCase(), fields, visible };
}

/** What LL::NG showed the user on the way: 'login' (the password form), 'consent', 'logout' (the confirmation). */
export type PortalStep = 'login' | 'consent' | 'logout';

/**
 * One end user's browser at LL::NG: follows LL::NG's redirects and answers its pages the way a user
 * does (fills user and password in the login form, presses "Accept" on the confirmation pages, i.e.
 * posts the form with its hidden fields, `confirm` included), until LL::NG redirects away from itself.
 */
export class LlngUser {
  private jar = new Jar();
  /** Every request this user made, `METHOD URL` (to show that a later step needed no trip here). */
  readonly requests: string[] = [];
  constructor(private readonly origin: string) {}

  async fetch(url: string | URL, init: { method?: string; form?: URLSearchParams } = {}): Promise<Response> {
    const headers: Record<string, string> = { cookie: this.jar.header(), accept: 'text/html' };
    if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const method = init.method ?? (init.form ? 'POST' : 'GET');
    this.requests.push(`${method} ${url}`);
    const res = await fetch(url, { method, headers, body: init.form?.toString(), redirect: 'manual' });
    this.jar.take(res);
    return res;
  }

  /**
   * Walks LL::NG from `url` (an authorization or end-session URL) until it redirects elsewhere
   * (or, with `followOwnRedirects: false`, anywhere): returns that URL (not fetched) and the pages
   * shown on the way.
   */
  async walk(url: string, account?: { username: string; password: string }, o: { followOwnRedirects?: boolean } = {}): Promise<{ location: URL; steps: PortalStep[] }> {
    const steps: PortalStep[] = [];
    let res = await this.fetch(url);
    let page = new URL(url);
    for (let hop = 0; hop < 10; hop++) {
      if (res.status === 302 || res.status === 303) {
        const location = new URL(res.headers.get('location')!, page);
        if (location.origin !== this.origin || o.followOwnRedirects === false) return { location, steps };
        page = location;
        res = await this.fetch(location);
        continue;
      }
      const html = await res.text();
      const form = res.status === 200 ? readForm(html, page) : undefined;
      if (!form) throw new Error(`LL::NG answered ${res.status} at ${page.href} with no form to go on:\n${html.slice(0, 2000)}`);
      if (form.visible.includes('password')) {
        if (!account) throw new Error(`LL::NG asked for a password at ${page.href}`);
        if (steps.includes('login')) throw new Error(`LL::NG refused ${account.username}'s password: ${/<div[^>]*alert[^>]*>([\s\S]*?)<\/div>/i.exec(html)?.[1]?.replace(/<[^>]+>/g, '').trim()}`);
        steps.push('login');
        form.fields.set('user', account.username);
        form.fields.set('password', account.password);
      } else if (form.fields.has('confirm')) {
        steps.push(/oidc_logout_message/.test(html) ? 'logout' : 'consent');
      } else {
        throw new Error(`unexpected LL::NG page at ${page.href}:\n${html.slice(0, 2000)}`);
      }
      page = form.action;
      res = form.method === 'POST' ? await this.fetch(form.action, { form: form.fields }) : await this.fetch(`${form.action.origin}${form.action.pathname}?${form.fields}`);
    }
    throw new Error(`LL::NG kept the browser for 10 hops from ${url}`);
  }

  /** The value of LL::NG's SSO cookie `lemonldap` (the id of the user's session at LL::NG), if the browser holds it. */
  ssoSession(): string | undefined {
    return this.jar.get('lemonldap');
  }
}

/** Starts the portal on a free loopback port; `stop()` kills its process group and removes the temp dir. */
export async function startLemonldap(o: LlngOptions): Promise<Lemonldap> {
  requireLemonldap();
  const { dir, started, stop } = detachedServerDir('interop-lemonldap-');
  for (const d of ['conf', 'sessions/lock', 'psessions/lock', 'cache', 'notifications']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'lemonldap-ng.ini'), ini(dir));
  const logFile = join(dir, 'portal.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  try {
    const port = await spawnOnFreePort('plackup (LL::NG portal)', 15_000, (at) => {
      writeFileSync(join(dir, 'conf', 'lmConf-1.json'), JSON.stringify(config(dir, `http://127.0.0.1:${at}`, o.clients), null, 1));
      const out = openSync(logFile, 'a');
      const child = spawn(PLACKUP, ['-s', 'HTTP::Server::PSGI', '--host', '127.0.0.1', '--port', String(at), '-E', 'deployment', PORTAL_PSGI], {
        detached: true, cwd: dir, stdio: ['ignore', out, out],
        env: { ...process.env, LLNG_DEFAULTCONFFILE: join(dir, 'lemonldap-ng.ini') },
      });
      closeSync(out);
      return child;
    }, started);
    const origin = `http://127.0.0.1:${port}`;
    // the portal reads its configuration on the first request: make it here, and fail with its log
    const discovery = await fetch(`${origin}/.well-known/openid-configuration`);
    if (discovery.status !== 200) throw new Error(`LL::NG's discovery document answered ${discovery.status}: ${(await discovery.text()).slice(0, 1000)}`);
    const hasSession = (id: string) => /^[\w-]+$/.test(id) && existsSync(join(dir, 'sessions', id));
    return { origin, issuer: origin, log, user: () => new LlngUser(origin), hasSession, stop };
  } catch (err) {
    const text = log();
    await stop();
    throw new Error(`${(err as Error).message}${text ? `\n--- LL::NG portal log (last lines) ---\n${text.split('\n').slice(-30).join('\n')}` : ''}`);
  }
}
