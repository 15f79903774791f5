import { randomUUID } from 'node:crypto';
import { format } from 'node:util';
import debug from 'debug';
import { createClient } from 'redis';
import { createClient as createClient4 } from 'redis4';
import { Redis } from 'ioredis';
import { unhandledRejectionsDuring } from '../../../test/support/unhandled.js';
import { eventually } from '../../../test/support/eventually.js';
import { failOver, launch, redisCli, redisEndpoint, slowRedis, startRedisServer, stopProcess, type RedisServer } from '../../../test/support/redis-server.js';
import { onFreePort, portTaken } from '../../../test/support/ports.js';
import type { OpStore } from '../src/adapters/types.js';
import { redisAdapter } from '../src/adapters/redis.js';
import { OpConfigError, StoreUnavailableError } from '../src/errors.js';
import { describeSharedStoreContract, describeStoreContract } from './adapter-contract.js';

type Client = ReturnType<typeof createClient>;

let server: RedisServer;
let client: Client;
const extraClients: Client[] = [];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uniquePrefix = (): string => `t-${randomUUID()}:`;

async function connect(): Promise<Client> {
  const extra = createClient({ url: server.url });
  await extra.connect();
  extraClients.push(extra);
  return extra;
}

async function keysUnder(prefix: string): Promise<string[]> {
  return client.keys(`${prefix}*`);
}

beforeAll(async () => {
  server = await startRedisServer();
  client = createClient({ url: server.url });
  await client.connect();
});

afterAll(async () => {
  for (const c of [client, ...extraClients]) if (c?.isOpen) c.destroy();
  await server?.stop();
});

