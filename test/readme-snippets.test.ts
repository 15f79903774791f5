/**
 * Every fenced code block of README.md works as written (issue #12). Each block carries a marker on
 * the line before it (`<!-- snippet: program app.mjs -->`, `fragment, in scope: ...`, `shell`,
 * `skip (...)`; see test/readme/blocks.ts), and a block without one fails this test, so a new block
 * gets tested too:
 *
 * - programs are written into a scratch app outside the repository (node_modules linked to this
 *   workspace: the packages' built `dist`), type-checked (strict; JavaScript too), then run with the
 *   environment they ask for — and without it, where they must stop at once naming what is missing —
 *   and driven over HTTP. The "Local development" pair is started by its own shell block and goes
 *   through a login at the OP's password form, an RP-initiated logout (the OP's end-session
 *   confirmation, back at the app, both sessions over), and a logout at the OP that reaches the app
 *   by back-channel logout.
 * - fragments are type-checked in a module that declares the names the marker lists.
 * - shell blocks: every `npm run <x>` / `npm test` is a script of package.json, and every
 *   `npm install` of a package names its peer dependencies (and a tarball, the current version).
 *
 * Needs the packages built (`npm run build`; `npm test` does it) and `redis-server`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { readBlocks, type Block } from './readme/blocks.js';
import { createSandbox, fragmentModule, repoRoot, type Running, type Sandbox } from './readme/sandbox.js';
import { FormBrowser, signIn } from './support/op-forms.js';
import { onFreePorts } from './support/ports.js';
import { redisCli, startRedisServer, type RedisServer } from './support/redis-server.js';

jest.setTimeout(60_000);

const blocks = readBlocks(join(repoRoot, 'README.md'));
const where = (b: Block): string => `README.md:${b.line} (\`\`\`${b.lang})`;
const programs = blocks.filter((b) => b.marker?.kind === 'program');
const programPath = (b: Block): string => (b.marker as { path: string }).path;
const program = (path: string): Block => {
  const block = programs.find((b) => programPath(b) === path);
  if (!block) throw new Error(`README.md has no block marked <!-- snippet: program ${path} -->`);
  return block;
};
const shellRuns = blocks.filter((b) => b.marker?.kind === 'shell' && b.marker.runIn);
const dirOf = (path: string): string => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '.');
const random = (): string => `readme-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const json = { accept: 'application/json' };
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** How the test runs one program (keyed by its path), or the programs of a directory a shell block runs (keyed by the directory). */
interface Driver {
  /** The environment variables it needs (values made up here). */
  env: string[];
  /** Asked port → port the listen hook gives it (0: a free one). */
  ports?: Record<string, number>;
  /** Drives the running program. */
  drive(run: Running, env: Record<string, string>): Promise<void>;
}

let redis: RedisServer | undefined;

