import { createHash } from 'node:crypto';

/** A Lua script run with EVALSHA, loaded with EVAL the first time a server does not know it. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Writes a record and its indexes in one step.
 * KEYS: record, grant index, uid index, userCode index.
 * ARGV: payload, consumed ('' = not), ttl seconds (0 = forever), id, then '1'/'0' for each index.
 * The grant index is a sorted set of record keys scored by expiry (ms): expired members are
 * pruned on every write and the set itself lives exactly as long as its longest-lived member.
 */
export const UPSERT = script(`
local key, payload, consumed, ttl, id = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('DEL', key)
if consumed == '' then
  redis.call('HSET', key, 'payload', payload)
else
  redis.call('HSET', key, 'payload', payload, 'consumed', consumed)
end
if ttl > 0 then redis.call('EXPIRE', key, ttl) end
for i = 3, 4 do
  if ARGV[i + 3] == '1' then
    if ttl > 0 then redis.call('SET', KEYS[i], id, 'EX', ttl) else redis.call('SET', KEYS[i], id) end
  end
end
if ARGV[5] == '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires = '+inf'
  if ttl > 0 then expires = string.format('%d', now + ttl * 1000) end
  redis.call('ZADD', KEYS[2], expires, key)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if last[2] == 'inf' then redis.call('PERSIST', KEYS[2]) else redis.call('PEXPIREAT', KEYS[2], last[2]) end
end
return 1
`);

/**
 * Marks a record consumed unless it already is. KEYS: record. ARGV: epoch seconds.
 * Returns 1 when this call consumed it, 2 when it was consumed before, 0 when there is no record.
 */
export const CONSUME = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1]) == 1 then return 1 end
return 2
`);

/** Deletes every record of a grant, then the grant index. KEYS: grant index. Returns how many. */
export const REVOKE_GRANT = script(`
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, member in ipairs(members) do redis.call('DEL', member) end
redis.call('DEL', KEYS[1])
return #members
`);

/** INCR that starts the expiry on the first hit (or on a counter found without one). KEYS: counter. ARGV: ttl. */
export const INCREMENT = script(`
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`);
