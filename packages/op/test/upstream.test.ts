import { createHash } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import { oidc } from '@openid-express/rp';
import { generateKeys, memoryAccounts, memoryAdapter, op, password, redisAdapter, StoreUnavailableError, upstream, type OpStore } from '@openid-express/op';
import { FormBrowser, type BrowserPage } from '../../../test/support/op-forms.js';
import { eventually } from '../../../test/support/eventually.js';
import { useRedis } from '../../../test/support/redis-server.js';
import { callbackOf, client, insecure, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE, accounts, listen, originOf, startOp, type RunningOp } from './support/op-server.js';

// the corporate OP where people really sign in; carol has no account at our OP
const CAROL = { id: 'carol', username: 'carol', password: 'carol-pw-1', claims: { email: 'carol@corp.example' } };
const corpAccounts = memoryAccounts([{ ...ALICE, id: 'corp-alice-7' }, CAROL]);

describe('federation: signing in at our OP through another OP (upstream)', () => {
  let directoryHangs = false;
  let corp: RunningOp;
  let f: FlowFixture;
  beforeAll(async () => {
    const ours = await listen();
    corp = await startOp(() => ({
      adapter: memoryAdapter(), accounts: corpAccounts,
      clients: [{ client_id: 'our-op', client_secret: 'upstream-secret-1', redirect_uris: [`${originOf(ours)}/op/upstream/callback/corp`] }],
      provider: { cookies: { names: { session: '_corp_session', interaction: '_corp_interaction', resume: '_corp_resume' } } },
    }), { sessionName: 'corp.sid' });
    f = await startFlowFixture(memoryAdapter(), {
      authenticators: [password(), upstream({
        name: 'corp', label: 'Sign in with Corp',
        provider: oidc({ issuer: corp.issuer, clientId: 'our-op', clientSecret: 'upstream-secret-1', allowInsecureRequests: true }),
        account: (user) => (directoryHangs ? new Promise<undefined>(() => undefined) : user.email === ALICE.claims.email ? 'alice' : undefined),
      }), upstream({
        // an OP that is down (nothing listens on port 9)
        name: 'down', label: 'Sign in with Down', provider: oidc({ issuer: 'http://127.0.0.1:9/op', clientId: 'x', clientSecret: 'y', allowInsecureRequests: true }),
        account: () => undefined,
      })],
      storeTimeout: 1000,
    }, { server: ours });
  });
  afterAll(async () => {
    await f?.op.close();
    await corp?.close();
  });

  const startAtOurOp = async (browser: FormBrowser) => {
    const auth = await f.authorization(f.first);
    const login = await browser.open(auth.url);
    expect(login.html).toContain('Sign in with Corp');
    const atCorp = await browser.submit(login, { value: ['authenticator', 'corp'] });
    expect(atCorp.url.startsWith(corp.issuer)).toBe(true);
    return { auth, atCorp };
  };

  test('alice signs in at Corp and comes back signed in at our OP, amr "fed"', async () => {
    const browser = f.browser();
    const { auth, atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    page = await browser.submit(page, { action: '/confirm' }); // consent at Corp for our OP
    const tokens = await client.authorizationCodeGrant(f.first, callbackOf(page), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: 'alice', amr: ['fed'] });
  });

  test('a Corp user without an account here is refused, with a way back to the login page', async () => {
    const browser = f.browser();
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'carol', password: CAROL.password });
    page = await browser.submit(page, { action: '/confirm' });
    expect(page.status).toBe(401);
    expect(page.html).toContain('login_failed');
    expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    expect(browser.jar.names()).not.toContain('_session');
  });

  test('cancelling at Corp says so (not "failed"), with a way back, and counts no failed attempt: six cancels, then the password works', async () => {
    const address = { 'x-forwarded-for': '198.51.100.40' };
    for (let i = 0; i < 6; i += 1) {
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
      const { atCorp } = await startAtOurOp(browser);
      const page = await browser.submit(atCorp, { action: '/abort' });
      expect([page.status, page.html.includes('login_cancelled'), page.html.includes('was cancelled there')]).toEqual([400, true, true]);
      expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    }
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
    const login = await browser.open((await f.authorization(f.first)).url);
    const done = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(done.status).not.toBe(429);
  });

  test('an upstream OP that cannot be reached: 503 with Retry-After naming it, not a 500, and no failed attempt counted', async () => {
    const address = { 'x-forwarded-for': '198.51.100.41' };
    for (let i = 0; i < 6; i += 1) {
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
      const login = await browser.open((await f.authorization(f.first)).url);
      const page = await browser.submit(login, { value: ['authenticator', 'down'] });
      expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
      expect(page.html).toContain('upstream_unavailable');
      expect(page.html).toMatch(/Signing in with [^<]+ is not possible right now/);
    }
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
    const login = await browser.open((await f.authorization(f.first)).url);
    const done = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(done.status).not.toBe(429);
  });

  test('an account() that never answers (a directory stalled): 503 after storeTimeout, not a callback that hangs', async () => {
    const browser = f.browser();
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    directoryHangs = true;
    try {
      const started = Date.now();
      page = await browser.submit(page, { action: '/confirm' });
      expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
      expect(Date.now() - started).toBeLessThan(5000);
      // the other OP's answer is spent: the way back starts the sign-in again, not "try again" here
      expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    } finally {
      directoryHangs = false;
    }
  });

  test('a callback with a state this browser never sent is refused and signs no one in', async () => {
    const browser = f.browser();
    await startAtOurOp(browser);
    const forged = await browser.open(`${f.op.issuer}/upstream/callback/corp?code=stolen&state=forged`);
    expect(forged.status).toBe(400);
    expect(forged.html).toContain('interaction_expired');
    expect(browser.jar.names()).not.toContain('_session');
  });

  test('a replayed upstream callback is refused, and the replay signs no one in', async () => {
    const ourOrigin = f.op.origin;
    const browser = new FormBrowser({
      stopAt: (u) => u.origin === ourOrigin && (u.pathname === '/cb' || u.pathname.startsWith('/op/upstream/callback')),
    });
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    page = await browser.submit(page, { action: '/confirm' });
    const upstreamCallback = page.stoppedAt!;
    expect(new URL(upstreamCallback).pathname).toBe('/op/upstream/callback/corp');
    const first = await browser.open(upstreamCallback);
    expect(callbackOf(first).searchParams.get('code')).toEqual(expect.any(String)); // it worked once
    const replay = await browser.open(upstreamCallback);
    expect(replay.status).toBe(400);
    expect(replay.html).toContain('interaction_expired');
  });
});

