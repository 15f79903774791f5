/**
 * A scratch app outside the repository for the README's code blocks (test/readme-snippets.test.ts):
 * its node_modules link to this workspace (`@openid-express/rp` and `/op` to packages/*, run from
 * their built `dist` like an installed tarball; express, express-session, jose, redis, connect-redis
 * and @types to the workspace's own), so a block runs as it would pasted into a fresh app.
 *
 * API: `createSandbox()`; `sandbox.write(path, text)`; `sandbox.typeCheck(files)` (tsc --noEmit,
 * strict, NodeNext, JavaScript checked too); `sandbox.start(cmd, args, { cwd, env, ports })` runs a
 * process with the listen hook preloaded (see ./listen-hook.mjs); `fragmentModule(code, scope)`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..');

/** What a scratch app's node_modules hold: name → path in this workspace. */
const LINKS: Record<string, string> = {
  '@openid-express/rp': 'packages/rp',
  '@openid-express/op': 'packages/op',
  express: 'node_modules/express',
  'express-session': 'node_modules/express-session',
  jose: 'node_modules/jose',
  redis: 'packages/rp/node_modules/redis',
  'connect-redis': 'packages/rp/node_modules/connect-redis',
  '@types': 'node_modules/@types',
};

/**
 * Names a fragment may say are in scope (`<!-- snippet: fragment, in scope: app, issuer -->`), with
 * what declares them in its type-check module. Package exports are imported from their package.
 */
const SCOPE: Record<string, string> = {
  app: "declare const app: import('express').Express;",
  issuer: 'declare const issuer: string;',
  accounts: "declare const accounts: import('@openid-express/op').AccountStore;",
  clients: "declare const clients: import('@openid-express/op').OpClient[];",
  redis: "declare const redis: import('redis').RedisClientType;",
};
const PACKAGE_EXPORTS: Record<string, string[]> = {
  '@openid-express/rp': ['rp', 'requireAuth', 'oidc', 'google', 'microsoft', 'github', 'oauth2', 'redisCoordination', 'rpErrorHandler', 'RelyingParty'],
  '@openid-express/op': ['op', 'memoryAccounts', 'memoryAdapter', 'redisAdapter', 'webfinger', 'generateKeys', 'unlockLogin', 'password', 'upstream', 'authorizationServerMetadata'],
};

/**
 * A module that type-checks `code` with the names of `scope` declared (after it: imports are hoisted,
 * declarations are types). Throws for a name it does not know.
 */
export function fragmentModule(code: string, scope: string[]): string {
  const lines = scope.map((name) => {
    if (SCOPE[name]) return SCOPE[name];
    const pkg = Object.keys(PACKAGE_EXPORTS).find((p) => PACKAGE_EXPORTS[p]!.includes(name));
    if (pkg) return `import { ${name} } from '${pkg}';`;
    throw new Error(`"${name}" (in scope of a README fragment) is not known: add it to SCOPE or PACKAGE_EXPORTS in test/readme/sandbox.ts`);
  });
  return `${code}\n// in scope (declared by test/readme/sandbox.ts):\n${lines.join('\n')}\nexport {};\n`;
}

