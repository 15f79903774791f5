/**
 * Runs Apache httpd with mod_auth_openidc as a Relying Party on loopback, from a config written to
 * a temp dir (no system config, no service): `apache2 -X -f <conf>`, one process, its own group.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenerOf, onFreePort, portTaken } from '../../support/ports.js';

export const APACHE = '/usr/sbin/apache2';
export const MODULES = '/usr/lib/apache2/modules';
export const INSTALL = 'apt-get install -y apache2 libapache2-mod-auth-openidc';

/** Throws (never skips) when any of `files` is missing: which ones, and the line that installs `what`. */
export function requireFiles(files: string[], what: string, install: string): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) {
    throw new Error(`missing ${missing.join(', ')}: install ${what} with\n  apt-get update && ${install}`);
  }
}

/** Throws (never skips) with the install line when Apache or the module is missing. */
export function requireApache(): void {
  requireFiles([APACHE, `${MODULES}/mod_auth_openidc.so`], 'them', INSTALL);
}

export interface ApacheRp {
  origin: string;
  /** The PKCE directive line used ('' = the module's default). */
  pkceDirective: string;
  /** With `metadataDir: true`: the OIDCMetadataDir, where the module keeps what it discovered and registered. */
  metadataDir?: string;
  errorLog(): string;
  stop(): Promise<void>;
}

interface ApacheRpCommon {
  port: number;
  /** Extra mod_auth_openidc directives, e.g. 'OIDCPKCEMethod S256'. */
  directives?: string[];
}

/** One static provider (OIDCProviderMetadataURL) and its client. */
interface StaticProvider { metadataUrl: string; clientId: string; clientSecret: string; metadataDir?: undefined }

/**
 * The module's multi-provider mode: OIDCMetadataDir (a dir of its own, writable by httpd) and no
 * static provider; OPs are found by its discovery page and registered with dynamically.
 */
interface MetadataDirProviders { metadataDir: true }

export type ApacheRpOptions = ApacheRpCommon & (StaticProvider | MetadataDirProviders);

// what every config here loads, the minimal set found by trying: AuthType is authn_core's,
// "valid-user" authz_user's, Header headers'
const CORE_MODULES = [
  ['mpm_event_module', 'mod_mpm_event.so'],
  ['authn_core_module', 'mod_authn_core.so'],
  ['authz_core_module', 'mod_authz_core.so'],
  ['authz_user_module', 'mod_authz_user.so'],
  ['headers_module', 'mod_headers.so'],
];

/**
 * The lines every httpd config here starts with: its files under `dir`, loopback `port`, `error.log`
 * (`logModule` at INTEROP_APACHE_LOG, default info), nobody as its user when run as root, the core
 * modules and `modules` ([name, file]) loaded.
 */
export function apacheBase(dir: string, port: number, logModule: string, modules: string[][]): string[] {
  // as root httpd refuses to serve unless it drops to a user: nobody (65534)
  const user = process.getuid?.() === 0 ? ['User #65534', 'Group #65534'] : [];
  return [
    `ServerRoot "${dir}"`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    `PidFile "${dir}/httpd.pid"`,
    `DefaultRuntimeDir "${dir}"`,
    `ErrorLog "${dir}/error.log"`,
    `LogLevel warn ${logModule}:${process.env.INTEROP_APACHE_LOG ?? 'info'}`,
    ...user,
    ...[...CORE_MODULES, ...modules].map(([name, file]) => `LoadModule ${name} ${MODULES}/${file}`),
  ];
}

/** The httpd config: /protected needs an OIDC login; whoami.html echoes the claims in headers. */
export function apacheConf(dir: string, o: ApacheRpOptions): string {
  const origin = `http://127.0.0.1:${o.port}`;
  return [
    ...apacheBase(dir, o.port, 'auth_openidc', [['auth_openidc_module', 'mod_auth_openidc.so']]),
    `DocumentRoot "${dir}/htdocs"`,
    '<Directory />',
    '  Require all granted',
    '</Directory>',
    ...(o.metadataDir ? [`OIDCMetadataDir "${dir}/metadata"`] : [
      `OIDCProviderMetadataURL ${o.metadataUrl}`,
      `OIDCClientID ${o.clientId}`,
      `OIDCClientSecret ${o.clientSecret}`,
    ]),
    `OIDCRedirectURI ${origin}/protected/redirect_uri`,
    'OIDCCryptoPassphrase interop-test-passphrase-0123456789',
    'OIDCScope "openid email profile"',
    'OIDCProviderTokenEndpointAuth client_secret_basic',
    'OIDCSSLValidateServer Off',
    ...(o.directives ?? []),
    '<Location /protected>',
    '  AuthType openid-connect',
    '  Require valid-user',
    // Node's fetch always sends Sec-Fetch-Mode: cors, which the module's XHR detection answers 401:
    // only a real XHR marker counts here (the documented override)
    `  OIDCUnAuthAction 401 "%{HTTP:X-Requested-With} == 'XMLHttpRequest'"`,
    '  Header always set X-OIDC-Sub "%{OIDC_CLAIM_sub}e"',
    '  Header always set X-OIDC-Email "%{OIDC_CLAIM_email}e"',
    '</Location>',
    '',
  ].join('\n');
}