const DRIVERS: Record<string, Driver> = {
  // The RP sample: starts with its secrets, draws the login link, lists its providers, guards /me.
  'rp/app.ts': {
    env: ['SESSION_SECRET', 'CORP_CLIENT_SECRET', 'GOOGLE_CLIENT_SECRET', 'MICROSOFT_CLIENT_SECRET', 'GITHUB_CLIENT_SECRET'],
    ports: { 3000: 0 },
    async drive(run) {
      const base = `http://localhost:${await run.port(3000)}`;
      expect(await (await fetch(`${base}/`)).text()).toContain('href="/auth/login/corp"');
      const providers = (await (await fetch(`${base}/auth/providers`)).json()) as { name: string }[];
      expect(providers.map((p) => p.name)).toEqual(['corp', 'google', 'work', 'github']);
      expect((await fetch(`${base}/me`, { headers: json })).status).toBe(401);
    },
  },

  // The OP sample knows the RP sample's client: a login with its redirect URI comes back with a code
  // that gets a refresh token, and a logout with its post-logout redirect URI comes back to the app.
  'op/op.ts': {
    env: ['SESSION_SECRET', 'APP_CLIENT_SECRET'],
    ports: { 3001: 0 },
    async drive(run, env) {
      const base = `http://localhost:${await run.port(3001)}`;
      const client = rpSampleClient();
      const discovery = (await (await fetch(`${base}/op/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      expect(discovery).toMatchObject({ issuer: client.issuer, backchannel_logout_supported: true, end_session_endpoint: expect.any(String) });

      // the OP's URLs are its issuer's (https://id.example.com/op), served here on loopback
      const issuer = new URL(client.issuer);
      const browser = new FormBrowser({
        stopAt: (url) => url.origin === new URL(client.baseURL).origin,
        resolve: (url) => (url.hostname === issuer.hostname ? new URL(url.pathname + url.search, base) : url),
      });
      const redirectUri = `${client.baseURL}/auth/callback/${client.name}`;
      const auth = `${base}/op/auth?${new URLSearchParams({
        client_id: client.clientId, redirect_uri: redirectUri, response_type: 'code',
        scope: 'openid offline_access', prompt: 'consent', nonce: random(), state: random(),
      })}`;
      const back = await signIn(browser, auth, { login: 'alice', password: 'wonderland' });
      expect(back.stoppedAt).toMatch(new RegExp(`^${escapeRegExp(redirectUri)}\\?code=`));
      const token = await fetch(`${base}/op/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${env.APP_CLIENT_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: new URL(back.stoppedAt!).searchParams.get('code')!, redirect_uri: redirectUri }),
      });
      expect(await token.json()).toMatchObject({ id_token: expect.any(String), refresh_token: expect.any(String) });

      // what the RP's /auth/logout sends: the OP asks, then returns to the app (not "post_logout_redirect_uri not registered")
      const end = await browser.open(`${base}/op/session/end?${new URLSearchParams({ client_id: client.clientId, post_logout_redirect_uri: `${client.baseURL}/`, state: 'bye' })}`);
      const done = await browser.submit(end, { id: 'op.logoutForm' }, { logout: 'yes' });
      expect(done.stoppedAt).toBe(`${client.baseURL}/?state=bye`);

      const op = program('op/op.ts').code;
      expect(op).toContain(`backchannel_logout_uri: '${client.baseURL}/auth/backchannel-logout/${client.name}'`);
      expect(op).toMatch(/backchannel_logout_session_required: true/);
    },
  },

  // Several instances: connects to Redis, guards its API.
  'instances/app.mjs': {
    env: ['REDIS_URL', 'SESSION_SECRET', 'CLIENT_SECRET'],
    ports: { 3000: 0 },
    async drive(run) {
      const base = `http://localhost:${await run.port(3000)}`;
      const res = await fetch(`${base}/api/orders`, { headers: json });
      expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([401, 'not_authenticated']);
      const providers = (await (await fetch(`${base}/auth/providers`)).json()) as { name: string }[];
      expect(providers.map((p) => p.name)).toEqual(['corp']);
      expect(run.output()).not.toMatch(/Redis:/);
    },
  },

  // Local development: op.mjs and app.mjs, started by the section's shell block.
  'local-dev': {
    env: ['PORT', 'OP_PORT'],
    async drive(run, env) {
      const app = `http://localhost:${env.PORT}`;
      const issuer = `http://127.0.0.1:${env.OP_PORT}/op`;
      await run.port(env.OP_PORT!);
      await run.port(env.PORT!);
      await localDevelopment(app, issuer);
      expect(run.output()).not.toMatch(/Error|ERR_|invalid_state|not registered/);
    },
  },
};

