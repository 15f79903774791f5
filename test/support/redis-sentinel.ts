import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onFreePorts, portTaken } from './ports.js';
import { INSTALL_REDIS, launch, stopProcess } from './redis-server.js';

const run = promisify(execFile);
const SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
const NAME = 'mymaster';

/** A real Redis master + replica watched by one Sentinel on 127.0.0.1, started for a test run. */
export interface RedisSentinel {
  /** The master's name at Sentinel ("mymaster"). */
  name: string;
  /** What node-redis `createSentinel({ name, sentinelRootNodes })` needs. */
  sentinelRootNodes: Array<{ host: string; port: number }>;
  /** The port of the node that is master now, as Sentinel says. */
  masterPort(): Promise<number>;
  /** Asks Sentinel for a failover (the replica becomes master) and waits until the new master serves and the old one follows it. */
  failover(): Promise<number>;
  /** Waits until the replica holds every write the master took so far (replication is asynchronous: it can take a second). */
  replicated(): Promise<void>;
  /** Stops every process and removes their files. */
  stop(): Promise<void>;
}

const cli = async (port: number, ...args: string[]): Promise<string> => (await run(CLI, ['-p', String(port), ...args], { timeout: 5000 })).stdout.trim();

/**
 * Starts a master, one replica of it and one Sentinel (quorum 1, a failover after 1 s of silence)
 * in a temp dir, and waits until Sentinel knows the replica.
 *
 * @example
 * ```ts
 * let sentinel: RedisSentinel;
 * beforeAll(async () => { sentinel = await startRedisSentinel(); }, 60_000);
 * afterAll(() => sentinel.stop());
 * const client = await createSentinel({ name: sentinel.name, sentinelRootNodes: sentinel.sentinelRootNodes }).connect();
 * ```
 */
export async function startRedisSentinel(): Promise<RedisSentinel> {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} not found: ${INSTALL_REDIS}`);
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: install it with \`apt-get install -y redis-tools\``);
  return onFreePorts(3, async ([masterPort, replicaPort, sentinelPort]) => {
    const dir = await mkdtemp(join(tmpdir(), 'redis-sentinel-'));
    const children: ChildProcess[] = [];
    const stop = async (): Promise<void> => {
      await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')));
      await rm(dir, { recursive: true, force: true });
    };
    try {
      // no 5 s wait for more replicas before the first full sync (Redis 7's diskless default)
      const sync = ['--repl-diskless-sync-delay', '0'];
      children.push(await launch(SERVER, masterPort!, sync, dir));
      children.push(await launch(SERVER, replicaPort!, [...sync, '--replicaof', '127.0.0.1', String(masterPort)], dir));
      // a failover before the replica's first sync promotes an empty server: a test's writes vanish.
      // After a diskless sync the master streams writes only once the replica's first ACK (sent each
      // second) has put it online: the replica's own "link up" comes before that
      await until('the replica is in sync', async () => /slave0:.*state=online/.test(await cli(masterPort!, 'INFO', 'replication').catch(() => '')));
      const conf = join(dir, 'sentinel.conf');
      await writeFile(conf, [
        `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 5000`, '',
      ].join('\n'));
      const sentinel = spawn(SERVER, [conf, '--sentinel'], { stdio: 'ignore', cwd: dir });
      children.push(sentinel);
      await until('Sentinel knows the replica', async () => (await cli(sentinelPort!, 'SENTINEL', 'REPLICAS', NAME).catch(() => '')).includes(String(replicaPort)));
      const masterNow = async (): Promise<number> => Number((await cli(sentinelPort!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME)).split('\n')[1]);
      return {
        name: NAME,
        sentinelRootNodes: [{ host: '127.0.0.1', port: sentinelPort! }],
        masterPort: masterNow,
        async failover() {
          const before = await masterNow();
          await cli(sentinelPort!, 'SENTINEL', 'FAILOVER', NAME);
          let after = before;
          await until('the replica is master', async () => {
            after = await masterNow();
            return after !== before && /role:master/.test(await cli(after, 'INFO', 'replication'));
          });
          // and the old master is a replica of it: until then it still takes writes, which its
          // conversion throws away (asynchronous replication), so a test's write could vanish
          await until('the old master follows the new one', async () => /role:slave/.test(await cli(before, 'INFO', 'replication').catch(() => '')));
          return after;
        },
        async replicated() {
          const master = await masterNow();
          const replica = master === masterPort ? replicaPort! : masterPort!;
          const offset = (port: number, field: string) => cli(port, 'INFO', 'replication').then((info) => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1));
          const written = await offset(master, 'master_repl_offset');
          await until('the replica has every write', async () => (await offset(replica, 'slave_repl_offset')) >= written);
        },
        stop,
      };
    } catch (error) {
      await stop();
      throw error;
    }
  }, portTaken);
}

async function until(what: string, probe: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What `useSentinelClient` needs of node-redis's createSentinel (passed in: test/support does not depend on `redis`). */
interface SentinelClient {
  on(event: 'error', listener: (err: unknown) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
}

/**
 * In a test file: starts a Sentinel topology before the tests and a client of it made by `create`
 * (node-redis's `createSentinel`), connected; stops both after them.
 *
 * @example
 * ```ts
 * const sentinel = useSentinelClient((o) => createSentinel(o));
 * test('…', () => redisAdapter(sentinel.client()));
 * ```
 */
export function useSentinelClient<C extends SentinelClient>(create: (o: { name: string; sentinelRootNodes: RedisSentinel['sentinelRootNodes'] }) => C): { topology(): RedisSentinel; client(): C } {
  let topology: RedisSentinel | undefined;
  let client: C | undefined;
  beforeAll(async () => {
    topology = await startRedisSentinel();
    client = create({ name: topology.name, sentinelRootNodes: topology.sentinelRootNodes });
    client.on('error', () => undefined);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await topology?.stop();
  });
  return { topology: () => topology!, client: () => client! };
}
