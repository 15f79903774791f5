/**
 * The RP in a real Chromium: redirects, cookies and pages as a user sees them.
 */
import { launchChromium } from '../../../test/support/chromium.js';
import { startRp, type TestRp } from './support/rp-app.js';

type Browser = Awaited<ReturnType<typeof launchChromium>>;
let browser: Browser;
let t: TestRp;

beforeAll(async () => {
  browser = await launchChromium();
  t = await startRp({
    routes: (app) => {
      app.get('/bye', (_req, res) => void res.send('bye'));
      // a page of the app with helmet's default Referrer-Policy, and its own sign-out form
      app.get('/account', (_req, res) => void res.set('referrer-policy', 'no-referrer').type('html')
        .send('<!doctype html><form method="post" action="/auth/logout"><input type="hidden" name="returnTo" value="/bye"><button id="out">Sign out</button></form>'));
      // the same under an app-wide helmet(): its Content-Security-Policy says form-action 'self'
      app.get('/account-helmet', (_req, res) => void res.set({
        'referrer-policy': 'no-referrer',
        'content-security-policy': "default-src 'self';base-uri 'self';form-action 'self';frame-ancestors 'self';object-src 'none';script-src 'self'",
      }).type('html').send('<!doctype html><form method="post" action="/auth/logout"><input type="hidden" name="returnTo" value="/bye"><button id="out">Sign out</button></form>'));
    },
  });
}, 30_000);
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** A new browser signed in as alice (through the OP's form), on /me. */
async function signedIn() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${t.baseURL}/me`);
  await page.fill('input[name=account]', 'alice');
  await Promise.all([page.waitForURL(`${t.baseURL}/me`), page.click('#sign-in')]);
  return { context, page };
}

describe('in a real browser', () => {
  test('a protected page → login at the OP → back on the page; logout at the OP → back at /bye', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/interaction/`));
    const before = (await context.cookies(t.baseURL)).find((c) => c.name === 'sid')?.value;
    expect(before).toBeDefined();

    await page.fill('input[name=account]', 'alice');
    await Promise.all([page.waitForURL(`${t.baseURL}/me`), page.click('#sign-in')]);
    expect(JSON.parse((await page.textContent('body'))!)).toMatchObject({ sub: 'alice', name: 'Alice Liddell' });
    const after = (await context.cookies(t.baseURL)).find((c) => c.name === 'sid')?.value;
    expect(after).not.toBe(before); // new session id at login

    await page.goto(`${t.baseURL}/auth/logout?returnTo=/bye`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/session/end`));
    await Promise.all([page.waitForURL(`${t.baseURL}/bye`), page.click('button[autofocus], button[type=submit]')]);
    expect(await page.textContent('body')).toBe('bye');

    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/`)); // logged out at both ends: the OP asks again
    await context.close();
  });

  test('the app\'s own sign-out form on a page with Referrer-Policy: no-referrer (Origin: null) signs out', async () => {
    const { context, page } = await signedIn();
    await page.goto(`${t.baseURL}/account`);
    const [post] = await Promise.all([page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${t.baseURL}/auth/logout`), page.click('#out')]);
    expect(await post.headerValue('origin')).toBe('null'); // what the browser sends under no-referrer
    // before: 403 "This request came from another site", and the user stayed signed in
    await page.waitForURL(new RegExp(`^${t.op.issuer}/session/end`));
    await Promise.all([page.waitForURL(`${t.baseURL}/bye`), page.click('button[autofocus], button[type=submit]')]);
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/`));
    await context.close();
  });

  test('the app\'s own sign-out form under helmet()\'s form-action \'self\' signs out at the OP too (the redirect after the post was blocked)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text()); });
    await page.goto(`${t.baseURL}/me`);
    await page.fill('input[name=account]', 'alice');
    await Promise.all([page.waitForURL(`${t.baseURL}/me`), page.click('#sign-in')]);
    await page.goto(`${t.baseURL}/account-helmet`);
    // before: the browser stayed on /account-helmet, signed out here only, still signed in at the OP
    await Promise.all([page.waitForURL(new RegExp(`^${t.op.issuer}/session/end`), { timeout: 10_000 }), page.click('#out')]);
    await Promise.all([page.waitForURL(`${t.baseURL}/bye`), page.click('button[autofocus], button[type=submit]')]);
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/`)); // the OP asks for the password again
    expect(cspErrors).toEqual([]);
    await context.close();
  });

  test('a single-page app: fetch() of a guarded route asking for HTML after the sign-in ended gets a 401 it can read; its fetch() sign-out gets where to send the page, and that signs out at the OP too', async () => {
    const { context, page } = await signedIn();
    await page.goto(`${t.baseURL}/bye`);
    // the SPA signs out with fetch (before: a 303 to the OP that fetch followed into a CORS error, the OP's session left)
    const out = await page.evaluate(async () => {
      const res = await fetch('/auth/logout', { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify({ returnTo: '/bye' }) });
      return { status: res.status, body: await res.json() as { redirectTo: string } };
    });
    expect(out.status).toBe(200);
    expect(out.body.redirectTo).toMatch(new RegExp(`^${t.op.issuer}/session/end`));
    // its guarded HTML fragment (before: a redirect into the OP's login that fetch reported as "Failed to fetch")
    const fragment = await page.evaluate(async () => {
      try {
        const res = await fetch('/me', { headers: { accept: 'text/html' } });
        return { status: res.status, body: await res.json() as { error: string } };
      } catch (err) {
        return { failed: String(err) };
      }
    });
    expect(fragment).toEqual({ status: 401, body: expect.objectContaining({ error: 'not_authenticated' }) });
    // the page goes where it was told: the OP ends its own session, back to /bye
    await page.goto(out.body.redirectTo);
    await Promise.all([page.waitForURL(`${t.baseURL}/bye`), page.click('button[autofocus], button[type=submit]')]);
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/`)); // the OP asks for the password again
    await context.close();
  });

  test('cancelling at the OP shows the RP error page, not a login', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.baseURL}/me`);
    await Promise.all([page.waitForURL(new RegExp(`^${t.baseURL}/auth/callback/op`)), page.click('#cancel')]);
    expect(await page.textContent('h1')).toBe('Sign-in cancelled');
    expect(await page.textContent('body')).toContain('access_denied');
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/interaction/`)); // still not logged in
    await context.close();
  });
});