/** A process started in the sandbox. */
export interface Running {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output (fails when the process exits first, or after `ms`). */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** The port a server of the program listens on for the port it asked for (from the listen hook). */
  port(asked: number | string): Promise<number>;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the process (its group, for `detached`), SIGKILL after 3 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export interface Sandbox {
  dir: string;
  /** Writes `text` to `path` (relative to the sandbox), creating directories. Returns the absolute path. */
  write(path: string, text: string): string;
  /**
   * `tsc --noEmit` over `files` (relative paths) with the project `config` (written to the sandbox;
   * `options` go over the defaults); resolves with its output, '' when clean.
   */
  typeCheck(files: string[], config?: string, options?: Record<string, unknown>): Promise<string>;
  /** Starts `command args` in `cwd` (relative) with the listen hook; `ports` maps asked ports to real ones (0: free). */
  start(command: string, args: string[], options: { cwd?: string; env?: Record<string, string>; ports?: Record<string, number>; detached?: boolean }): Running;
  /** Stops every process started here that still runs. */
  stopAll(): Promise<void>;
  remove(): void;
}

/** The environment of a fresh shell: the runner's, without what the README's programs read or jest set. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/SECRET|^PORT$|^OP_PORT$|^REDIS_URL$|^NODE_ENV$|^NODE_OPTIONS$|^JEST_|^DEBUG$/.test(k)) env[k] = v;
  }
  return env;
}

export function createSandbox(): Sandbox {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'openid-express-readme-')));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'readme-snippets', private: true, type: 'module' }, null, 2)}\n`);
  for (const [name, target] of Object.entries(LINKS)) {
    const link = join(dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(realpathSync(join(repoRoot, target)), link, 'dir');
  }
  const hook = join(dir, 'listen-hook.mjs');
  copyFileSync(join(__dirname, 'listen-hook.mjs'), hook);
  const running: Running[] = [];

  const sandbox: Sandbox = {
    dir,
    write(path, text) {
      const file = join(dir, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      return file;
    },
    typeCheck(files, config = 'tsconfig.json', options = {}) {
      sandbox.write(config, `${JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'], types: ['node'],
          strict: true, skipLibCheck: true, noEmit: true, allowJs: true, checkJs: true, ...options,
        },
        files,
      }, null, 2)}\n`);
      const tsc = spawn(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, config), '--pretty', 'false'], { cwd: dir });
      let out = '';
      tsc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      tsc.stderr.on('data', (c: Buffer) => (out += c.toString()));
      return new Promise((resolve, reject) => {
        tsc.once('error', reject);
        tsc.once('exit', () => resolve(out.trim()));
      });
    },
    start(command, args, options) {
      const child = spawn(command, args, {
        cwd: join(dir, options.cwd ?? '.'),
        env: {
          ...cleanEnv(),
          ...options.env,
          NODE_OPTIONS: `--import=${hook}`,
          README_SNIPPET_PORTS: JSON.stringify(options.ports ?? {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: options.detached,
      });
      let out = '';
      const listeners = new Set<() => void>();
      const onData = (c: Buffer): void => {
        out += c.toString();
        for (const l of listeners) l();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        // once what it wrote has been read too: 'exit' may come before the last of its output (a program that
        // stopped at start-up was seen with an empty output), 'close' not at all while a child of it holds the pipes
        const drained = (stream: NodeJS.ReadableStream & { readableEnded: boolean }) =>
          new Promise<void>((done) => (stream.readableEnded ? done() : (stream.once('end', done), stream.once('close', done))));
        child.once('exit', (code, signal) => {
          const cap = new Promise<void>((done) => setTimeout(done, 2000).unref());
          void Promise.race([Promise.all([drained(child.stdout!), drained(child.stderr!)]), cap]).then(() => resolve({ code, signal }));
        });
        child.once('error', (err) => {
          out += `\n${err.message}`;
          resolve({ code: -1, signal: null });
        });
      });
      const run: Running = {
        child,
        output: () => out,
        exited,
        waitFor(pattern, ms = 20_000) {
          return new Promise((resolve, reject) => {
            const check = (): void => {
              const m = out.match(pattern);
              if (m) done(() => resolve(m));
            };
            const done = (then: () => void): void => {
              clearTimeout(timer);
              listeners.delete(check);
              then();
            };
            const timer = setTimeout(() => done(() => reject(new Error(`nothing matching ${pattern} within ${ms} ms. Output:\n${out}`))), ms);
            listeners.add(check);
            check();
            void exited.then(({ code, signal }) => {
              if (listeners.has(check)) done(() => reject(new Error(`exited (${code ?? signal}) before printing ${pattern}. Output:\n${out}`)));
            });
          });
        },
        async port(asked) {
          const m = await run.waitFor(new RegExp(`\\[readme-snippet\\] listening on ${asked} -> (\\d+)`));
          return Number(m[1]);
        },
        stop() {
          const signal = (s: NodeJS.Signals): void => {
            try {
              if (options.detached) process.kill(-child.pid!, s); // the shell and what it started in the background
              else child.kill(s);
            } catch { /* gone already */ }
          };
          const over = child.exitCode !== null || child.signalCode !== null;
          if (over && !options.detached) return Promise.resolve();
          signal('SIGTERM');
          if (over) return Promise.resolve();
          const force = setTimeout(() => signal('SIGKILL'), 3_000);
          return exited.then(() => clearTimeout(force));
        },
      };
      running.push(run);
      return run;
    },
    async stopAll() {
      await Promise.all(running.map((r) => r.stop()));
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sandbox;
}
