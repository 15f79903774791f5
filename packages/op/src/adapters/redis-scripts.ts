import { createHash } from 'node:crypto';

// Every script here touches the keys of ONE hash slot only, so each runs unchanged on a single
// Redis and on Redis Cluster (where a script spanning slots fails with CROSSSLOT). Where two keys
// must be read and written together (a grant's index and its "revoked" tombstone) their names
// share a hash tag; see redis.ts for the key layout and why revocation stays race-free.

/** A Lua script run with EVALSHA, loaded with EVAL the first time a server does not know it. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Replaces a record (a hash of `payload` and, once consumed, `consumed`) and sets its expiry. A record
 * saved as consumed is settled: no consume lease is left on it (see CONSUME).
 * KEYS: record. ARGV: payload, consumed ('' = not consumed), ttl seconds (0 = forever).
 */
export const UPSERT = script(`
local key, payload, consumed, ttl = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
-- HSET is the first write: Redis checks maxmemory there (OOM under noeviction) before anything changed;
-- a DEL first would let the rest of the script write past maxmemory
local kind = redis.call('TYPE', key).ok
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', key) end
if consumed == '' then
  redis.call('HSET', key, 'payload', payload)
  redis.call('HDEL', key, 'consumed', 'consumer', 'lease')
else
  redis.call('HSET', key, 'payload', payload, 'consumed', consumed)
  redis.call('HDEL', key, 'consumer', 'lease')
end
if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
return 1
`);

/**
 * Adds a record key to its grant's index unless the grant was revoked.
 * KEYS: grant index, grant tombstone (same hash tag). ARGV: record key, ttl seconds (0 = forever).
 * Returns 1 when added, 0 when the tombstone exists: the caller must then delete the record.
 * The index is a sorted set of record keys scored by expiry (ms): expired members are pruned on
 * every write and the set itself lives exactly as long as its longest-lived member.
 */
export const GRANT_ADD = script(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local member, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = '+inf'
if ttl > 0 then expires = string.format('%d', now + ttl * 1000) end
redis.call('ZADD', KEYS[1], expires, member)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] == 'inf' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1
`);

/**
 * Marks a grant revoked and takes its index: sets the tombstone, deletes the index, returns its
 * members (record keys, in other slots: the caller deletes them one by one).
 * KEYS: grant index, grant tombstone (same hash tag). ARGV: least and most tombstone lifetime (ms).
 * The tombstone lives as long as the longest-lived record the index knew, within those bounds,
 * and is never shortened (oidc-provider revokes one grant once per model, concurrently).
 */
export const REVOKE_GRANT = script(`
local least, most = tonumber(ARGV[1]), tonumber(ARGV[2])
local keep = redis.call('PTTL', KEYS[1])
if keep == -1 then keep = most end
keep = math.min(math.max(keep, least), most)
local current = redis.call('PTTL', KEYS[2])
if current ~= -1 and current < keep then redis.call('SET', KEYS[2], '1', 'PX', keep) end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return members
`);

/**
 * Takes a grant index of the layout before Redis Cluster support (no tombstone): deletes it and
 * returns its members. KEYS: the old index. Lets a rolling upgrade still revoke older tokens.
 */
export const TAKE_LEGACY_GRANT = script(`
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return members
`);

// Redis's own clock in ms (one clock for every instance). Scripts may call TIME before writing
// since Redis 5 (scripts are replicated by their effects).
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Marks a record consumed unless it already is. KEYS: record. ARGV: epoch seconds, consumer, lease ms.
 * With a lease (> 0) the consume stays a lease until the consumer's request is about to answer (SETTLE),
 * renewed meanwhile (RENEW): if the instance dies before it answers, the lease runs out, and a
 * retry of the same request may consume the record again (nobody received what the dead one made).
 * Returns 1 when this call consumed it, 3 when it took over a lease that ran out, 2 when it was
 * consumed before (settled, or a lease still held), 0 when there is no record.
 */
export const CONSUME = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local lease = tonumber(ARGV[3])
${NOW_MS}
local held = tonumber(redis.call('HGET', KEYS[1], 'lease'))
local outcome = 2
if redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1]) == 1 then outcome = 1
elseif held and held <= now then outcome = 3
else return 2 end
redis.call('HSET', KEYS[1], 'consumed', ARGV[1], 'consumer', ARGV[2])
if lease > 0 then redis.call('HSET', KEYS[1], 'lease', string.format('%d', now + lease))
else redis.call('HDEL', KEYS[1], 'lease') end
return outcome
`);

