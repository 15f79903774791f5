/**
 * The pages rp() draws itself (error, logout confirmation, form_post hand-off, fragment page) in a
 * real Chromium at 1280 and 360 px: no sideways scrolling, plain words first, the shared style
 * applied (its CSP lets exactly that style through), a visible focus ring. Screenshots land in
 * test/screenshots/rp-<page>-<width>.png (git-ignored) for a reviewer.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../../test/support/chromium.js';
import { startRp, type TestRp } from './support/rp-app.js';

jest.setTimeout(60_000);

const SHOTS = join(__dirname, '..', '..', '..', 'test', 'screenshots');
const WIDTHS = [1280, 360];
let browser: Browser;
let t: TestRp;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  t = await startRp({ provider: { responseMode: 'form_post' } });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

const LONG = 'x'.repeat(300);

/** Each page: how to reach it, and what a person must read on it. */
const PAGES: Array<[string, (p: Page) => Promise<unknown>, RegExp]> = [
  ['error-expired', (p) => p.goto(`${t.baseURL}/auth/callback/op?code=c&state=${LONG}`), /This sign-in has expired/],
  ['error-cancelled', async (p) => {
    await p.goto(`${t.baseURL}/auth/login/op`);
    await p.waitForURL((u) => u.origin === new URL(t.op.issuer).origin);
    await Promise.all([p.waitForURL(new RegExp(`^${t.baseURL}/auth/callback/op`)), p.click('#cancel')]);
  }, /Sign-in cancelled/],
  ['logout-confirm', (p) => fromAnotherSite(p, `${t.baseURL}/auth/logout?returnTo=/${LONG}`), /Sign out\?/],
  ['fragment-empty', async (p) => {
    const frag = await startRp({ provider: { responseType: 'code id_token', responseMode: 'fragment' }, client: { response_types: ['code id_token'] }, op: { config: { responseTypes: ['code', 'code id_token'] } } });
    try {
      await p.goto(`${frag.baseURL}/auth/callback/op`);
      await p.waitForFunction(() => document.getElementById('m')?.textContent?.includes('empty'));
    } finally {
      await frag.close();
    }
  }, /empty or incomplete/],
];

/** Follows a link to `url` from a page of no site of ours (Sec-Fetch-Site: cross-site), as a link elsewhere would. */
async function fromAnotherSite(p: Page, url: string): Promise<void> {
  await p.setContent(`<a id="away" href="${url}">go</a>`);
  await Promise.all([p.waitForURL(url), p.click('#away')]);
}

describe.each(WIDTHS)('at %i px', (width) => {
  test.each(PAGES)('%s: readable, no sideways scrolling, the shared style applied', async (name, open, words) => {
    const context = await browser.newContext({ viewport: { width, height: 800 } });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text()); });
    try {
      await open(page);
      await page.waitForSelector('body');
      expect(await page.textContent('body')).toMatch(words);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      // the shared style is applied (system font, not the browser's default serif)
      expect(await page.evaluate(() => getComputedStyle(document.body).fontFamily)).toMatch(/system-ui/);
      expect(cspErrors).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `rp-${name}-${width}.png`), fullPage: true });
    } finally {
      await context.close();
    }
  });
});

test('the logout confirmation button shows a focus ring when reached with the keyboard', async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 800 } });
  const page = await context.newPage();
  try {
    await fromAnotherSite(page, `${t.baseURL}/auth/logout?returnTo=/bye`);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('BUTTON');
    expect(outline).toBe('solid');
  } finally {
    await context.close();
  }
});
