/**
 * The quickstart in a real Chromium, started the way `npm run demo` starts it (node
 * examples/quickstart/main.js, built packages), on free ports. The app is on `localhost` and the
 * OP on `127.0.0.1`: two sites, so cookies follow the browser's real SameSite rules.
 * Screenshots of every page land in test-output/screenshots/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { repoRoot, runScript, type RunningScript } from '../examples/run-script.js';
import { onFreePort } from '../support/ports.js';
import { startGitHubSimulator, type GitHubSimulator } from '../simulators/github.js';

jest.setTimeout(90_000);

const shots = join(repoRoot, 'test-output', 'screenshots');
let browser: Browser;
let quickstart: RunningScript;
let appURL: string;
let issuer: string;
let gitHub: GitHubSimulator;

beforeAll(async () => {
  for (const pkg of ['rp', 'op']) {
    if (!existsSync(join(repoRoot, 'packages', pkg, 'dist', 'index.js'))) {
      throw new Error(`packages/${pkg} is not built: run \`npm run build\` (npm test does it) first`);
    }
  }
  mkdirSync(shots, { recursive: true });
  // GitHub is the loopback simulator, posing as a GitHub Enterprise Server (GITHUB_BASE_URL).
  // The app's port is in the simulator's callback URL before the app binds it: a port taken
  // meanwhile starts both again on another.
  const started = await onFreePort(async (appPort) => {
    gitHub = await startGitHubSimulator({
      clientId: 'gh-client',
      clientSecret: 'gh-secret',
      callbackUrl: `http://localhost:${appPort}/auth/callback/github`,
      account: { id: 583231, login: 'octocat', name: 'Mona Octocat', email: null, emails: [{ email: 'mona@example.org', primary: true, verified: true, visibility: null }] },
    });
    try {
      return await runScript(
        'examples/quickstart/main.js',
        { PORT: String(appPort), OP_PORT: '0', GITHUB_CLIENT_ID: 'gh-client', GITHUB_CLIENT_SECRET: 'gh-secret', GITHUB_BASE_URL: gitHub.baseURL },
        /Application:\s+(http:\/\/localhost:\d+)[\s\S]*Demo OP:\s+(http:\/\/127\.0\.0\.1:\d+\/op)/,
      );
    } catch (err) {
      await gitHub.close();
      throw err;
    }
  });
  quickstart = started.script;
  [, appURL, issuer] = started.match;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await quickstart?.stop();
  await gitHub?.close();
});

let context: BrowserContext;
let page: Page;
beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  page = await context.newPage();
});
afterEach(async () => {
  // The page each test ended on, for a reviewer (and for a failure's post-mortem).
  const name = (expect.getState().currentTestName ?? 'test').replace(/\W+/g, '-').slice(0, 60);
  await page?.screenshot({ path: join(shots, `last-${name}.png`), fullPage: true }).catch(() => {});
  await context?.close();
});

const shot = (p: Page, name: string) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const opOrigin = () => new URL(issuer).origin;

/** From the app's home page to the OP's login form. */
async function openDemoLogin(p: Page): Promise<void> {
  await p.goto(appURL);
  await p.getByRole('link', { name: /Demo OP/ }).click();
  await p.waitForURL((u) => u.origin === opOrigin());
  await p.locator('input[name=password]').waitFor();
}

