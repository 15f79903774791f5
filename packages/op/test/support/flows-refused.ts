import { signIn, type FormBrowser } from '../../../../test/support/op-forms.js';
import { ALICE, BOB } from './op-server.js';
import type { OpStore } from '@openid-express/op';
import { callbackOf, client, startFlowFixture, useFlowFixture, type FlowFixture, type StoreFactory } from './flow-suite.js';

const GENERIC = 'The login name or password is incorrect.';
let ipCounter = 0;
/** A fresh client IP per test, so per-IP throttling of one test does not spill into the next. */
const nextIp = () => `198.51.100.${(ipCounter += 1)}`;

async function loginPage(f: FlowFixture, browser: FormBrowser, extra: Record<string, string> = {}) {
  const auth = await f.authorization(f.web, extra);
  return { auth, page: await browser.open(auth.url) };
}

const tryPassword = (browser: FormBrowser, page: Awaited<ReturnType<typeof loginPage>>['page'], login: string, password: string) =>
  browser.submit(page, { value: ['authenticator', 'password'] }, { login, password });

/** What the OP refuses, and that a refusal leaves no OP session behind. */
export function refusedFlows(storeName: string, makeStore: StoreFactory): void {
  describe(`OP flows that are refused (${storeName} store)`, () => {
    let f: FlowFixture;
    let store: OpStore;
    // the account's own limit as low as the address's (default 100), to show the account lock-out across instances
    useFlowFixture(makeStore, { trustProxy: true, throttle: { maxAccountFailures: 5 } }, (started, startedStore) => {
      f = started;
      store = startedStore;
    });

    test('a wrong password and an unknown user get the same generic message and no session', async () => {
      const browser = f.browser(nextIp());
      const { page } = await loginPage(f, browser);
      const wrong = await tryPassword(browser, page, 'alice', 'not-her-password');
      const unknown = await tryPassword(browser, wrong, 'mallory', 'whatever');
      for (const answer of [wrong, unknown]) {
        expect(answer.status).toBe(401);
        expect(answer.html).toContain(GENERIC);
      }
      expect(unknown.html.replace(/value="[^"]*"/g, '')).toBe(wrong.html.replace(/value="[^"]*"/g, ''));
      expect(browser.jar.names()).not.toContain('_session');
    });

    test('after maxAccountFailures (5 here) failures the account is locked, even with the right password, across instances', async () => {
      const browser = f.browser(nextIp());
      let { page } = await loginPage(f, browser);
      for (let i = 0; i < 5; i += 1) page = await tryPassword(browser, page, 'bob', `guess-${i}`);
      expect(page.status).toBe(401);
      const locked = await tryPassword(browser, page, 'bob', BOB.password);
      expect(locked.status).toBe(429);
      expect(browser.jar.names()).not.toContain('_session');
      // a second OP instance sharing the store, another client IP: bob is still locked
      const other = await startFlowFixture(store, { trustProxy: true, throttle: { maxAccountFailures: 5 } });
      try {
        const elsewhere = other.browser(nextIp());
        const { page: otherPage } = await loginPage(other, elsewhere);
        const refused = await tryPassword(elsewhere, otherPage, 'BOB', BOB.password);
        expect(refused.status).toBe(429);
        expect(refused.html).toContain('Too many failed attempts');
        expect(elsewhere.jar.names()).not.toContain('_session');
      } finally {
        await other.op.close();
      }
    });

    test('after 5 failures from one client IP, that IP is locked for every account', async () => {
      const ip = nextIp();
      const browser = f.browser(ip);
      let { page } = await loginPage(f, browser);
      for (let i = 0; i < 5; i += 1) page = await tryPassword(browser, page, `nobody-${i}`, 'x');
      const refused = await tryPassword(browser, page, 'alice', ALICE.password);
      expect(refused.status).toBe(429);
      expect(browser.jar.names()).not.toContain('_session');
      const fromElsewhere = await signIn(f.browser(nextIp()), (await f.authorization()).url, { login: 'alice', password: ALICE.password });
      expect(callbackOf(fromElsewhere).searchParams.get('code')).toEqual(expect.any(String));
    });

    test('a login post without or with a wrong CSRF token is refused with 403 and changes nothing', async () => {
      const browser = f.browser(nextIp());
      const { page } = await loginPage(f, browser);
      const form = browser.form(page, { value: ['authenticator', 'password'] });
      const { csrf: _csrf, ...withoutToken } = form.fields;
      const missing = await browser.post(form.action, { ...withoutToken, login: 'alice', password: ALICE.password });
      const wrong = await browser.post(form.action, { ...form.fields, csrf: 'forged', login: 'alice', password: ALICE.password });
      for (const answer of [missing, wrong]) {
        expect(answer.status).toBe(403);
        expect(answer.html).toContain('csrf_invalid');
      }
      expect(browser.jar.names()).not.toContain('_session');
      const again = await browser.open(page.url);
      expect(again.status).toBe(200);
      expect(again.html).toContain('name="password"');
      const ok = await browser.submit(again, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      expect(ok.html).toContain('Allow');
    });

    test('consent and deny posts without the CSRF token are refused with 403 and change nothing', async () => {
      const browser = f.browser(nextIp());
      const { auth, page } = await loginPage(f, browser);
      const consent = await tryPassword(browser, page, 'alice', ALICE.password);
      for (const action of ['/confirm', '/abort']) {
        const form = browser.form(consent, { action });
        const refused = await browser.post(form.action, { csrf: 'forged' });
        expect([action, refused.status]).toEqual([action, 403]);
        expect(refused.stoppedAt).toBeUndefined();
      }
      const allowed = await browser.submit(consent, { action: '/confirm' });
      const tokens = await client.authorizationCodeGrant(f.web, callbackOf(allowed), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      expect(tokens.claims()!.sub).toBe('alice');
    });

    test("each step has its own CSRF token: the login page's token does not approve the consent", async () => {
      const browser = f.browser(nextIp());
      const { page } = await loginPage(f, browser);
      const loginToken = browser.form(page, { value: ['authenticator', 'password'] }).fields.csrf!;
      const consent = await tryPassword(browser, page, 'alice', ALICE.password);
      const consentForm = browser.form(consent, { action: '/confirm' });
      expect(consentForm.fields.csrf).not.toBe(loginToken);
      const refused = await browser.post(consentForm.action, { csrf: loginToken });
      expect(refused.status).toBe(403);
    });

    test('a consent post while the login is still pending is refused', async () => {
      const browser = f.browser(nextIp());
      const { page } = await loginPage(f, browser);
      const loginForm = browser.form(page, { value: ['authenticator', 'password'] });
      const early = await browser.post(loginForm.action.replace(/\/login$/, '/confirm'), { csrf: loginForm.fields.csrf! });
      expect(early.status).toBe(400);
      expect(early.html).toContain('wrong_prompt');
      expect(browser.jar.names()).not.toContain('_session');
    });

    test('an unregistered redirect_uri gets an error page at the OP, never a redirect', async () => {
      const browser = f.browser(nextIp());
      const auth = await f.authorization(f.web, { redirect_uri: 'https://evil.example/cb' });
      const page = await browser.open(auth.url);
      expect(page.stoppedAt).toBeUndefined();
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
      expect(page.html).toContain('redirect_uri');
      expect(page.html).not.toMatch(/\bat \w+ \(/); // no stack trace
    });

    test('a code cannot be redeemed twice, and the second try revokes what the first gave', async () => {
      const auth = await f.authorization();
      const callback = callbackOf(await signIn(f.browser(nextIp()), auth.url, { login: 'alice', password: ALICE.password }));
      const checks = { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce };
      const tokens = await client.authorizationCodeGrant(f.web, callback, checks);
      await expect(client.authorizationCodeGrant(f.web, callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(client.fetchUserInfo(f.web, tokens.access_token, 'alice')).rejects.toBeDefined();
    });

    test('a code with the wrong PKCE verifier is refused', async () => {
      const auth = await f.authorization();
      const callback = callbackOf(await signIn(f.browser(nextIp()), auth.url, { login: 'alice', password: ALICE.password }));
      await expect(client.authorizationCodeGrant(f.web, callback, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: auth.state, expectedNonce: auth.nonce,
      })).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    test('prompt=none without an OP session answers login_required to the client', async () => {
      const auth = await f.authorization(f.web, { prompt: 'none' });
      const callback = callbackOf(await f.browser(nextIp()).open(auth.url));
      expect(callback.searchParams.get('error')).toBe('login_required');
      expect(callback.searchParams.get('state')).toBe(auth.state);
    });

    test('an interaction opened without its cookie shows a friendly page, not a 500', async () => {
      const { page } = await loginPage(f, f.browser(nextIp()));
      const stranger = f.browser(nextIp());
      // a live sign-in whose cookie did not come back (cookies blocked, another browser): not "expired"
      const lost = await stranger.open(page.url);
      expect(lost.status).toBe(400);
      expect(lost.html).toContain('Cookies are needed to sign in');
      expect(lost.html).toContain('cookies_missing');
      const unknown = await stranger.open(`${f.op.issuer}/interaction/does-not-exist`);
      expect(unknown.status).toBe(400);
      expect(unknown.html).toContain('interaction_expired');
    });

    test('an expired interaction shows a friendly page and signs no one in', async () => {
      // Long enough that a slow CI machine still gets the login page before it expires; the wait
      // below counts from before the authorization request, so it always passes the expiry.
      const ttlSeconds = 4;
      const short = await startFlowFixture(store, { trustProxy: true, ttl: { Interaction: ttlSeconds } });
      try {
        const browser = short.browser(nextIp());
        const started = Date.now();
        const { page } = await loginPage(short, browser);
        expect(page.status).toBe(200);
        await new Promise((r) => setTimeout(r, started + (ttlSeconds + 1.2) * 1000 - Date.now()));
        const late = await tryPassword(browser, page, 'alice', ALICE.password);
        expect(late.status).toBe(400);
        expect(late.html).toContain('interaction_expired');
        expect(browser.jar.names()).not.toContain('_session');
      } finally {
        await short.op.close();
      }
    });

    test('denying consent sends access_denied to the client', async () => {
      const auth = await f.authorization();
      const page = await signIn(f.browser(nextIp()), auth.url, { login: 'alice', password: ALICE.password, consent: 'deny' });
      const callback = callbackOf(page);
      expect(callback.searchParams.get('error')).toBe('access_denied');
      expect(callback.searchParams.get('code')).toBeNull();
    });

    test('a logout confirmation without the CSRF token is refused and alice stays signed in', async () => {
      const browser = f.browser(nextIp());
      const auth = await f.authorization();
      const callback = callbackOf(await signIn(browser, auth.url, { login: 'alice', password: ALICE.password }));
      const tokens = await client.authorizationCodeGrant(f.web, callback, {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      const confirm = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token! }).href);
      const form = browser.form(confirm, { id: 'op.logoutForm' });
      const { csrf: _csrf, ...withoutToken } = form.fields;
      const refused = await browser.post(form.action, { ...withoutToken, logout: 'yes' });
      expect(refused.status).toBe(403);
      const silent = await f.authorization(f.web, { prompt: 'none' });
      expect(callbackOf(await browser.open(silent.url)).searchParams.get('code')).toEqual(expect.any(String));
    });
  });
}