/** Keeps a consume lease held while its request works. KEYS: record. ARGV: consumer, lease ms. Returns 1 when renewed. */
export const RENEW = script(`
if redis.call('HGET', KEYS[1], 'consumer') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'lease') == 0 then return 0 end
${NOW_MS}
redis.call('HSET', KEYS[1], 'lease', string.format('%d', now + tonumber(ARGV[2])))
return 1
`);

/**
 * Makes a consume final before its request answers: the lease goes. KEYS: record. ARGV: consumer.
 * Returns 1 when settled, 0 when the consume is no longer this consumer's lease (given back, or run
 * out and taken over by another request: the answer must then not carry what the request made). A
 * lease that ran out but was not taken over is still this consumer's, and settles. -1 when the record
 * is gone: its grant was revoked meanwhile (another request presented it at the same time, a replay)
 * or it expired; nothing can redeem it any more, so a retry would be refused too.
 */
export const SETTLE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'consumer') ~= ARGV[1] then return 0 end
return redis.call('HDEL', KEYS[1], 'lease')
`);

/** Milliseconds left on a record's consume lease (0 or less: run out), nil when it has none. KEYS: record. */
export const LEASE_LEFT = script(`
local held = tonumber(redis.call('HGET', KEYS[1], 'lease'))
if not held then return false end
${NOW_MS}
return held - now
`);

/**
 * Takes back a consume made by the request whose token is ARGV[1] (and only that one: another
 * request's consume of the same record stays). KEYS: the record. Returns 1 when taken back.
 */
export const UNCONSUME = script(`
if redis.call('HGET', KEYS[1], 'consumer') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'consumed', 'consumer', 'lease')
  return 1
end
return 0
`);

/** DECR that never goes below zero (and keeps the expiry). KEYS: counter. */
export const DECREMENT = script(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`);

/** INCR that starts the expiry on the first hit (or on a counter found without one). KEYS: counter. ARGV: ttl. */
export const INCREMENT = script(`
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`);

/**
 * Adds an item due ARGV[1] ms from now by Redis's clock, keeping the queue at most ARGV[3] long
 * (the latest due are dropped). The queue expires a day after its latest item is due: one no OP
 * takes from any more (retired, another prefix) does not stay for good. KEYS: queue. ARGV: delay ms, item, max.
 */
export const SCHEDULE = script(`
${NOW_MS}
local delay = math.max(0, tonumber(ARGV[1]))
redis.call('ZADD', KEYS[1], string.format('%d', now + delay), ARGV[2])
if redis.call('PTTL', KEYS[1]) < delay + 86400000 then redis.call('PEXPIRE', KEYS[1], string.format('%d', delay + 86400000)) end
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], -extra, -1) end
return 1
`);

/** Removes and returns up to ARGV[1] items due by now on Redis's clock. KEYS: queue. */
export const TAKE_DUE = script(`
${NOW_MS}
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, ARGV[1])
if #items > 0 then redis.call('ZREM', KEYS[1], unpack(items)) end
return items
`);

/** The start-up check: writes a key of the prefix, as store calls do, and deletes it (a refusal by ACL, a replica, a password says so at start-up). */
export const STARTUP_CHECK = script(`
redis.call('SET', KEYS[1], '1', 'PX', 1000)
redis.call('DEL', KEYS[1])
return 1`);