/** Ends a server started detached (its own process group): SIGTERM to the group, SIGKILL after 3 s; resolves once `exited` does. */
export async function stopProcessGroup(child: ChildProcess | undefined, exited: Promise<void>): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * A temp dir (`prefix` + random) for a server started detached; `started` (spawnOnFreePort's `onChild`)
 * records the child, `stop()` ends its process group and removes the dir.
 */
export function detachedServerDir(prefix: string): { dir: string; started: (child: ChildProcess, exited: Promise<void>) => void; stop: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  return {
    dir,
    started: (c, e) => { child = c; exited = e; },
    stop: async () => {
      await stopProcessGroup(child, exited);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a server that cannot listen on port 0 and say which port it got: on a free port, taken
 * again (up to 3 times) when another process grabbed it in between and the server exited at once.
 * `spawnAt` prepares what the port needs and spawns the server detached; `onChild` is told of each
 * child, to stop it later. A failure carries what the server wrote to a piped stderr.
 */
export function spawnOnFreePort(
  name: string, timeoutMs: number, spawnAt: (port: number) => ChildProcess, onChild: (child: ChildProcess, exited: Promise<void>) => void,
): Promise<number> {
  // (these servers word a taken port each their own way: a server that exits at once is taken as one)
  let exitedAtOnce = false;
  return onFreePort(async (port) => {
    const started = spawnAt(port);
    let stderr = '';
    started.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    onChild(started, exited);
    try {
      await waitForPort(port, started, Date.now() + timeoutMs, name);
      return port;
    } catch (err) {
      exitedAtOnce = started.exitCode !== null;
      if (portTaken(err)) await stopProcessGroup(started, exited); // (it would fail to bind anyway)
      throw stderr ? new Error(`${(err as Error).message}\n${stderr}`) : err;
    }
  }, (err) => exitedAtOnce || portTaken(err));
}

/**
 * Resolves once `child` (named `name` in errors; spawned detached) accepts connections on
 * 127.0.0.1:`port`; rejects if it exits, the deadline passes, or another process listens there.
 */
export function waitForPort(port: number, child: ChildProcess, deadline: number, name = 'apache2'): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`${name} exited with ${child.exitCode}`));
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        if (listenerOf(port, child.pid!) !== 'other') return resolve();
        reject(new Error(`port ${port} is already in use by another process: ${name} cannot listen there`));
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) return reject(new Error(`${name} did not listen on ${port}`));
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Starts httpd in the foreground (-X); `stop()` kills its process group and removes the temp dir. */
export async function startApache(o: ApacheRpOptions): Promise<ApacheRp> {
  requireApache();
  const dir = mkdtempSync(join(tmpdir(), 'interop-apache-'));
  mkdirSync(join(dir, 'htdocs', 'protected'), { recursive: true });
  writeFileSync(join(dir, 'htdocs', 'protected', 'whoami.html'), '<!doctype html><title>protected</title><p>protected page</p>\n');
  writeFileSync(join(dir, 'htdocs', 'loggedout.html'), '<!doctype html><title>signed out</title><p>signed out of Apache</p>\n');
  // httpd running as nobody must read its documents
  for (const d of [dir, join(dir, 'htdocs'), join(dir, 'htdocs', 'protected')]) chmodSync(d, 0o755);
  // ... and write its metadata dir (discovered .provider, registered .client, .conf files)
  if (o.metadataDir) {
    mkdirSync(join(dir, 'metadata'));
    chmodSync(join(dir, 'metadata'), 0o777);
  }
  const conf = join(dir, 'httpd.conf');
  writeFileSync(conf, apacheConf(dir, o));
  const errorLog = () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');

  const check = spawnSync(APACHE, ['-t', '-f', conf], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`apache2 -t refused the config:\n${check.stderr}${check.stdout}`);
  }
  const child = spawn(APACHE, ['-X', '-f', conf], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    await stopProcessGroup(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(o.port, child, Date.now() + 10_000);
  } catch (err) {
    const log = errorLog();
    await stop();
    throw new Error(`${(err as Error).message}\n${stderr}\n${log}`);
  }
  return {
    origin: `http://127.0.0.1:${o.port}`, pkceDirective: (o.directives ?? []).find((d) => d.startsWith('OIDCPKCEMethod')) ?? '',
    metadataDir: o.metadataDir ? join(dir, 'metadata') : undefined, errorLog, stop,
  };
}

/** Whether this mod_auth_openidc accepts `OIDCPKCEMethod none` (2.4.12 does not: there, no directive means no PKCE). */
export function pkceOffDirective(): string[] {
  requireApache();
  const dir = mkdtempSync(join(tmpdir(), 'interop-apache-t-'));
  try {
    const conf = join(dir, 'httpd.conf');
    writeFileSync(conf, apacheConf(dir, {
      port: 1, metadataUrl: 'http://127.0.0.1:1/.well-known/openid-configuration', clientId: 'x', clientSecret: 'y',
      directives: ['OIDCPKCEMethod none'],
    }));
    mkdirSync(join(dir, 'htdocs'));
    return spawnSync(APACHE, ['-t', '-f', conf], { encoding: 'utf8' }).status === 0 ? ['OIDCPKCEMethod none'] : [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `run`, adding the tail of Apache's error log (with `label`, e.g. the run's name) to a failure. */
export async function withApacheLog(apache: () => ApacheRp | undefined, run: () => Promise<void>, label?: string): Promise<void> {
  try {
    await run();
  } catch (err) {
    (err as Error).message += `\n--- apache error.log${label ? ` (${label})` : ''} ---\n${apache()?.errorLog().split('\n').slice(-15).join('\n')}`;
    throw err;
  }
}
