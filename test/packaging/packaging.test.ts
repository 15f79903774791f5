/**
 * The packages as a user gets them: `scripts/pack.mjs` packs both (`pnpm pack`), and the tarballs
 * are installed with npm, from the npm registry for everything else, into apps in the system's
 * temporary directory (outside the workspace, so nothing of it can be picked up). Two installs:
 * Express 5 (+ TypeScript and the types a TypeScript Express app installs itself) and Express 4.
 * Five apps (fixtures/) then sign a user in at the OP they mount, read /me, and sign out with an
 * RP-initiated logout that goes through the OP's end_session and back:
 *
 * - Express 5, ESM (fixtures/app.mjs)
 * - Express 4, ESM (fixtures/app.mjs)
 * - Express 5, CommonJS (fixtures/app.cjs)
 * - Express 5, TypeScript `strict`, moduleResolution node16 (fixtures/app.ts, compiled with tsc)
 * - Express 5, TypeScript `strict`, moduleResolution bundler (fixtures/app.ts, compiled with tsc)
 *
 * and the TypeScript app also compiles against Express 4's types. The Express 4 install takes Express,
 * express-session, oidc-provider, openid-client and jose at the lowest versions our ranges allow. Needs the npm registry: when it is
 * unreachable the installs fail, and so does this suite (it never skips for that).
 *
 * `npm test` runs this suite on one Node.js only, the last of the run (Node 24 with CI's
 * `--also-node=22 --also-node=24`): scripts/test.mjs sets OPENID_EXPRESS_SKIP_ONCE_SUITES=1 for the others.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { FormBrowser, signIn } from '../support/op-forms.js';

const repoRoot = join(__dirname, '..', '..');
const fixtures = join(__dirname, 'fixtures');
const ALICE = { login: 'alice', password: 'wonderland' };
const INSTALL_TIMEOUT_MS = 240_000;
const TYPESCRIPT = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.typescript!;

/**
 * Type errors that are not ours, seen by any app compiled with `skipLibCheck: false` that has
 * @types/oidc-provider next to Express >= 5.3: @types/koa (a dependency of @types/oidc-provider)
 * reads `Options` from content-disposition as DefinitelyTyped describes version 0.5, but Express 5.3
 * installs content-disposition 2, which ships its own types without it, and npm hoists that one.
 * Any other error fails the test. (The apps compile with TypeScript at the root's devDependencies version.)
 */
const UPSTREAM_TYPE_ERRORS = [/node_modules\/@types\/koa\/index\.d\.ts\(\d+,\d+\): error TS2694: Namespace '[^']*content-disposition[^']*' has no exported member 'Options'\./];

const skip = process.env.OPENID_EXPRESS_SKIP_ONCE_SUITES === '1';
const suite = skip ? describe.skip : describe;

interface Tarball { name: string; version: string; file: string; files: string[] }

