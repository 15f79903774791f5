import { createClient } from 'redis';
import { memoryAccounts, memoryAdapter, redisAdapter, StoreUnavailableError, type OpStore } from '@openid-express/op';
import { startRedisServer, type RedisServer } from '../../../test/support/redis-server.js';
import type { BrowserPage, FormBrowser } from '../../../test/support/op-forms.js';
import { accountsWithOutage, BOB } from './support/op-server.js';
import { SECRET, startFlowFixture } from './support/flow-suite.js';
import {
  ALICE, FULL_ALICE, aliceWith, browserOf, callbackOf, client, codeRequest, nextIp, register, signIn, startCertOp,
  type FlowFixture,
} from './cert-support.js';

const XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
const STACK = /\bat [\w.<>]+ \(|node_modules|\.ts:\d+/;

/** Every HTML page the attacker saw: never a stack trace, a secret or an unescaped payload. */
function expectClean(page: BrowserPage) {
  expect(page.html).not.toMatch(STACK);
  expect(page.html).not.toContain(SECRET);
  expect(page.html).not.toContain('<script');
  expect(page.html).not.toContain('<img src=x');
}

/** The OP pages (login, consent, error, logout) must never be framed nor cached. */
function expectProtectedPage(page: BrowserPage) {
  expect(page.headers.get('cache-control')).toContain('no-store');
  expect(page.headers.get('x-frame-options')).toBe('DENY');
  expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
}

const loginForm = { value: ['authenticator', 'password'] as [string, string] };

describe('an attacker against the OP', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startCertOp({ accounts: memoryAccounts([FULL_ALICE, BOB]), throttle: { maxAccountFailures: 5 } });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('login CSRF: a login form posted from another site without the token signs no one in', async () => {
    const browser = browserOf(f);
    const page = await browser.open((await codeRequest(f)).url);
    const form = browser.form(page, loginForm);
    const forged = await browser.post(form.action, { authenticator: 'password', login: 'alice', password: ALICE.password });
    expect(forged.status).toBe(403);
    expectProtectedPage(forged);
    expect(browser.jar.names()).not.toContain('_session');
    const silent = await browser.open((await codeRequest(f, { prompt: 'none' })).url);
    expect(callbackOf(silent).searchParams.get('error')).toBe('login_required');
  });

  test('logout CSRF: a forged sign-out post for a signed-in alice who never saw the logout page changes nothing', async () => {
    const { browser } = await aliceWith(f);
    const forgeries: Array<Record<string, string>> = [{ logout: 'yes' }, { logout: 'yes', xsrf: 'guessed' }, { logout: 'yes', xsrf: 'guessed', csrf: 'guessed' }];
    for (const fields of forgeries) {
      const forged = await browser.post(`${f.op.issuer}/session/end/confirm`, fields);
      expect([fields, forged.status]).toEqual([fields, expect.any(Number)]);
      expect(forged.status).toBeGreaterThanOrEqual(400);
      expect(forged.status).toBeLessThan(500);
      expectClean(forged);
    }
    const silent = await browser.open((await codeRequest(f, { prompt: 'none' })).url);
    expect(callbackOf(silent).searchParams.get('code')).toEqual(expect.any(String));
  });

  test('session fixation: cookies planted before the login do not carry the victim\'s session', async () => {
    const victim = browserOf(f);
    victim.jar.store(f.op.issuer, new Headers([['set-cookie', '_session=attacker-chosen; Path=/'], ['set-cookie', '_session.legacy=attacker-chosen; Path=/']]));
    const req = await codeRequest(f);
    const first = await victim.open(req.url);
    const before = victim.jar.header(`${f.op.issuer}/auth`);
    const done = await signIn(victim, req.url, { login: 'alice', password: ALICE.password });
    expect(first.status).toBe(200);
    callbackOf(done);
    const after = victim.jar.header(`${f.op.issuer}/auth`);
    const session = (h: string) => /(?:^|; )_session=([^;]*)/.exec(h)?.[1];
    expect(session(after)).toEqual(expect.any(String));
    expect(session(after)).not.toBe('attacker-chosen');
    expect(session(after)).not.toBe(session(before));
    // the attacker who copied every cookie the victim had before signing in is still nobody
    const attacker = browserOf(f);
    for (const pair of before.split('; ').filter(Boolean)) attacker.jar.store(f.op.issuer, new Headers([['set-cookie', `${pair}; Path=/`]]));
    const silent = await attacker.open((await codeRequest(f, { prompt: 'none' })).url);
    expect(callbackOf(silent).searchParams.get('error')).toBe('login_required');
  });

  test('clickjacking and caching: login, consent, error and logout pages are never framed nor stored', async () => {
    const browser = browserOf(f);
    const req = await codeRequest(f, { scope: 'openid email' });
    const login = await browser.open(req.url);
    const consent = await browser.submit(login, loginForm, { login: 'alice', password: ALICE.password });
    expect(consent.html).toContain('Allow');
    const done = await browser.submit(consent, { action: '/confirm' });
    const tokens = await client.authorizationCodeGrant(f.web, callbackOf(done), {
      pkceCodeVerifier: req.verifier, expectedState: req.params.state, expectedNonce: req.params.nonce,
    });
    const error = await browser.open((await codeRequest(f, { redirect_uri: 'https://evil.example/cb' })).url);
    expect(error.status).toBe(400);
    const logout = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token! }).href);
    expect(logout.html).toContain('op.logoutForm');
    const expired = await browser.open(login.url);
    for (const page of [login, consent, error, logout, expired]) {
      expectProtectedPage(page);
      expectClean(page);
    }
    const signedOut = await browser.submit(logout, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(signedOut.status).toBe(200);
    expectProtectedPage(signedOut);
  });

  test('reflected XSS: login_hint, ui_locales, state and odd parameters come back escaped or not at all', async () => {
    const browser = browserOf(f);
    const page = await browser.open((await codeRequest(f, { login_hint: XSS, ui_locales: XSS, display: XSS, acr_values: XSS })).url);
    expect(page.status).toBe(200);
    expectClean(page);
    expect(browser.form(page, { has: 'login' }).fields.login).toBe(XSS); // the value survives, escaped
    const failed = await browser.submit(page, loginForm, { login: XSS, password: 'x' });
    expect(failed.status).toBe(401);
    expectClean(failed);
    for (const url of [
      `${f.op.issuer}/auth?client_id=${encodeURIComponent(XSS)}&response_type=code&scope=openid`,
      `${f.op.issuer}/auth?client_id=web&response_type=${encodeURIComponent(XSS)}&redirect_uri=${encodeURIComponent(XSS)}`,
      `${f.op.issuer}/interaction/${encodeURIComponent(XSS)}`,
      `${f.op.issuer}/session/end?post_logout_redirect_uri=${encodeURIComponent(XSS)}&client_id=web`,
    ]) {
      const answer = await browserOf(f).open(url);
      expect([url, answer.status]).toEqual([url, expect.any(Number)]);
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      expectClean(answer);
    }
  });

  test('reflected XSS: a registered client_name is escaped on the login and consent screens', async () => {
    const evil = await register(f, { client_name: XSS, grant_types: ['authorization_code'] });
    const browser = browserOf(f);
    const login = await browser.open((await codeRequest(f, { scope: 'openid email' }, evil)).url);
    expect(login.status).toBe(200);
    expectClean(login);
    const consent = await browser.submit(login, loginForm, { login: 'alice', password: ALICE.password });
    expect(consent.html).toContain('&lt;script&gt;');
    expectClean(consent);
  });

  test('open redirect: an unregistered post_logout_redirect_uri is refused at the OP, never followed', async () => {
    const { tokens, browser } = await aliceWith(f);
    for (const target of ['https://evil.example/bye', `${f.op.origin}/bye.evil`, `${f.op.origin}/bye/../evil`]) {
      const page = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: target }).href);
      expect([target, page.status]).toEqual([target, 400]);
      expect(page.stoppedAt).toBeUndefined();
      expect(page.headers.get('location')).toBeNull();
      expectClean(page);
    }
    const silent = await browser.open((await codeRequest(f, { prompt: 'none' })).url);
    expect(callbackOf(silent).searchParams.get('code')).toEqual(expect.any(String)); // still signed in
  });

  test('redirect_uri tricks are refused with an error page, never a redirect', async () => {
    const cb = f.redirectUri;
    const { host } = new URL(cb);
    const tricks = [
      `http://${host}.evil.example/cb`, `http://${host}@evil.example/cb`, `${cb}/../evil`, `${cb}/`, `${cb}#frag`,
      `${cb}?next=https://evil.example`, cb.replace('/cb', '/CB'), cb.replace('/cb', '/%63b'), `${cb}%2f..%2fevil`, ` ${cb}`,
    ];
    for (const redirect of tricks) {
      const page = await browserOf(f).open((await codeRequest(f, { redirect_uri: redirect })).url);
      expect([redirect, page.status]).toEqual([redirect, 400]);
      expect(page.headers.get('location')).toBeNull();
      expectClean(page);
    }
  });

  test('non-string form fields (login[]=, repeated fields) get a 4xx page, never a crash or a session', async () => {
    const browser = browserOf(f);
    const page = await browser.open((await codeRequest(f)).url);
    const form = browser.form(page, loginForm);
    const raw = (body: string) => fetch(form.action, { method: 'POST', redirect: 'manual', body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.jar.header(form.action), 'x-forwarded-for': nextIp(), accept: 'text/html' } });
    const csrf = encodeURIComponent(form.fields.csrf!);
    for (const body of [
      `csrf=${csrf}&authenticator=password&login[]=alice&password[]=${ALICE.password}`,
      `csrf=${csrf}&authenticator=password&login=alice&login=bob&password=${ALICE.password}`,
      `csrf=${csrf}&csrf=${csrf}&authenticator=password&login=alice&password=${ALICE.password}`,
      `csrf=${csrf}&authenticator=password&authenticator=password&login=alice&password=${ALICE.password}`,
      `csrf[]=${csrf}&authenticator=password&login=alice&password=${ALICE.password}`,
    ]) {
      const res = await raw(body);
      expect([body, res.status]).toEqual([body, expect.any(Number)]);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(await res.text()).not.toMatch(STACK);
      expect(res.headers.getSetCookie().some((c) => c.startsWith('_session='))).toBe(false);
    }
  });

  test('oversized and repeated parameters at the authorization endpoint (POST) get a 4xx, and the OP keeps serving', async () => {
    const auth = `${f.op.issuer}/auth`;
    const big = await browserOf(f).post(auth, { client_id: 'web', response_type: 'code', scope: 'openid', pad: 'x'.repeat(64 * 1024) });
    expect(big.status).toBe(413);
    expectClean(big);
    const twice = await fetch(auth, { method: 'POST', redirect: 'manual', body: 'client_id=web&client_id=evil&response_type=code&scope=openid',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' } });
    const followed = await fetch(new URL(twice.headers.get('location')!, auth), { headers: { accept: 'text/html' } });
    expect(followed.status).toBe(400);
    expect(await followed.text()).not.toMatch(STACK);
    const { tokens } = await aliceWith(f);
    expect(tokens.claims()!.sub).toBe('alice');
  });

  test('malformed requests get a 4xx with a reason, never a 500 or a stack trace', async () => {
    const html = { accept: 'text/html' };
    const answers: Array<[string, Response]> = [
      ['bad percent-encoding', await fetch(`${f.op.issuer}/interaction/%E0%A4%A`, { headers: html })],
      ['bad JSON at registration', await fetch(`${f.op.issuer}/reg`, { method: 'POST', body: '{"redirect_uris": [',
        headers: { 'content-type': 'application/json', authorization: 'Bearer let-me-register' } })],
      ['array field at the token endpoint', await fetch(`${f.op.issuer}/token`, { method: 'POST', body: 'grant_type[]=authorization_code&code=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` } })],
      ['garbage session cookies', await fetch(`${f.op.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=x`,
        { headers: { ...html, cookie: '_session=%%%; _session.sig=zzz; _session.legacy=%; connect.sid=s%3Agarbage' } })],
    ];
    for (const [what, res] of answers) {
      const body = await res.text();
      expect([what, res.status >= 400 && res.status < 500]).toEqual([what, true]);
      expect(body).not.toMatch(STACK);
      expect(body).not.toContain(SECRET);
    }
    const badClaims = await codeRequest(f, { claims: '{"userinfo": {' });
    const answer = callbackOf(await browserOf(f).open(badClaims.url)).searchParams;
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('code')).toBeNull();
  });

  // last: it leaves alice locked
  test('throttling: varying case and spaces of the login name, or its email alias, does not reset the count', async () => {
    const attempts = ['alice', ' ALICE', 'Alice ', 'alice@example.org', 'ALICE@EXAMPLE.ORG '];
    for (const login of attempts) {
      const browser = browserOf(f); // a new IP every time: only the per-account count can stop this
      const page = await browser.open((await codeRequest(f)).url);
      const failed = await browser.submit(page, loginForm, { login, password: `guess-${login}` });
      expect([login, failed.status]).toEqual([login, 401]);
    }
    const browser = browserOf(f);
    const page = await browser.open((await codeRequest(f)).url);
    const locked = await browser.submit(page, loginForm, { login: 'alice', password: ALICE.password });
    expect(locked.status).toBe(429);
    expect(browser.jar.names()).not.toContain('_session');
  });
});

describe('an attacker against an OP that does not trust a proxy', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { accounts: memoryAccounts([FULL_ALICE, BOB]) });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('a new X-Forwarded-For on every guess does not escape the per-IP limit', async () => {
    let browser: FormBrowser | undefined;
    for (let i = 0; i < 5; i += 1) {
      browser = f.browser(`192.0.2.${i + 1}`);
      const page = await browser.open((await codeRequest(f)).url);
      const failed = await browser.submit(page, loginForm, { login: `nobody-${i}`, password: 'x' });
      expect(failed.status).toBe(401);
    }
    browser = f.browser('192.0.2.99');
    const page = await browser.open((await codeRequest(f)).url);
    const refused = await browser.submit(page, loginForm, { login: 'bob', password: BOB.password });
    expect(refused.status).toBe(429);
    expect(browser.jar.names()).not.toContain('_session');
  });
});