/** The RP sample's provider entry that signs in at the OP sample's issuer. */
function rpSampleClient(): { baseURL: string; name: string; issuer: string; clientId: string } {
  const rpCode = program('rp/app.ts').code;
  const issuer = /issuer: '([^']+)'/.exec(program('op/op.ts').code)?.[1];
  const baseURL = /baseURL: '([^']+)'/.exec(rpCode)?.[1];
  const entry = [...rpCode.matchAll(/(\w+): oidc\(\{ issuer: '([^']+)', clientId: '([^']+)'/g)].find((m) => m[2] === issuer);
  if (!issuer || !baseURL || !entry) throw new Error(`the RP sample has no oidc({ issuer: '${issuer}', clientId }) entry for the OP sample's issuer, or no baseURL`);
  return { baseURL, name: entry[1]!, issuer, clientId: entry[3]! };
}

/** A user of the Local development pair: login, RP-initiated logout, login, logout at the OP (back-channel). */
async function localDevelopment(app: string, issuer: string): Promise<void> {
  const browser = new FormBrowser();
  const home = await browser.open(`${app}/`);
  expect(home.html).toContain('href="/auth/login/local"');

  // login: the OP's password form and consent, back at the app
  let page = await signIn(browser, `${app}/auth/login/local`, { login: 'alice', password: 'wonderland' });
  expect([page.url, page.status, page.html]).toEqual([`${app}/`, 200, expect.stringContaining('Hello Alice Liddell')]);
  expect(browser.jar.header(app)).toMatch(/(^|; )app\.sid=/);
  expect(JSON.parse((await browser.open(`${app}/me`)).html)).toMatchObject({ sub: 'alice', email: 'alice@example.org', provider: 'local' });

  // RP-initiated logout: the app's "Sign out?" (the link is followed without a Referer), the OP's confirmation, back at the app
  const confirm = await browser.open(`${app}/auth/logout`);
  const atOp = await browser.submit(confirm, { action: '/auth/logout' });
  expect([atOp.status, atOp.url]).toEqual([200, expect.stringMatching(`^${issuer}/session/end`)]);
  expect(new URL(atOp.url).searchParams.get('post_logout_redirect_uri')).toBe(`${app}/`);
  expect(browser.jar.header(atOp.url)).toMatch(/(^|; )op\.sid=/); // the OP's own session cookie, on its own host
  page = await browser.submit(atOp, { id: 'op.logoutForm' }, { logout: 'yes' });
  expect([page.url, page.status, page.html]).toEqual([`${app}/`, 200, expect.stringContaining('href="/auth/login/local"')]);
  // both sessions are over: the app asks for a login, and the OP for the password again
  expect((await fetch(`${app}/me`, { headers: { ...json, cookie: browser.jar.header(`${app}/me`) } })).status).toBe(401);
  page = await browser.open(`${app}/auth/login/local`);
  expect(page.url).toContain(`${issuer}/interaction/`);
  expect(browser.form(page, { value: ['authenticator', 'password'] })).toBeDefined();

  // signed in again, then signed out at the OP itself: back-channel logout ends the app's session
  page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: 'wonderland' });
  if (page.url.includes('/interaction/')) page = await browser.submit(page, { action: '/confirm' });
  expect([page.url, page.html]).toEqual([`${app}/`, expect.stringContaining('Hello Alice Liddell')]);
  const end = await browser.open(`${issuer}/session/end`);
  await browser.submit(end, { id: 'op.logoutForm' }, { logout: 'yes' });
  const me = () => fetch(`${app}/me`, { headers: { ...json, cookie: browser.jar.header(`${app}/me`) } }).then((r) => r.status);
  for (let i = 0; i < 50 && (await me()) !== 401; i += 1) await new Promise((r) => setTimeout(r, 100));
  expect(await me()).toBe(401);
}

let sandbox: Sandbox;
let typeCheck: Promise<string>;

