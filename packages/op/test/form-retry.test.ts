/**
 * The OP's forms when the first answer never reached the browser (a double click, a store failure
 * whose 503 says "try again", an instance that died), and the pages a browser reaches outside a
 * sign-in (no cookie, an unknown address): each has a way on, none a false "form expired".
 */
import { memoryAdapter } from '@openid-express/op';
import { FormBrowser, type BrowserPage } from '../../../test/support/op-forms.js';
import { ALICE, accounts, startOp, type RunningOp } from './support/op-server.js';
import { storeFailingOnce } from './support/failing-store.js';

const SECRET = 'web-secret-web-secret';

let o: RunningOp;
let failing: ReturnType<typeof storeFailingOnce>;
beforeAll(async () => {
  failing = storeFailingOnce(memoryAdapter());
  o = await startOp((_issuer, origin) => ({
    accounts, adapter: failing.store, homeUri: `${origin}/home`,
    clients: [{ client_id: 'web', client_secret: SECRET, client_name: 'Web Shop', client_uri: `${origin}/shop`, redirect_uris: [`${origin}/cb`] }],
  }));
});
afterAll(() => o.close());
afterEach(() => void (failing.state.failNext = ''));

const authUrl = () => `${o.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${o.origin}/cb`)}`
  + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s1';
const newBrowser = () => new FormBrowser({ stopAt: (u) => u.pathname === '/cb' });
const loginFields = { login: ALICE.username, password: ALICE.password };
const PASSWORD: { value: [string, string] } = { value: ['authenticator', 'password'] };

async function consentPage(browser: FormBrowser): Promise<BrowserPage> {
  const login = await browser.open(authUrl());
  const consent = await browser.submit(login, PASSWORD, loginFields);
  expect(consent.url).toContain('/interaction/');
  expect(consent.forms.some((f) => f.action.includes('/confirm'))).toBe(true);
  return consent;
}

/** Posts a form with the browser's cookies and throws the answer away, as a browser does with a double click's first answer. */
async function postAndLoseAnswer(browser: FormBrowser, page: BrowserPage, match: Parameters<FormBrowser['form']>[1], fields: Record<string, string> = {}): Promise<number> {
  const form = browser.form(page, match);
  const res = await fetch(form.action, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: browser.jar.header(form.action), 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    body: new URLSearchParams({ ...form.fields, ...fields }),
  });
  await res.arrayBuffer();
  return res.status;
}

const codeOf = (page: BrowserPage) => new URL(page.stoppedAt ?? 'http://none/').searchParams.get('code');

describe('a form posted again after its first answer was lost (double click)', () => {
  test('"Allow" twice: the second goes on to the client with a code, not a 403 "form expired"', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    expect(await postAndLoseAnswer(browser, consent, { action: '/confirm' })).toBe(303);
    const again = await browser.submit(consent, { action: '/confirm' });
    expect(again.status).toBe(303);
    expect(codeOf(again)).toBeTruthy();
  });

  test('the sign-in form twice: the second goes on (to the consent), not a 403', async () => {
    const browser = newBrowser();
    const login = await browser.open(authUrl());
    expect(await postAndLoseAnswer(browser, login, PASSWORD, loginFields)).toBe(303);
    const again = await browser.submit(login, PASSWORD, loginFields);
    expect(again.status).toBe(200);
    expect(again.forms.some((f) => f.action.includes('/confirm'))).toBe(true);
  });

  test('a forged post with no valid CSRF token is still refused before the step is decided', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    const forged = await browser.submit(consent, { action: '/confirm' }, { csrf: 'forged' });
    expect(forged.status).toBe(403);
    expect(forged.html).toContain('csrf_invalid');
  });
});

describe('"Sign out" confirmed twice (the first answer lost)', () => {
  test('the second confirmation says "Signed out" (it happened), not a 403 "form expired" or a 400 blaming the app', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    expect(codeOf(await browser.submit(consent, { action: '/confirm' }))).toBeTruthy();
    const confirm = await browser.open(`${o.issuer}/session/end`);
    expect(confirm.status).toBe(200);
    expect(await postAndLoseAnswer(browser, confirm, { id: 'op.logoutForm' }, { logout: 'yes' })).toBe(303);
    const again = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(again.status).toBe(200);
    expect(again.html).toMatch(/Signed out/);
    expect(again.html).toContain(`href="${o.origin}/home"`);
    // and signed out it is: a new authorization asks for the password again
    const login = await browser.open(authUrl());
    expect(login.forms.some((f) => 'password' in f.fields)).toBe(true);
  });

  test('a confirmation posted from another site (no cookies come with a cross-site POST): 403 "Nothing was signed out", not "Signed out"', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    expect(codeOf(await browser.submit(consent, { action: '/confirm' }))).toBeTruthy();
    // what a browser sends for a form on another site auto-submitted to the OP: SameSite=Lax cookies stay behind
    const res = await fetch(`${o.issuer}/session/end/confirm`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
      body: new URLSearchParams({ logout: 'yes', xsrf: 'x' }),
    });
    const html = await res.text();
    expect(res.status).toBe(403); // before: 200 "Signed out" while the browser stayed signed in
    expect(html).toContain('Nothing was signed out');
    expect(html).toContain('cross_site_request');
    // and the browser is still signed in: a silent authorization gets a code
    expect(codeOf(await browser.open(`${authUrl()}&prompt=none`))).toBeTruthy();
  });

  test('(control) a confirmation posted for a browser still signed in, without the form\'s tokens, changes nothing', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    expect(codeOf(await browser.submit(consent, { action: '/confirm' }))).toBeTruthy();
    const forged = await browser.post(`${o.issuer}/session/end/confirm`, { logout: 'yes', xsrf: 'forged' });
    expect(forged.status).toBe(400);
    const silent = await browser.open(`${authUrl()}&prompt=none`);
    expect(codeOf(silent)).toBeTruthy();
  });
});

describe('a form posted again after a 503 (the store failed while the step was being saved)', () => {
  test('consent: 503, then the same form again is accepted and the client gets its code', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    failing.state.failNext = 'Grant';
    const refused = await browser.submit(consent, { action: '/confirm' });
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([503, '5']);
    const again = await browser.submit(consent, { action: '/confirm' });
    expect(codeOf(again)).toBeTruthy();
  });

  test('sign-in: 503, then the same form again is accepted', async () => {
    const browser = newBrowser();
    const login = await browser.open(authUrl());
    failing.state.failNext = 'Interaction';
    const refused = await browser.submit(login, PASSWORD, loginFields);
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([503, '5']);
    const again = await browser.submit(login, PASSWORD, loginFields);
    expect(again.forms.some((f) => f.action.includes('/confirm'))).toBe(true);
  });
});

describe('the pages of a sign-in this browser cannot continue', () => {
  test('no cookie came back (cookies blocked, another browser) for a live sign-in: "cookies are needed", not "expired"', async () => {
    const browser = newBrowser();
    const login = await browser.open(authUrl());
    const res = await fetch(login.url, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('cookies_missing');
    expect(html).toContain('Allow cookies for this site');
    expect(html).toContain(`href="${o.origin}/shop"`);
    expect(html).toContain('Back to Web Shop');
  });

  test('a sign-in that ended (Back after signing in): "expired", with a link back to the client this browser signed in to (homeUri from another browser)', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    const done = await browser.submit(consent, { action: '/confirm' });
    expect(codeOf(done)).toBeTruthy();
    const back = await browser.open(consent.url);
    expect(back.status).toBe(400);
    expect(back.html).toContain('interaction_expired');
    expect(back.html).toContain(`href="${o.origin}/shop"`);
    const elsewhere = await newBrowser().open(consent.url);
    expect(elsewhere.html).toContain(`href="${o.origin}/home"`);
  });

  test('a stale form of a live sign-in: the 403 page links back to the client by name', async () => {
    const browser = newBrowser();
    const consent = await consentPage(browser);
    const stale = await browser.submit(consent, { action: '/confirm' }, { csrf: 'stale' });
    expect(stale.status).toBe(403);
    expect(stale.html).toContain('Back to Web Shop');
    expect(stale.html).toContain(`href="${o.origin}/shop"`);
  });
});

describe('an address under the mount that nothing serves', () => {
  test.each([
    ['GET', '/no-such-page'],
    ['GET', '/interaction/abc/nothing'],
  ])('%s %s: the 404 page for browsers (no-store, not framable), JSON for APIs', async (method, path) => {
    const page = await fetch(`${o.issuer}${path}`, { method, headers: { accept: 'text/html' } });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('not_found');
    const api = await fetch(`${o.issuer}${path}`, { method, headers: { accept: 'application/json' } });
    expect(api.status).toBe(404);
    expect(await api.json()).toEqual({ error: 'not_found', error_description: `There is no ${method} /op${path} here. Check the address, or start again from the application you came from.` });
  });

  test.each([
    ['GET', '/session/end/confirm', 'POST'],
    ['GET', '/token', 'POST'],
    // the interaction routes too (before: 404 "There is no GET … here")
    ['GET', '/interaction/abc/confirm', 'POST'],
    ['GET', '/interaction/abc/abort', 'POST'],
    ['POST', '/interaction/abc', 'GET, HEAD'],
  ])('%s %s, an endpoint that takes %s: 405 with Allow, the same page for browsers, JSON for APIs', async (method, path, takes) => {
    const page = await fetch(`${o.issuer}${path}`, { method, headers: { accept: 'text/html' } });
    expect([page.status, page.headers.get('allow')]).toEqual([405, `${takes}, OPTIONS`]);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('method_not_allowed');
    const api = await fetch(`${o.issuer}${path}`, { method, headers: { accept: 'application/json' } });
    expect(await api.json()).toEqual({ error: 'method_not_allowed', error_description: `/op${path} does not take ${method} requests: it takes ${takes}.` });
  });
});