describe('an attacker against an OP whose app trusts every proxy hop (app.set(\'trust proxy\', true), trustProxy left off)', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { accounts: memoryAccounts([FULL_ALICE, BOB]) }, { beforeOp: (app) => void app.set('trust proxy', true) });
  });
  afterAll(async () => {
    await f?.op.close();
  });
  afterEach(() => jest.restoreAllMocks());

  // what the load balancer passes on: the client's own X-Forwarded-For, then the address it saw (203.0.113.50)
  const behindProxy = (made: string) => `${made}, 203.0.113.50`;

  test('a made-up X-Forwarded-For on every guess (req.ip is its first entry) does not escape the per-IP limit, and op() says what to set', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    for (let i = 0; i < 5; i += 1) {
      const browser = f.browser(behindProxy(`192.0.2.${i + 1}`));
      const failed = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: `nobody-${i}`, password: 'x' });
      expect(failed.status).toBe(401);
    }
    const browser = f.browser(behindProxy('192.0.2.99'));
    const refused = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password });
    expect(refused.status).toBe(429); // before: 200, every guess counted under the address the client chose
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/`trust proxy` set to true .* Set `app\.set\('trust proxy', N\)` to the number of proxies/));
  });
});

describe('strangers guessing one account from many addresses, with the default limits (5 per address, 100 per account)', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { accounts: memoryAccounts([FULL_ALICE, BOB]), trustProxy: true });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('addresses of one IPv6 /64 count as one (one machine has 2^64 of them): five guesses from five of them lock the /64, not another /64', async () => {
    for (let i = 1; i <= 5; i += 1) {
      const browser = f.browser(`2001:db8:77:1::${i.toString(16)}`);
      expect((await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: `guess-${i}` })).status).toBe(401);
    }
    const same64 = f.browser('2001:db8:77:1:ffff:ffff:ffff:fffe');
    expect((await same64.submit(await same64.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password })).status).toBe(429);
    const other64 = f.browser('2001:db8:77:2::1');
    expect([401, 429]).not.toContain((await other64.submit(await other64.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password })).status);
  });

  test('cannot keep the owner out: after 30 wrong guesses from six addresses (each of them locked out), alice signs in from her own', async () => {
    for (let a = 0; a < 6; a += 1) {
      const browser = f.browser(`192.0.2.${200 + a}`);
      let page = await browser.open((await codeRequest(f)).url);
      for (let i = 0; i < 5; i += 1) {
        page = await browser.submit(page, loginForm, { login: 'alice', password: `guess-${a}-${i}` });
        expect(page.status).toBe(401);
      }
      // that address is locked now, the right password included
      expect((await browser.submit(page, loginForm, { login: 'alice', password: ALICE.password })).status).toBe(429);
    }
    // before: "Too many failed attempts" for alice everywhere, renewed by a few guesses every window
    const own = f.browser('198.51.100.250');
    const signedIn = await own.submit(await own.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
    expect([401, 429]).not.toContain(signedIn.status);
  });
});

