// Runs a bench several times, each run with fresh processes, and judges its targets over the runs.
//
// On a shared VM a run's median settles within about ±1.5 % with enough rounds, yet runs of the same
// build land up to 5 % apart: each run's processes are placed and compiled differently, and more
// rounds do not average that out (bench/RESULTS.md, 2026-12-03 (afternoon)). More runs do. Each run
// writes its per-round ratios (RATIOS_OUT); this prints, per target, every run's median, their mean
// with a 90 % confidence interval, the median of all rounds pooled, and a verdict: "met" when the
// whole interval is within the target, "not met" when none of it is, else "undecided" (run more).
//
// Usage (the environment goes to every run):
//   RUNS=5 PAIRED=1500 ROUNDS=12 SECONDS=3 ONLY=ours,floor-tokens PHASES=c node bench/repeat.mjs bench/rp-vs-express-openid-connect.mjs
//   RUNS=4 PAIRED=1500 ROUNDS=10 SECONDS=3 node bench/repeat.mjs bench/op-overhead.mjs
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './lib/stats.mjs';

const [script, ...args] = process.argv.slice(2);
if (!script) throw new Error('usage: RUNS=5 node bench/repeat.mjs <bench script> [args]');
const RUNS = Number(process.env.RUNS ?? 5);
if (!(Number.isInteger(RUNS) && RUNS >= 2)) throw new Error('RUNS must be a whole number, at least 2');

// Student's t, two-sided 90 %, by degrees of freedom (1..30; beyond, the normal value)
const T90 = [6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753,
  1.746, 1.74, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697];

/** Mean of `values` with its 90 % confidence interval (t distribution). */
export function interval(values) {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (T90[n - 2] ?? 1.645) * sd / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half };
}

/** "met", "not met" or "undecided": where the interval lies against the target. */
export function verdict({ low, high }, limit, cmp) {
  if (cmp === '≥') return low >= limit ? 'met' : high < limit ? 'not met' : 'undecided';
  return high <= limit ? 'met' : low > limit ? 'not met' : 'undecided';
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-repeat-'));
  const runs = [];
  try {
    for (let run = 1; run <= RUNS; run += 1) {
      const out = join(dir, `run-${run}.json`);
      const started = Date.now();
      const r = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, RATIOS_OUT: out }, stdio: ['ignore', 'ignore', 'inherit'] });
      if (r.status !== 0) throw new Error(`run ${run} of ${script} failed (exit ${r.status})`);
      runs.push(JSON.parse(readFileSync(out, 'utf8')));
      console.error(`run ${run} of ${RUNS} done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n${script}: ${RUNS} runs, each with fresh processes (${Object.entries(process.env).filter(([k]) => /^(PAIRED|ROUNDS|SECONDS|ONLY|VARIANTS|PHASES|BASE|MEASURE)$/.test(k)).map(([k, v]) => `${k}=${v}`).join(' ')})\n`);
  console.log('| target | each run\'s median | mean of the runs (90 % interval) | all rounds pooled, median | target | verdict |\n|---|---|---:|---:|---:|---|');
  for (const { name, limit, cmp } of runs[0]) {
    const per = runs.map((targets) => targets.find((t) => t.name === name)?.ratios ?? []);
    const medians = per.map(median).filter(Number.isFinite);
    if (medians.length < 2) continue;
    const i = interval(medians);
    console.log(`| ${name} | ${medians.map((m) => m.toFixed(3)).join(' ')} | ${i.mean.toFixed(3)}× (${i.low.toFixed(3)}–${i.high.toFixed(3)}) | ${median(per.flat()).toFixed(3)}× | ${cmp} ${limit}× | ${verdict(i, limit, cmp)} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
