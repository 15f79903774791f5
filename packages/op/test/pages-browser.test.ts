/**
 * Every page the OP draws, in a real Chromium at 1280 and 360 px wide: no sideways scrolling (long
 * client names and URLs wrap), the OP's name and logo on each, labelled inputs and a visible focus
 * ring. Screenshots land in test/screenshots/op-<page>-<width>.png (git-ignored) for a reviewer.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { memoryAdapter } from '@openid-express/op';
import { launchChromium } from '../../../test/support/chromium.js';
import { accounts, ALICE, startOp, type RunningOp } from './support/op-server.js';

jest.setTimeout(60_000);

const SHOTS = join(__dirname, '..', '..', '..', 'test', 'screenshots');
const NAME = 'Example Identity';
const WIDTHS = [1280, 360];
const LONG_NAME = 'The ExtraordinarilyLongNamedCustomerRelationshipManagementApplicationSuite';
const LONG_URI = 'https://a-very-long-subdomain-name-used-to-check-wrapping.example.com/with/a/long/path/that/must/wrap';
const LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="12" fill="#1d4ed8"/></svg>';

let browser: Browser;
let op: RunningOp;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  op = await startOp((_issuer, origin) => ({
    adapter: memoryAdapter(), accounts, name: NAME, logoUri: '/brand/logo.svg',
    clients: [{
      client_id: 'crm', client_secret: 'crm-secret-crm-secret', client_name: LONG_NAME, client_uri: LONG_URI,
      redirect_uris: [`${origin}/cb`], post_logout_redirect_uris: [`${origin}/bye`],
    }],
  }), {
    beforeOp: (app) => {
      app.get('/brand/logo.svg', (_req, res) => void res.type('image/svg+xml').send(LOGO));
      app.get(['/cb', '/bye', '/'], (_req, res) => void res.type('text').send('the client'));
    },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await op?.close();
});

const authorize = (redirectUri = `${op.origin}/cb`) => `${op.issuer}/auth?${new URLSearchParams({
  client_id: 'crm', response_type: 'code', scope: 'openid email profile', redirect_uri: redirectUri, state: 'st', nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
})}`;

/** Checks the page at each width and saves its screenshots. */
async function check(page: Page, name: string): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    const facts = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      title: document.title,
      header: document.querySelector('header')?.textContent ?? '',
      logo: (() => {
        const img = document.querySelector<HTMLImageElement>('header img');
        return img ? img.complete && img.naturalWidth > 0 : false;
      })(),
      unlabelled: [...document.querySelectorAll<HTMLInputElement>('input:not([type=hidden])')].filter((i) => !i.labels?.length).map((i) => i.name),
    }));
    expect({ page: name, width, ...facts }).toEqual({
      page: name, width, scrollWidth: expect.any(Number), innerWidth: width,
      title: expect.stringContaining(`· ${NAME}`), header: NAME, logo: true, unlabelled: [],
    });
    expect([name, width, facts.scrollWidth <= facts.innerWidth]).toEqual([name, width, true]);
    await page.screenshot({ path: join(SHOTS, `op-${name}-${width}.png`), fullPage: true });
  }
}

/** The element that has the focus after one Tab shows a ring. */
async function focusRing(page: Page): Promise<string> {
  await page.keyboard.press('Tab');
  return page.evaluate(() => {
    const style = getComputedStyle(document.activeElement!);
    return `${style.outlineStyle} ${style.outlineWidth}`;
  });
}

test('every page fits 1280 and 360 px, shows the name and logo, labels its inputs and shows focus', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    await page.goto(authorize());
    await page.locator('input[name=login]').waitFor();
    await check(page, 'login');
    await page.locator('body').click({ position: { x: 1, y: 1 } });
    expect(await focusRing(page)).toBe('solid 3px');

    await page.locator('input[name=login]').fill('alice');
    await page.locator('input[name=password]').fill('not her password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await check(page, 'login-failed');
    // the field that has the focus reads the error with it, and the title says it first (WCAG 3.3.1)
    const failed = await page.evaluate(() => {
      const field = document.activeElement as HTMLInputElement;
      return {
        focus: field.name, invalid: field.getAttribute('aria-invalid'), title: document.title,
        describedBy: document.getElementById(field.getAttribute('aria-describedby') ?? '')?.textContent ?? null,
      };
    });
    expect(failed).toEqual({ focus: 'password', invalid: 'true', title: expect.stringMatching(/^Error: Sign in · /), describedBy: expect.stringMatching(/\S/) });
    expect(failed.describedBy).toBe(await page.getByRole('alert').textContent());

    await page.locator('input[name=password]').fill(ALICE.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(await page.textContent('.account')).toContain('Signed in as alice@example.org.');
    // the page opens on what is asked, not on its "Allow" (Enter at once would allow unheard)
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('BODY');
    const consentUrl = page.url();
    await check(page, 'consent');

    await page.goto(authorize('https://evil.example/cb'));
    await check(page, 'error');
    await page.goto(`${op.issuer}/interaction/no-such-sign-in`);
    await check(page, 'expired');

    await page.goto(consentUrl);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.pathname === '/cb');

    await page.goto(`${op.issuer}/session/end?client_id=crm`);
    await page.getByRole('button', { name: 'Yes, sign me out' }).waitFor();
    await check(page, 'logout');
    await page.getByRole('button', { name: 'No, stay signed in' }).click();
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    await check(page, 'signed-out');
    expect(await page.getByRole('link', { name: `Back to ${LONG_NAME}` }).getAttribute('href')).toBe(`${op.origin}/bye`);
  } finally {
    await context.close();
  }
});