describe('guesses sent all at once (the password check is slow: scrypt)', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { accounts: memoryAccounts([FULL_ALICE, BOB]), trustProxy: true, throttle: { maxAccountFailures: 5 } });
  });
  afterAll(async () => {
    await f?.op.close();
  });

  test('twelve wrong passwords for one account at once, each from its own IP: five are checked, the rest are 429, and then even the right one is', async () => {
    // every guess is counted before its password is checked, so the burst is held to the limit (5)
    const pages = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const browser = f.browser(`203.0.113.${i + 1}`);
      return { browser, page: await browser.open((await codeRequest(f)).url) };
    }));
    const answers = await Promise.all(pages.map(({ browser, page }, i) => browser.submit(page, loginForm, { login: 'bob', password: `guess-${i}` })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    const browser = f.browser('203.0.113.99');
    const locked = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password });
    expect(locked.status).toBe(429);
    expect(locked.stoppedAt).toBeUndefined();
  });

  test('the right password still signs in at once after a few failures, and a success starts the count again', async () => {
    for (let round = 0; round < 2; round += 1) {
      for (let i = 0; i < 4; i += 1) {
        const browser = f.browser(`198.51.100.${round * 10 + i + 1}`);
        expect((await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: `guess-${i}` })).status).toBe(401);
      }
      const browser = f.browser(`198.51.100.${round * 10 + 9}`);
      const ok = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
      expect(ok.status).not.toBe(429);
      expect(ok.status).not.toBe(401);
    }
  });
});