describe('redisAdapter', () => {
  // Every contract test gets its own prefix on the one real server, so no test sees another's keys.
  describeStoreContract({
    create: () => redisAdapter(client, { prefix: uniquePrefix() }),
    elapse: (seconds) => sleep(seconds * 1000),
  });

  describeSharedStoreContract({
    instances: async (count) => {
      const prefix = uniquePrefix();
      return Promise.all(Array.from({ length: count }, async () => redisAdapter(await connect(), { prefix })));
    },
  });

  it('calls itself "redis" for logs', () => {
    expect(redisAdapter(client).kind).toBe('redis');
  });

  it('records survive a new adapter on a new connection: a restarted OP keeps its sessions', async () => {
    const prefix = uniquePrefix();
    const before = redisAdapter(client, { prefix });
    await before.adapterFor('Session').upsert('s-1', { uid: 'uid-1', accountId: 'alice' }, 60);
    await before.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await before.increment('login:alice', 60);

    const after = redisAdapter(await connect(), { prefix });
    expect(await after.adapterFor('Session').findByUid('uid-1')).toEqual({ uid: 'uid-1', accountId: 'alice' });
    expect(await after.count('login:alice')).toBe(1);
    await after.adapterFor('AccessToken').revokeByGrantId('g-1');
    expect(await before.adapterFor('AccessToken').find('at-1')).toBeUndefined();
  });

  it('a shared queue of work to try again: only what is due is taken, each item by one instance, and it stays bounded', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([0, 1].map(async () => redisAdapter(await connect(), { prefix })));
    const now = Date.now();
    for (let i = 0; i < 30; i += 1) await a.schedule!('q', `item-${i}`, now - 1000 + i);
    await a.schedule!('q', 'later', Date.now() + 400);
    // two instances take at once: every due item once, none twice
    const [x, y] = await Promise.all([a.takeDue!('q', Date.now(), 20), b.takeDue!('q', Date.now(), 20)]);
    expect(x.filter((item) => y.includes(item))).toEqual([]);
    expect([...x, ...y].sort()).toEqual(Array.from({ length: 30 }, (_, i) => `item-${i}`).sort());
    expect(await b.takeDue!('q', Date.now(), 20)).toEqual([]);
    await sleep(500);
    expect(await b.takeDue!('q', Date.now(), 20)).toEqual(['later']);
    // a queue nobody takes from stays at most 10 000 long
    // (in chunks: 10 005 at once outlast the adapter's 2 s deadline on a busy machine)
    for (let from = 0; from < 10_005; from += 500) {
      await Promise.all(Array.from({ length: Math.min(500, 10_005 - from) }, (_, i) => a.schedule!('big', `n-${from + i}`, now + from + i)));
    }
    expect(await client.zCard(`${prefix}queue:big`)).toBe(10_000);
  });

  it('the queue expires a day after its latest item is due (one no OP takes from any more does not stay for good); a closed client is not asked', async () => {
    const prefix = uniquePrefix();
    const own = await connect();
    const store = redisAdapter(own, { prefix });
    await store.schedule!('q', 'in-a-minute', Date.now() + 60_000);
    const day = 24 * 3600_000;
    expect(await client.pTTL(`${prefix}queue:q`)).toBeGreaterThan(day + 55_000);
    await store.schedule!('q', 'now', Date.now());
    expect(await client.pTTL(`${prefix}queue:q`)).toBeGreaterThan(day + 55_000); // the later item's life is kept
    await store.schedule!('q', 'in-an-hour', Date.now() + 3600_000);
    expect(await client.pTTL(`${prefix}queue:q`)).toBeGreaterThan(day + 3595_000);
    // the back-channel retries poll takeDue every second: after the app quits its client, nothing is asked (before: a failure a second)
    extraClients.splice(extraClients.indexOf(own), 1);
    await own.quit();
    await expect(store.takeDue!('q', Date.now(), 20)).resolves.toEqual([]);
  });

  it('the shared queue keeps time on Redis\'s clock: an instance whose clock is 10 minutes ahead takes nothing early, and what it schedules is due on time for the others', async () => {
    const prefix = uniquePrefix();
    const [ahead, right] = await Promise.all([0, 1].map(async () => redisAdapter(await connect(), { prefix })));
    /** Runs `call` as the instance whose clock is 10 minutes ahead. */
    const onAheadClock = async <T>(call: () => Promise<T>): Promise<T> => {
      const real = Date.now.bind(Date);
      const skewed = jest.spyOn(Date, 'now').mockImplementation(() => real() + 600_000);
      try {
        return await call();
      } finally {
        skewed.mockRestore();
      }
    };
    await right.schedule!('skew', 'from-right', Date.now() + 400);
    await onAheadClock(() => ahead.schedule!('skew', 'from-ahead', Date.now() + 400));
    // before: the instance ahead took the other's item at once (early), and its own was due 10 minutes late for everyone
    expect(await onAheadClock(() => ahead.takeDue!('skew', Date.now(), 10))).toEqual([]);
    await sleep(500);
    expect((await right.takeDue!('skew', Date.now(), 10)).sort()).toEqual(['from-ahead', 'from-right']);
  });

  it('of ten OP instances redeeming one code at once, exactly one succeeds', async () => {
    const prefix = uniquePrefix();
    const instances = await Promise.all(Array.from({ length: 10 }, async () => redisAdapter(await connect(), { prefix })));
    await instances[0]!.adapterFor('AuthorizationCode').upsert('code-1', { grantId: 'g-1' }, 60);
    const outcomes = await Promise.allSettled(instances.map((s) => s.adapterFor('AuthorizationCode').consume('code-1')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(9);
  });

  it('two OPs with different prefixes share a Redis without seeing each other', async () => {
    const one = redisAdapter(client, { prefix: uniquePrefix() });
    const two = redisAdapter(client, { prefix: uniquePrefix() });
    await one.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await two.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1', scope: 'two' }, 60);
    await one.adapterFor('Session').upsert('s-1', { uid: 'uid-1' }, 60);
    await one.increment('login:alice', 60);

    await two.adapterFor('AccessToken').revokeByGrantId('g-1');

    expect(await one.adapterFor('AccessToken').find('at-1')).toEqual({ grantId: 'g-1' });
    expect(await two.adapterFor('AccessToken').find('at-1')).toBeUndefined();
    expect(await two.adapterFor('Session').findByUid('uid-1')).toBeUndefined();
    expect(await two.count('login:alice')).toBe(0);
  });

  it('writes only under its prefix, and every key it writes expires', async () => {
    const prefix = uniquePrefix();
    const store = redisAdapter(client, { prefix });
    await store.adapterFor('Session').upsert('s-1', { uid: 'uid-1' }, 60);
    await store.adapterFor('DeviceCode').upsert('dc-1', { grantId: 'g-1', userCode: 'ABCD-EFGH' }, 60);
    await store.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    await store.increment('login:alice', 60);

    const keys = await keysUnder(prefix);
    expect(keys.sort()).toEqual(
      [
        'AccessToken:at-1',
        'DeviceCode:dc-1',
        'Session:s-1',
        'counter:login:alice',
        'grant:{g-1}',
        'uid:Session:uid-1',
        'userCode:DeviceCode:ABCD-EFGH',
      ].map((k) => prefix + k),
    );
    for (const key of keys) {
      const ttl = await client.ttl(key);
      // a device code is kept 60 s past its expiry (expired_token), and its grant's index as long as its longest record
      const max = key.includes('DeviceCode') || key.includes('grant:') ? 120 : 60;
      expect([key, ttl > 0 && ttl <= max]).toEqual([key, true]);
    }
  });

  it('a grant index lives as long as its longest-lived token and drops expired ones', async () => {
    const prefix = uniquePrefix();
    const tokens = redisAdapter(client, { prefix }).adapterFor('AccessToken');
    await tokens.upsert('at-long', { grantId: 'g-1' }, 30);
    await tokens.upsert('at-short', { grantId: 'g-1' }, 1);
    const ttl = await client.pTTL(`${prefix}grant:{g-1}`);
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);

    await sleep(1_200);
    await tokens.upsert('at-next', { grantId: 'g-1' }, 1);
    expect((await client.zRange(`${prefix}grant:{g-1}`, 0, -1)).sort()).toEqual([
      `${prefix}AccessToken:at-long`,
      `${prefix}AccessToken:at-next`,
    ]);
  });

  it('keeps working after the server forgot its scripts (restart, SCRIPT FLUSH)', async () => {
    const store = redisAdapter(client, { prefix: uniquePrefix() });
    await store.adapterFor('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 60);
    await client.scriptFlush();
    await store.adapterFor('RefreshToken').consume('rt-1');
    expect(await store.adapterFor('RefreshToken').find('rt-1')).toMatchObject({ consumed: expect.any(Number) });
    await client.scriptFlush();
    expect(await store.increment('login:alice', 60)).toBe(1);
  });

  it('refuses, with a message saying what to do, a client that is not connected or not a client', () => {
    expect(() => redisAdapter(createClient({ url: server.url }))).toThrow(/not connected.*client\.connect\(\)/);
    expect(() => redisAdapter({} as never)).toThrow(/node-redis v5 client/);
    expect(() => redisAdapter(client, { prefix: 42 as never })).toThrow(/prefix/);
    expect(() => redisAdapter(client, { prefix: 'a{}b:' })).toThrow(/empty hash tag/);
    expect(() => redisAdapter({} as never)).toThrow(OpConfigError);
    expect(() => redisAdapter(null as never)).toThrow(expect.objectContaining({ option: 'adapter', code: 'op_config_invalid' }));
  });

  it('refuses an ioredis client and a node-redis v4 client at start-up, saying to pass node-redis v5', async () => {
    // both have a sendCommand of another kind: with ioredis every request failed with a 500 (TypeError:
    // command.setReplyContext is not a function); v4 takes no abort signal, so a command given up on could run later
    const ioredis = new Redis(server.url, { lazyConnect: true });
    const v4 = createClient4({ url: server.url });
    await Promise.all([ioredis.connect(), v4.connect()]);
    try {
      expect(() => redisAdapter(ioredis as never)).toThrow(OpConfigError);
      expect(() => redisAdapter(ioredis as never)).toThrow(/this is an ioredis client; pass a node-redis v5 client \(`npm install redis@5`/);
      expect(() => redisAdapter(v4 as never)).toThrow(/not a node-redis v5 client \(node-redis v4\?\).*redis5@npm:redis@5/);
    } finally {
      ioredis.disconnect();
      await v4.disconnect();
    }
  });

  it('refuses unknown options and a client still being connected (a Promise), saying what to pass', () => {
    const unknown = () => redisAdapter(client, { keyPrefix: 'id:' } as never);
    expect(unknown).toThrow(OpConfigError);
    expect(unknown).toThrow(/unknown option `keyPrefix`; the options are `prefix`.*and `timeout`/);
    const pending = createClient({ url: server.url }).on('error', () => undefined);
    const connecting = pending.connect();
    try {
      expect(() => redisAdapter(connecting as never)).toThrow(OpConfigError);
      expect(() => redisAdapter(connecting as never)).toThrow(/got a Promise.*await createClient\(\{ url \}\)\.connect\(\)/);
    } finally {
      void connecting.then(() => pending.destroy(), () => undefined);
    }
  });

  it('refuses a timeout that is not a positive whole number of milliseconds', () => {
    for (const timeout of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 31, '2000' as never]) {
      expect(() => redisAdapter(client, { timeout })).toThrow(OpConfigError);
      expect(() => redisAdapter(client, { timeout })).toThrow(/`timeout` must be a whole number of milliseconds/);
    }
    expect(redisAdapter(client, { timeout: 1 }).kind).toBe('redis');
  });

  it('keeps revoking the tokens indexed under the grant key of earlier versions', async () => {
    const prefix = uniquePrefix();
    // What the previous UPSERT script wrote: the record and an untagged grant index.
    await client.hSet(`${prefix}AccessToken:at-old`, 'payload', JSON.stringify({ grantId: 'g-1' }));
    await client.zAdd(`${prefix}grant:g-1`, { score: Date.now() + 60_000, value: `${prefix}AccessToken:at-old` });
    const tokens = redisAdapter(client, { prefix }).adapterFor('AccessToken');
    expect(await tokens.find('at-old')).toEqual({ grantId: 'g-1' });
    await tokens.revokeByGrantId('g-1');
    expect(await tokens.find('at-old')).toBeUndefined();
    expect(await keysUnder(prefix)).toEqual([`${prefix}grant:{g-1}:revoked`]);
  });

  it('a revoked grant leaves a tombstone that expires, at least an hour, and refuses late tokens', async () => {
    const prefix = uniquePrefix();
    const store = redisAdapter(client, { prefix });
    await store.adapterFor('RefreshToken').upsert('rt-1', { grantId: 'g-1' }, 2 * 3600);
    await store.adapterFor('AccessToken').revokeByGrantId('g-1');
    await store.adapterFor('RefreshToken').revokeByGrantId('g-1'); // oidc-provider revokes per model: must not shorten it
    const ttl = await client.pTTL(`${prefix}grant:{g-1}:revoked`);
    expect(ttl).toBeGreaterThan(2 * 3600_000 - 5_000);
    expect(ttl).toBeLessThanOrEqual(2 * 3600_000);

    await store.adapterFor('AccessToken').upsert('at-late', { grantId: 'g-1' }, 60);
    expect(await store.adapterFor('AccessToken').find('at-late')).toBeUndefined();

    await store.adapterFor('AccessToken').revokeByGrantId('g-unknown');
    expect(await client.pTTL(`${prefix}grant:{g-unknown}:revoked`)).toBeGreaterThan(3600_000 - 5_000);
  });

  it('a machine without redis-server is told how to install it, not skipped', async () => {
    await expect(startRedisServer('/nonexistent/redis-server')).rejects.toThrow(/apt-get install -y redis-server/);
  });

  it('surfaces Redis errors instead of hiding them', async () => {
    const prefix = uniquePrefix();
    await client.set(`${prefix}counter:login:alice`, 'not a number');
    await expect(redisAdapter(client, { prefix }).increment('login:alice', 60)).rejects.toThrow(/not an integer/);
    await client.set(`${prefix}AccessToken:at-1`, 'a string, not a hash');
    const wrongType = redisAdapter(client, { prefix }).adapterFor('AccessToken').find('at-1');
    await expect(wrongType).rejects.toThrow(/WRONGTYPE/);
    await expect(wrongType).rejects.not.toBeInstanceOf(StoreUnavailableError);
  });

  it('a closed client makes every call fail fast with StoreUnavailableError, naming Redis and what to check', async () => {
    const closed = await connect();
    const store = redisAdapter(closed);
    closed.destroy();
    const error = await store.adapterFor('AccessToken').find('at-secret-id').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: 'store_unavailable', status: 503, retryAfter: 5 });
    expect((error as Error).message).toMatch(/Redis is unavailable \(ClientClosedError\) for AccessToken\.find: check that Redis is running/);
    expect((error as Error).message).not.toContain('at-secret-id');
  });
});

