// Instructions per request, counted by Valgrind's callgrind in a server child: a measure this
// shared, noisy VM cannot move (CPU time of two identical apps differs by up to 15 % in one run).
// An instruction is not a microsecond (cache misses and memory stalls are not in it), so the
// benches print both; differences of a few percent between two apps show only here.
//
// Needs the Debian package `valgrind` (valgrind + callgrind_control). The child runs about 50×
// slower under it: warm up with enough requests for V8 to optimise the hot paths first.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** True when valgrind and callgrind_control are on this machine. */
export function haveCallgrind() {
  return ['/usr/bin/valgrind', '/usr/bin/callgrind_control'].every((p) => existsSync(p));
}

/**
 * The `fork()` options that run a child under callgrind with counting off until
 * {@link countInstructions} turns it on. Returns { execPath, execArgv, dir } for startChild.
 */
export function callgrindFork(execArgv) {
  if (!haveCallgrind()) throw new Error('instruction counts need Valgrind: apt-get install -y valgrind');
  const dir = mkdtempSync(join(tmpdir(), 'openid-express-callgrind-'));
  return {
    dir,
    execPath: '/usr/bin/valgrind',
    execArgv: [
      '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--quiet',
      // V8 without background threads (concurrent marking and compiling get as far as the scheduler
      // lets them) and with a GC schedule that does not follow the clock (under Valgrind a request
      // takes 50× longer, so time-driven collections came far more often, and at random): these
      // moved the counts of one app by up to 25 % between windows
      `--callgrind-out-file=${join(dir, 'out.%p')}`, process.execPath, '--single-threaded', '--predictable-gc-schedule',
      // V8_FLAGS="--trace-deopt …": more flags for every counted child (diagnostics)
      ...(process.env.V8_FLAGS ?? '').split(' ').filter(Boolean), ...execArgv,
    ],
  };
}

async function control(pid, ...args) {
  await run('callgrind_control', [...args, String(pid)], { timeout: 120_000 });
}

/**
 * Runs `measure()` (which returns { requests, ... }) with callgrind counting in the child, and
 * adds `instructions` (per request) to its result.
 */
export async function countInstructions(child, dir, measure) {
  for (const f of readdirSync(dir)) rmSync(join(dir, f));
  await control(child.pid, '--zero');
  await control(child.pid, '--instr=on');
  if (process.env.V8_FLAGS) console.log(`--- counting pid ${child.pid}`);
  const result = await measure();
  if (process.env.V8_FLAGS) console.log(`--- counted pid ${child.pid}`);
  await control(child.pid, '--instr=off');
  await control(child.pid, '--dump');
  const dumps = readdirSync(dir).filter((f) => f.startsWith(`out.${child.pid}`));
  let total = 0;
  for (const f of dumps) total += Number(/^totals: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'))?.[1] ?? 0);
  if (!total) throw new Error(`callgrind wrote no counts for pid ${child.pid} in ${dir}`);
  return { ...result, instructions: total / result.requests };
}