beforeAll(() => {
  for (const pkg of ['rp', 'op']) {
    if (!existsSync(join(repoRoot, 'packages', pkg, 'dist', 'index.js'))) {
      throw new Error(`packages/${pkg} is not built: run \`npm run build\` (npm test does it) first`);
    }
  }
  sandbox = createSandbox();
  const files: string[] = [];
  for (const b of blocks) {
    if (b.marker?.kind === 'program') {
      const path = programPath(b);
      sandbox.write(path, b.code);
      files.push(path);
      if (path.endsWith('.ts')) {
        const js = ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
        sandbox.write(path.replace(/\.ts$/, '.js'), js);
      }
    } else if (b.marker?.kind === 'fragment') {
      const path = `fragments/readme-${b.line}.ts`; // JavaScript is TypeScript too
      sandbox.write(path, fragmentModule(b.code, b.marker.scope));
      files.push(path);
    } else if (b.marker?.kind === 'shell' && b.marker.runIn) {
      sandbox.write(`${b.marker.runIn}/readme-${b.line}.sh`, b.code);
    }
  }
  // TypeScript strict as a TypeScript app would compile it; JavaScript with strict checks but no
  // annotations asked for (a JavaScript user writes none)
  typeCheck = Promise.all([
    sandbox.typeCheck(files.filter((f) => f.endsWith('.ts')), 'tsconfig.ts.json'),
    sandbox.typeCheck(files.filter((f) => !f.endsWith('.ts')), 'tsconfig.js.json', { noImplicitAny: false }),
  ]).then((outs) => outs.filter(Boolean).join('\n'));
});

afterAll(async () => {
  await typeCheck?.catch(() => undefined);
  await sandbox?.stopAll();
  await redis?.stop();
  sandbox?.remove();
});

test('every code block in README.md is marked: program, fragment, shell or skip', () => {
  const unmarked = blocks.filter((b) => !b.marker).map((b) => `${where(b)}${b.invalid ? `: "${b.invalid}" is not a snippet marker` : ''}`);
  expect(unmarked).toEqual([]); // put <!-- snippet: ... --> on the line before the block (see test/readme/blocks.ts)
  expect(blocks.length).toBeGreaterThanOrEqual(12);
  const paths = programs.map(programPath);
  expect(paths.filter((p, i) => paths.indexOf(p) !== i)).toEqual([]);
});

test('every program has a driver in this test (or its directory, when a shell block runs it)', () => {
  const runDirs = new Set(shellRuns.map((b) => (b.marker as { runIn: string }).runIn));
  const missing = programs.map(programPath).filter((p) => !(runDirs.has(dirOf(p)) ? DRIVERS[dirOf(p)] : DRIVERS[p]));
  expect(missing).toEqual([]);
  for (const dir of runDirs) expect(programs.some((b) => dirOf(programPath(b)) === dir)).toBe(true);
});

test('programs and fragments type-check (tsc --noEmit, strict, NodeNext; JavaScript checked too)', async () => {
  const out = await typeCheck;
  // name the README line of each error: `<file>(row,col)` → README.md:<fence line + row>
  const located = out.replace(/^([\w./-]+)\((\d+),\d+\)/gm, (all, file: string, row: string) => {
    const b = blocks.find((x) => (x.marker?.kind === 'program' && programPath(x) === file) || file === `fragments/readme-${x.line}.ts`);
    return b ? `README.md:${b.line + Number(row)} ${all}` : all;
  });
  expect(located).toBe('');
});

test('session samples: every session() has its own cookie name, never the same for an OP and an RP; no secret in code', () => {
  const names: Record<'op' | 'rp', Set<string>> = { op: new Set(), rp: new Set() };
  for (const b of blocks.filter((x) => x.marker?.kind === 'program' || x.marker?.kind === 'fragment')) {
    for (const call of b.code.matchAll(/session\(\{[^}]*\}\)/g)) {
      const name = /\bname: '([^']+)'/.exec(call[0])?.[1];
      expect([where(b), name]).toEqual([where(b), expect.any(String)]);
      names[/\bop\(\{/.test(b.code) ? 'op' : 'rp'].add(name!);
    }
    expect([where(b), b.code]).not.toEqual([where(b), expect.stringMatching(/secret: '(?!\.\.\.')[^']+'|process\.env\.\w+!/i)]);
  }
  expect([...names.op].filter((n) => names.rp.has(n))).toEqual([]);
  expect(names.op.size * names.rp.size).toBeGreaterThan(0);
});

