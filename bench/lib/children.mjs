// Servers run in child processes (the load generator keeps the parent's core); they talk over IPC.
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { GC_SCHEDULES, callgrindFork, extraV8Flags } from './instructions.mjs';

/**
 * Forks `script` with `args`; resolves with { child, first message }. With `profile`, the child
 * writes a V8 CPU profile (.cpuprofile) into `profile` when it exits. With `callgrind`, it runs under
 * Valgrind's callgrind (see instructions.mjs) and the result has `callgrindDir`.
 */
export async function startChild(script, args, { profile, callgrind = false } = {}) {
  let execArgv = ['--expose-gc', ...(callgrind ? [] : nativeV8Flags())];
  if (profile) {
    mkdirSync(profile, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${profile}`);
  }
  let execPath;
  let callgrindDir;
  if (callgrind) ({ execPath, execArgv, dir: callgrindDir } = callgrindFork(execArgv));
  const child = fork(script, args, { execArgv, execPath, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    stderr = stderr.slice(-4000);
  });
  const first = await reply(child, callgrind ? 600_000 : 30_000).catch((err) => {
    throw new Error(`${args.join(' ')}: ${err.message}\n${stderr}`);
  });
  return { child, first, stderr: () => stderr, callgrindDir };
}

/**
 * The V8 flags of a native (not Valgrind) child: V8_FLAGS, and with GC=native|predictable the fixed
 * GC schedule the instruction counts run (to compare its collections with V8's own heuristics,
 * which a native child runs otherwise).
 */
export function nativeV8Flags() {
  return [...(process.env.GC ? ['--single-threaded', ...GC_SCHEDULES[process.env.GC]] : []), ...extraV8Flags()];
}

/** The child's next message (rejects on exit or after `ms`). */
export function reply(child, ms = 60_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(reject, new Error(`no answer within ${ms} ms`)), ms);
    const onMessage = (m) => (m?.error ? done(reject, new Error(m.error)) : done(resolve, m));
    const onExit = (code) => done(reject, new Error(`child exited (${code})`));
    function done(fn, value) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      fn(value);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Sends `message` and waits for the answer. */
export async function ask(child, message, ms) {
  const answer = reply(child, ms);
  child.send(message);
  return answer;
}

/** Asks the child to exit (so a CPU profile gets written) and waits for it. */
export async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ cmd: 'exit' });
  const timer = setTimeout(() => child.kill(), 10_000);
  await exited;
  clearTimeout(timer);
}

/** This child's GC since serveMessages() began: pause time (ms), mark-compacts and scavenges. */
const gc = { ms: 0, major: 0, minor: 0 };

/** A copy of this child's GC totals (see `gc`), for the difference over a measured window. */
export const gcTotals = () => ({ ...gc });

/**
 * In a child: answers messages with `handlers[cmd](message)`, errors as { error }. Every child also
 * answers `majorGcs`: how many mark-compacts it has run (for windows that span whole GC cycles,
 * see countInstructionsOverCycles in instructions.mjs).
 */
export function serveMessages(handlers) {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.ms += entry.duration;
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major += 1;
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor += 1;
    }
  }).observe({ entryTypes: ['gc'] });
  handlers = { majorGcs: () => ({ majorGcs: gc.major }), ...handlers };
  const heapSampling = sampleAllocations();
  process.on('message', async (m) => {
    if (m?.cmd === 'exit') {
      await heapSampling?.();
      process.exit(0);
    }
    try {
      process.send(await handlers[m.cmd](m));
    } catch (err) {
      process.send({ error: `${m?.cmd}: ${err?.stack ?? err}` });
    }
  });
}

/**
 * ALLOC_PROFILE=dir: the child samples every allocation (V8's sampling heap profiler, objects the GC
 * collected included, one sample per 8 KB on average) from its start, and writes a .heapprofile into
 * dir when it exits, named with the number of HTTP requests it answered: where a server allocates, by
 * function (open it in Chrome DevTools, Memory tab; compare two with bench/lib/alloc-diff.mjs).
 */
function sampleAllocations() {
  const dir = process.env.ALLOC_PROFILE;
  if (!dir) return undefined;
  let requests = 0;
  const counted = import('node:diagnostics_channel').then((dc) => dc.subscribe('http.server.request.start', () => void (requests += 1)));
  const started = (async () => {
    const { Session } = await import('node:inspector/promises');
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return session;
  })();
  return async () => {
    const session = await started;
    await counted;
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    // the name says how many HTTP requests the server answered, for bytes per request
    writeFileSync(`${dir}/${process.argv.slice(2, 4).join('-')}-${process.pid}-${requests}req.heapprofile`, JSON.stringify(profile));
  };
}