/** express-session's MemoryStore whose next `count` reads wait for each other: requests that all read a session before any saves it. */
class HeldReads extends session.MemoryStore {
  private held?: { count: number; waiting: (() => void)[] };
  holdNextReads(count: number): void {
    this.held = { count, waiting: [] };
  }
  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    const held = this.held;
    if (!held) return super.get(sid, callback);
    held.waiting.push(() => super.get(sid, callback));
    if (held.waiting.length < held.count) return;
    this.held = undefined;
    for (const read of held.waiting) read();
  }
}

describe('the upstream callback arriving twice at once, on two op() instances of one Redis (a reload while it is answered, a balancer resending it)', () => {
  const redis = useRedis((url) => createClient({ url }));
  const SECRET = 'web-secret-web-secret';
  let upstreamOp: RunningOp;
  let server: Awaited<ReturnType<typeof listen>>;
  let second: ReturnType<typeof createClient>;
  let origin: string;
  let web: client.Configuration;
  const sessions = new HeldReads();
  // the next `claimFailures` one-time claims of a callback fail, as on a Redis that stalls at that moment
  let claimFailures = 0;
  const failingClaims = (store: OpStore): OpStore => Object.assign(Object.create(store) as OpStore, {
    increment: (key: string, ttl: number) => (/^openid-express:callback:[^:]+$/.test(key) && claimFailures-- > 0
      ? Promise.reject(new StoreUnavailableError('redis: connection lost')) : store.increment(key, ttl)),
  });
  // account() waits here, so the second copy comes while the first has redeemed the code and is still working
  let entered: () => void = () => undefined;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();
  let inAccount = Promise.resolve();
  const holdAccount = () => {
    inAccount = new Promise((resolve) => (entered = resolve));
    gate = new Promise((resolve) => (release = resolve));
  };

  beforeAll(async () => {
    server = await listen();
    origin = originOf(server);
    const issuer = `${origin}/op`;
    upstreamOp = await startOp(() => ({
      adapter: memoryAdapter(), accounts: corpAccounts,
      clients: [{ client_id: 'our-op', client_secret: 'upstream-secret-1', redirect_uris: [`${issuer}/upstream/callback/corp`], firstParty: true }],
      provider: { cookies: { names: { session: '_corp_session', interaction: '_corp_interaction', resume: '_corp_resume' } } },
    }), { sessionName: 'corp.sid' });
    second = createClient({ url: redis.server.url });
    await second.connect();
    const keys = generateKeys();
    const instance = (redisClient: typeof second) => express().use('/op', op({
      issuer, accounts, adapter: failingClaims(redisAdapter(redisClient, { prefix: 'fed:' })), ...keys, trustProxy: true,
      session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: sessions }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`], firstParty: true }],
      authenticators: [upstream({
        name: 'corp', provider: oidc({ issuer: upstreamOp.issuer, clientId: 'our-op', clientSecret: 'upstream-secret-1', allowInsecureRequests: true }),
        account: async (user) => {
          entered();
          await gate;
          return user.email === ALICE.claims.email ? 'alice' : undefined;
        },
      })],
    }));
    const instances = [instance(redis.client as typeof second), instance(second)];
    // `x-instance` picks the instance, as a load balancer without sticky sessions may
    server.on('request', (req, res) => instances[Number(req.headers['x-instance'] ?? 0)]!(req, res));
    web = await client.discovery(new URL(issuer), 'web', SECRET, client.ClientSecretBasic(), insecure);
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    second?.destroy();
    await upstreamOp?.close();
  });

  /** Signs in at Corp as `login`; the callback to our OP, not yet sent. */
  async function atCorpThenBack(browser: FormBrowser, login: string, pw: string) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: `${origin}/cb`, scope: 'openid', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const page = await browser.open(url.href);
    const atCorp = await browser.submit(page, { value: ['authenticator', 'corp'] });
    const back = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login, password: pw });
    expect(new URL(back.stoppedAt!).pathname).toBe('/op/upstream/callback/corp');
    return { callback: back.stoppedAt!, verifier, state };
  }

  /** The callback sent to instance 0, then, once that one is in account(), a copy to instance 1; then account() answers. */
  async function twice(browser: FormBrowser, callback: string) {
    const send = (i: number) => fetch(callback, {
      redirect: 'manual', headers: { cookie: browser.jar.header(callback), 'x-instance': String(i), 'x-forwarded-for': ADDRESS, accept: 'text/html' },
    });
    holdAccount();
    const first = send(0);
    await inAccount;
    const copy = send(1);
    // released once the copy has claimed the callback (or has answered: without the claim it redeems the code again at once)
    let answered = false;
    void copy.then(() => (answered = true), () => (answered = true));
    for (let i = 0; i < 200 && !answered && (await claimCount()) < 2; i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    release();
    return Promise.all([first, copy]);
  }
  const ADDRESS = '198.51.100.77';
  const claimCount = async () => {
    const keys = (await redis.client.keys('fed:*openid-express:callback:*')).filter((k) => !/:(refused|cancelled|unavailable)$/.test(k));
    return Math.max(0, ...(await Promise.all(keys.map(async (k) => Number(await redis.client.get(k))))));
  };
  const failuresCounted = async () => {
    const keys = await redis.client.keys('fed:*openid-express:login:ip:*');
    return (await Promise.all(keys.map(async (k) => Number(await redis.client.get(k))))).reduce((a, b) => a + b, 0);
  };
  const browserAt = () => new FormBrowser({ stopAt: (u) => u.pathname === '/cb' || u.pathname.startsWith('/op/upstream/callback'), headers: { 'x-forwarded-for': ADDRESS } });

  test('the code is redeemed once: both copies go on to the same resume, the one the browser follows signs alice in, and no failure is counted', async () => {
    const browser = browserAt();
    const { callback, verifier, state } = await atCorpThenBack(browser, 'alice', ALICE.password);
    const answers = await twice(browser, callback);
    expect(answers.map((r) => r.status)).toEqual([303, 303]);
    const [resume, resumeToo] = answers.map((r) => r.headers.get('location'));
    expect(resumeToo).toBe(resume);
    expect(resume).toMatch(/\/op\/auth\//);
    // the browser shows (and follows) the copy's answer: the first one's was lost to the reload
    const done = await browser.open(new URL(resumeToo!, callback).href);
    const tokens = await client.authorizationCodeGrant(web, callbackOf(done), { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()).toMatchObject({ sub: 'alice', amr: ['fed'] });
    expect(await failuresCounted()).toBe(0);
  });

  test('when the first copy fails (no account here), the copy shows the same "Sign-in failed" page, and one failure is counted, not two', async () => {
    const browser = browserAt();
    const { callback } = await atCorpThenBack(browser, 'carol', CAROL.password);
    const before = await failuresCounted();
    const answers = await twice(browser, callback);
    expect(answers.map((r) => r.status)).toEqual([401, 401]);
    for (const html of await Promise.all(answers.map((r) => r.text()))) {
      expect(html).toContain('login_failed');
      expect(html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    }
    expect(await failuresCounted()).toBe(before + 1);
  });

  /** Sends the browser through Corp from `page` (Corp's login page, or straight back when signed in there): the callback to our OP. */
  async function throughCorp(browser: FormBrowser, page: BrowserPage): Promise<string> {
    const back = page.stoppedAt ? page : await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(new URL(back.stoppedAt!).pathname).toBe('/op/upstream/callback/corp');
    return back.stoppedAt!;
  }
  /** A sign-in of client `web` opened in a tab: its login page, and what the client keeps to redeem it. */
  async function tab(browser: FormBrowser) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(web, {
      redirect_uri: `${origin}/cb`, scope: 'openid', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    return { login: await browser.open(url.href), verifier, state };
  }
  const upstreamRecord = async (state: string) => (await redisAdapter(redis.client as typeof second, { prefix: 'fed:' }).adapterFor('OpUpstreamTransaction')
    .find(createHash('sha256').update(`corp:${state}`).digest('base64url'))) as { browser?: string; taken?: true } | undefined;
  const recordIds = async () => (await redis.client.keys('fed:OpUpstreamTransaction:*')).sort();

  const sidOf = (browser: FormBrowser) => decodeURIComponent(browser.jar.header(`${origin}/op/`).match(/connect\.sid=([^;]+)/)![1]!).slice(2).split('.')[0]!;
  const storedSession = (sid: string) => new Promise<session.SessionData>((resolve, reject) => sessions.get(sid, (err, s) => (err || !s ? reject(err) : resolve(s))));
  const storeSession = (sid: string, data: session.SessionData) => new Promise<void>((resolve, reject) => sessions.set(sid, data, (err) => (err ? reject(err) : resolve())));

  const signedIn = async (done: BrowserPage, t: { verifier: string; state: string }) => {
    expect([done.status, done.html.includes('interaction_expired'), new URL(done.stoppedAt ?? done.url).pathname]).toEqual([303, false, '/cb']);
    const tokens = await client.authorizationCodeGrant(web, callbackOf(done), { pkceCodeVerifier: t.verifier, expectedState: t.state });
    expect(tokens.claims()).toMatchObject({ sub: 'alice', amr: ['fed'] });
  };

  test('two tabs choose Corp at the same moment, each on another instance, both reading the session before either saves: both sign in, one after the other', async () => {
    const browser = browserAt();
    // the browser has a session already (an earlier sign-in at Corp it left), so both tabs share it
    await browser.submit((await tab(browser)).login, { value: ['authenticator', 'corp'] });
    expect(browser.jar.names()).toContain('connect.sid');
    const tabs = [await tab(browser), await tab(browser)];
    sessions.holdNextReads(2);
    const atCorp = await Promise.all(tabs.map((t, i) => browser.submit(t.login, { value: ['authenticator', 'corp'] }, {}, { 'x-instance': String(i) })));
    // the first to finish renews the session (a sign-in here): the other one's sign-in is not the session's
    for (const [i, t] of tabs.entries()) await signedIn(await browser.open(await throughCorp(browser, atCorp[i]!)), t);
  });

  test('two tabs of a browser with no session cookie yet choose Corp at the same moment, one on each instance: both sign in', async () => {
    const browser = browserAt();
    const tabs = [await tab(browser), await tab(browser)];
    expect(browser.jar.names()).not.toContain('connect.sid');
    const atCorp = await Promise.all(tabs.map((t, i) => browser.submit(t.login, { value: ['authenticator', 'corp'] }, {}, { 'x-instance': String(i) })));
    for (const [i, t] of tabs.entries()) await signedIn(await browser.open(await throughCorp(browser, atCorp[i]!)), t);
  });

  test('a callback opened in another browser (an answer planted there) is refused and signs no one in, also with the first browser\'s session cookie; the sign-in stays its own browser\'s', async () => {
    const browser = browserAt();
    const t = await tab(browser);
    const callback = await throughCorp(browser, await browser.submit(t.login, { value: ['authenticator', 'corp'] }));
    const other = browserAt();
    await other.submit((await tab(other)).login, { value: ['authenticator', 'corp'] }); // a session of its own
    const planted = await other.open(callback);
    expect([planted.status, planted.html.includes('interaction_expired')]).toEqual([400, true]);
    // the session cookie alone (copied, or planted by someone who can set cookies here) does not make it that browser
    const sessionCookie = browser.jar.header(callback).split('; ').filter((c) => c.startsWith('connect.sid=')).join('; ');
    expect(sessionCookie).not.toBe('');
    const withSession = await fetch(callback, { redirect: 'manual', headers: { accept: 'text/html', cookie: sessionCookie } });
    expect([withSession.status, (await withSession.text()).includes('interaction_expired')]).toEqual([400, true]);
    expect(other.jar.names()).not.toContain('_session');
    await signedIn(await browser.open(callback), t);
  });

  test('a sign-in that an instance of an earlier release started (its transaction in the session, not in the store) still finishes', async () => {
    const browser = browserAt();
    const t = await tab(browser);
    const before = await recordIds();
    const callback = await throughCorp(browser, await browser.submit(t.login, { value: ['authenticator', 'corp'] }));
    // as an instance of the earlier release leaves it: no record (the session keeps its copy, `openidExpressOpUpstream:corp`)
    const [key] = (await recordIds()).filter((k) => !before.includes(k));
    await redis.client.del(key!);
    await signedIn(await browser.open(callback), t);
  });

  test('the session keeps a copy of the sign-in for instances of the earlier release during an upgrade, and the callback takes it from there too', async () => {
    const browser = browserAt();
    const copies = async () => ((await storedSession(sidOf(browser))) as unknown as Record<string, { transactions?: Array<{ state: string }> }>)['openidExpressOpUpstream:corp']?.transactions ?? [];
    const atCorp = await browser.submit((await tab(browser)).login, { value: ['authenticator', 'corp'] });
    const back = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'carol', password: CAROL.password });
    expect((await copies()).map((c) => c.state)).toEqual([new URL(back.stoppedAt!).searchParams.get('state')]);
    // refused (carol has no account here): no sign-in renews the session, and the copy is gone from it
    // too, so the callback replayed once the record is gone finds nothing there
    expect((await browser.open(back.stoppedAt!)).status).toBe(401);
    expect(await copies()).toEqual([]);
  });

  test('the store failing at the callback\'s one-time claim: 503 with Retry-After, and the reload it asks for signs in (the code was not redeemed)', async () => {
    const browser = browserAt();
    const t = await tab(browser);
    const callback = await throughCorp(browser, await browser.submit(t.login, { value: ['authenticator', 'corp'] }));
    claimFailures = 1;
    const failed = await browser.open(callback);
    expect([claimFailures, failed.status, failed.headers.get('retry-after')]).toEqual([0, 503, '5']);
    // the record alone carries the reload (the session's copy for earlier releases is dropped, as the next release has none)
    const { 'openidExpressOpUpstream:corp': copy, ...rest } = (await storedSession(sidOf(browser))) as session.SessionData & Record<string, unknown>;
    expect(copy).toBeDefined();
    await storeSession(sidOf(browser), rest as session.SessionData);
    await signedIn(await browser.open(callback), t);
  });

  test('a finished sign-in\'s record keeps nothing of it, and its cookie (sent only to the callback, HttpOnly, Lax on http, as long as the sign-in lives) is cleared', async () => {
    const before = await recordIds();
    const browser = browserAt();
    const t = await tab(browser);
    const login = await browser.form(t.login, { value: ['authenticator', 'corp'] });
    const choose = await fetch(login.action, {
      method: 'POST', redirect: 'manual',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: browser.jar.header(login.action) },
      body: new URLSearchParams(login.fields),
    });
    expect(choose.status).toBe(303);
    const set = choose.headers.getSetCookie().find((c) => c.startsWith('op_upstream_'));
    expect(set).toMatch(/^op_upstream_[\w-]{16}=[\w-]{32}; Max-Age=600; Path=\/op\/upstream\/callback\/corp; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    browser.jar.store(login.action, choose.headers);
    const [key] = (await recordIds()).filter((k) => !before.includes(k));
    const callback = await throughCorp(browser, await browser.open(choose.headers.get('location')!));
    const answer = await fetch(callback, { redirect: 'manual', headers: { accept: 'text/html', cookie: browser.jar.header(callback) } });
    expect(answer.status).toBe(303);
    expect(answer.headers.getSetCookie().find((c) => c.startsWith(set!.split('=')[0]!))).toMatch(/=; Path=\/op\/upstream\/callback\/corp; Expires=Thu, 01 Jan 1970/);
    expect(key).toBe(`fed:OpUpstreamTransaction:${createHash('sha256').update(`corp:${new URL(callback).searchParams.get('state')}`).digest('base64url')}`);
    // (marked once the answer is out)
    await eventually(async () => expect(await upstreamRecord(new URL(callback).searchParams.get('state')!)).toEqual({ taken: true }), 5000);
  });

  test('a sign-in its own browser ended (cancelled, without its session cookie) cannot be finished later through a copy in its session: a planted session cookie finds nothing', async () => {
    const browser = browserAt();
    const t = await tab(browser);
    const callback = new URL(await throughCorp(browser, await browser.submit(t.login, { value: ['authenticator', 'corp'] })));
    const state = callback.searchParams.get('state')!;
    const sessionCookie = browser.jar.header(callback.href).split('; ').filter((c) => c.startsWith('connect.sid=')).join('; ');
    const proofCookie = browser.jar.header(callback.href).split('; ').filter((c) => c.startsWith('op_upstream_')).join('; ');
    const at = (query: string, cookie: string) => fetch(`${origin}/op/upstream/callback/corp?${query}`, { redirect: 'manual', headers: { accept: 'text/html', cookie } });
    const cancelled = await at(`error=access_denied&state=${state}&iss=${encodeURIComponent(upstreamOp.issuer)}`, proofCookie);
    expect([cancelled.status, (await cancelled.text()).includes('login_cancelled')]).toEqual([400, true]);
    // once its record is settled, and the one-time claim has lapsed (30 s), a browser holding only that session cookie brings an answer
    await eventually(async () => expect((await upstreamRecord(state))?.browser).toBeUndefined(), 5000);
    for (const k of await redis.client.keys('fed:*openid-express:callback:*')) await redis.client.del(k);
    const planted = await at(`code=someone-elses&state=${state}`, sessionCookie);
    expect([planted.status, (await planted.text()).includes('interaction_expired')]).toEqual([400, true]);
  });

  test('on an https issuer the cookie is __Secure- and SameSite=None; Secure (a form_post answer is a cross-site POST, and no page over http can plant it)', async () => {
    const authenticator = upstream({
      name: 'corp', account: () => undefined,
      provider: oidc({ issuer: upstreamOp.issuer, clientId: 'our-op', clientSecret: 'upstream-secret-1', allowInsecureRequests: true }),
    });
    authenticator.mount!({
      issuer: 'https://id.example.com/op', mountPath: '/op', router: express.Router(), storeTimeout: 1000, store: memoryAdapter(),
      complete: async () => undefined, completeOnce: async () => undefined,
    });
    const app = express().use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }))
      .post('/choose', (req, res, next) => void authenticator.verify({ uid: 'uid-1', body: {}, req, res, accounts }).then((r) => res.json(r), next));
    const https = await listen();
    https.on('request', app);
    try {
      const answer = await fetch(`${originOf(https)}/choose`, { method: 'POST' });
      expect((await answer.json()).ok).toBe('redirect');
      expect(answer.headers.getSetCookie().find((c) => c.includes('op_upstream_')))
        .toMatch(/^__Secure-op_upstream_[\w-]{16}=[\w-]{32}; Max-Age=600; Path=\/op\/upstream\/callback\/corp; Expires=[^;]+; HttpOnly; Secure; SameSite=None$/);
    } finally {
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    }
  });
});