/** One closure per store call: each must end within the deadline, whatever Redis does. */
function everyCall(store: OpStore): Record<string, () => Promise<unknown>> {
  const tokens = store.adapterFor('AccessToken');
  return {
    find: () => tokens.find('at-1'),
    upsert: () => tokens.upsert('at-2', { grantId: 'g-1' }, 60),
    consume: () => store.adapterFor('AuthorizationCode').consume('code-1'),
    destroy: () => tokens.destroy('at-1'),
    revokeByGrantId: () => tokens.revokeByGrantId('g-1'),
    findByUid: () => store.adapterFor('Session').findByUid('uid-1'),
    findByUserCode: () => store.adapterFor('DeviceCode').findByUserCode('ABCD-EFGH'),
    increment: () => store.increment('login:alice', 60),
    count: () => store.count('login:alice'),
    reset: () => store.reset('login:alice'),
  };
}

/** Runs every call at once; resolves to how each ended and how long it took. */
async function outcomes(store: OpStore): Promise<Array<{ call: string; error: unknown; ms: number }>> {
  return Promise.all(
    Object.entries(everyCall(store)).map(async ([call, run]) => {
      const started = performance.now();
      const error = await run().then(() => undefined, (e: unknown) => e);
      return { call, error, ms: performance.now() - started };
    }),
  );
}


