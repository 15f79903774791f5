/**
 * Ports for servers that a test starts as child processes (redis-server, Apache, an example app),
 * which must be told their port before they bind it.
 *
 * A port is found free by binding port 0 and releasing it, so another process (or one of our own
 * `listen(0)` calls, or an outgoing connection's local port) can take it before the child binds it.
 * That race is rare but real (CI hit it: `listen EADDRINUSE` in `test/cluster`), so whatever starts
 * a child on a port found free does it through {@link onFreePort}, which starts again on a new port
 * when the child failed because the port was taken. `examples/cluster/cluster.js` has its own copy
 * (`onFreePorts`): the example is plain JavaScript and does not import test code.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** A loopback TCP port that was free a moment ago (bound on port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Whether `err` says a port was taken: Node's `EADDRINUSE`, the `Address already in use` that
 * redis-server and Apache (`(98)Address already in use: AH00072: make_sock: could not bind`) write,
 * or the quickstart's `Port N is already in use`.
 */
export function portTaken(err: unknown): boolean {
  const text = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : String(err);
  return /EADDRINUSE|already in use/i.test(text);
}

/**
 * Runs `start` on a port found free; when it fails because that port was taken meanwhile
 * (`taken(err)`, by default {@link portTaken}), runs it again on a new port, up to `attempts` times
 * in all. Any other failure, and the last attempt's, is thrown as it is. `start` must clean up what
 * it started before it throws.
 *
 * @example
 * ```ts
 * const apache = await onFreePort((port) => startApache({ port, ... }));
 * ```
 */
export function onFreePort<T>(start: (port: number) => Promise<T>, taken: (err: unknown) => boolean = portTaken, attempts = 3): Promise<T> {
  return onFreePorts(1, ([port]) => start(port!), taken, attempts);
}

/** {@link onFreePort} for `count` ports at once (all found free, then handed to `start` together). */
export async function onFreePorts<T>(count: number, start: (ports: number[]) => Promise<T>, taken: (err: unknown) => boolean = portTaken, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await Promise.all(Array.from({ length: count }, () => freePort())));
    } catch (err) {
      if (attempt >= attempts || !taken(err)) throw err;
    }
  }
}

/**
 * Who listens on TCP `port` (any local address), read from Linux's `/proc`: `'ours'` when a
 * process of the process group `pgid` (a server spawned detached has its own pid as group) holds
 * the listening socket, `'other'` when only other processes do, `'unknown'` when it cannot tell (no
 * listener any more, no `/proc`, or a process whose file descriptors we may not read). A server that
 * is waited for by connecting to its port would otherwise take a stranger that got the port first
 * for itself, and fail later with a puzzling error.
 */
export function listenerOf(port: number, pgid: number): 'ours' | 'other' | 'unknown' {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try { text = readFileSync(table, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/); // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return 'unknown';
  let unreadable = false;
  for (const pid of groupMembers(pgid)) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { unreadable = true; continue; }
    for (const fd of fds) {
      let target = '';
      try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { /* closed meanwhile */ }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return 'ours';
    }
  }
  return unreadable ? 'unknown' : 'other';
}

/** The pids whose process group is `pgid` (field 5 of `/proc/<pid>/stat`, after the parenthesized name). */
function groupMembers(pgid: number): number[] {
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return []; }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
      if (Number(fields[2]) === pgid) members.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return members;
}
