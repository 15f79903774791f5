import type { Adapter, AdapterPayload } from 'oidc-provider';
import { GRANTABLE, consumeRefused, ttlSeconds } from './models.js';
import { CONSUME, INCREMENT, REVOKE_GRANT, UPSERT, type Script } from './redis-scripts.js';
import type { OpStore } from './types.js';

/**
 * What the store needs from a Redis client: node-redis v5's `createClient()` (connected) fits.
 * Typed structurally so that memory users never load `redis`.
 */
export interface RedisCommandClient {
  sendCommand(args: string[]): Promise<unknown>;
  readonly isOpen?: boolean;
}

/** Options of {@link redisAdapter}. */
export interface RedisAdapterOptions {
  /** Prepended to every key, so several OPs (or apps) can share one Redis. Default `"oidc:"`. */
  prefix?: string;
}

/**
 * The production store: oidc-provider's records and the login counters in Redis, each key
 * expiring with its record. Consume is atomic (a Lua script), so of two concurrent redemptions of
 * one code only one succeeds. Tested on Redis 7; a single Redis, not Redis Cluster (a grant's
 * tokens, whose keys hash to different slots, are deleted together by one script).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { op, redisAdapter } from '@openid-express/op';
 * const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 * app.use('/op', op({ issuer, clients, accounts, adapter: redisAdapter(redis, { prefix: 'id:' }) }));
 * ```
 */
export function redisAdapter(client: RedisCommandClient, options: RedisAdapterOptions = {}): OpStore {
  if (typeof client?.sendCommand !== 'function') {
    throw new TypeError('redisAdapter(client): pass a node-redis v5 client (createClient() from "redis")');
  }
  if (client.isOpen === false) {
    throw new TypeError('redisAdapter(client): the client is not connected; `await client.connect()` first');
  }
  const prefix = options.prefix ?? 'oidc:';
  if (typeof prefix !== 'string') throw new TypeError('redisAdapter: `prefix` must be a string');
  const redis = new Redis(client);
  const counter = (key: string): string => `${prefix}counter:${key}`;
  return {
    kind: 'redis',
    adapterFor: (model) => new RedisModelAdapter(model, prefix, redis),
    increment: async (key, ttl) => Number(await redis.run(INCREMENT, [counter(key)], [String(Math.max(1, Math.ceil(ttl)))])),
    count: async (key) => Number((await client.sendCommand(['GET', counter(key)])) ?? 0),
    reset: async (key) => void (await client.sendCommand(['DEL', counter(key)])),
  };
}

/** The client plus script running: EVALSHA, falling back to EVAL when the server lacks the script. */
class Redis {
  constructor(readonly client: RedisCommandClient) {}

  async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.client.sendCommand(['EVALSHA', script.sha, ...tail]);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return this.client.sendCommand(['EVAL', script.source, ...tail]);
    }
  }
}

class RedisModelAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly prefix: string,
    private readonly redis: Redis,
  ) {}

  private key(id: string): string {
    return `${this.prefix}${this.model}:${id}`;
  }

  private indexKey(kind: 'uid' | 'userCode' | 'grant', value: string): string {
    return kind === 'grant' ? `${this.prefix}grant:${value}` : `${this.prefix}${kind}:${this.model}:${value}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const { consumed, ...rest } = payload;
    const grant = payload.grantId && GRANTABLE.has(this.model) ? payload.grantId : '';
    const keys = [
      this.key(id),
      this.indexKey('grant', grant),
      this.indexKey('uid', payload.uid ?? ''),
      this.indexKey('userCode', payload.userCode ?? ''),
    ];
    const flags = [grant, payload.uid, payload.userCode].map((value) => (value ? '1' : '0'));
    const consumedArg = consumed === undefined || consumed === null ? '' : String(consumed);
    const args = [JSON.stringify(rest), consumedArg, String(ttlSeconds(expiresIn) ?? 0), id, ...flags];
    await this.redis.run(UPSERT, keys, args);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const reply = await this.redis.client.sendCommand(['HMGET', this.key(id), 'payload', 'consumed']);
    const [payload, consumed] = reply as [string | null, string | null];
    if (typeof payload !== 'string') return undefined;
    const found = JSON.parse(payload) as AdapterPayload;
    return consumed === null || consumed === undefined ? found : { ...found, consumed: Number(consumed) };
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const found = await this.findByIndex('uid', uid);
    return found?.uid === uid ? found : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const found = await this.findByIndex('userCode', userCode);
    return found?.userCode === userCode ? found : undefined;
  }

  // The index may outlive (or predate) its record: callers check the record still matches.
  private async findByIndex(kind: 'uid' | 'userCode', value: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.client.sendCommand(['GET', this.indexKey(kind, value)]);
    return typeof id === 'string' ? this.find(id) : undefined;
  }

  async consume(id: string): Promise<void> {
    const now = String(Math.floor(Date.now() / 1000));
    const outcome = Number(await this.redis.run(CONSUME, [this.key(id)], [now]));
    if (outcome === 0) throw consumeRefused(this.model, 'missing');
    if (outcome === 2) throw consumeRefused(this.model, 'consumed');
  }

  async destroy(id: string): Promise<void> {
    await this.redis.client.sendCommand(['DEL', this.key(id)]);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.redis.run(REVOKE_GRANT, [this.indexKey('grant', grantId)], []);
  }
}