describe('the start-up check', () => {
  it('never fails the app: a client that runs the check\'s script but throws on CONFIG and TIME leaves no unhandled rejection', async () => {
    const unhandled = await unhandledRejectionsDuring(() => redisAdapter({
      isOpen: true,
      withTypeMapping: () => undefined,
      sendCommand: (args: string[]) => {
        if (args[0] === 'EVALSHA') return Promise.resolve(1);
        throw new TypeError('this client does not take that command');
      },
    }));
    expect(unhandled).toEqual([]); // before: a TypeError that ended a plain Node process
  });
});

describe("a node-redis client without an 'error' listener", () => {
  it('gets one from redisAdapter: Redis going away does not end the process, the log says how to add your own', async () => {
    const blip = await startRedisServer();
    const bare = createClient({ url: blip.url, socket: { reconnectStrategy: 50 } });
    await bare.connect();
    const lines: string[] = [];
    const log = jest.spyOn(debug, 'log').mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
    debug.enable('openid-express:op');
    try {
      expect(bare.listenerCount('error')).toBe(0);
      const store = redisAdapter(bare, { timeout: 500 });
      expect(bare.listenerCount('error')).toBe(1);
      await blip.kill(); // node-redis emits 'error': without a listener, an uncaught exception ends the process
      await eventually(async () => expect(lines.join('\n')).toContain('redis client error'), 5_000);
      expect(lines[0]).toContain('redisAdapter added an "error" listener because the client had none');
      expect(lines[0]).toContain(".on('error', (err) => ...) before redisAdapter(client)");
      await blip.restart();
      await eventually(() => store.count('login:erin'), 10_000);
    } finally {
      debug.disable();
      log.mockRestore();
      if (bare.isOpen) bare.destroy();
      await blip.stop();
    }
  });

  it("leaves a client that has the app's own listener as it is", async () => {
    const own = createClient({ url: server.url }).on('error', () => undefined);
    await own.connect();
    try {
      redisAdapter(own);
      expect(own.listenerCount('error')).toBe(1);
    } finally {
      own.destroy();
    }
  });
});

