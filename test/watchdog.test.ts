// The jest watchdog (scripts/jest-watchdog.cjs): a worker whose main thread is blocked gets no
// testTimeout, and jest would wait for it forever. The watchdog names the file, kills the worker and
// what it started, and ends the run with status 1.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './support/eventually.js';

const root = join(__dirname, '..');

/** Whether `pid` runs (a killed process whose parent is gone can stay a zombie until it is reaped: not running). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(pid, 0) answered
  }
}

test('a blocked worker fails the run within the limit, names its file, and leaves no process behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchdog-'));
  const pidsFile = join(dir, 'pids.json');
  const config = {
    rootDir: join(root, 'test/fixtures/watchdog'),
    testMatch: ['**/*.fixture.js'],
    transform: {},
    cacheDirectory: join(dir, 'cache'), // no timings from an earlier run: jest uses workers, not its own thread
    maxWorkers: 2,
    reporters: ['default', join(root, 'scripts/jest-watchdog.cjs')],
  };
  const started = Date.now();
  const jest = spawn(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), '--config', JSON.stringify(config)], {
    cwd: root,
    env: { ...process.env, OPENID_EXPRESS_TEST_FILE_LIMIT: '3', WATCHDOG_PIDS: pidsFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  jest.stdout.on('data', (d: Buffer) => (output += d));
  jest.stderr.on('data', (d: Buffer) => (output += d));
  const status = await new Promise<number | null>((resolve) => jest.on('close', resolve));
  const seconds = (Date.now() - started) / 1000;
  try {
    expect(status).toBe(1);
    expect(seconds).toBeLessThan(25);
    expect(output).toMatch(/jest watchdog: a test file ran for more than 3 s .*\n {2}blocked\.fixture\.js \(running for \d+ s\)/);
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as { worker: number; child: number };
    await eventually(async () => {
      expect(alive(pids.worker)).toBe(false);
      expect(alive(pids.child)).toBe(false);
    }, 5000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
