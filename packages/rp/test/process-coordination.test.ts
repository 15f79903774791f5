/**
 * rp()'s records (callback claims, locks, back-channel-logout indexes, sign-out marks) with
 * express-session's MemoryStore and no `coordination`: kept in this process (`processCoordination`),
 * with the contract redisCoordination and the session store's coordination keep.
 */
import session from 'express-session';
import { coordinationOf, keepEndedSessionsEnded, processCoordination, sessionStoreCoordination } from '../src/coordination.js';
import { shortLivedPendingLogins } from '../src/pending-life.js';
import { boundStore } from '../src/session-guard.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('chosen for express-session\'s MemoryStore (one per store); any other store keeps the records itself', () => {
  const memory = new session.MemoryStore();
  const c = coordinationOf({ options: {} }, memory);
  expect(coordinationOf({ options: {} }, memory)).toBe(c);
  expect(coordinationOf({ options: {} }, new session.MemoryStore())).not.toBe(c);
  class OwnStore extends session.MemoryStore {}
  const own = new OwnStore();
  const calls: string[] = [];
  const set = own.set.bind(own);
  own.set = (sid, data, cb) => void (calls.push(sid), set(sid, data, cb));
  return coordinationOf({ options: {} }, own).set('k', 'v', 1000).then(() => expect(calls).toEqual(['k']));
});

/** What rp() puts on the session store it is given: a deadline on its methods, pending logins' short life, the sign-out check. */
const wrapLikeRp = (store: session.Store): void => {
  boundStore(store, 3000);
  keepEndedSessionsEnded(store, processCoordination());
  shortLivedPendingLogins(store, 60_000);
};
const sessionCount = (store: session.MemoryStore): Promise<number> => new Promise((resolve) => store.length((_err, n) => resolve(n ?? 0)));

test('a MemoryStore whose get/set/destroy a library replaced on the instance (writing through to a shared store) keeps the records in that store, also under rp()\'s own wrappers; one only rp() wrapped keeps them in this process (review C1)', async () => {
  const wrapped = new session.MemoryStore();
  wrapLikeRp(wrapped);
  await coordinationOf({ options: {} }, wrapped).set('k', 'v', 60_000);
  expect(await sessionCount(wrapped)).toBe(0);
  const shared = new session.MemoryStore();
  const throughs = [0, 1].map(() => {
    const through = new session.MemoryStore();
    through.get = (sid, cb) => shared.get(sid, cb);
    through.set = (sid, data, cb) => shared.set(sid, data, cb);
    through.destroy = (sid, cb) => shared.destroy(sid, cb);
    return through;
  });
  wrapLikeRp(throughs[0]!);
  await coordinationOf({ options: {} }, throughs[0]!).set('k', 'v', 60_000);
  // before: each kept it in its own process map, and another instance writing through to the same store saw nothing
  expect(await sessionCount(shared)).toBe(1);
  expect(await coordinationOf({ options: {} }, throughs[1]!).get('k')).toBe('v');
});

test('setIfAbsent is atomic: of eight concurrent callers one wins; deleteIfEquals and renewIfEquals only for the holder', async () => {
  const c = processCoordination();
  const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => c.setIfAbsent('k', String(i), 5000)));
  expect(wins.filter(Boolean)).toHaveLength(1);
  const holder = String(wins.indexOf(true));
  expect(await c.renewIfEquals!('k', 'not the holder', 5000)).toBe(false);
  await c.deleteIfEquals('k', 'not the holder');
  expect(await c.get('k')).toBe(holder);
  expect(await c.renewIfEquals!('k', holder, 5000)).toBe(true);
  await c.deleteIfEquals('k', holder);
  expect(await c.get('k')).toBeUndefined();
  expect(await c.setIfAbsent('k', 'again', 5000)).toBe(true);
});

test('values expire after their ttl, and a renewal restarts it; a set keeps the longer of its expiries', async () => {
  const c = processCoordination();
  await c.set('short', 'v', 80);
  expect(await c.setIfAbsent('lease', 'me', 80)).toBe(true);
  await sleep(50);
  expect(await c.renewIfEquals!('lease', 'me', 200)).toBe(true);
  await sleep(60);
  expect(await c.get('short')).toBeUndefined();
  expect(await c.get('lease')).toBe('me');
  expect(await c.setIfAbsent('short', 'taken', 1000)).toBe(true);
  await c.addToSet('s', 'a', 1000, 10);
  await c.addToSet('s', 'b', 50, 10); // never shortened: a's login still needs it
  await sleep(80);
  expect(await c.readSet!('s')).toEqual(['a', 'b']);
});

test('addToSet keeps the newest `max` members and answers the size; takeSet empties; readSet leaves; removeFromSet removes only those named', async () => {
  const c = processCoordination();
  expect(await c.addToSet('s', 'a', 5000, 3)).toBe(1);
  expect(await c.addToSet('s', 'b', 5000, 3)).toBe(2);
  expect(await c.addToSet('s', 'a', 5000, 3)).toBe(2); // already there: now the newest
  expect(await c.addToSet('s', 'c', 5000, 3)).toBe(3);
  expect(await c.addToSet('s', 'd', 5000, 3)).toBe(3); // the oldest (b) went
  const read = await c.readSet!('s');
  expect(read).toEqual(['a', 'c', 'd']);
  read.push('changed by the caller');
  expect(await c.readSet!('s')).toEqual(['a', 'c', 'd']);
  await c.addToSet('s', 'e', 5000, 5); // a login while a logout ran
  await c.removeFromSet!('s', ['a', 'c', 'd']);
  expect(await c.readSet!('s')).toEqual(['e']);
  await c.removeFromSet!('s', ['e']);
  expect(await c.readSet!('s')).toEqual([]);
  await c.removeFromSet!('missing', ['x']);
  for (const m of ['x', 'y']) await c.addToSet('t', m, 5000, 10);
  expect(await c.takeSet('t')).toEqual(['x', 'y']);
  expect(await c.takeSet('t')).toEqual([]);
});

test('the session store\'s coordination answers the same to the same calls (the contract both keep)', async () => {
  const script = async (c: ReturnType<typeof processCoordination>) => [
    await c.setIfAbsent('k', 'v', 5000), await c.setIfAbsent('k', 'w', 5000), await c.get('k'),
    await c.addToSet('s', 'a', 5000, 2), await c.addToSet('s', 'b', 5000, 2), await c.addToSet('s', 'c', 5000, 2),
    await c.readSet!('s'), await c.takeSet('s'), await c.deleteIfEquals('k', 'v'), await c.get('k'),
    // a set of one member (kept as that string in the process), growing and shrinking through it
    await c.addToSet('one', 'x', 5000, 5), await c.addToSet('one', 'x', 5000, 5), await c.readSet!('one'),
    await c.removeFromSet!('one', ['y']), await c.readSet!('one'), await c.addToSet('one', 'y', 5000, 1), await c.readSet!('one'),
    await c.addToSet('one', 'z', 5000, 5), await c.removeFromSet!('one', ['y']), await c.readSet!('one'), await c.addToSet('one', 'w', 5000, 5),
    await c.readSet!('one'), await c.removeFromSet!('one', ['z', 'w']), await c.readSet!('one'),
    await c.addToSet('two', 'p', 5000, 5), await c.takeSet('two'), await c.readSet!('two'),
  ];
  expect(await script(processCoordination())).toEqual(await script(sessionStoreCoordination(new session.MemoryStore())));
});
