/**
 * One refresh grant per refresh token across every instance. With rotating refresh tokens a second
 * grant replays a used token and the OP revokes the whole grant (a random logout under load), so
 * the instance that takes the lock runs the grant and shares its result; the others wait for it.
 *
 * The shared result holds tokens, so it is sealed (AES-256-GCM) with a key derived from the refresh
 * token it replaces: only a request that held that token can open it.
 */
import { randomUUID } from 'node:crypto';
import type { Coordination } from './coordination.js';
import { RpError } from './errors.js';
import { holdLease } from './lease.js';
import { open as openSealed, seal as sealText } from './sealed.js';
import type { Authentication } from './session.js';

/**
 * How long the lock holds without being renewed: the instance running the grant renews it every
 * `RENEW_MS` until the grant ends, so an instance that dies mid-grant frees it within this.
 */
const LOCK_MS = 6_000;
const RENEW_MS = 2_000;
/**
 * How long a grant that was sent is remembered (`refresh-sent:` key) when its instance could not say
 * how it ended: one cut off from Redis, frozen or killed after the OP may have rotated the token. The
 * others answer 503 meanwhile instead of replaying the token (the OP would revoke the grant), and the
 * instance that ran it keeps trying to share its result that long.
 */
const SENT_MS = 60_000;
/** How long a waiting request waits for the result before it answers 503 (about a store's deadline). */
const WAIT_MS = 4_000;
const POLL_MS = 40;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The result of the grant for `refreshToken` (under `key`): from another instance when one ran it
 * (its result is kept `keepMs`, until `settleSharedRefresh()` shortens it once the session holds the
 * new tokens), else from `grant()` run here under a cross-instance lock.
 *
 * `token` names the refresh token whatever scope the refresh asks for (`key` tells the scopes apart):
 * the lock and the `refresh-sent:` mark are the token's, as a refresh with another scope spends the
 * same token, and a grant that rotated it is kept under it too (`rotatedRefresh`), for `grant()` of
 * such a refresh that ran after it to go on from.
 */
export async function sharedRefresh(
  coordination: Coordination, key: string, refreshToken: string, keepMs: number, grant: () => Promise<Authentication>,
  usable: (result: Authentication) => boolean = () => true, token = key,
): Promise<Authentication> {
  const lockKey = `refresh-lock:${token}`;
  const resultKey = `refresh-result:${key}`;
  const sentKey = `refresh-sent:${token}`;
  const rotatedKey = `refresh-rotated:${token}`;
  const deadline = Date.now() + WAIT_MS;
  const owner = randomUUID();
  for (;;) {
    if (await coordination.setIfAbsent(lockKey, owner, LOCK_MS)) {
      return grantUnderLock(coordination, { lockKey, resultKey, sentKey, rotatedKey }, owner, refreshToken, keepMs, grant, usable);
    }
    // another instance holds (or held) the lock: its result, unless it is an earlier one that is of no use now
    const result = await sharedResult(coordination, resultKey, refreshToken, usable);
    if (result) return result;
    if (Date.now() > deadline) {
      throw new RpError('op_unavailable', 'another request of this session is still refreshing the tokens; try again shortly');
    }
    await sleep(POLL_MS);
  }
}

/**
 * Once the session holds the new tokens, the result only needs to outlive the requests that read the
 * session before (`graceMs`). Until then it is kept long: a session whose save failed (the store
 * stalled) still holds the old refresh token, and this result is then its only way to the new one.
 */
export async function settleSharedRefresh(
  coordination: Coordination, key: string, refreshToken: string, fresh: Authentication, graceMs: number, token?: string,
): Promise<void> {
  const sealed = seal(fresh, refreshToken);
  await Promise.all([
    coordination.set(`refresh-result:${key}`, sealed, graceMs),
    token !== undefined && rotates(fresh, refreshToken) ? coordination.set(`refresh-rotated:${token}`, sealed, graceMs) : undefined,
  ]);
}

/**
 * The latest result of a refresh of `refreshToken` (under `token`, whatever its scope) that rotated it,
 * while it is kept in the store, else undefined.
 */
export async function rotatedRefresh(coordination: Coordination, token: string, refreshToken: string): Promise<Authentication | undefined> {
  return sharedResult(coordination, `refresh-rotated:${token}`, refreshToken, () => true);
}

const rotates = (fresh: Authentication, refreshToken: string): boolean => fresh.refreshToken !== undefined && fresh.refreshToken !== refreshToken;

