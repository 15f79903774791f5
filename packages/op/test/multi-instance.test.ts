/**
 * Several OP instances behind one load balancer, one shared store and one session store: a browser's
 * requests land on any instance, and two logins of one browser (two tabs) do not disturb each other.
 */
import { EventEmitter } from 'node:events';
import express from 'express';
import session from 'express-session';
import * as client from 'openid-client';
import { createClient } from 'redis';
import { generateKeys, memoryAdapter, op, redisAdapter, unlockLogin, type OpStore } from '@openid-express/op';
import { FormBrowser, type BrowserPage } from '../../../test/support/op-forms.js';
import { destroyOnceSent } from '../src/request-scope.js';
import { useRedis } from '../../../test/support/redis-server.js';
import { ALICE, BOB, accounts, listen, originOf } from './support/op-server.js';

const SECRET = 'web-secret-web-secret';
const insecure = { execute: [client.allowInsecureRequests] };

interface Cluster { origin: string; issuer: string; store: OpStore; web: client.Configuration; hits: number[]; close(): Promise<void> }

/** Two op() instances on one port, requests dealt round-robin, as a load balancer would; `firstParty`: no consent screen. */
async function startCluster(firstParty = true, store: OpStore = memoryAdapter()): Promise<Cluster> {
  const server = await listen();
  const origin = originOf(server);
  const issuer = `${origin}/op`;
  const sessions = new session.MemoryStore();
  const keys = generateKeys();
  const instance = () => express().use('/op', op({
    issuer, accounts, adapter: store, ...keys, trustProxy: true,
    session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: sessions }),
    clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`], firstParty }],
  }));
  const instances = [instance(), instance()];
  const hits = [0, 0];
  let next = 0;
  server.on('request', (req, res) => {
    const i = (next += 1) % 2;
    hits[i]! += 1;
    instances[i]!(req, res);
  });
  const web = await client.discovery(new URL(issuer), 'web', SECRET, client.ClientSecretBasic(), insecure);
  return {
    origin, issuer, store, web, hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function authorization(c: Cluster) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(c.web, {
    redirect_uri: `${c.origin}/cb`, scope: 'openid', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url: url.href, verifier, state };
}

const submitPassword = (browser: FormBrowser, page: BrowserPage, login: string, password: string) =>
  browser.submit(page, { value: ['authenticator', 'password'] }, { login, password });

describe('the OP as several instances on one store', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(() => c.close());

  test('two logins started at the same moment in two tabs of one browser both complete (each keeps its own CSRF token)', async () => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.20' } });
    const [a, b] = await Promise.all([authorization(c), authorization(c)]);
    const pages = await Promise.all([browser.open(a.url), browser.open(b.url)]);
    expect(pages.map((p) => p.status)).toEqual([200, 200]);
    // posted one after the other, as a person does; two posts in the same few milliseconds can still meet
    // oidc-provider's own race on its session cookie (each resume makes a session, one cookie wins)
    const done = [await submitPassword(browser, pages[0]!, 'alice', ALICE.password), await submitPassword(browser, pages[1]!, 'alice', ALICE.password)];
    const text = (p: BrowserPage) => p.stoppedAt ?? `${p.status} ${p.html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`;
    expect(done.map(text)).toEqual([expect.stringContaining('code='), expect.stringContaining('code=')]);
    for (const [i, auth] of [a, b].entries()) {
      const callback = new URL(done[i]!.stoppedAt!);
      const tokens = await client.authorizationCodeGrant(c.web, callback, { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
      expect(tokens.claims()!.sub).toBe('alice');
    }
    expect(c.hits.every((n) => n > 0)).toBe(true);
    // the interaction state lives in the OP's store: the login pages created no express-session
    expect(browser.jar.names()).not.toContain('connect.sid');
  });

  test('a failed login keeps its attempts and refills the login name, on whichever instance comes next', async () => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.21' } });
    const page = await browser.open((await authorization(c)).url);
    const failed = await submitPassword(browser, page, 'alice', 'not-her-password');
    expect(failed.status).toBe(401);
    expect(failed.html).toContain('value="alice"');
    const ok = await submitPassword(browser, failed, 'alice', ALICE.password);
    expect(ok.stoppedAt).toContain('code=');
  });

  test('after 5 failures an account is locked (429) until unlockLogin lifts it', async () => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.22' } });
    let page = await browser.open((await authorization(c)).url);
    for (let i = 0; i < 5; i += 1) page = await submitPassword(browser, page, 'bob', `guess-${i}`);
    const locked = await submitPassword(browser, page, 'bob', BOB.password);
    expect(locked.status).toBe(429);
    expect(locked.html).toContain('Too many failed attempts');
    // the IP of these failures is locked too (5 failures from it): lift both, as a support desk would
    await unlockLogin(c.store, { accountId: 'bob', ip: '198.51.100.22' });
    const ok = await submitPassword(browser, locked, 'bob', BOB.password);
    expect(ok.stoppedAt).toContain('code=');
  });

  test('unlockLogin without anything to unlock says what to give', async () => {
    await expect(unlockLogin(c.store, {})).rejects.toThrow(/accountId, login or ip/);
  });
});

describe('two tabs of one browser at the consent screen, "Allow" in one and then the other', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster(false);
  });
  afterAll(() => c.close());

  test('both tabs\' codes and tokens work: the second consent adds to the OP session\'s Grant, not a new one that unbinds the first', async () => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.21' } });
    const [a, b] = [await authorization(c), await authorization(c)];
    const consentA = await submitPassword(browser, await browser.open(a.url), 'alice', ALICE.password);
    const consentB = await browser.open(b.url); // signed in already: straight to the consent screen
    const callbacks = [await browser.submit(consentA, { action: '/confirm' }), await browser.submit(consentB, { action: '/confirm' })]
      .map((page) => new URL(page.stoppedAt!));
    const tokens = [];
    for (const [i, auth] of [a, b].entries()) {
      // before: tab A's code refused (invalid_grant): tab B's new Grant had become the OP session's for the client
      tokens.push(await client.authorizationCodeGrant(c.web, callbacks[i]!, { pkceCodeVerifier: auth.verifier, expectedState: auth.state }));
    }
    for (const t of tokens) expect((await client.fetchUserInfo(c.web, t.access_token, 'alice')).sub).toBe('alice');
    expect(new Set(tokens.map((t) => t.claims()!.sid)).size).toBe(1);
  });

  test('both allowed at the same moment (both consents saved before either tab resumed): both tabs\' codes work', async () => {
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.22' } });
    const [a, b] = [await authorization(c), await authorization(c)];
    const consents = [await submitPassword(browser, await browser.open(a.url), 'alice', ALICE.password), await browser.open(b.url)];
    // the two "Allow" posts, their redirects (the resumes) not followed yet
    const posts = [];
    for (const consent of consents) {
      const form = browser.form(consent, { action: '/confirm' });
      const res = await fetch(form.action, {
        method: 'POST', redirect: 'manual', body: new URLSearchParams(form.fields),
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.jar.header(form.action), accept: 'text/html' },
      });
      expect(res.status).toBe(303);
      posts.push(new URL(res.headers.get('location')!, form.action).href);
    }
    const callbacks = [];
    for (const resume of posts) callbacks.push(new URL((await browser.open(resume)).stoppedAt!));
    for (const [i, auth] of [a, b].entries()) {
      // before: tab A's code refused (invalid_grant): tab B's resume made its own Grant the OP session's
      const tokens = await client.authorizationCodeGrant(c.web, callbacks[i]!, { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
      expect((await client.fetchUserInfo(c.web, tokens.access_token, 'alice')).sub).toBe('alice');
    }
  });
});

describe('instances whose client lists differ (a deploy that removes a redirect URI, half done)', () => {
  test('a sign-in started where the redirect URI is registered sends no code to it from an instance where it is not', async () => {
    const server = await listen();
    const origin = originOf(server);
    const issuer = `${origin}/op`;
    const store = memoryAdapter();
    const keys = generateKeys();
    const sessions = new session.MemoryStore();
    const instance = (redirectUris: string[]) => express().use('/op', op({
      issuer, accounts, adapter: store, ...keys, trustProxy: true,
      session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: sessions }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: redirectUris, firstParty: true }],
    }));
    // the first request (/auth) on the instance that still has the URI, every later one on the other
    const [before, after] = [instance([`${origin}/cb`, `${origin}/other`]), instance([`${origin}/other`])];
    let requests = 0;
    server.on('request', (req, res) => (requests++ === 0 ? before : after)(req, res));
    try {
      const web = await client.discovery(new URL(issuer), 'web', SECRET, client.ClientSecretBasic(), insecure);
      requests = 0;
      const url = client.buildAuthorizationUrl(web, {
        redirect_uri: `${origin}/cb`, scope: 'openid', state: 's', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      });
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb' || u.pathname === '/other', headers: { 'x-forwarded-for': '198.51.100.23' } });
      const page = await browser.open(url.href);
      expect(page.status).toBe(200);
      const done = await submitPassword(browser, page, 'alice', ALICE.password);
      expect(done.stoppedAt).toBeUndefined();
      expect(done.status).toBe(400);
      expect(done.html).toContain('not registered (any more) for this application');
      expect(requests).toBeGreaterThan(2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('a consent submitted twice at once, the two posts and their redirects on two instances of one Redis (a double click, no sticky sessions)', () => {
  const redis = useRedis((url) => createClient({ url }));

  test('one authorization request gives one code, and records one Grant', async () => {
    const server = await listen();
    const origin = originOf(server);
    const issuer = `${origin}/op`;
    const keys = generateKeys();
    const sessions = new session.MemoryStore();
    const second = createClient({ url: redis.server.url });
    await second.connect();
    const instance = (redisClient: typeof second) => express().use('/op', op({
      issuer, accounts, adapter: redisAdapter(redisClient, { prefix: 'twice:' }), ...keys, trustProxy: true,
      session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: sessions }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }));
    const instances = [instance(redis.client as typeof second), instance(second)];
    // `x-instance` picks the instance, as a load balancer without sticky sessions may
    server.on('request', (req, res) => instances[Number(req.headers['x-instance'] ?? 0)]!(req, res));
    try {
      const web = await client.discovery(new URL(issuer), 'web', SECRET, client.ClientSecretBasic(), insecure);
      for (let trial = 0; trial < 3; trial += 1) {
        const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: { 'x-forwarded-for': '198.51.100.24' } });
        const auth = await authorization({ web, origin } as Cluster);
        const consent = await submitPassword(browser, await browser.open(auth.url), 'alice', ALICE.password);
        const form = browser.form(consent, { action: '/confirm' });
        const send = (url: string, i: number, init: RequestInit = {}) => fetch(url, {
          ...init, redirect: 'manual', headers: { ...init.headers, cookie: browser.jar.header(url), 'x-instance': String(i), accept: 'text/html' },
        });
        const posts = await Promise.all([0, 1].map((i) => send(form.action, i, {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.fields),
        })));
        expect(posts.map((r) => r.status)).toEqual([303, 303]);
        const resumes = await Promise.all(posts.map((r, i) => send(new URL(r.headers.get('location')!, form.action).href, i)));
        const codes = resumes.map((r) => r.headers.get('location')).filter((l) => l?.startsWith(`${origin}/cb`))
          .map((l) => new URL(l!).searchParams.get('code'));
        expect(codes).toHaveLength(1);
        // the other gets what a resume of a finished sign-in gets: "expired or already completed"
        const other = resumes.find((r) => !r.headers.get('location')?.startsWith(`${origin}/cb`))!;
        expect(other.status).toBe(400);
        expect(await other.text()).toContain('already completed');
        const tokens = await client.authorizationCodeGrant(web, new URL(resumes.find((r) => r !== other)!.headers.get('location')!), {
          pkceCodeVerifier: auth.verifier, expectedState: auth.state,
        });
        expect(tokens.claims()!.sub).toBe('alice');
      }
      // one Grant per consent (a second one, saved by the other post, stayed behind unused)
      expect(await redis.client.keys('twice:Grant:*')).toHaveLength(3);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      second.destroy();
    }
  });
});

describe('a resume\'s claim on its interaction (request-scope.ts)', () => {
  const scopeWith = (release: () => Promise<void>) => ({ undo: [], settle: [], stop: [], destroys: [async () => undefined], releases: [release], done: false });

  test('given back at once when the browser closed the connection before the resume answered, and its delete dropped', async () => {
    const released = jest.fn(async () => undefined);
    const destroyed = jest.fn(async () => undefined);
    const scope = { ...scopeWith(released), destroys: [destroyed] };
    // the 'close' event has been already: a listener added now would never run (the claim was held its 10 s)
    const closed = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: true });
    destroyOnceSent(scope, closed, true);
    expect(released).toHaveBeenCalledTimes(1);
    expect(destroyed).not.toHaveBeenCalled();
  });

  test('kept when the answer went out (its delete runs), given back when the connection closes unanswered', async () => {
    const kept = jest.fn(async () => undefined);
    const answered = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: false });
    destroyOnceSent(scopeWith(kept), answered, true);
    answered.writableFinished = true;
    answered.emit('finish');
    answered.emit('close');
    expect(kept).not.toHaveBeenCalled();
    const dropped = jest.fn(async () => undefined);
    const unanswered = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: false });
    destroyOnceSent(scopeWith(dropped), unanswered, true);
    unanswered.emit('close');
    expect(dropped).toHaveBeenCalledTimes(1);
  });
});

describe('a resume retried while another request holds its claim (two instances on one store; request-scope.ts)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(() => c.close());

  /** Signs alice in up to the resume after the password form: its URL (not followed), the browser, and the claim's key. */
  async function atResume(c: Cluster) {
    const auth = await authorization(c);
    // stops at the login's resume, once (its way on, through the first party's consent, is followed)
    let atLogin = true;
    const stopAt = (u: URL) => u.pathname === '/cb' || (atLogin && /^\/op\/auth\/[^/]+$/.test(u.pathname) && !(atLogin = false));
    const browser = new FormBrowser({ stopAt, headers: { 'x-forwarded-for': '198.51.100.26' } });
    const resume = (await submitPassword(browser, await browser.open(auth.url), 'alice', ALICE.password)).stoppedAt!;
    expect(new URL(resume).pathname).toMatch(/^\/op\/auth\//);
    return { auth, browser, resume, claim: `openid-express:resumed:${new URL(resume).pathname.split('/').pop()}` };
  }

  test('its instance killed mid-resume (the claim taken, never given back): the load balancer\'s retry waits for the claim to lapse and signs in', async () => {
    const { auth, browser, resume, claim } = await atResume(c);
    await c.store.increment(claim, 10); // what an instance killed right after it took the claim leaves
    const started = Date.now();
    const retried = await browser.open(resume);
    // before: at once 400 "This sign-in has expired or was already completed", the sign-in intact
    expect(retried.stoppedAt).toContain('code=');
    expect(Date.now() - started).toBeLessThan(12_000);
    const tokens = await client.authorizationCodeGrant(c.web, new URL(retried.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
    expect(tokens.claims()!.sub).toBe('alice');
  }, 30_000);

  test('a claim still held when the wait runs out (a live request slower than the claim\'s life): 503 with Retry-After, and the retry signs in', async () => {
    const { auth, browser, resume, claim } = await atResume(c);
    await c.store.increment(claim, 60);
    const held = await browser.open(resume);
    // before: 400 "This sign-in has expired", the final page, though the sign-in was intact
    expect(held.status).toBe(503);
    expect(held.headers.get('retry-after')).toBe('2');
    expect(held.html).toContain('Another request is completing this sign-in');
    expect(held.html).toContain('resume_in_progress');
    await c.store.reset(claim); // the slow request failed and gave it back
    const retried = await browser.open(resume);
    expect(retried.stoppedAt).toContain('code=');
    const tokens = await client.authorizationCodeGrant(c.web, new URL(retried.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
    expect(tokens.claims()!.sub).toBe('alice');
  }, 30_000);

  /** A memory store whose Interaction saves can be slowed, and whose Interaction deletes can be slowed or fail. */
  function rigged() {
    const store = memoryAdapter();
    const knobs = { slowSaves: 0, saveMs: 0, failDeletes: 0, deleteMs: 0, failFinds: 0 };
    const adapterFor = store.adapterFor.bind(store);
    store.adapterFor = (name) => {
      const adapter = adapterFor(name);
      if (name !== 'Interaction') return adapter;
      const upsert = adapter.upsert.bind(adapter);
      adapter.upsert = async (...args) => {
        if (knobs.slowSaves > 0 && knobs.slowSaves--) await new Promise((resolve) => setTimeout(resolve, knobs.saveMs));
        return upsert(...args);
      };
      const find = adapter.find.bind(adapter);
      adapter.find = async (id) => {
        if (knobs.failFinds > 0 && knobs.failFinds--) throw new Error('store: GET timed out');
        return find(id);
      };
      const destroy = adapter.destroy.bind(adapter);
      adapter.destroy = async (id) => {
        if (knobs.deleteMs) await new Promise((resolve) => setTimeout(resolve, knobs.deleteMs));
        if (knobs.failDeletes > 0 && knobs.failDeletes--) throw new Error('store: DEL timed out');
        return destroy(id);
      };
      return adapter;
    };
    return { store, knobs };
  }

  test.each([
    ['its delete of the sign-in fails (a Redis blip)', { slowSaves: 1, saveMs: 1000, failDeletes: 5, deleteMs: 0 }],
    ['its delete of the sign-in takes 5 s (a store slow within a timeout set above 3 s), its answer ready at 6.5 s', { slowSaves: 1, saveMs: 6000, failDeletes: 0, deleteMs: 5000 }],
  ])('a resume answered, then %s: the copy that waited takes the lapsed claim and is refused, one code in all (review-57)', async (_label, rig) => {
    const { store, knobs } = rigged();
    const cluster = await startCluster(true, store);
    try {
      const { auth, browser, resume } = await atResume(cluster);
      Object.assign(knobs, rig);
      const first = browser.open(resume); // takes the claim
      await new Promise((resolve) => setTimeout(resolve, 300));
      const second = browser.open(resume); // the same resume again (a double post, a load balancer's retry): waits
      const pages = await Promise.all([first, second]);
      const codes = pages.filter((p) => p.stoppedAt?.includes('code='));
      // before (the wait without the answered mark): two codes for one authorization request (RFC 6749 §4.1.2)
      expect(codes).toHaveLength(1);
      expect(pages[1]!.status).toBe(400);
      const tokens = await client.authorizationCodeGrant(cluster.web, new URL(codes[0]!.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
      expect(tokens.claims()!.sub).toBe('alice');
    } finally {
      await cluster.close();
    }
  }, 60_000);

  test('a live resume slower than its claim\'s life (the store slow at its next step\'s save) answers 503: the resume that waited for it takes over, one code in all', async () => {
    const { store, knobs } = rigged();
    const slow = await startCluster(true, store);
    try {
      const { auth, browser, resume } = await atResume(slow);
      knobs.slowSaves = 1;
      knobs.saveMs = 10_500;
      const first = browser.open(resume); // takes the claim; its consent step's save ends after the claim lapsed
      await new Promise((resolve) => setTimeout(resolve, 500));
      const second = browser.open(resume); // the load balancer's copy: waits, then takes the lapsed claim
      const pages = await Promise.all([first, second]);
      const codes = pages.filter((p) => p.stoppedAt?.includes('code='));
      // before: both gave a code for one authorization request (RFC 6749 section 4.1.2)
      expect(codes).toHaveLength(1);
      expect(pages[0]!.status).toBe(503);
      expect(pages[0]!.headers.get('retry-after')).toBeTruthy();
      const tokens = await client.authorizationCodeGrant(slow.web, new URL(codes[0]!.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
      expect(tokens.claims()!.sub).toBe('alice');
    } finally {
      await slow.close();
    }
  }, 30_000);

  test('a resume that takes the claim after its wait and then cannot read the sign-in (a store blip) gives the claim back: the retry signs in at once', async () => {
    const { store, knobs } = rigged();
    const blip = await startCluster(true, store);
    try {
      const { auth, browser, resume, claim } = await atResume(blip);
      await blip.store.increment(claim, 60); // another request holds the claim
      const waiting = browser.open(resume);
      await new Promise((resolve) => setTimeout(resolve, 700)); // in its wait by now, between two asks
      await blip.store.reset(claim); // that request failed and gave it back: the waiter's next ask takes it
      knobs.failFinds = 1; // and its read of the sign-in after taking it fails
      const failed = await waiting;
      expect(failed.status).toBeGreaterThanOrEqual(500);
      expect(failed.stoppedAt).toBeUndefined();
      const started = Date.now();
      const retried = await browser.open(resume);
      expect(retried.stoppedAt).toContain('code=');
      // before: the claim it took stayed held, and the retry waited the claim's 10 s life for it
      expect(Date.now() - started).toBeLessThan(3000);
      const tokens = await client.authorizationCodeGrant(blip.web, new URL(retried.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
      expect(tokens.claims()!.sub).toBe('alice');
    } finally {
      await blip.close();
    }
  }, 30_000);
});

describe('the device flow\'s resume on two instances of one Redis (RFC 8628; the resume claim, request-scope.ts)', () => {
  const redis = useRedis((url) => createClient({ url }));
  const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
  type RedisClient = ReturnType<typeof createClient>;

  /**
   * Two op() on one Redis, `x-instance` picking one. Instance 0's client can be told to stop right after
   * a resume's claim was answered by Redis (`holdAfterClaim`): the claim is taken, nothing after it runs until
   * `go()` (never, for an instance killed at that moment).
   */
  async function startDeviceCluster(prefix: string) {
    const server = await listen();
    const origin = originOf(server);
    const issuer = `${origin}/op`;
    const keys = generateKeys();
    const first = createClient({ url: redis.server.url }) as RedisClient;
    const second = createClient({ url: redis.server.url }) as RedisClient;
    await Promise.all([first.connect(), second.connect()]);
    let hold: { claimed: () => void; gate: Promise<void> } | undefined;
    const send = first.sendCommand.bind(first) as (...args: unknown[]) => Promise<unknown>;
    (first as unknown as { sendCommand: (...args: unknown[]) => Promise<unknown> }).sendCommand = async (...args) => {
      const out = await send(...args);
      const held = hold;
      if (held && (args[0] as unknown[]).some((a) => String(a).includes('resumed:'))) {
        hold = undefined;
        held.claimed();
        await held.gate;
      }
      return out;
    };
    const instance = (redisClient: RedisClient) => express().use('/op', op({
      issuer, accounts, adapter: redisAdapter(redisClient, { prefix }), ...keys, trustProxy: true, features: { deviceFlow: true },
      session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: new session.MemoryStore() }),
      clients: [{ client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE, 'refresh_token'], response_types: [], redirect_uris: [] }],
    }));
    const instances = [instance(first), instance(second)];
    server.on('request', (req, res) => instances[Number(req.headers['x-instance'] ?? 0)]!(req, res));
    const tv = await client.discovery(new URL(issuer), 'tv', { token_endpoint_auth_method: 'none' }, client.None(), insecure);
    return {
      tv,
      /** Instance 0 stops after its next resume claim: `claimed` once it holds it, `go` lets it answer. */
      holdAfterClaim() {
        let go!: () => void;
        const gate = new Promise<void>((resolve) => { go = resolve; });
        const claimed = new Promise<void>((resolve) => { hold = { claimed: resolve, gate }; });
        return { claimed, go };
      },
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        first.destroy();
        second.destroy();
      },
    };
  }

  /** The user enters the code, confirms, signs in and consents; returns the resume URL (not followed) and a way to follow it on one instance. */
  async function consented(tv: client.Configuration) {
    const da = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
    // the login's resume is followed (it leads to the consent); the consent's is where the user stops
    let consenting = false;
    const browser = new FormBrowser({ stopAt: (u) => consenting && /^\/op\/device\/[\w-]{10,}$/.test(u.pathname), headers: { 'x-forwarded-for': '198.51.100.25' } });
    const confirm = await browser.submit(await browser.open(da.verification_uri), { has: 'user_code' }, { user_code: da.user_code });
    const login = await browser.submit(confirm, { has: 'user_code' }, { confirm: 'yes' });
    const consent = await submitPassword(browser, login, 'alice', ALICE.password);
    consenting = true;
    const resume = (await browser.submit(consent, { action: '/confirm' })).stoppedAt!;
    expect(resume).toBeDefined();
    /** Follows the resume on instance `i`: with the browser's cookies, or `cookie`; `signal` aborts it. */
    const follow = async (i: number, { cookie = browser.jar.header(resume), signal }: { cookie?: string; signal?: AbortSignal } = {}) => {
      const res = await fetch(resume, { redirect: 'manual', signal, headers: { cookie, 'x-instance': String(i), accept: 'text/html' } });
      return { status: res.status, headers: res.headers, html: await res.text() };
    };
    const poll = () => client.genericGrantRequest(tv, DEVICE_CODE, { device_code: da.device_code })
      .then((tokens) => ({ sub: tokens.claims()!.sub, error: undefined }), (err: { error?: string }) => ({ sub: undefined, error: err.error }));
    return { follow, poll, uid: new URL(resume).pathname.split('/').pop()! };
  }

  /** How many claims on interaction `uid` Redis holds (0 or 1). */
  const claimHeld = async (uid: string) => (await redis.client.keys(`*resumed:${uid}`)).length;

  test('followed twice at once (a double submit, two tabs), the resume signs the device in once; the other gets op()\'s page, and the device its tokens', async () => {
    const c = await startDeviceCluster('device-twice:');
    let hold: ReturnType<typeof c.holdAfterClaim> | undefined;
    let winner: ReturnType<Awaited<ReturnType<typeof consented>>['follow']> | undefined;
    try {
      const { follow, poll } = await consented(c.tv);
      hold = c.holdAfterClaim();
      winner = follow(0);
      await hold.claimed; // the first resume holds the claim and has not answered yet
      const loser = await follow(1);
      expect(loser.status).toBe(409);
      expect(loser.headers.get('cache-control')).toBe('no-store');
      expect(loser.html).toContain('This device sign-in is already being completed');
      // its way on is this page again, not "return to the application" (the user came from a device)
      expect(loser.html).toMatch(/<a class="button" href="[^"]*\/device\/[^"]+">Check again<\/a>/);
      expect(loser.html).not.toContain('Return to');
      // the refused resume left the device code alone (oidc-provider wrote the refusal into it, for the device to get)
      expect(await poll()).toEqual({ sub: undefined, error: 'authorization_pending' });
      hold.go();
      const done = await winner;
      expect(done.status).toBe(200);
      expect(done.html).toContain('Device signed in');
      expect(await poll()).toEqual({ sub: 'alice', error: undefined });
    } finally {
      hold?.go();
      await winner?.catch(() => undefined);
      await c.close();
    }
  });

  test('a resume whose browser closed the connection while its claim was being taken gives the claim back at once: the user\'s next follow signs the device in', async () => {
    const c = await startDeviceCluster('device-claim:');
    try {
      const { follow, poll, uid } = await consented(c.tv);
      const hold = c.holdAfterClaim();
      const aborted = new AbortController();
      const dropped = follow(0, { signal: aborted.signal }).catch(() => undefined);
      await hold.claimed; // Redis has answered the claim; op() has not seen it yet
      aborted.abort();
      await dropped;
      await new Promise((resolve) => setTimeout(resolve, 100)); // the server has seen the connection close
      hold.go();
      for (let i = 0; i < 50 && await claimHeld(uid); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      // given back, and nothing resumed for a connection gone (op() used to go on: the sign-in was spent unseen, and
      // this follow found it over; when oidc-provider refused that resume, the claim stayed held its 10 s, a 409 here)
      expect(await claimHeld(uid)).toBe(0);
      expect(await poll()).toEqual({ sub: undefined, error: 'authorization_pending' });
      const done = await follow(1);
      expect(done.status).toBe(200);
      expect(done.html).toContain('Device signed in');
      expect(await poll()).toEqual({ sub: 'alice', error: undefined });
    } finally {
      await c.close();
    }
  });

  test('a request whose resume cookie the OP did not sign for this sign-in takes no claim (whoever knows the uid cannot hold up the user\'s resume)', async () => {
    const c = await startDeviceCluster('device-forged:');
    try {
      const { follow, poll, uid } = await consented(c.tv);
      const hold = c.holdAfterClaim();
      let claimed = false;
      void hold.claimed.then(() => { claimed = true; hold.go(); });
      // a cookie merely named so; the uid unsigned; the uid with a signature that is not the OP's
      for (const cookie of ['_interaction_resume=junk', `_interaction_resume=${uid}`, `_interaction_resume=${uid}; _interaction_resume.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA`]) {
        const forged = await follow(0, { cookie });
        expect(forged.status).not.toBe(409);
        expect(claimed).toBe(false);
      }
      expect(await claimHeld(uid)).toBe(0);
      const done = await follow(0);
      expect(claimed).toBe(true); // the browser's own cookie does claim
      expect(done.status).toBe(200);
      expect(done.html).toContain('Device signed in');
      expect(await poll()).toEqual({ sub: 'alice', error: undefined });
    } finally {
      await c.close();
    }
  });

  test('an instance killed after it took the claim: the retry gets op()\'s page until the claim lapses (10 s), then signs the device in', async () => {
    const c = await startDeviceCluster('device-killed:');
    let killed: Promise<unknown> | undefined;
    try {
      const { follow, poll } = await consented(c.tv);
      const hold = c.holdAfterClaim();
      killed = follow(0).catch(() => undefined); // never answers: its instance "died" holding the claim
      await hold.claimed;
      const early = await follow(1);
      expect(early.status).toBe(409);
      expect(early.html).toContain('This device sign-in is already being completed');
      expect(await poll()).toEqual({ sub: undefined, error: 'authorization_pending' });
      await new Promise((resolve) => setTimeout(resolve, 10_500));
      const late = await follow(1);
      expect(late.status).toBe(200);
      expect(late.html).toContain('Device signed in');
      expect(await poll()).toEqual({ sub: 'alice', error: undefined });
    } finally {
      await c.close(); // (the "killed" instance's request ends with its connection)
      await killed;
    }
  });
});