describe.each([
  ['memory', () => Promise.resolve({ store: memoryAdapter() as OpStore, stop: async () => undefined })],
  ['Redis', async () => {
    const redis: RedisServer = await startRedisServer();
    const client = createClient({ url: redis.url });
    await client.connect();
    return { store: redisAdapter(client) as OpStore, stop: async () => { client.destroy(); await redis.stop(); } };
  }],
])('a burst of guesses sprayed over many accounts from one address (%s store)', (_name, open) => {
  let f: FlowFixture;
  let accountsDown = false;
  let countsLost = false;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    stop = opened.stop;
    const store = opened.store;
    // the store as the OP sees it: while `countsLost`, a login count is made but its reply is lost (a dropped connection)
    const flaky: OpStore = {
      kind: store.kind,
      adapterFor: (name) => store.adapterFor(name),
      count: (k) => store.count(k),
      reset: (k) => store.reset(k),
      decrement: (k) => store.decrement!(k),
      increment: async (k, ttl) => {
        const n = await store.increment(k, ttl);
        if (countsLost && k.includes(':login:')) throw new StoreUnavailableError('Redis is unavailable (ECONNRESET) for increment');
        return n;
      },
    };
    f = await startFlowFixture(flaky, { accounts: accountsWithOutage([FULL_ALICE, BOB], () => accountsDown), trustProxy: true, throttle: { maxAccountFailures: 5 } });
  }, 60_000);
  afterAll(async () => {
    await f?.op.close();
    await stop?.();
  });

  test('twelve names guessed at once from one IP: five are checked, the rest are 429 "at this moment" (a short Retry-After), then the address is locked for the window', async () => {
    // the address's checks under way are counted before the password is checked, with its failures
    const pages = await Promise.all(Array.from({ length: 12 }, async () => {
      const browser = f.browser('203.0.113.50');
      return { browser, page: await browser.open((await codeRequest(f)).url) };
    }));
    const answers = await Promise.all(pages.map(({ browser, page }, i) => browser.submit(page, loginForm, { login: `user-${i}`, password: 'guess' })));
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    const busy = answers.find((a) => a.status === 429)!;
    expect(busy.headers.get('retry-after')).toBe('2');
    expect(busy.html).toContain('Too many sign-ins from your network at this moment');
    const browser = f.browser('203.0.113.50');
    const locked = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password });
    expect([locked.status, locked.headers.get('retry-after')]).toEqual([429, '900']);
    expect(locked.html).toContain('Too many failed attempts');
  });

  /** Alice's right password sent by `users` at the same moment: nobody is told to wait minutes, and those told "at this moment" sign in on retry. */
  async function rightPasswordsAtOnce(users: ReturnType<typeof f.browser>[], busyMessage: string): Promise<void> {
    const pages = await Promise.all(users.map(async (browser) => browser.open((await codeRequest(f)).url)));
    const answers = await Promise.all(pages.map((page, i) => users[i]!.submit(page, loginForm, { login: 'alice', password: ALICE.password })));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThan(0); // five checks at most at once
    expect(answers.filter((a) => a.status !== 429).every((a) => a.status !== 401)).toBe(true);
    for (const a of refused) {
      expect(a.headers.get('retry-after')).toBe('2');
      expect(a.html).toContain(busyMessage);
    }
    for (let i = 0; i < answers.length; i += 1) {
      if (answers[i]!.status !== 429) continue;
      const again = await users[i]!.submit(await users[i]!.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
      expect([401, 429]).not.toContain(again.status);
    }
  }

  test('eight right passwords at once from one address (an office behind one NAT): none is told to wait minutes; those refused "at this moment" sign in when they try again', async () => {
    await rightPasswordsAtOnce(Array.from({ length: 8 }, () => f.browser('198.51.100.120')), 'Too many sign-ins from your network at this moment');
  });

  test('eight right passwords at once to one account from eight addresses (one account, several devices): none is locked out; those refused "at this moment" sign in when they try again', async () => {
    // before: every attempt was counted against the account up front, so the sixth at once was
    // "Too many failed attempts" for 15 minutes, with no attempt failed
    await rightPasswordsAtOnce(Array.from({ length: 8 }, (_, i) => f.browser(`192.0.2.${160 + i}`)), 'Too many sign-ins to this account at this moment');
  });

  test('guesses at one account sent all at once from many addresses are held to the limit, then the account is locked for the window', async () => {
    const users = Array.from({ length: 9 }, (_, i) => f.browser(`192.0.2.${180 + i}`));
    const pages = await Promise.all(users.map(async (browser) => browser.open((await codeRequest(f)).url)));
    const answers = await Promise.all(pages.map((page, i) => users[i]!.submit(page, loginForm, { login: 'dave', password: `guess-${i}` })));
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(5).fill(401), ...Array(4).fill(429)]);
    const browser = f.browser('192.0.2.199');
    const locked = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'dave', password: 'guess-9' });
    expect([locked.status, locked.headers.get('retry-after')]).toEqual([429, '900']);
    expect(locked.html).toContain('Too many failed attempts');
  });

  test('sign-ins retried while the account store is unavailable (503) lock nobody out: each gives its attempts back; wrong passwords still count', async () => {
    accountsDown = true;
    try {
      for (let i = 0; i < 7; i += 1) {
        const browser = f.browser('198.51.100.88');
        const unavailable = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
        expect([i, unavailable.status, unavailable.headers.get('retry-after')]).toEqual([i, 503, '5']);
      }
    } finally {
      accountsDown = false;
    }
    const browser = f.browser('198.51.100.88');
    const ok = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
    expect([401, 429, 503]).not.toContain(ok.status);
    // (control) a wrong password is still counted: five, then 429
    for (let i = 0; i < 5; i += 1) {
      const guess = f.browser('198.51.100.89');
      expect((await guess.submit(await guess.open((await codeRequest(f)).url), loginForm, { login: 'mallory', password: `guess-${i}` })).status).toBe(401);
    }
    const locked = f.browser('198.51.100.89');
    expect((await locked.submit(await locked.open((await codeRequest(f)).url), loginForm, { login: 'mallory', password: 'guess-5' })).status).toBe(429);
  });

  test('sign-ins whose throttle count met a dropped store connection (503) lock nobody out: what they counted is taken back', async () => {
    countsLost = true;
    try {
      for (let i = 0; i < 7; i += 1) {
        const browser = f.browser('198.51.100.90');
        const unavailable = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
        expect([i, unavailable.status]).toEqual([i, 503]);
      }
    } finally {
      countsLost = false;
    }
    const browser = f.browser('198.51.100.90');
    const ok = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
    expect([401, 429, 503]).not.toContain(ok.status);
  });

  test('(control) successes from one address (people behind one NAT) never lock it: each gives its attempt back', async () => {
    for (let i = 0; i < 8; i += 1) {
      const browser = f.browser('198.51.100.77');
      const ok = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'alice', password: ALICE.password });
      expect([401, 429]).not.toContain(ok.status);
    }
    for (let i = 0; i < 4; i += 1) {
      const browser = f.browser('198.51.100.77');
      expect((await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: `typo-${i}`, password: 'x' })).status).toBe(401);
    }
    const browser = f.browser('198.51.100.77');
    const ok = await browser.submit(await browser.open((await codeRequest(f)).url), loginForm, { login: 'bob', password: BOB.password });
    expect([401, 429]).not.toContain(ok.status);
  });
});
