// A jest reporter that turns a hung test file into a quick, named failure.
//
// jest's testTimeout ends a test whose promise never settles, but not a worker whose main thread is
// blocked (a native deadlock, a synchronous endless loop): jest then waits forever and CI only ends
// at its own time limit, with no word on which file hung. This reporter notes when each file starts;
// a file still running after OPENID_EXPRESS_TEST_FILE_LIMIT seconds (default 300; the slowest file
// takes about a minute) is named on stderr, jest's processes below this one (its workers and what
// the tests started: servers, browsers) are killed, and jest exits with status 1.
'use strict';
const { execFileSync } = require('node:child_process');
const { readdirSync, readFileSync } = require('node:fs');
const { relative } = require('node:path');

/** pid → parent pid of every process we can see (Linux's /proc; elsewhere `ps`). */
function parents() {
  const map = new Map();
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        // the command name (field 2) may hold spaces and parentheses: the parent pid follows the last ')'
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        map.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch { /* the process ended meanwhile */ }
    }
    return map;
  } catch {
    for (const line of execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' }).split('\n')) {
      const [pid, ppid] = line.trim().split(/\s+/).map(Number);
      if (pid) map.set(pid, ppid);
    }
    return map;
  }
}

/** The pids of every process below `root`, children first found first. */
function descendants(root) {
  const byParent = new Map();
  for (const [pid, ppid] of parents()) byParent.set(ppid, [...(byParent.get(ppid) ?? []), pid]);
  const found = [];
  const queue = [root];
  while (queue.length) for (const child of byParent.get(queue.shift()) ?? []) found.push(child), queue.push(child);
  return found;
}

class Watchdog {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.limitSeconds = Number(process.env.OPENID_EXPRESS_TEST_FILE_LIMIT) || 300;
    this.running = new Map();
    this.timer = undefined;
  }

  onTestFileStart(test) {
    this.running.set(test.path, Date.now());
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), Math.min(10_000, this.limitSeconds * 250));
      this.timer.unref();
    }
  }

  onTestFileResult(test) {
    this.running.delete(test.path);
  }

  onRunComplete() {
    clearInterval(this.timer);
  }

  check() {
    const now = Date.now();
    const hung = [...this.running].filter(([, started]) => now - started > this.limitSeconds * 1000);
    if (hung.length === 0) return;
    const names = hung.map(([path, started]) => `  ${relative(this.rootDir, path)} (running for ${Math.round((now - started) / 1000)} s)`);
    const others = [...this.running.keys()].filter((p) => !hung.some(([h]) => h === p)).map((p) => `  ${relative(this.rootDir, p)}`);
    process.stderr.write([
      '',
      `jest watchdog: a test file ran for more than ${this.limitSeconds} s (OPENID_EXPRESS_TEST_FILE_LIMIT); its worker is hung:`,
      ...names,
      ...(others.length ? ['still running beside it (stopped too):', ...others] : []),
      'A worker whose main thread is blocked (a native deadlock, a synchronous loop) gets no testTimeout.',
      'Run that file alone with `node_modules/.bin/jest <file>`, then `gdb -p <worker pid> -batch -ex "thread 1" -ex bt`.',
      'Stopping jest: its workers and every process they started are killed; this run fails.',
      '',
    ].join('\n'));
    for (const pid of descendants(process.pid).reverse()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    process.exit(1);
  }
}

module.exports = Watchdog;