async function grantUnderLock(
  coordination: Coordination, keys: { lockKey: string; resultKey: string; sentKey: string; rotatedKey: string }, owner: string, refreshToken: string,
  keepMs: number, grant: () => Promise<Authentication>, usable: (result: Authentication) => boolean,
): Promise<Authentication> {
  const { lockKey, resultKey, sentKey, rotatedKey } = keys;
  let earlier: Authentication | undefined;
  let fresh: Authentication | undefined;
  // renewed while the grant runs, so only a dead instance's lock expires under the others
  const lease = holdLease(coordination, lockKey, owner, LOCK_MS, RENEW_MS);
  const release = () => coordination.deleteIfEquals(lockKey, owner).catch(() => undefined);
  try {
    // one outliving an expired lock: never grant twice. And (read at once) whether a grant of this token
    // was sent by an instance that then went quiet (its lock expired): its outcome is unknown, and
    // replaying the token to find out would make an OP that rotated it revoke the grant
    const [kept, first] = await Promise.all([
      sharedResult(coordination, resultKey, refreshToken, usable),
      coordination.setIfAbsent(sentKey, owner, SENT_MS),
    ]);
    earlier = kept;
    if (!earlier && !first) {
      throw new RpError('op_unavailable', 'another instance sent this session\'s refresh to the OpenID Provider and has not said how it ended (it lost Redis, '
        + `or stopped); the tokens are not refreshed again meanwhile (at most ${SENT_MS / 1000} s), as the OP may have replaced them: try again shortly`);
    }
    // (a grant that fails: the OP answered, or could not be reached; the token is as it was)
    if (!earlier) fresh = await grant();
  } catch (err) {
    await lease.stop();
    // no grant of ours is under way (none was sent, or the OP's answer is known): neither the lock nor
    // our mark may hold the next request back (a failed read beside the mark's write left it a minute)
    await Promise.all([release(), coordination.deleteIfEquals(sentKey, owner).catch(() => undefined)]);
    throw err;
  }
  await lease.stop();
  // the grant's outcome is known (shared, or found): a later refresh of this token may run (an OP that
  // does not rotate takes it again once the result's access token expires)
  // (the mark goes before the lock: a request that takes the lock must not find a mark whose outcome is known)
  const settled = async () => {
    await coordination.deleteIfEquals(sentKey, owner).catch(() => undefined);
    await release();
  };
  if (earlier) {
    await settled();
    return earlier;
  }
  // The grant is done: its tokens are the session's now, whatever the store does. Shared, the result
  // lets the lock go (whoever comes next finds it). Not shared (the store failed), the lock is left
  // to expire and the write is tried again meanwhile: the others wait (503, the `refresh-sent:` mark)
  // rather than replay the old token, which an OP that rotates refresh tokens answers by revoking the grant.
  // (a rotated token is kept under the token too, before the lock goes: a refresh of it with another scope
  // that takes the lock next goes on from this result instead of replaying it)
  const sealed = seal(fresh!, refreshToken);
  const share = (key: string) => coordination.set(key, sealed, keepMs);
  const writes = rotates(fresh!, refreshToken) ? [resultKey, rotatedKey] : [resultKey];
  try {
    await Promise.all(writes.map(share));
    await settled();
  } catch {
    void Promise.all(writes.map((key) => shareLater(coordination, key, sealed, keepMs)))
      .then((shared) => (shared.every(Boolean) ? settled() : undefined));
  }
  return fresh!;
}

/**
 * Writes a grant's result again after a store failure, over the life of its `refresh-sent:` mark (the
 * others wait for it that long); true once it is written.
 */
async function shareLater(coordination: Coordination, resultKey: string, sealed: string, keepMs: number): Promise<boolean> {
  for (const wait of [500, 1500, 3000, 5000, 10_000, 20_000, 20_000]) {
    await new Promise((resolve) => setTimeout(resolve, wait).unref());
    if (await coordination.set(resultKey, sealed, keepMs).then(() => true, () => false)) return true;
  }
  return false;
}

/**
 * The result of a refresh of `refreshToken` (under `key`) while it is kept in the store, else
 * undefined (also when it cannot be read or opened).
 */
export async function keptRefresh(coordination: Coordination, key: string, refreshToken: string): Promise<Authentication | undefined> {
  return sharedResult(coordination, `refresh-result:${key}`, refreshToken, () => true).catch(() => undefined);
}

/** The result kept under `resultKey`, opened with the refresh token it replaces, when there is one and it is `usable`. */
async function sharedResult(
  coordination: Coordination, resultKey: string, refreshToken: string, usable: (result: Authentication) => boolean,
): Promise<Authentication | undefined> {
  const shared = await coordination.get(resultKey);
  const result = shared ? open(shared, refreshToken) : undefined;
  return result && usable(result) ? result : undefined;
}

// the purpose 'shared refresh' derives the same key as before sealed.ts: instances of both versions share results
function seal(auth: Authentication, refreshToken: string): string {
  return sealText(JSON.stringify(auth), refreshToken, 'shared refresh');
}

function open(sealed: string, refreshToken: string): Authentication {
  return JSON.parse(openSealed(sealed, refreshToken, 'shared refresh')) as Authentication;
}
