// Instructions per request, counted by Valgrind's callgrind in a server child: a measure this
// shared, noisy VM cannot move (CPU time of two identical apps differs by up to 15 % in one run).
// An instruction is not a microsecond (cache misses and memory stalls are not in it), so the
// benches print both; differences of a few percent between two apps show only here.
//
// Needs the Debian package `valgrind` (valgrind + callgrind_control). The child runs about 50×
// slower under it: warm up with enough requests for V8 to optimise the hot paths first.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The GC schedule of a counted child (`GC=` in the environment). Both are fixed, not driven by the
 * clock, so the count does not move with Valgrind's slowness.
 * - `native` (default): the schedule a native server runs, fixed. The semi-space at Node's usual
 *   16 MB and the old generation growing 3.5× after each mark-compact: calibrated with
 *   `GC=native node bench/op-gc-rate.mjs` (bench/RESULTS.md) so that a native OP with these flags
 *   runs as many requests per scavenge and per mark-compact as one with V8's own heuristics
 *   (≈ 150 and ≈ 2600 under userinfo load, for ours and bare alike). Calibrated on Node 20: on
 *   Node 22 the same flags run a quarter fewer mark-compacts than its own heuristics (≈ 3500 requests each).
 * - `predictable`: V8's `--predictable-gc-schedule` (4 MB semi-space, 1.3× growth), which the
 *   counts before 2026-12-02 (late) used: a mark-compact every ≈ 570 requests instead of ≈ 2600, so
 *   it weighed the live heap's size about five times as heavily as a native server does.
 */
export const GC_SCHEDULES = {
  native: ['--no-memory-reducer', '--min-semi-space-size=16', '--max-semi-space-size=16', '--heap-growing-percent=250'],
  predictable: ['--predictable-gc-schedule'],
};
const GC = process.env.GC ?? 'native';
if (!GC_SCHEDULES[GC]) throw new Error(`GC=${GC}: expected one of ${Object.keys(GC_SCHEDULES).join(', ')}`);

/** V8_FLAGS="--trace-gc …" in the environment: more V8 flags for every bench child (diagnostics). */
export function extraV8Flags() {
  return (process.env.V8_FLAGS ?? '').split(' ').filter(Boolean);
}

/**
 * SIM=1: callgrind also simulates the caches and the branch predictor (about twice as slow). The
 * counts then add, per request, the first-level and last-level cache misses and the mispredicted
 * branches, and `cycles`, callgrind's own estimate of what they cost together
 * (Ir + 10 × (L1 misses + mispredicts) + 100 × LL misses): what an instruction count leaves out
 * and CPU time on this VM (no hardware counters) cannot show apart from its noise.
 */
export const SIM = Boolean(process.env.SIM);

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
      ...(SIM ? ['--cache-sim=yes', '--branch-sim=yes'] : []),
      // V8 without background threads (concurrent marking and compiling get as far as the scheduler
      // lets them) and with a GC schedule that does not follow the clock (under Valgrind a request
      // takes 50× longer, so time-driven collections came far more often, and at random): these
      // moved the counts of one app by up to 25 % between windows
      `--callgrind-out-file=${join(dir, 'out.%p')}`, process.execPath, '--single-threaded', ...GC_SCHEDULES[GC],
      ...extraV8Flags(), ...execArgv,
    ],
  };
}

async function control(pid, ...args) {
  await run('callgrind_control', [...args, String(pid)], { timeout: 120_000 });
}

/** Runs `fn()` with the child's counting off (inside a {@link countInstructions} window). */
export async function pausedWhile(child, fn) {
  await control(child.pid, '--instr=off');
  try {
    return await fn();
  } finally {
    await control(child.pid, '--instr=on');
  }
}

/**
 * Turns the child's counting off and returns what callgrind counted since it was zeroed: the
 * instructions, and with SIM=1 the simulated misses (see SIM) as `sim`.
 */
async function stopCounting(child, dir) {
  await control(child.pid, '--instr=off');
  await control(child.pid, '--dump');
  const dumps = readdirSync(dir).filter((f) => f.startsWith(`out.${child.pid}`));
  // CALLGRIND_KEEP=dir (diagnostics): each window's dumps are copied there, for callgrind_annotate (V8's own
  // C++, the GC, OpenSSL and libuv by symbol; JIT-compiled JavaScript shows as unnamed addresses)
  if (process.env.CALLGRIND_KEEP) for (const f of dumps) copyFileSync(join(dir, f), join(process.env.CALLGRIND_KEEP, `${f}.${Date.now()}`));
  const sums = {};
  for (const f of dumps) {
    const text = readFileSync(join(dir, f), 'utf8');
    const events = /^events: (.+)$/m.exec(text)?.[1].trim().split(/\s+/) ?? ['Ir'];
    const totals = /^totals: (.+)$/m.exec(text)?.[1].trim().split(/\s+/).map(Number) ?? [];
    events.forEach((e, i) => void (sums[e] = (sums[e] ?? 0) + (totals[i] ?? 0)));
  }
  if (!sums.Ir) throw new Error(`callgrind wrote no counts for pid ${child.pid} in ${dir}`);
  const compiler = await compilerInstructions(dir, dumps);
  if (!SIM) return { total: sums.Ir, compiler };
  const l1 = (sums.I1mr ?? 0) + (sums.D1mr ?? 0) + (sums.D1mw ?? 0);
  const ll = (sums.ILmr ?? 0) + (sums.DLmr ?? 0) + (sums.DLmw ?? 0);
  const mispredicted = (sums.Bcm ?? 0) + (sums.Bim ?? 0);
  return { total: sums.Ir, compiler, sim: { l1, ll, mispredicted, cycles: sums.Ir + 10 * (l1 + mispredicted) + 100 * ll } };
}