describe('redisAdapter when Redis stalls or goes away', () => {
  let outage: RedisServer;
  let outageClient: Client;
  let offlineClient: Client;

  beforeAll(async () => {
    outage = await startRedisServer();
    // node-redis emits 'error' while it reconnects: an app must listen, or the process dies.
    outageClient = createClient({ url: outage.url }).on('error', () => undefined);
    await outageClient.connect();
    offlineClient = createClient({ url: outage.url, disableOfflineQueue: true }).on('error', () => undefined);
    await offlineClient.connect();
  });

  afterAll(async () => {
    outage?.resume();
    for (const c of [outageClient, offlineClient]) if (c?.isOpen) c.destroy();
    await outage?.stop();
  });

  it('a stalled (SIGSTOPped) Redis makes every call reject with StoreUnavailableError within the default timeout', async () => {
    const store = redisAdapter(outageClient);
    await store.adapterFor('AccessToken').upsert('at-1', { grantId: 'g-1' }, 60);
    outage.pause();
    let ended: Awaited<ReturnType<typeof outcomes>>;
    try {
      ended = await outcomes(store);
    } finally {
      outage.resume();
    }
    for (const { call, error, ms } of ended) {
      expect([call, error]).toEqual([call, expect.any(StoreUnavailableError)]);
      expect([call, (error as Error).message]).toEqual([call, expect.stringMatching(/^Redis did not answer (\w+\.\w+|a sign-in counter's \w+) within 2000 ms: check that Redis is running/)]);
      expect([call, ms]).toEqual([call, expect.any(Number)]);
      expect(ms).toBeGreaterThanOrEqual(1_990);
      expect(ms).toBeLessThan(2_000 + 500);
    }
    expect((ended.find((o) => o.call === 'find')!.error as Error).message).not.toContain('at-1');
    // (said as what it is: "did not answer reset" named nothing a reader knows, probe30-chaos)
    expect((ended.find((o) => o.call === 'reset')!.error as Error).message).toMatch(/^Redis did not answer a sign-in counter's reset within/);
  });

  // at a failover the old node can vanish without closing its connections (no FIN, no RST): node-redis
  // then waited on a dead connection until the kernel gave up on it (~15 min on Linux), every call a 503
  it('a connection that stops answering while Redis answers: a missed deadline finds it dead, the client is reconnected, calls succeed again; a stalled Redis is left alone', async () => {
    const relay = await slowRedis(outage);
    const client = createClient({ url: relay.url }).on('error', () => undefined);
    await client.connect();
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const said = () => warn.mock.calls.flat().join('\n');
    try {
      const store = redisAdapter(client, { timeout: 300, prefix: uniquePrefix() });
      const tokens = store.adapterFor('AccessToken');
      await tokens.upsert('at-stuck', { grantId: 'g-stuck' }, 60);
      // a stalled Redis first: the check's new connection gets no answer either, nothing is reconnected
      outage.pause();
      try {
        await expect(tokens.find('at-stuck')).rejects.toBeInstanceOf(StoreUnavailableError);
        await sleep(700);
      } finally {
        outage.resume();
      }
      await eventually(async () => expect(await tokens.find('at-stuck')).toEqual({ grantId: 'g-stuck' }), 10_000);
      expect(said()).not.toContain('stopped answering');
      await sleep(700); // (one check per two deadlines)
      relay.freeze();
      await expect(tokens.find('at-stuck')).rejects.toBeInstanceOf(StoreUnavailableError);
      await eventually(async () => expect(await tokens.find('at-stuck')).toEqual({ grantId: 'g-stuck' }), 10_000); // before: 503 for good
      expect(said()).toMatch(/\[@openid-express\/op\] redisAdapter: the connection to Redis stopped answering while a new one to the same Redis answered at once/);
    } finally {
      warn.mockRestore();
      client.destroy();
      await relay.close();
    }
  }, 30_000);

  it('a Redis whose replies are each 60 % of `timeout` late, just restarted (scripts forgotten: EVALSHA, NOSCRIPT, EVAL): calls of several commands succeed, a stall still fails within `timeout`', async () => {
    const slow = await slowRedis(outage);
    const slowClient = createClient({ url: slow.url }).on('error', () => undefined);
    await slowClient.connect();
    try {
      const store = redisAdapter(slowClient, { timeout: 1000, prefix: uniquePrefix() });
      await sleep(200); // its start-up checks
      await outageClient.scriptFlush();
      slow.delayMs = 600; // (a 1 s timeout, not 0.5 s: 400 ms left for a loaded CI machine's delays, where 200 ms failed at times)
      const tokens = store.adapterFor('AccessToken');
      // before: every command of a call shared one deadline, and each of these failed
      await tokens.upsert('at-slow', { grantId: 'g-slow' }, 60); // the record and the grant index: 2 scripts, each NOSCRIPT then EVAL
      expect(await tokens.find('at-slow')).toEqual({ grantId: 'g-slow' });
      expect(await store.increment('login:slow', 60)).toBe(1);
      outage.pause();
      const started = Date.now();
      await expect(tokens.find('at-slow')).rejects.toThrow(/^Redis did not answer AccessToken.find within 1000 ms/);
      expect(Date.now() - started).toBeLessThan(1800);
    } finally {
      outage.resume();
      slowClient.destroy();
      await slow.close();
    }
  }, 60_000);

  it('the same adapter works again once the stalled Redis runs again', async () => {
    const store = redisAdapter(outageClient, { timeout: 300 });
    await store.adapterFor('AccessToken').upsert('at-9', { grantId: 'g-9' }, 60);
    outage.pause();
    try {
      await expect(store.adapterFor('AccessToken').find('at-9')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      outage.resume();
    }
    expect(await store.adapterFor('AccessToken').find('at-9')).toEqual({ grantId: 'g-9' });
    expect(await store.increment('login:bob', 60)).toBe(1);
  });

  it('a command given up on while Redis stalls is dropped with its call, not run by the Redis that comes back (what was answered 503 changed nothing); no AbortSignal.timeout per command', async () => {
    const store = redisAdapter(outageClient, { timeout: 300, prefix: 'late:' });
    await store.count('warm');
    await new Promise((r) => setTimeout(r, 300)); // (the start-up checks, outside any store call, keep node-redis's timeout)
    const timeouts = jest.spyOn(AbortSignal, 'timeout');
    try {
      const tokens = store.adapterFor('AccessToken');
      for (let i = 0; i < 20; i++) await tokens.upsert(`at-t${i}`, { grantId: 'g-t' }, 60);
      expect(timeouts).not.toHaveBeenCalled(); // node-redis's own timeout: one per command, each timer outliving its answer
      outage.pause();
      // big writes fill the socket: what comes after waits in node-redis's queue, not yet written
      const big = 'x'.repeat(2 * 1024 * 1024);
      const stalled = Array.from({ length: 12 }, (_, i) => store.adapterFor('Session').upsert(`s${i}`, { accountId: 'alice', big } as never, 60).catch(() => 'failed'));
      await expect(store.increment('answered-failed', 60)).rejects.toBeInstanceOf(StoreUnavailableError);
      await Promise.all(stalled);
      await outage.kill(); // replaced by an empty one (a restart, a failover)
      await outage.restart();
      await eventually(() => store.count('check'), 10_000);
      await new Promise((r) => setTimeout(r, 300));
      // before (no timeout given while the client said it was ready): the counter was written after the reconnect
      expect(await outageClient.keys('late:*answered-failed*')).toEqual([]);
      expect(timeouts).not.toHaveBeenCalled();
    } finally {
      timeouts.mockRestore();
      outage.resume();
    }
  });

  it('a killed Redis fails every call with StoreUnavailableError, and a restarted one serves the same adapter', async () => {
    const store = redisAdapter(outageClient, { timeout: 500 });
    await outage.kill();
    for (const { call, error, ms } of await outcomes(store)) {
      expect([call, error]).toEqual([call, expect.any(StoreUnavailableError)]);
      // In flight when the socket closed, or queued while the client reconnects: both name Redis.
      expect([call, (error as Error).message]).toEqual([call, expect.stringMatching(/^Redis is (unavailable \(SocketClosedUnexpectedlyError\)|unreachable \(the client is reconnecting\))/)]);
      expect([call, ms < 500 + 500]).toEqual([call, true]);
    }
    // A client without an offline queue fails at once: its own error becomes StoreUnavailableError too.
    const offline = redisAdapter(offlineClient);
    await eventually(async () => expect(offlineClient.isReady).toBe(false), 5_000);
    await expect(offline.count('login:dave')).rejects.toThrow(/^Redis is unavailable \(ClientOfflineError\) for a sign-in counter's read/);
    await outage.restart();
    // node-redis reconnects on its own (backoff of up to a few hundred ms): no new client.
    await eventually(() => store.count('login:carol'), 10_000);
    await eventually(() => offline.count('login:carol'), 10_000);
    const tokens = store.adapterFor('AccessToken');
    await tokens.upsert('at-3', { grantId: 'g-3' }, 60);
    expect(await tokens.find('at-3')).toEqual({ grantId: 'g-3' });
    await tokens.revokeByGrantId('g-3');
    expect(await tokens.find('at-3')).toBeUndefined();
  });
});

describe('redisAdapter when Redis refuses (a replica after a failover, out of memory, a password it was not given)', () => {
  let other: RedisServer;
  let admin: Client;
  let warn: jest.SpyInstance;
  beforeAll(async () => {
    other = await startRedisServer();
    admin = createClient({ url: other.url });
    await admin.connect();
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterAll(async () => {
    warn.mockRestore();
    if (admin?.isOpen) admin.destroy();
    await other?.stop();
  });

  it('READONLY (the client reaches a replica): StoreUnavailableError (503) that says to point the client at the master, and one warning', async () => {
    await admin.sendCommand(['REPLICAOF', '127.0.0.1', String(server.port)]);
    try {
      const store = redisAdapter(admin, { prefix: uniquePrefix() });
      const refused = await store.adapterFor('AccessToken').upsert('at-ro', { grantId: 'g' }, 60).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as Error).message).toMatch(/READONLY.*read-only replica.*current master/);
      expect(await store.adapterFor('AccessToken').find('at-ro')).toBeUndefined(); // reads still work
      expect(warn.mock.calls.flat().join('\n')).toContain('READONLY');
    } finally {
      await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']);
    }
  });

  it('OOM (maxmemory reached, noeviction): StoreUnavailableError that says to raise maxmemory', async () => {
    await admin.sendCommand(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    await admin.sendCommand(['CONFIG', 'SET', 'maxmemory', '1']);
    try {
      const store = redisAdapter(admin, { prefix: uniquePrefix() });
      const refused = await store.increment('login:x', 60).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as Error).message).toMatch(/OOM.*raise maxmemory, or find which keys grew/);
      expect((refused as StoreUnavailableError).lasting).toBe(true); // its page does not promise a few seconds (it frees room only as keys expire)
      // a record write is refused before it writes anything (not past maxmemory)
      const keysBefore = await admin.dbSize();
      await expect(store.adapterFor('AccessToken').upsert('at-oom', { grantId: 'g', big: 'x'.repeat(10_000) }, 60)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await admin.dbSize()).toBe(keysBefore);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxmemory', '0']);
    }
  });

  it('an eviction policy (volatile-lru, as managed Redis often has): said at start-up with what to set; noeviction: nothing said', async () => {
    const said = () => warn.mock.calls.flat().join('\n');
    await admin.sendCommand(['CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru']);
    try {
      warn.mockClear();
      redisAdapter(admin, { prefix: uniquePrefix() });
      for (let i = 0; i < 40 && !said().includes('maxmemory-policy'); i++) await sleep(25);
      expect(said()).toMatch(/Redis runs with maxmemory-policy volatile-lru: once it is full it deletes keys before they expire.*Set maxmemory-policy noeviction/);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    }
    warn.mockClear();
    const store = redisAdapter(admin, { prefix: uniquePrefix() });
    await store.increment('login:y', 60); // after the start-up check's replies
    await sleep(100);
    expect(said()).not.toContain('maxmemory-policy');
  });

  it('this server\'s clock 45 s ahead of Redis\'s (and so of the other instances\'): said at start-up, with what to do; in time: nothing said', async () => {
    const said = () => warn.mock.calls.flat().join('\n');
    const real = Date.now.bind(Date);
    const ahead = jest.spyOn(Date, 'now').mockImplementation(() => real() + 45_000);
    try {
      warn.mockClear();
      redisAdapter(admin, { prefix: uniquePrefix() });
      for (let i = 0; i < 40 && !said().includes('clock'); i++) await sleep(25);
    } finally {
      ahead.mockRestore();
    }
    expect(said()).toMatch(/redisAdapter: this server's clock is 45 s ahead of Redis's, and so likely of the other instances'.*keep every server in time \(NTP/);
    warn.mockClear();
    const store = redisAdapter(admin, { prefix: uniquePrefix() });
    await store.increment('login:z', 60);
    await sleep(100);
    expect(said()).not.toContain('clock');
  });

  it('a clock that goes wrong after start-up (NTP stopped, a VM resumed) is said at the next check, ten minutes on; the check ends with its client', async () => {
    const said = () => warn.mock.calls.flat().join('\n');
    // only setInterval is faked: Redis's replies and the waits below run on real timers
    jest.useFakeTimers({ doNotFake: ['Date', 'hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout'] });
    const client = createClient({ url: other.url });
    let ahead: jest.SpyInstance | undefined;
    try {
      await client.connect();
      warn.mockClear();
      const store = redisAdapter(client, { prefix: uniquePrefix() });
      await store.increment('login:c', 60); // after the start-up check's replies
      await sleep(100);
      expect(said()).not.toContain('clock'); // in time at start-up
      const real = Date.now.bind(Date);
      ahead = jest.spyOn(Date, 'now').mockImplementation(() => real() + 45_000);
      jest.advanceTimersByTime(9 * 60_000);
      await sleep(100);
      expect(said()).not.toContain('clock');
      jest.advanceTimersByTime(60_000);
      await eventually(async () => expect(said()).toMatch(/redisAdapter: this server's clock is 45 s ahead of Redis's/), 2000); // before: said only at start-up
      client.destroy();
      jest.advanceTimersByTime(10 * 60_000);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      ahead?.mockRestore();
      jest.useRealTimers();
      if (client.isOpen) client.destroy();
    }
  });

  it('NOAUTH (Redis needs a password the client was not given): StoreUnavailableError that says where to give it', async () => {
    await admin.sendCommand(['CONFIG', 'SET', 'requirepass', 'redis-secret-0123']);
    const noPassword = createClient({ url: other.url }).on('error', () => undefined);
    try {
      await noPassword.connect();
      const store = redisAdapter(noPassword, { prefix: uniquePrefix() });
      // said at start-up (a PING), before any request needs the store
      for (let i = 0; i < 40 && !warn.mock.calls.flat().join('\n').includes('NOAUTH'); i++) await sleep(25);
      expect(warn.mock.calls.flat().join('\n')).toMatch(/NOAUTH Authentication required.\) for its start-up check \(a script writing a key of the prefix\): Redis needs a password/);
      const refused = await store.adapterFor('Session').find('s-1').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as Error).message).toMatch(/NOAUTH.*needs a password.*redis:\/\/:password@/);
    } finally {
      if (noPassword.isOpen) noPassword.destroy();
      await admin.sendCommand(['CONFIG', 'SET', 'requirepass', '']);
    }
  });

  // a managed Redis's ACL user (e.g. ElastiCache's RBAC): a user that may not run scripts, or whose key
  // pattern leaves out the prefix. Before, both were silent at start-up and the first sign-in was a 500
  it.each([
    ['may not run scripts', '+@all -@scripting', '~*', /no permissions to run the 'evalsha' command/],
    ['has keys that leave out the prefix', '+@all', '~someone-else:*', /no permissions to access one of the keys/],
  ])('NOPERM (an ACL user that %s): said at start-up, and a call is a StoreUnavailableError (503) naming the ACL', async (_what, commands, keys, redisSays) => {
    await admin.sendCommand(['ACL', 'SETUSER', 'app', 'reset', 'on', '>app-secret-0123', keys, '&*', ...commands.split(' ')]);
    const user = createClient({ url: other.url, username: 'app', password: 'app-secret-0123' }).on('error', () => undefined);
    warn.mockClear();
    try {
      await user.connect();
      const store = redisAdapter(user, { prefix: uniquePrefix() });
      for (let i = 0; i < 40 && !warn.mock.calls.flat().join('\n').includes('NOPERM'); i++) await sleep(25);
      expect(warn.mock.calls.flat().join('\n')).toMatch(/Redis is unavailable \(NOPERM .*\) for its start-up check .*the Redis user \(ACL\) may not run a command or touch a key the store needs: it needs the scripting commands EVAL and EVALSHA .*every key under redisAdapter's prefix/);
      expect(warn.mock.calls.flat().join('\n')).toMatch(redisSays);
      const refused = await store.increment('login:n', 60).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError); // before: the Redis reply itself, a 500
      expect((refused as Error).message).toMatch(/NOPERM.*\(ACL\)/);
    } finally {
      if (user.isOpen) user.destroy();
      await admin.sendCommand(['ACL', 'DELUSER', 'app']);
    }
  });

  it('max number of clients without a password: Redis writes its refusal and closes, node-redis says only "Socket closed unexpectedly"; the 503s after the first and the log name the limit', async () => {
    const client = createClient({ url: other.url, socket: { reconnectStrategy: 50 } }).on('error', () => undefined);
    await client.connect();
    const store = redisAdapter(client, { prefix: uniquePrefix(), timeout: 300 });
    await store.increment('login:m0', 60);
    await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '1']);
    try {
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
      await sleep(200);
      await eventually(async () => {
        const refused = await store.adapterFor('Session').find('s-0').catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(StoreUnavailableError);
        expect((refused as Error).message).toMatch(/max number of clients reached.*as many connections as it allows \(maxclients/); // before: "Redis is unreachable (the client is reconnecting)"
      }, 3000);
      expect(warn.mock.calls.flat().join('\n')).toMatch(/\[@openid-express\/op\] Redis is unavailable \(ERR max number of clients reached\)/);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
      if (client.isOpen) client.destroy();
    }
  });

  it('max number of clients (a connection lost, its reconnection refused at the limit): StoreUnavailableError (503) saying what to raise', async () => {
    // with a password, as managed Redis has: Redis then answers the reconnection's AUTH with the refusal
    await admin.sendCommand(['ACL', 'SETUSER', 'app', 'reset', 'on', '>app-secret-0123', '~*', '&*', '+@all']);
    const client = createClient({ url: other.url, username: 'app', password: 'app-secret-0123', socket: { reconnectStrategy: 50 } }).on('error', () => undefined);
    await client.connect();
    const store = redisAdapter(client, { prefix: uniquePrefix(), timeout: 1000 });
    await store.increment('login:m', 60);
    // only the admin's connection fits; the store's is dropped (a failover, an idle timeout) and comes back refused
    await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '1']);
    try {
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
      await sleep(300);
      const refused = await store.adapterFor('Session').find('s-1').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError); // before: the reply itself, a 500
      expect((refused as Error).message).toMatch(/max number of clients reached.*as many connections as it allows \(maxclients/);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
      if (client.isOpen) client.destroy();
      await admin.sendCommand(['ACL', 'DELUSER', 'app']);
    }
  });
});

// a managed Redis's primary endpoint (a DNS name, a TCP proxy) leads to the new master after a
// failover, but node-redis's open connection stays on the old one, now a replica: every write got
// READONLY (503) until the OP was restarted
describe('redisAdapter at a failover behind one endpoint', () => {
  let a: RedisServer;
  let b: RedisServer;
  let warn: jest.SpyInstance;
  const said = (): string => warn.mock.calls.flat().join('\n');

  beforeAll(async () => {
    [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
  });
  beforeEach(() => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => warn.mockRestore());
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  /**
   * A client through an endpoint leading to `from` (the master now), as `user` when given; the endpoint then
   * fails over to `to`: the client gets READONLY, is reconnected, and its writes succeed again.
   */
  async function recoversAtFailover(from: RedisServer, to: RedisServer, user?: string): Promise<void> {
    const endpoint = await redisEndpoint(from);
    const client = createClient({ url: user ? endpoint.url.replace('//', `//${user}@`) : endpoint.url }).on('error', () => undefined);
    await client.connect();
    try {
      const store = redisAdapter(client, { prefix: uniquePrefix() });
      const tokens = store.adapterFor('AccessToken');
      await tokens.upsert('at-1', { grantId: 'g-1' }, 60);
      await failOver(endpoint, to);
      const refused = await tokens.upsert('at-2', { grantId: 'g-2' }, 60).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as Error).message).toMatch(/READONLY.*when a new connection to the client's address reaches the master .*reconnected within seconds; otherwise point the client at the current master/);
      await eventually(() => tokens.upsert('at-2', { grantId: 'g-2' }, 60), 8000); // before: READONLY until restarted
      expect(await tokens.find('at-1')).toEqual({ grantId: 'g-1' });
      expect(await redisCli(to, 'KEYS', '*at-2*')).toContain('at-2'); // written on the new master
      expect(said()).toMatch(/\[@openid-express\/op\] redisAdapter: Redis answered READONLY on this connection .*a new connection to the same address reaches the master .*reconnecting it/);
    } finally {
      client.destroy();
      await endpoint.close();
    }
  }

  it('READONLY on the old connection while a new one to the same address reaches the master: the client is reconnected, writes succeed again', async () => {
    await recoversAtFailover(a, b);
  }, 30_000);

  it('an address that names a replica: not reconnected (a new connection reaches a replica too), READONLY says to point it at the master', async () => {
    await redisCli(a, 'REPLICAOF', '127.0.0.1', String(b.port)); // (a is b's replica after the test above; so it stays when run alone)
    const client = createClient({ url: a.url }).on('error', () => undefined);
    await client.connect();
    try {
      const id = await client.clientId();
      const store = redisAdapter(client, { prefix: uniquePrefix() });
      for (let i = 0; i < 3; i++) await expect(store.adapterFor('AccessToken').upsert(`at-r${i}`, { grantId: 'g' }, 60)).rejects.toThrow(/READONLY.*otherwise point the client at the current master/);
      await sleep(1000);
      expect(await client.clientId()).toBe(id); // the same connection
      expect(said()).not.toContain('reconnecting it');
    } finally {
      client.destroy();
    }
  }, 60_000);

  // ROLE is @dangerous: the check used to ask only ROLE, and such a user's client got READONLY until the OP was restarted
  it('the same for an ACL user of the README\'s +@all -@dangerous, which may not run ROLE (the role is read from HELLO)', async () => {
    for (const server of [a, b]) await redisCli(server, 'ACL', 'SETUSER', 'app', 'on', '>app-password', '~*', '&*', '+@all', '-@dangerous');
    try {
      // (b is the master after the tests above; a its replica)
      await recoversAtFailover(b, a, 'app:app-password');
    } finally {
      for (const server of [a, b]) await redisCli(server, 'ACL', 'DELUSER', 'app');
    }
  }, 30_000);

  // (an ACL cannot deny HELLO, which every connection may send; a server can disable it, as some managed ones rename commands)
  it('READONLY where the role can be asked neither with HELLO (disabled) nor with ROLE (the ACL): the log says to let the user run ROLE', async () => {
    // a's replica (a is the master after the test above)
    const { port, replica } = await onFreePort(async (p) => ({ port: p, replica: await launch(process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server', p,
      ['--rename-command', 'HELLO', '', '--repl-diskless-load', 'swapdb', '--replicaof', '127.0.0.1', String(a.port)]) }), portTaken, 5);
    const client = createClient({ url: `redis://app:app-password@127.0.0.1:${port}` }).on('error', () => undefined);
    try {
      await redisCli({ port } as RedisServer, 'ACL', 'SETUSER', 'app', 'on', '>app-password', '~*', '&*', '+@all', '-@dangerous');
      await client.connect();
      await expect(redisAdapter(client, { prefix: uniquePrefix() }).adapterFor('AccessToken').upsert('at-d', { grantId: 'g' }, 60)).rejects.toThrow(/READONLY/);
      await eventually(async () => expect(said()).toMatch(/\[@openid-express\/op\] redisAdapter: Redis answered READONLY, .*could not be checked: Redis refused both HELLO and ROLE \(NOPERM.*let the Redis user run ROLE \(\+role\)/), 5000);
    } finally {
      client.destroy();
      await stopProcess(replica, 'SIGTERM');
    }
  }, 40_000);
});
