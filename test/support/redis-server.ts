import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { onFreePort, portTaken } from './ports.js';

/** A real `redis-server` started for a test run. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The PID of the running process (a new one after {@link RedisServer.restart}). */
  readonly pid: number;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered, like a stalled Redis. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
  /** Kills the server (SIGKILL, no goodbye to clients), like a crashed Redis; waits for it to exit. */
  kill(): Promise<void>;
  /** Starts a fresh, empty server on the same port (after {@link RedisServer.kill} or stop). */
  restart(): Promise<void>;
  /** Stops the server (SIGTERM by PID, SIGKILL after 2 s) and waits for it to exit. */
  stop(): Promise<void>;
}

const DEFAULT_BINARY = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

/** The advice every Redis test support file gives when a binary is missing. */
export const INSTALL_REDIS = 'install it with `apt-get install -y redis-server` (tests need a real Redis)';

/**
 * Starts a throw-away `redis-server` on a free loopback port, without persistence.
 *
 * @example
 * ```ts
 * let redis: RedisServer;
 * beforeAll(async () => { redis = await startRedisServer(); });
 * afterAll(() => redis.stop());
 * ```
 */
export async function startRedisServer(binary = DEFAULT_BINARY): Promise<RedisServer> {
  if (!existsSync(binary)) throw new Error(`${binary} not found: ${INSTALL_REDIS}`);
  // A port found free may be taken before redis-server binds it: then it starts again on another.
  return onFreePort(async (port) => serverOn(binary, port, await launch(binary, port, [])), portTaken, 5);
}

/** What {@link useRedis} gives a test file: the server and a client connected to it, both set in `beforeAll`. */
export interface UsedRedis<C> {
  readonly server: RedisServer;
  readonly client: C;
}

/**
 * A throw-away `redis-server` and a connected client for the test file (or `describe`) it is called
 * in: started in `beforeAll`, the client destroyed and the server stopped in `afterAll`. The client
 * is made by `connect` (the test's own `redis` package, which this shared folder does not depend on).
 *
 * @example
 * ```ts
 * const redis = useRedis((url) => createClient({ url }));
 * test('…', () => redisAdapter(redis.client));
 * ```
 */
export function useRedis<C extends { connect(): Promise<unknown>; destroy(): void; readonly isOpen: boolean }>(connect: (url: string) => C): UsedRedis<C> {
  let server: RedisServer | undefined;
  let client: C | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    client = connect(server.url);
    await client.connect();
  }, 20_000);
  afterAll(async () => {
    if (client?.isOpen) client.destroy();
    await server?.stop();
  });
  const unset = (): never => {
    throw new Error('useRedis(): read .server and .client inside a test or hook, not while the file is loaded');
  };
  return {
    get server() {
      return server ?? unset();
    },
    get client() {
      return client ?? unset();
    },
  };
}

function serverOn(binary: string, port: number, first: ChildProcess): RedisServer {
  let child = first;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    kill: () => stopProcess(child, 'SIGKILL'),
    restart: async () => {
      await stopProcess(child, 'SIGTERM');
      child = await launch(binary, port, []);
    },
    stop: () => stopProcess(child, 'SIGTERM'),
  };
}

/**
 * Spawns `redis-server` on `port` with `extraArgs` and resolves once it accepts connections.
 * Rejects (and kills it) when it exits early or is not ready within 10 s.
 */
export function launch(binary: string, port: number, extraArgs: string[], cwd?: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        child.removeAllListeners('exit');
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`redis-server exited with ${code} before it was ready:\n${output}`)));
  });
}

/** Sends `signal` (SIGKILL after 2 s if it is still there) and waits for the process to exit. */
export function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 2_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    // A paused (SIGSTOPped) server only acts on SIGTERM once it runs again.
    child.kill('SIGCONT');
    child.kill(signal);
  });
}

/** A TCP proxy in front of a Redis that holds back each of its replies by `delayMs` (kept in order): a slow, not stalled, Redis. */
export interface SlowRedis {
  /** `redis://127.0.0.1:<proxy port>` */
  url: string;
  /** Milliseconds each reply is held back; change it at any time (0: none). */
  delayMs: number;
  /**
   * The connections open now stop passing anything either way, without closing (no FIN, no RST: a
   * node gone silently at a failover, a NAT entry dropped); new connections pass as before.
   */
  freeze(): void;
  close(): Promise<void>;
}

/**
 * Starts a {@link SlowRedis} in front of `server`.
 *
 * @example
 * ```ts
 * const slow = await slowRedis(redis.server);
 * slow.delayMs = 300; // every reply 300 ms late
 * ```
 */
export async function slowRedis(server: RedisServer): Promise<SlowRedis> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<{ frozen: boolean }>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(server.port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let last = 0; // replies leave in the order they came
    const open = { frozen: false };
    pairs.add(open);
    client.on('data', (d) => void (open.frozen || upstream.write(d)));
    upstream.on('data', (d) => {
      if (open.frozen) return;
      const at = Math.max(Date.now() + slow.delayMs, last);
      last = at;
      setTimeout(() => client.write(d), at - Date.now());
    });
    const end = () => {
      pairs.delete(open);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const slow: SlowRedis = {
    url: `redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    delayMs: 0,
    freeze: () => {
      for (const pair of pairs) pair.frozen = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
  return slow;
}

/**
 * A TCP proxy that leads to one Redis at a time, as a managed Redis's primary endpoint (a DNS name)
 * does: setting `target` sends the connections made from then on to another server, while the open
 * ones stay on the one they reached (at a failover, the old master).
 */
export interface RedisEndpoint {
  /** `redis://127.0.0.1:<proxy port>` */
  url: string;
  /** The server new connections reach. */
  target: RedisServer;
  close(): Promise<void>;
}

/** Starts a {@link RedisEndpoint} leading to `first`. */
export async function redisEndpoint(first: RedisServer): Promise<RedisEndpoint> {
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(endpoint.target.port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint: RedisEndpoint = {
    url: `redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    target: first,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
  return endpoint;
}

const CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';

/** Runs one command on `server` with redis-cli; its reply as redis-cli prints it. */
export async function redisCli(server: RedisServer, ...args: string[]): Promise<string> {
  return (await promisify(execFile)(CLI, ['-p', String(server.port), ...args], { timeout: 5000 })).stdout.trim();
}

/**
 * A failover behind `endpoint`, as a managed Redis does it: `to` copies the current master, is
 * promoted, the old master becomes its replica (its open connections stay, and get READONLY on
 * writes), and the endpoint leads to `to`.
 */
export async function failOver(endpoint: RedisEndpoint, to: RedisServer): Promise<void> {
  const from = endpoint.target;
  // (a master waits 5 s for more replicas before a diskless full sync by default; a replica loads it from
  // the socket, not through a dump.rdb left in the working directory)
  for (const server of [from, to]) await redisCli(server, 'CONFIG', 'SET', 'repl-diskless-sync-delay', '0', 'repl-diskless-load', 'swapdb');
  await redisCli(to, 'REPLICAOF', '127.0.0.1', String(from.port));
  for (let i = 0; !(await redisCli(to, 'INFO', 'replication')).includes('master_link_status:up'); i++) {
    if (i > 100) throw new Error('failOver(): the new master did not copy the old one within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await redisCli(to, 'REPLICAOF', 'NO', 'ONE');
  endpoint.target = to;
  await redisCli(from, 'REPLICAOF', '127.0.0.1', String(to.port));
}
