/**
 * Two tabs of one browser starting a sign-in at the same moment (tabs probe F1): each login start
 * reads the session, adds its pending login and saves the session. Both pending logins must be
 * kept, whichever save lands last; on a MemoryStore and on connect-redis over a real redis-server.
 */
import type session from 'express-session';
import type request from 'supertest';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import { startRp, type ListableStore, type TestRp } from './support/rp-app.js';
import { expectTabSignsIn } from './support/expect.js';
import { pendingLogins } from '../src/transactions.js';

type Cb = (err?: unknown, value?: unknown) => void;

/** Holds the store's next `set` (or the answer to its next `get`) of a session until released. */
class Holder {
  private held?: { release: () => void };
  private seen?: () => void;
  holdSet = false;
  holdGet = false;
  /** Resolves once a call is held. */
  reached = new Promise<void>((resolve) => (this.seen = resolve));
  private onSet?: () => void;

  wrap(store: ListableStore): void {
    const { set, get } = store;
    store.set = (sid: string, data: session.SessionData, cb?: Cb) => {
      if (!this.holdSet) {
        this.onSet?.();
        return set.call(store, sid, data, cb);
      }
      this.holdSet = false;
      this.held = { release: () => set.call(store, sid, data, cb) };
      this.seen!();
    };
    store.get = (sid: string, cb: (err: unknown, value?: session.SessionData | null) => void) => {
      if (!this.holdGet) return get.call(store, sid, cb);
      this.holdGet = false;
      // read now, answered when released: the request goes on with the session as it was at this moment
      get.call(store, sid, (err: unknown, value?: session.SessionData | null) => {
        this.held = { release: () => cb(err, value) };
        this.seen!();
      });
    };
  }

  /** Resolves at the next `set` that is not held. */
  nextSet(): Promise<void> {
    return new Promise((resolve) => (this.onSet = resolve));
  }

  release(): void {
    this.held!.release();
    this.held = undefined;
    this.reached = new Promise<void>((resolve) => (this.seen = resolve));
  }
}

const returnTos = async (store: ListableStore, agent: request.Agent): Promise<string[]> => {
  const id = decodeURIComponent(agent.jar.getCookie('sid', { domain: '127.0.0.1', path: '/', secure: false, script: false })!.value).slice(2).split('.')[0]!;
  const stored = await new Promise<session.SessionData | null | undefined>((resolve) => store.get(id, (_e, s) => resolve(s)));
  return pendingLogins(stored?.oidc).map((t) => t.returnTo).sort();
};

describe.each([
  ['MemoryStore', false],
  ['connect-redis', true],
])('two tabs starting a sign-in at the same moment, with a session cookie (%s)', (_name, onRedis) => {
  let redis: RedisServer | undefined;
  let client: ReturnType<typeof createClient> | undefined;
  let t: TestRp;
  const holder = new Holder();
  beforeAll(async () => {
    if (onRedis) {
      redis = await startRedisServer();
      client = createClient({ url: redis.url });
      await client.connect();
    }
    const store = client ? new RedisStore({ client, prefix: 'sess:' }) as unknown as ListableStore : undefined;
    t = await startRp({ store });
    holder.wrap(t.store);
  }, 20_000);
  afterAll(async () => {
    await t.close();
    await client?.quit();
    await redis?.stop();
  });

  test('the first save held until the second start has gone as far as it can: both pending logins are kept, and both tabs sign in where they were going', async () => {
    const agent = t.agent();
    const start0 = await agent.get('/auth/login/op?returnTo=/p0'); // a third tab: the session (and its cookie) exists
    holder.holdSet = true;
    const a = agent.get('/auth/login/op?returnTo=/p1').then((res) => res);
    await holder.reached;
    // the second start saves at once (before: its save landed, then A's save over it), or waits for A's
    const b = agent.get('/auth/login/op?returnTo=/p2').then((res) => res);
    await Promise.race([holder.nextSet(), new Promise((resolve) => setTimeout(resolve, 1000))]);
    holder.release();
    const [startA, startB] = await Promise.all([a, b]);
    expect([startA.status, startB.status]).toEqual([302, 302]);
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before: ['/p0', '/p1']
    await expectTabSignsIn(t, agent, startA.headers.location, 'alice', '/p1');
    await expectTabSignsIn(t, agent, startB.headers.location, 'alice', '/p2');
    await expectTabSignsIn(t, agent, start0.headers.location, 'alice', '/p0');
  });

  test('a start that read the session before another one saved (another instance, a slow store): its save keeps the other\'s pending login', async () => {
    const agent = t.agent();
    await agent.get('/auth/login/op?returnTo=/p0');
    holder.holdGet = true;
    const b = agent.get('/auth/login/op?returnTo=/p2').then((res) => res); // reads the session now, goes on when released
    await holder.reached;
    const startA = await agent.get('/auth/login/op?returnTo=/p1'); // saved meanwhile
    holder.release();
    const startB = await b;
    expect(await returnTos(t.store, agent)).toEqual(['/p0', '/p1', '/p2']); // before: ['/p0', '/p2']
    await expectTabSignsIn(t, agent, startA.headers.location, 'alice', '/p1');
    await expectTabSignsIn(t, agent, startB.headers.location, 'alice', '/p2');
  });
});
