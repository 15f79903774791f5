import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { INSTALL_REDIS, launch, stopProcess } from './redis-server.js';

const run = promisify(execFile);

/** A real three-master Redis Cluster on 127.0.0.1, started for a test run. */
export interface RedisCluster {
  /** What node-redis `createCluster({ rootNodes })` needs: every master's `redis://127.0.0.1:<port>`. */
  rootNodes: Array<{ url: string }>;
  /** The masters' client ports (each also uses port + 10000 for the cluster bus). */
  ports: number[];
  /** Stops every node (SIGTERM by PID, SIGKILL after 2 s) and removes their files. */
  stop(): Promise<void>;
}

const SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
const MASTERS = 3;

/**
 * Starts three `redis-server --cluster-enabled yes` nodes in a temp dir, joins them with
 * `redis-cli --cluster create` (no replicas) and waits until every node reports `cluster_state:ok`.
 *
 * @example
 * ```ts
 * let cluster: RedisCluster;
 * beforeAll(async () => { cluster = await startRedisCluster(); }, 60_000);
 * afterAll(() => cluster.stop());
 * const client = await createCluster({ rootNodes: cluster.rootNodes }).connect();
 * ```
 */
export async function startRedisCluster(binaries = { server: SERVER, cli: CLI }): Promise<RedisCluster> {
  if (!existsSync(binaries.server)) throw new Error(`${binaries.server} not found: ${INSTALL_REDIS}`);
  if (!existsSync(binaries.cli)) {
    throw new Error(`${binaries.cli} not found: install it with \`apt-get install -y redis-tools\` (redis-server depends on it; tests need redis-cli to create a cluster)`);
  }
  let lastError: unknown;
  // Ports are probed then released: another process may take one meanwhile, so try again.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
    const nodes: ChildProcess[] = [];
    const stop = async (): Promise<void> => {
      await Promise.all(nodes.map((node) => stopProcess(node, 'SIGTERM')));
      await rm(dir, { recursive: true, force: true });
    };
    try {
      const ports = await clusterPorts(MASTERS);
      for (const port of ports) nodes.push(await launch(binaries.server, port, nodeArgs(dir, port), dir));
      await create(binaries.cli, ports);
      await waitUntilOk(binaries.cli, ports);
      return { rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })), ports, stop };
    } catch (error) {
      lastError = error;
      await stop();
    }
  }
  throw lastError;
}

function nodeArgs(dir: string, port: number): string[] {
  return [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout', '2000',
    '--dir', dir,
  ];
}

async function create(cli: string, ports: number[]): Promise<void> {
  const addresses = ports.map((port) => `127.0.0.1:${port}`);
  try {
    await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`redis-cli --cluster create failed:\n${stdout}${stderr}`, { cause: error });
  }
}

// Every node must have learnt the whole slot map, or a client may be sent to one that has not.
async function waitUntilOk(cli: string, ports: number[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    const infos = await Promise.all(ports.map((port) => clusterInfo(cli, port)));
    if (infos.every((info) => info.includes('cluster_state:ok'))) return;
    last = infos.join('\n---\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the Redis Cluster did not reach cluster_state:ok within 20 s:\n${last}`);
}

async function clusterInfo(cli: string, port: number): Promise<string> {
  try {
    return (await run(cli, ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'], { timeout: 5_000 })).stdout;
  } catch (error) {
    return String((error as Error).message);
  }
}

/**
 * `count` ports whose cluster bus port (port + 10000) is free too: the usual ephemeral ports are
 * too high for that, so they are picked at random from 11000-25000 and probed.
 */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count && tries < 200; tries += 1) {
    const port = 11_000 + Math.floor(Math.random() * 14_000);
    if (ports.includes(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) ports.push(port);
  }
  if (ports.length < count) throw new Error('no free ports for a Redis Cluster between 11000 and 35000');
  return ports;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