/** The lowest version a package.json range allows (its first x.y.z: "^4.21.0 || ^5.0.0" → 4.21.0, ">=9.12.2 <9.14.0" → 9.12.2). */
const lowest = (range: string): string => /\d+\.\d+\.\d+/.exec(range)![0];
const manifestOf = (pkg: string) => JSON.parse(readFileSync(join(repoRoot, 'packages', pkg, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>; peerDependencies: Record<string, string>;
};
/**
 * What the Express 4 app installs: Express, express-session, oidc-provider, openid-client and jose at
 * the lowest versions the packages' ranges allow (the OP's and the RP's), so the login there runs on them.
 */
const FLOORS: Array<[string, string]> = [
  ['express', lowest(manifestOf('op').peerDependencies.express!)],
  ['express-session', lowest(manifestOf('op').peerDependencies['express-session']!)],
  ['oidc-provider', lowest(manifestOf('op').dependencies['oidc-provider']!)],
  ['openid-client', lowest(manifestOf('rp').dependencies['openid-client']!)],
  ['jose', [manifestOf('rp').dependencies.jose!, manifestOf('op').dependencies.jose!].map(lowest).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1)!],
];

let work: string;
let tarballs: Tarball[];
let express5: string;
let express4: string;

/** The environment of the npm, tsc and app processes: ours, without what npm sets for `npm test`'s own script. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra };
}

/** Runs a command to its end; throws with its output when it fails or outlives `timeoutMs`. */
async function exec(command: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  const { code, output } = await run(command, args, cwd, timeoutMs);
  if (code !== 0) throw new Error(`\`${command} ${args.join(' ')}\` (in ${cwd}) failed (${code}). Its output:\n${output}`);
  return output;
}

/** Runs a command to its end and returns its exit code (or signal) and output; throws when it outlives `timeoutMs`. */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`${command} ${args.join(' ')}\` (in ${cwd}) did not finish in ${timeoutMs / 1000} s. Its output:\n${output}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`\`${command}\` could not start: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', output });
    });
  });
}

/** An empty app directory with a package.json, then `npm install` of the tarballs and `deps` (from the registry). */
async function install(dir: string, deps: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: `packaging-${dir.split(sep).pop()}`, version: '0.0.0', private: true }, null, 2)}\n`);
  const args = ['install', '--no-audit', '--no-fund', ...tarballs.map((t) => t.file), ...deps];
  try {
    await exec('npm', args, dir, INSTALL_TIMEOUT_MS);
  } catch (err) {
    throw new Error(`npm install from the tarballs and the npm registry failed; this suite needs the registry.\n${(err as Error).message}`);
  }
}

/** A copy of a fixture in `dir` (created), with extra files (tsconfig.json, package.json). */
function app(dir: string, fixture: string, extra: Record<string, unknown> = {}): string {
  mkdirSync(dir, { recursive: true });
  cpSync(join(fixtures, fixture), join(dir, fixture));
  for (const [name, content] of Object.entries(extra)) writeFileSync(join(dir, name), `${JSON.stringify(content, null, 2)}\n`);
  return join(dir, fixture);
}

/** Runs the install's tsc on `dir`'s tsconfig.json; fails on any error but the known upstream ones. */
async function compile(dir: string, install: string, noEmit = false): Promise<void> {
  const tsc = join(install, 'node_modules', 'typescript', 'bin', 'tsc');
  const { code, output } = await run(process.execPath, [tsc, '-p', dir, ...(noEmit ? ['--noEmit'] : [])], dir, 120_000);
  const all = output.split('\n').filter((line) => /error TS\d+/.test(line));
  const errors = all.filter((line) => !UPSTREAM_TYPE_ERRORS.some((re) => re.test(line)));
  if (errors.length) throw new Error(`tsc -p ${relative(work, dir)}: ${errors.length} type error(s):\n${output}`);
  if (code !== 0 && all.length === 0) throw new Error(`tsc -p ${relative(work, dir)} failed (${code}) without a type error:\n${output}`);
  if (!noEmit && !existsSync(join(dir, 'out', 'app.js'))) throw new Error(`tsc -p ${relative(work, dir)} emitted no out/app.js:\n${output}`);
}

