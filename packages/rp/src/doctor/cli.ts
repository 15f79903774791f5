/**
 * `openid-express doctor --app ./app.js`: imports the app module (which exports the Express app as
 * `default` or `app`, or the `rp()` router), finds the `rp()` router(s) in it, runs `doctor()` and prints
 * the checklist. Exit code 0 when nothing failed, 1 when a check failed, 2 for a usage or import error.
 * The bin (../cli.ts) adds what only a process of its own may do: listen() redirected, process.exit().
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Application } from 'express';
import type { RpRouter } from '../router.js';
import { inspectApp, isApp, isRpRouter } from './app.js';
import { doctor, formatReport, type DoctorReport } from './index.js';

export const USAGE = `Usage: openid-express doctor --app <module> [--instances <n>] [--json]

  --app <module>    a module exporting your Express app (export default app, export { app },
                    module.exports = app) or the router rp() returned. If it calls app.listen(), the
                    server gets a free loopback port instead (the running app keeps its own).
  --instances <n>   how many instances of the app serve the same baseURL (checks for a shared session
                    store and rp({ coordination })); default 1
  --json            print the report as JSON

Runs with this process's environment: set NODE_ENV and the app's secrets as where it runs.
Exit code: 0 all checks passed (or skipped), 1 a check failed, 2 usage or import error.`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Imports the module at an absolute path (default: import()). */
  load?: (file: string) => Promise<unknown>;
  cwd?: string;
}

/** The app or router a module exports: `default`, `app`, `router` (awaited when a promise). */
async function exported(mod: unknown): Promise<Application | RpRouter | undefined> {
  const m = mod as Record<string, unknown> | undefined;
  for (const candidate of [m?.default, m?.app, m?.router, (m?.default as Record<string, unknown> | undefined)?.app, mod]) {
    const value = candidate instanceof Promise ? await candidate : candidate;
    if (isRpRouter(value) || isApp(value)) return value;
  }
  return undefined;
}

/** Runs the CLI with `argv` (the arguments after the program name); returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const args = [...argv];
  if (args[0] === 'doctor') args.shift();
  let appPath: string | undefined;
  let instances = 1;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string | undefined => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i]);
    if (a === '--help' || a === '-h') {
      io.out(USAGE);
      return 0;
    } else if (a === '--app' || a.startsWith('--app=')) {
      appPath = value();
    } else if (a === '--instances' || a.startsWith('--instances=')) {
      instances = Number(value());
    } else if (a === '--json') {
      json = true;
    } else {
      io.err(`openid-express: unknown argument "${a}"\n\n${USAGE}`);
      return 2;
    }
  }
  if (!appPath) {
    io.err(`openid-express doctor: --app is required\n\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(instances) || instances < 1) {
    io.err('openid-express doctor: --instances must be a whole number >= 1');
    return 2;
  }
  const file = resolve(io.cwd ?? process.cwd(), appPath);
  let target: Application | RpRouter | undefined;
  try {
    target = await exported(await (io.load ?? ((f: string) => import(pathToFileURL(f).href)))(file));
  } catch (err) {
    // rp()'s own start-up check (an OptionsError) already says what to fix: its message is enough
    const e = err as Error | undefined;
    io.err(`openid-express doctor: could not import ${file}: ${e?.name === 'OptionsError' ? e.message : e?.stack ?? err}`);
    return 2;
  }
  if (!target) {
    io.err(`openid-express doctor: ${file} exports no Express app and no rp() router: add \`export default app\` (or \`export { app }\`, module.exports = app)`);
    return 2;
  }
  const app = isApp(target) ? target : undefined;
  const routers = app ? inspectApp(app).routers : [target as RpRouter];
  if (routers.length === 0) {
    io.err(`openid-express doctor: no rp() router is mounted in the app exported by ${file} (app.use(rp({ ... })))`);
    return 2;
  }
  const reports: DoctorReport[] = [];
  for (const router of routers) reports.push(await doctor(router, { app, instances }));
  io.out(json ? JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2) : reports.map(formatReport).join('\n\n'));
  return reports.every((r) => r.ok) ? 0 : 1;
}
