/**
 * Runs Apache httpd with mod_oauth2 (ZmartZone's OAuth 2.0 resource server module, Debian package
 * `libapache2-mod-oauth2`) on loopback, from a config written to a temp dir: `apache2 -X -f <conf>`,
 * one process, its own group (the same way as support/apache.ts runs mod_auth_openidc). Each
 * protected path checks the bearer token its own way and, when the token passes, is proxied to a
 * backend that sees the token's claims as `X-Claim-<name>` request headers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APACHE, apacheBase, detachedServerDir, MODULES, requireFiles, spawnOnFreePort } from './apache.js';

export const MOD_OAUTH2 = `${MODULES}/mod_oauth2.so`;
export const INSTALL = 'apt-get install -y apache2 libapache2-mod-oauth2';
/** Prefix of the request headers in which mod_oauth2 hands the token's claims to the backend. */
export const CLAIM_HEADER_PREFIX = 'X-Claim-';
/** The request header that carries the remote user (the token's `sub`) to the backend. */
export const USER_HEADER = 'X-Remote-User';

/** Throws (never skips) with the install line when Apache or the module is missing. */
export function requireModOauth2(): void {
  requireFiles([APACHE, MOD_OAUTH2], 'them', INSTALL);
}

export interface ProtectedPath {
  /** The URL path prefix, e.g. '/api/'; proxied to the same path at the backend. */
  path: string;
  /** The arguments of `OAuth2TokenVerify`: type, value and (query-encoded) options. */
  verify: [type: string, value: string, options: string];
  /** `Require oauth2_claim` specifications (`name:value`), all of which must match (besides `Require valid-user`). */
  claims: string[];
}

export interface ModOauth2Options {
  /** Origin of the API the protected paths are proxied to. */
  backend: string;
  paths: ProtectedPath[];
}

// besides apacheBase()'s core modules: ProxyPass is proxy's
const LOADED = [
  ['proxy_module', 'mod_proxy.so'],
  ['proxy_http_module', 'mod_proxy_http.so'],
  ['oauth2_module', 'mod_oauth2.so'],
];

const quote = (s: string) => {
  if (/["\s]/.test(s)) throw new Error(`no quotes or spaces in a config argument: ${s}`);
  return `"${s}"`;
};

/** The httpd config: each path needs a bearer token that `OAuth2TokenVerify` accepts and that has the required claims. */
export function modOauth2Conf(dir: string, port: number, o: ModOauth2Options): string {
  const location = (p: ProtectedPath) => [
    `<Location ${p.path}>`,
    '  AuthType oauth2',
    `  AuthName ${quote(p.path.replace(/\//g, '') || 'root')}`,
    `  OAuth2TokenVerify ${p.verify.map(quote).join(' ')}`,
    `  OAuth2TargetPass ${quote(`prefix=${CLAIM_HEADER_PREFIX}&authn_header=${USER_HEADER}`)}`,
    '  <RequireAll>',
    '    Require valid-user',
    ...p.claims.map((c) => `    Require oauth2_claim ${quote(c)}`),
    '  </RequireAll>',
    // a failed `Require oauth2_claim` leaves its WWW-Authenticate in an environment variable; this
    // line (the recipe of the module's ChangeLog, release 3.2.2) sends it with the 401
    `  Header always append WWW-Authenticate %{OAUTH2_BEARER_SCOPE_ERROR}e "expr=(%{REQUEST_STATUS} == 401) && (-n reqenv('OAUTH2_BEARER_SCOPE_ERROR'))"`,
    `  ProxyPass ${quote(`${o.backend}${p.path}`)}`,
    '</Location>',
  ];
  return [
    ...apacheBase(dir, port, 'oauth2', LOADED),
    `DocumentRoot "${dir}"`,
    '<Directory />',
    '  Require all denied',
    '</Directory>',
    ...o.paths.flatMap(location),
    '',
  ].join('\n');
}

export interface ModOauth2 {
  origin: string;
  /** The config it runs with (to show in failures). */
  conf: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Starts httpd in the foreground (-X) on a free port; `stop()` kills its process group and removes the temp dir. */
export async function startModOauth2(o: ModOauth2Options): Promise<ModOauth2> {
  requireModOauth2();
  const { dir, started, stop } = detachedServerDir('interop-mod-oauth2-');
  chmodSync(dir, 0o755); // httpd running as nobody
  const confFile = join(dir, 'httpd.conf');
  const errorLog = () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');

  try {
    const check = (port: number) => {
      writeFileSync(confFile, modOauth2Conf(dir, port, o));
      const t = spawnSync(APACHE, ['-t', '-f', confFile], { encoding: 'utf8' });
      if (t.status !== 0) throw new Error(`apache2 -t refused the config:\n${t.stderr}${t.stdout}\n${readFileSync(confFile, 'utf8')}`);
    };
    const port = await spawnOnFreePort('apache2 (mod_oauth2)', 10_000, (at) => {
      check(at);
      return spawn(APACHE, ['-X', '-f', confFile], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    }, started);
    return { origin: `http://127.0.0.1:${port}`, conf: readFileSync(confFile, 'utf8'), errorLog, stop };
  } catch (err) {
    const log = errorLog();
    await stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
}