test('shell blocks: npm scripts exist, installs name the peer dependencies, tarballs the current version', () => {
  const scripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const manifest = (p: string) => JSON.parse(readFileSync(join(repoRoot, 'packages', p, 'package.json'), 'utf8')) as {
    version: string; peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
  let checked = 0;
  for (const b of blocks.filter((x) => x.marker?.kind === 'shell')) {
    for (const line of b.code.split('\n').map((l) => l.replace(/#.*$/, ''))) {
      for (const m of line.matchAll(/\bnpm (?:run(?:-script)? ([\w:-]+)|(test|start)\b)/g)) {
        const script = m[1] ?? m[2]!;
        expect([where(b), script, script in scripts]).toEqual([where(b), script, true]);
        checked += 1;
      }
      const install = /\bnpm (?:install|i) (.+)/.exec(line);
      if (!install) continue;
      const args = install[1]!.trim().split(/\s+/);
      const named = new Set(args.map((a) => a.replace(/^(@?[^@]+)@.*$/, '$1')));
      for (const a of args) {
        const pkg = /^@openid-express\/(rp|op)$/.exec(a)?.[1] ?? /openid-express-(rp|op)-[\d.]+[\w.-]*\.tgz$/.exec(a)?.[1];
        if (!pkg) continue;
        const { version, peerDependencies = {}, peerDependenciesMeta = {} } = manifest(pkg);
        const tarball = /-(\d[\w.-]*)\.tgz$/.exec(a)?.[1];
        if (tarball) expect([where(b), tarball]).toEqual([where(b), version]);
        const peers = Object.keys(peerDependencies).filter((p) => !peerDependenciesMeta[p]?.optional);
        expect([where(b), peers.filter((p) => !named.has(p))]).toEqual([where(b), []]);
        checked += 1;
      }
    }
  }
  expect(checked).toBeGreaterThan(3);
});

test('every program stops at start-up, naming what is missing, when its environment is not set', async () => {
  const runs = programs.map((b) => {
    const path = programPath(b);
    const run = sandbox.start(process.execPath, [path.replace(/\.ts$/, '.js')], { cwd: '.', ports: { 3000: 0, 3001: 0 } });
    return { path, run };
  });
  for (const { path, run } of runs) {
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([run.exited, new Promise((r) => (timer = setTimeout(() => r('still running after 20 s'), 20_000)))]);
    clearTimeout(timer);
    await run.stop();
    expect([path, exit]).toEqual([path, { code: 1, signal: null }]);
    expect([path, run.output()]).toEqual([path, expect.stringMatching(/\b[A-Z_]*(SECRET|_URL)\b/)]);
    expect([path, run.output()]).not.toEqual([path, expect.stringContaining('listening on')]);
  }
});

describe('programs, run and driven', () => {
  for (const b of programs.filter((x) => !shellRuns.some((s) => (s.marker as { runIn: string }).runIn === dirOf(programPath(x))))) {
    const path = programPath(b);
    test(`${path} (${where(b)})`, async () => {
      const driver = DRIVERS[path]!;
      if (driver.env.includes('REDIS_URL')) redis ??= await startRedisServer();
      const env = Object.fromEntries(driver.env.map((n) => [n, n === 'REDIS_URL' ? redis!.url : random()]));
      const run = sandbox.start(process.execPath, [path.replace(/\.ts$/, '.js')], { cwd: '.', env, ports: driver.ports });
      try {
        await driver.drive(run, env);
      } catch (err) {
        (err as Error).message += `\n--- output of ${path} ---\n${run.output()}`;
        throw err;
      } finally {
        await run.stop();
      }
    });
  }

  for (const b of shellRuns) {
    const dir = (b.marker as { runIn: string }).runIn;
    test(`${dir}: the shell block ${where(b)} starts ${programs.filter((p) => dirOf(programPath(p)) === dir).map(programPath).join(' and ')}`, async () => {
      const driver = DRIVERS[dir]!;
      const portNames = driver.env.filter((n) => /PORT$/.test(n));
      // a port found free and taken before the program bound it (its output says so): new ports, again
      await onFreePorts(portNames.length, async (ports) => {
        const env: Record<string, string> = {};
        for (const n of driver.env) env[n] = portNames.includes(n) ? String(ports[portNames.indexOf(n)]) : random();
        const run = sandbox.start('bash', [`readme-${b.line}.sh`], { cwd: dir, env, detached: true });
        try {
          await driver.drive(run, env);
        } catch (err) {
          (err as Error).message += `\n--- output of the shell block ---\n${run.output()}`;
          throw err;
        } finally {
          await run.stop();
        }
      });
    });
  }
});

// a managed Redis's ACL user as "Managed Redis" has it: the health check wrote `healthz:<pid>`, outside
// every key pattern granted there, so /healthz answered 503 on every instance while sign-ins worked,
// and its `catch {}` hid the NOPERM (probe F2)
test('the health check fragment answers 200 with the ACL user of "Managed Redis", and a 503 naming what Redis answered once Redis refuses writes', async () => {
  const healthz = blocks.find((b) => b.marker?.kind === 'fragment' && b.code.includes("app.get('/healthz'"));
  const managed = readFileSync(join(repoRoot, 'README.md'), 'utf8').split('**Managed Redis**')[1]?.split('\n- **Connections**')[0] ?? '';
  const keys = [...managed.matchAll(/`(~[^`\s]+)`/g)].map((m) => m[1]!);
  expect([healthz?.line, keys]).toEqual([expect.any(Number), expect.arrayContaining(['~oidc:*', '~openid-express:rp:*', '~sess:*'])]);
  expect(managed).toContain('`+@all -@dangerous` is enough');
  const own = await startRedisServer();
  try {
    await redisCli(own, 'ACL', 'SETUSER', 'app', 'on', '>app-secret-0123', ...keys, '+@all', '-@dangerous');
    sandbox.write('healthz/app.mjs', [
      "import express from 'express';",
      "import { createClient } from 'redis';",
      'const redis = await createClient({ url: process.env.REDIS_URL, commandOptions: { timeout: 2000 } }).on(\'error\', console.error).connect();',
      'const app = express();',
      healthz!.code,
      "app.listen(3000, () => console.log('listening on 3000'));",
    ].join('\n'));
    const env = { REDIS_URL: `redis://app:app-secret-0123@127.0.0.1:${own.port}` };
    const run = sandbox.start(process.execPath, ['app.mjs'], { cwd: 'healthz', env, ports: { 3000: 0 } });
    try {
      const url = `http://localhost:${await run.port(3000)}/healthz`;
      const ok = await fetch(url);
      expect([ok.status, await ok.text()]).toEqual([200, 'ok']); // before: 503 (NOPERM, unsaid)
      await redisCli(own, 'REPLICAOF', '127.0.0.1', '1'); // a replica now (of a master it never reaches): READONLY
      const refused = await fetch(url);
      expect([refused.status, refused.headers.get('retry-after'), await refused.text()])
        .toEqual([503, '5', expect.stringMatching(/^Redis refuses writes from this instance: READONLY /)]);
    } catch (err) {
      (err as Error).message += `\n--- output of the health check ---\n${run.output()}`;
      throw err;
    } finally {
      await run.stop();
    }
  } finally {
    await own.stop();
  }
});
