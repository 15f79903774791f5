import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** The repository root (tests run from it, and examples live under it). */
export const repoRoot = join(__dirname, '..', '..');

/** A script started as a user would start it: `node <file>`, from the built packages. */
export interface RunningScript {
  /** Every line it printed so far (stdout and stderr). */
  output(): string;
  /** Sends SIGTERM (SIGKILL after 3 s) and waits for the exit. */
  stop(): Promise<void>;
  child: ChildProcess;
}

/**
 * Spawns `node file` with `env` added and waits until its stdout matches `ready`; returns the
 * match and a handle. Fails loudly with the output when the script exits or takes over 60 s.
 *
 * @example
 *   const { match, script } = await runScript('examples/rp-social/server.js', { PORT: '0' }, /open (\S+)/);
 */
export async function runScript(
  file: string,
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ match: RegExpMatchArray; script: RunningScript }> {
  const child = spawn(process.execPath, [join(repoRoot, file)], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const script: RunningScript = { output: () => output, stop: () => stop(child), child };
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => fail(`${file} printed nothing matching ${ready} within 60 s`), 60_000);
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}. Its output:\n${output}`));
    };
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString();
      const m = output.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('error', (e) => fail(`${file} could not start: ${e.message}`));
    child.once('exit', (code, signal) => fail(`${file} exited (${code ?? signal}) before it was ready`));
  });
  child.removeAllListeners('exit');
  return { match, script };
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