/** V8's own optimizing compilers (TurboFan, Maglev) and their zones, by the symbols of the node binary. */
const COMPILER = /v8::internal::(compiler|maglev|turboshaft)::|v8::internal::(Zone|Compiler|OptimizedCompilationInfo|OptimizedCompilationJob|TurbofanCompilationJob)\b|v8::internal::(Register|Instruction|Code)(Allocat|Select|Generat)/;

/**
 * The instructions of a window spent in V8's optimizing compilers (callgrind_annotate's self cost by
 * symbol). Under `--single-threaded` they run on the main thread, and they go on long after warm-up:
 * after 3 300 logins a third of a login window was still TurboFan re-optimizing code that library
 * deopts (Node's streams, undici's parser) threw away, in ours and the hand-written app alike
 * (bench/RESULTS.md, session 61). Printed apart, so the code's own cost can be read without that churn.
 */
export async function compilerInstructions(dir, dumps) {
  let sum = 0;
  for (const f of dumps) {
    const { stdout } = await run('callgrind_annotate', ['--threshold=100', join(dir, f)], { maxBuffer: 1 << 28 });
    for (const line of stdout.split('\n')) {
      const m = /^\s*([\d,]+)\s+\(/.exec(line);
      if (m && COMPILER.test(line)) sum += Number(m[1].replaceAll(',', ''));
    }
  }
  return sum;
}

/** Per request: `sim` (SIM=1) divided by `requests`. */
const perRequest = (sim, requests) => (sim ? Object.fromEntries(Object.entries(sim).map(([k, v]) => [k, v / requests])) : {});

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
  const { total, compiler, sim } = await stopCounting(child, dir);
  return { ...result, instructions: total / result.requests, compiler: compiler / result.requests, ...perRequest(sim, result.requests) };
}

/**
 * Like {@link countInstructions}, but the counted window spans exactly `cycles` whole GC cycles:
 * it opens right after a mark-compact and closes right after the `cycles`-th one after it (each end
 * to within one `batch` of requests). A fixed count of requests holds 3 or 4 mark-compacts by luck,
 * and each one weighs ≈ 55 k instructions per request in an 8 000-request userinfo window, so the
 * ratios moved by ±3 % between runs (bench/RESULTS.md, 2026-12-03). `runBatch(n)` makes n requests
 * and resolves with { requests }. Adds `majorGcs` (the cycles counted) to the result.
 */
export async function countInstructionsOverCycles(child, dir, runBatch, { cycles = 3, batch = 200, maxRequests = 100_000 } = {}) {
  const { ask } = await import('./children.mjs');
  const majorGcs = async () => (await ask(child, { cmd: 'majorGcs' }, 120_000)).majorGcs;
  // uncounted: requests until a mark-compact has just run (its report arrives on a later tick: ask twice)
  const before = await majorGcs();
  let uncounted = 0;
  while ((await majorGcs()) === before) {
    if ((uncounted += (await runBatch(batch)).requests) > maxRequests) throw new Error(`no mark-compact in ${uncounted} requests`);
  }
  for (const f of readdirSync(dir)) rmSync(join(dir, f));
  await control(child.pid, '--zero');
  await control(child.pid, '--instr=on');
  const start = await majorGcs();
  if (process.env.V8_FLAGS) console.log(`--- counting pid ${child.pid}`);
  const started = performance.now();
  let requests = 0;
  while ((await majorGcs()) < start + cycles) {
    if ((requests += (await runBatch(batch)).requests) > maxRequests) throw new Error(`${cycles} mark-compacts took more than ${maxRequests} requests`);
  }
  const rps = requests / ((performance.now() - started) / 1000);
  if (process.env.V8_FLAGS) console.log(`--- counted pid ${child.pid}`);
  const { total, compiler, sim } = await stopCounting(child, dir);
  return { requests, rps, instructions: total / requests, compiler: compiler / requests, ...perRequest(sim, requests), majorGcs: (await majorGcs()) - start };
}