/** Starts `node file` and waits for `listening on <url>`. */
async function start(file: string): Promise<{ url: string; child: ChildProcess; output(): string }> {
  const child = spawn(process.execPath, [file], { cwd: join(file, '..'), env: childEnv({ NODE_ENV: 'development' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${relative(work, file)} ${why}. Its output:\n${output}`));
    };
    const timer = setTimeout(() => fail('printed no "listening on" within 60 s'), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString();
      const m = output.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before it listened`));
  });
  child.removeAllListeners('exit');
  return { url, child, output: () => output };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * The scripted user: anonymous /me is refused; login at the OP's password form (and consent) lands
 * on /me with the user; a logout link asks first, then the RP sends the browser to the OP's
 * end_session, whose confirmation comes back to /bye; then neither session is left.
 */
async function loginAndLogout(file: string, install: string, expressMajor: number): Promise<void> {
  const running = await start(file);
  const base = running.url;
  try {
    const anonymous = await fetch(`${base}/me`, { headers: { accept: 'application/json' } });
    expect(anonymous.status).toBe(401);

    const browser = new FormBrowser();
    const page = await signIn(browser, `${base}/auth/login/local?returnTo=/me`, ALICE);
    expect([page.url, page.status]).toEqual([`${base}/me`, 200]);
    const me = JSON.parse(page.html) as { user: Record<string, unknown>; express: string; packages: Record<string, string> };
    expect(me.user).toMatchObject({ sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', provider: 'local' });
    expect(Number(me.express.split('.')[0])).toBe(expressMajor);
    for (const pkg of ['rp', 'op']) expect(me.packages[pkg]).toBe(join(install, 'node_modules', '@openid-express', pkg, 'dist', 'index.js'));

    // RP-initiated logout: a GET from elsewhere gets the RP's confirmation, whose form POSTs the logout
    const confirm = await browser.open(`${base}/auth/logout?returnTo=/bye`);
    expect([confirm.url, confirm.status]).toEqual([`${base}/auth/logout?returnTo=/bye`, 200]);
    const atOp = await browser.submit(confirm, { action: '/auth/logout' });
    expect(atOp.status).toBe(200);
    expect(atOp.url.startsWith(`${base}/op/session/end?`)).toBe(true);
    expect(new URL(atOp.url).searchParams.get('post_logout_redirect_uri')).toBe(`${base}/bye`);
    const done = await browser.submit(atOp, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect([done.url, done.status, done.html]).toEqual([`${base}/bye`, 200, 'signed out']);

    // neither session is left: /me sends the browser to sign in, and the OP asks for the password again
    expect((await fetch(`${base}/me`, { headers: { accept: 'application/json', cookie: browser.jar.header(`${base}/me`) } })).status).toBe(401);
    const again = await browser.open(`${base}/me`);
    expect(again.url).toContain(`${base}/op/interaction/`);
    expect(browser.form(again, { value: ['authenticator', 'password'] })).toBeDefined();
    expect(running.output()).not.toMatch(/Error|ERR_/);
  } catch (err) {
    (err as Error).message += `\n--- output of ${relative(work, file)} ---\n${running.output()}`;
    throw err;
  } finally {
    await stop(running.child);
  }
}

describe('npm pack in a package directory', () => {
  // what most people try first: it would write workspace:* into the OP's dependencies, which npm cannot install
  test.each(['rp', 'op'])('packages/%s: refused, naming npm run pack and scripts/release.mjs (npm run pack, which runs pnpm pack, is the suite below)', async (pkg) => {
    const { code, output } = await run('npm', ['pack', '--dry-run'], join(repoRoot, 'packages', pkg), 60_000);
    expect(code).not.toBe(0); // before: a tarball (the OP's with "@openid-express/rp": "workspace:*"), without a word
    expect(output).toContain('npm pack leaves workspace:* in the tarball, which npm cannot install: pack with npm run pack at the repository root');
    expect(output).toContain('Publish with node scripts/release.mjs at the repository root');
  });
});

suite('the packed packages, installed from their tarballs into apps outside the workspace', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'openid-express-packaging-'));
    express5 = join(work, 'express5');
    express4 = join(work, 'express4');
    await exec(process.execPath, [join(repoRoot, 'scripts', 'pack.mjs'), `--out=${join(work, 'tarballs')}`], repoRoot, 300_000);
    tarballs = JSON.parse(readFileSync(join(work, 'tarballs', 'tarballs.json'), 'utf8')) as Tarball[];
    const types = ['@types/express-session', '@types/node@^20.19.0', `typescript@${TYPESCRIPT}`];
    await Promise.all([
      install(express5, ['express@5', 'express-session', '@types/express@5', ...types]),
      // the lowest versions the packages' ranges allow: a range that admits a version the code cannot run on fails here
      install(express4, [...FLOORS.map(([name, version]) => `${name}@${version}`), '@types/express@4', ...types]),
    ]);
  }, 540_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('npm run pack: two tarballs, each with README.md, LICENSE, JavaScript and types, no source maps, and real versions for workspace:*', () => {
    expect(tarballs.map((t) => t.name)).toEqual(['@openid-express/rp', '@openid-express/op']);
    expect(relative(repoRoot, work).startsWith('..')).toBe(true);
    for (const t of tarballs) {
      expect(t.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']));
      expect(t.files.filter((f) => f.endsWith('.map') || f.startsWith('src/') || f.includes('.tsbuildinfo'))).toEqual([]);
    }
    const [rpTarball] = tarballs;
    const opManifest = JSON.parse(readFileSync(join(express5, 'node_modules', '@openid-express', 'op', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(opManifest.dependencies).toMatchObject({ '@openid-express/rp': rpTarball!.version, '@types/oidc-provider': expect.any(String) });
    expect(JSON.stringify(opManifest)).not.toContain('workspace:');
    expect(readFileSync(join(express5, 'node_modules', '@openid-express', 'rp', 'LICENSE'), 'utf8')).toBe(readFileSync(join(repoRoot, 'LICENSE'), 'utf8'));
  });

  test('the installs took both packages from the tarballs (the OP uses the packed RP), and oidc-provider\'s types came with the OP', () => {
    for (const dir of [express5, express4]) {
      const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string; version?: string }> };
      for (const t of tarballs) {
        expect(lock.packages[`node_modules/${t.name}`]).toMatchObject({ version: t.version, resolved: expect.stringMatching(/^file:.*\.tgz$/) });
      }
      expect(Object.keys(lock.packages).filter((p) => p.includes('@openid-express/') && !/^node_modules\/@openid-express\/(rp|op)$/.test(p))).toEqual([]);
      expect(lock.packages['node_modules/@types/oidc-provider']).toBeDefined();
      // tools that read a dependency's version (bundlers, bug-report helpers) may require its package.json
      for (const t of tarballs) expect((createRequire(join(dir, 'package.json'))(`${t.name}/package.json`) as { version: string }).version).toBe(t.version);
    }
  });

  test('the Express 4 app runs on the lowest versions the ranges allow: our packages use the one copy of Express, express-session, oidc-provider, openid-client and jose the app installed', () => {
    const lock = JSON.parse(readFileSync(join(express4, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    for (const [name, version] of FLOORS) {
      // the app's copy, and any nested under ours (others' own copies, e.g. oidc-provider's newer jose, are theirs)
      const copies = Object.entries(lock.packages).filter(([path]) => path === `node_modules/${name}` || (path.startsWith('node_modules/@openid-express/') && path.endsWith(`/node_modules/${name}`)))
        .map(([path, p]) => `${path}@${p.version}`);
      expect([name, copies]).toEqual([name, [`node_modules/${name}@${version}`]]);
    }
  });

  test('Express 5, ESM: login, /me, RP-initiated logout', async () => {
    await loginAndLogout(app(join(express5, 'esm'), 'app.mjs'), express5, 5);
  }, 90_000);

  test('Express 4, ESM: login, /me, RP-initiated logout', async () => {
    await loginAndLogout(app(join(express4, 'esm'), 'app.mjs'), express4, 4);
  }, 90_000);

  test('Express 5, CommonJS (require() of the ESM packages): login, /me, RP-initiated logout', async () => {
    await loginAndLogout(app(join(express5, 'cjs'), 'app.cjs'), express5, 5);
  }, 90_000);

  const compilerOptions = { strict: true, skipLibCheck: false, target: 'ES2022', outDir: 'out' };

  test('Express 5, TypeScript strict, moduleResolution node16: compiles with no extra @types, then login, /me, RP-initiated logout', async () => {
    const dir = join(express5, 'ts-node16');
    app(dir, 'app.ts', {
      'package.json': { type: 'module' },
      'tsconfig.json': { compilerOptions: { ...compilerOptions, module: 'node16', moduleResolution: 'node16' }, files: ['app.ts'] },
    });
    await compile(dir, express5);
    await loginAndLogout(join(dir, 'out', 'app.js'), express5, 5);
  }, 180_000);

  test('Express 5, TypeScript strict, moduleResolution bundler: compiles with no extra @types, then login, /me, RP-initiated logout', async () => {
    const dir = join(express5, 'ts-bundler');
    app(dir, 'app.ts', {
      'package.json': { type: 'module' },
      'tsconfig.json': { compilerOptions: { ...compilerOptions, module: 'esnext', moduleResolution: 'bundler' }, files: ['app.ts'] },
    });
    await compile(dir, express5);
    await loginAndLogout(join(dir, 'out', 'app.js'), express5, 5);
  }, 180_000);

  test('the package READMEs\' code (what npm shows first) compiles as TypeScript, strict, exactOptionalPropertyTypes', async () => {
    const dir = join(express5, 'ts-package-readmes');
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    for (const pkg of ['rp', 'op']) {
      const readme = readFileSync(join(repoRoot, 'packages', pkg, 'README.md'), 'utf8');
      [...readme.matchAll(/```(?:js|ts)\n([\s\S]*?)```/g)].forEach((m, i) => {
        const file = `readme-${pkg}-${i}.ts`;
        writeFileSync(join(dir, file), m[1]!);
        files.push(file);
      });
    }
    expect(files.length).toBeGreaterThanOrEqual(2);
    // and options given from values that may be undefined (an environment variable, an optional setting), which the
    // packages accept at run time: under exactOptionalPropertyTypes they need \`| undefined\` in the option types
    writeFileSync(join(dir, 'exact-optional.ts'), [
      "import { google, oidc, rp } from '@openid-express/rp';",
      "import { memoryAccounts, op } from '@openid-express/op';",
      'const settings: { mountPath?: string } = {};',
      "rp({ baseURL: 'https://app.example.com', mountPath: settings.mountPath, providers: {",
      "  corp: oidc({ issuer: 'https://id.example.com', clientId: 'app', clientSecret: process.env.CORP_SECRET }),",
      "  google: google({ clientId: 'app', clientSecret: 'secret', hostedDomain: process.env.GOOGLE_HD }),",
      '} });',
      "op({ issuer: 'https://id.example.com/op', accounts: memoryAccounts([]), clients: [], name: process.env.OP_NAME });",
      '',
    ].join('\n'));
    files.push('exact-optional.ts');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'node16', moduleResolution: 'node16', exactOptionalPropertyTypes: true }, files }, null, 2)}\n`);
    await compile(dir, express5, true);
  }, 120_000);

  test('a CommonJS TypeScript app without esModuleInterop (import x = require) compiles: no default import of express in our .d.ts files', async () => {
    const dir = join(express5, 'ts-cjs-no-interop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'app.ts'), [
      "import express = require('express');",
      "import rpPackage = require('@openid-express/rp');",
      "import opPackage = require('@openid-express/op');",
      'const app = express();',
      "app.use('/op', opPackage.op({ issuer: 'http://127.0.0.1:3000/op', accounts: opPackage.memoryAccounts([]), clients: [] }));",
      "app.get('/me', rpPackage.requireAuth(), (req, res) => void res.json(req.oidc.user));",
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: false }, files: ['app.ts'] }, null, 2)}\n`);
    await compile(dir, express5, true);
  }, 120_000);

  test('the TypeScript app also compiles (strict, node16) against Express 4\'s types', async () => {
    const dir = join(express4, 'ts-node16');
    app(dir, 'app.ts', {
      'package.json': { type: 'module' },
      'tsconfig.json': { compilerOptions: { ...compilerOptions, module: 'node16', moduleResolution: 'node16' }, files: ['app.ts'] },
    });
    await compile(dir, express4, true);
  }, 120_000);
});