async function signIn(p: Page, login: string, password: string): Promise<void> {
  await p.locator('input[name=login]').fill(login);
  await p.locator('input[name=password]').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

test('a newcomer signs in with the Demo OP, sees their profile, refreshes tokens and logs out everywhere', async () => {
  await page.goto(appURL);
  await expectVisible(page.getByRole('heading', { name: 'Sign in to the Quickstart app' }));
  await shot(page, '01-app-home');

  await openDemoLogin(page);
  await shot(page, '02-op-login');
  await signIn(page, 'alice', 'wonderland');

  await page.getByRole('button', { name: 'Allow' }).waitFor();
  expect(new URL(page.url()).origin).toBe(opOrigin());
  await shot(page, '03-op-consent');
  await page.getByRole('button', { name: 'Allow' }).click();

  await page.waitForURL(`${appURL}/profile`);
  await expectVisible(page.getByRole('heading', { name: 'Alice Liddell' }));
  await expectVisible(page.getByText('alice@example.org').first());
  // Each site has its own cookies; the app's session cookie is out of reach of scripts and of cross-site posts.
  const cookies = await context.cookies();
  const appCookie = cookies.find((c) => c.name === 'quickstart.sid');
  expect(appCookie).toMatchObject({ domain: 'localhost', httpOnly: true, sameSite: 'Lax' });
  expect(cookies.filter((c) => c.domain === '127.0.0.1').map((c) => c.name)).not.toContain('quickstart.sid');

  const expiry = page.locator('[data-expires-at]');
  expect(await expiry.textContent()).toMatch(/^in \d+:\d\d$/);
  await shot(page, '04-app-profile');

  // The countdown ticks in the browser.
  const before = await expiry.textContent();
  await page.waitForFunction((b) => document.querySelector('[data-expires-at]')?.textContent !== b, before);

  await page.getByRole('button', { name: 'Refresh tokens' }).click();
  await expectVisible(page.getByText('Tokens refreshed'));
  await expectVisible(page.getByText('Refreshed 1 time this session.'));
  await shot(page, '05-app-refreshed');

  // A refresh posted without the page's form token (a forgery) is refused and changes nothing.
  const forged = await page.request.post(`${appURL}/profile/refresh`, { form: { csrf: 'forged' }, maxRedirects: 0 });
  expect(forged.status()).toBe(403);
  expect(await forged.text()).toContain('csrf_mismatch');
  await page.reload();
  await expectVisible(page.getByText('Refreshed 1 time this session.'));

  await page.getByRole('button', { name: 'Call userinfo' }).click();
  await expectVisible(page.getByRole('heading', { name: 'Userinfo response' }));
  expect(await page.locator('pre').textContent()).toContain('"sub": "alice"');
  await shot(page, '06-app-userinfo');

  await page.goto(appURL);
  await expectVisible(page.getByRole('heading', { name: 'Welcome back, Alice' }));
  await shot(page, '06b-app-home-signed-in');
  await page.getByRole('link', { name: 'Open your profile' }).click();

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL((u) => u.origin === opOrigin());
  await shot(page, '07-op-logout-confirm');
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForURL(`${appURL}/signed-out`);
  await expectVisible(page.getByText('You are signed out.'));
  await expectVisible(page.getByText('Not signed in'));
  await shot(page, '08-app-signed-out');

  // The app's session is gone: the profile sends us to sign in again ...
  await page.goto(`${appURL}/profile`);
  await page.waitForURL((u) => u.origin === opOrigin());
  // ... and so is the OP's: it asks for the password again instead of signing us straight in.
  await expectVisible(page.locator('input[name=password]'));
  await expectVisible(page.getByRole('button', { name: 'Sign in' }));
});

test('a wrong password keeps you on the login page with the error shown, and signs nobody in', async () => {
  await openDemoLogin(page);
  await signIn(page, 'alice', 'not-the-password');
  await expectVisible(page.getByRole('alert'));
  expect(new URL(page.url()).origin).toBe(opOrigin());
  await shot(page, '09-op-login-wrong-password');

  await page.goto(`${appURL}/`);
  await expectVisible(page.getByText('Not signed in'));
});

test('denying consent lands on a clear page in the app, still signed out', async () => {
  await openDemoLogin(page);
  await signIn(page, 'bob', 'builder');
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForURL((u) => u.origin === new URL(appURL).origin);
  await expectVisible(page.getByRole('heading', { name: 'Sign-in cancelled' }));
  await shot(page, '10-app-consent-denied');

  await page.goto(`${appURL}/`);
  await expectVisible(page.getByText('Not signed in'));
});

test('without JavaScript the whole sign-in still works and the profile shows the expiry', async () => {
  await context.close();
  context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 420, height: 800 } });
  page = await context.newPage();
  await openDemoLogin(page);
  await signIn(page, 'alice', 'wonderland');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${appURL}/profile`);
  expect(await page.locator('[data-expires-at]').textContent()).toMatch(/^in \d+:\d\d$/);
  await shot(page, '11-app-profile-no-js-narrow');
});

test('signing out at the Demo OP itself also ends the app session (back-channel logout)', async () => {
  await openDemoLogin(page);
  await signIn(page, 'alice', 'wonderland');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${appURL}/profile`);

  await page.goto(`${issuer}/session/end`);
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForLoadState();
  await shot(page, '13-op-signed-out');

  // The OP told the app server-to-server: the app's session is gone, not just the OP's.
  await page.goto(`${appURL}/`);
  await expectVisible(page.getByText('Not signed in'));
});

test('with GitHub configured, its button signs in too; without a refresh token the refresh button is off', async () => {
  await page.goto(appURL);
  await page.getByRole('link', { name: /GitHub/ }).click();
  await page.waitForURL(`${appURL}/profile`);
  await expectVisible(page.getByRole('heading', { name: 'Mona Octocat' }));
  await expectVisible(page.getByText('mona@example.org').first());
  expect(await page.getByRole('button', { name: 'Refresh tokens' }).isDisabled()).toBe(true);
  await shot(page, '12-app-profile-github');

  // For GitHub (OAuth 2.0, no OIDC userinfo) the preset's user endpoint answers instead.
  await page.getByRole('button', { name: 'Call userinfo' }).click();
  await expectVisible(page.getByRole('heading', { name: 'Userinfo response' }));
  expect(await page.locator('pre').textContent()).toContain('"login": "octocat"');

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${appURL}/signed-out`);
  await expectVisible(page.getByText('Not signed in'));
});

async function expectVisible(locator: ReturnType<Page['locator']>): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout: 10_000 });
}

test('on a 360 px phone the home page needs no sideways scrolling and keeps environment-variable names whole', async () => {
  await context.close();
  context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  page = await context.newPage();
  await page.goto(appURL);
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  const names = page.locator('code.nowrap');
  expect(await names.allTextContents()).toEqual(expect.arrayContaining(['GOOGLE_CLIENT_ID', 'MICROSOFT_CLIENT_SECRET']));
  // each name on one line: a single client rect per element (a name broken mid-word has two)
  const rects = await names.evaluateAll((els) => els.map((e) => e.getClientRects().length));
  expect(rects.every((n) => n === 1)).toBe(true);
  await shot(page, 'home-phone-360');
});
