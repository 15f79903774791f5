/**
 * Runs the Authlib relying party (support/authlib_client.py) with Debian's Python: one JSON command
 * in on stdin, one JSON answer out. The `python3` on PATH may be another build without Debian's
 * packages, so the interpreter is named by path.
 */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PYTHON = '/usr/bin/python3';
export const INSTALL = 'apt-get install -y python3-authlib python3-requests';
const DRIVER = join(__dirname, 'authlib_client.py');

/** Throws (never skips) with the install line when Debian's Python, Authlib or requests is missing. */
export function requireAuthlib(): void {
  const check = spawnSync(PYTHON, ['-c', 'import authlib.integrations.requests_client, authlib.oidc.core'], { encoding: 'utf8', timeout: 10_000 });
  if (check.error || check.status !== 0) {
    const why = check.error ? check.error.message : check.stderr.trim().split('\n').at(-1);
    throw new Error(`${PYTHON} cannot load Authlib (${why}): install it with\n  apt-get update && ${INSTALL}`);
  }
}

/** What the driver answers: its result, or `error` (the Python exception's class), `code` (an OAuth error code) and `message`. */
export type DriverAnswer = Record<string, unknown> & { error?: string; code?: string | null; message?: string };

/** Runs one driver command; rejects only when the driver itself fails (crash, timeout, no JSON). */
export function authlib(command: Record<string, unknown>, timeoutMs = 15_000): Promise<DriverAnswer> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [DRIVER], {
      timeout: timeoutMs,
      // the test OP is on http://127.0.0.1: Authlib refuses non-https URLs unless this is set
      env: { ...process.env, AUTHLIB_INSECURE_TRANSPORT: '1' },
    }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`authlib_client.py ${String(command.cmd)} failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as DriverAnswer);
      } catch {
        reject(new Error(`authlib_client.py ${String(command.cmd)} printed no JSON: ${stdout}\n${stderr}`));
      }
    });
    child.stdin!.end(JSON.stringify(command));
  });
}
