/**
 * Every page op() and rp() draw, reached in a real state (a real oidc-provider behind op(), rp() signing
 * in with it, a real Chromium), checked by axe-core with the WCAG 2.1 A and AA rules and its best
 * practices at 360 and 1280 px: no violation. Sign-in, consent and sign-out are done with Tab, typing and
 * Enter only. A failure lists each violation's rule, the element and the page that explains the fix.
 */
import type { Server } from 'node:http';
import axe from 'axe-core';
import express from 'express';
import session from 'express-session';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { memoryAdapter } from '@openid-express/op';
import { oidc, rp } from '@openid-express/rp';
import { launchChromium } from './support/chromium.js';
import { accounts, ALICE, listen, originOf, startOp, type RunningOp } from '../packages/op/test/support/op-server.js';

jest.setTimeout(60_000);

const WIDTHS = [360, 1280];
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const SECRET = 'app-secret-that-is-long-enough-0123456789';
const LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="12" fill="#1d4ed8"/></svg>';

let browser: Browser;
let op: RunningOp;
let app: Server;
let appURL: string;

beforeAll(async () => {
  app = await listen();
  appURL = originOf(app);
  op = await startOp((_issuer, origin) => ({
    adapter: memoryAdapter(), accounts, name: 'Example Identity', logoUri: '/brand/logo.svg', features: { deviceFlow: true },
    clients: [
      {
        client_id: 'app', client_secret: SECRET, client_name: 'Example App', client_uri: appURL,
        redirect_uris: [`${appURL}/auth/callback/op`, `${appURL}/auth/callback/fp`], post_logout_redirect_uris: [`${appURL}/bye`],
      },
      { client_id: 'tv', client_name: 'Living-room TV', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [] },
      { client_id: 'crm', client_secret: SECRET, client_name: 'CRM', redirect_uris: [`${origin}/cb`], post_logout_redirect_uris: [`${origin}/bye`] },
    ],
  }), {
    sessionName: 'op.sid', // the app's own session cookie is on the same host
    beforeOp: (a) => {
      a.get('/brand/logo.svg', (_req, res) => void res.type('image/svg+xml').send(LOGO));
      a.get(['/cb', '/bye'], (_req, res) => void res.type('text').send('the client'));
    },
  });
  const web = express();
  web.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }));
  const provider = { issuer: op.issuer, clientId: 'app', clientSecret: SECRET, allowInsecureRequests: true };
  web.use(rp({
    baseURL: appURL,
    providers: { op: oidc(provider), fp: oidc({ ...provider, responseMode: 'form_post' }), frag: oidc({ ...provider, responseType: 'code id_token', responseMode: 'fragment' }) },
  }));
  web.get(['/', '/bye'], (_req, res) => void res.type('text').send('the app'));
  app.on('request', web);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await op?.close();
  app?.closeAllConnections();
  await new Promise((resolve) => app?.close(resolve));
});

/** A browser context whose pages record what the Content-Security-Policy blocked. */
async function open(): Promise<{ context: BrowserContext; page: Page; blocked: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const blocked: string[] = [];
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) blocked.push(m.text()); });
  return { context, page, blocked };
}

/** axe-core's violations on the page as it stands, at each width: "page@width rule: help (target) url" per element. */
async function audit(page: Page, name: string): Promise<string[]> {
  const found: string[] = [];
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    // evaluated through the DevTools protocol: the pages' CSP, which allows no script, does not apply
    if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(axe.source);
    const violations = await page.evaluate((values) => (window as unknown as { axe: typeof axe }).axe.run(document, { runOnly: { type: 'tag', values } })
      .then((r) => r.violations.map((v) => ({ id: v.id, help: v.help, helpUrl: v.helpUrl, targets: v.nodes.map((n) => n.target.join(' ')) }))), TAGS);
    for (const v of violations) for (const t of v.targets) found.push(`${name}@${width} ${v.id}: ${v.help} (${t}) ${v.helpUrl}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return found;
}

/** Presses Tab until the element `selector` (a Playwright selector) has the focus (at most 15 times), as a keyboard user reaches it. */
async function tabTo(page: Page, selector: string): Promise<void> {
  for (let i = 0; i < 15; i++) {
    if (await page.locator(selector).first().evaluate((e) => e === document.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${selector} was not reached with Tab on ${page.url()}`);
}

const authorize = (redirectUri: string) => `${op.issuer}/auth?${new URLSearchParams({
  client_id: 'crm', response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state: 'st', nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
})}`;

test('sign-in, a failed sign-in, consent, errors and sign-out, at the OP and the app, done with the keyboard: no axe violation', async () => {
  const { context, page, blocked } = await open();
  const found: string[] = [];
  try {
    await page.goto(`${appURL}/auth/callback/op?code=c&state=${'x'.repeat(64)}`);
    found.push(...await audit(page, 'rp error expired'));

    await page.goto(`${appURL}/auth/login/op?returnTo=/`);
    await page.locator('input[name=login]').waitFor();
    found.push(...await audit(page, 'op login'));

    // a failed sign-in: the focus lands on a field that reads the error
    await tabTo(page, 'input[name=login]');
    await page.keyboard.type('alice');
    await tabTo(page, 'input[name=password]');
    await page.keyboard.type('not her password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-describedby'))).toBe('login-error');
    found.push(...await audit(page, 'op login failed'));

    await tabTo(page, 'input[name=password]');
    await page.keyboard.type(ALICE.password);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    found.push(...await audit(page, 'op consent'));
    await tabTo(page, 'button:text-is("Allow")');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${appURL}/`);

    // the OP's page that posts its answer to the app (response_mode=form_post), held by an empty answer to that post
    await page.route((u) => u.pathname === '/auth/callback/fp', (r) => r.fulfill({ status: 204 }), { times: 1 });
    await page.goto(`${appURL}/auth/login/fp?returnTo=/`, { waitUntil: 'commit' });
    await page.locator('form input[name=code]').waitFor({ state: 'attached' });
    found.push(...await audit(page, 'op form_post'));

    await page.goto(authorize('https://evil.example/cb'));
    found.push(...await audit(page, 'op error'));
    await page.goto(`${op.issuer}/interaction/no-such-sign-in`);
    found.push(...await audit(page, 'op expired'));

    // a logout link from another site: the app asks first, then the OP asks
    await page.goto('about:blank');
    await page.setContent(`<a href="${appURL}/auth/logout?returnTo=/bye">sign out</a>`);
    await Promise.all([page.waitForURL(/\/auth\/logout/), page.keyboard.press('Tab').then(() => page.keyboard.press('Enter'))]);
    found.push(...await audit(page, 'rp logout confirmation'));
    // the app's page on the way to the OP (it goes on at once: held here by an empty answer from the OP)
    await page.route((u) => u.pathname === '/op/session/end', (r) => r.fulfill({ status: 204 }), { times: 1 });
    await tabTo(page, 'button');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Signing out…' }).waitFor();
    found.push(...await audit(page, 'rp signing out'));
    await tabTo(page, 'a:text-is("Continue")');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Yes, sign me out' }).waitFor();
    found.push(...await audit(page, 'op logout'));
    await tabTo(page, 'button[value=yes]');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${appURL}/bye`);

    // the OP's own "signed out" page: a logout without a post_logout_redirect_uri (and no session left to end)
    await page.goto(`${op.issuer}/session/end?client_id=crm`);
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    found.push(...await audit(page, 'op signed out'));
    expect(blocked).toEqual([]);
  } finally {
    await context.close();
  }
  expect(found).toEqual([]);
});

test('a cancelled sign-in, the fragment and form_post hand-offs at the app: no axe violation', async () => {
  const found: string[] = [];
  const { context, page, blocked } = await open();
  try {
    await page.goto(`${appURL}/auth/login/op`);
    await tabTo(page, 'button.secondary');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Sign-in cancelled' }).waitFor();
    found.push(...await audit(page, 'rp error cancelled'));

    await page.goto(`${appURL}/auth/callback/frag`);
    await page.getByText(/empty or incomplete/).waitFor();
    found.push(...await audit(page, 'rp fragment page'));

    // what the OP's hidden frame loads at a front-channel logout
    await page.goto(`${appURL}/auth/frontchannel-logout/op?${new URLSearchParams({ iss: op.issuer, sid: 'a-sid' })}`);
    found.push(...await audit(page, 'rp front-channel logout'));
    expect(blocked).toEqual([]);
  } finally {
    await context.close();
  }
  // a form_post answer from another site, posted again same-origin by the page (held by an empty answer to that post)
  const other = await open();
  try {
    await other.page.route((u) => u.pathname === '/auth/callback/op', (r) => (r.request().postData()?.includes('oidc_resubmitted') ? r.fulfill({ status: 204 }) : r.continue()));
    await other.page.setContent(`<form method="post" action="${appURL}/auth/callback/op"><input name="state" value="s"><button>go</button></form>`);
    await Promise.all([other.page.waitForURL(/\/auth\/callback\/op/, { waitUntil: 'commit' }), other.page.click('button')]);
    await other.page.getByText('Signing in…').first().waitFor();
    found.push(...await audit(other.page, 'rp form_post hand-off'));
    expect(other.blocked).toEqual([]);
  } finally {
    await other.context.close();
  }
  expect(found).toEqual([]);
});

test('the page an OP answers when the app\'s own error view fails: no axe violation', async () => {
  const broken = await startOp(() => ({ adapter: memoryAdapter(), accounts, clients: [], views: { error: () => { throw new Error('the app\'s view is broken'); } } }));
  const { context, page, blocked } = await open();
  try {
    await page.goto(`${broken.issuer}/interaction/no-such-sign-in`);
    expect(await page.getByRole('heading').textContent()).toBe('Error');
    expect(await audit(page, 'op bare error')).toEqual([]);
    expect(blocked).toEqual([]);
  } finally {
    await context.close();
    await broken.close();
  }
});

test('the device flow\'s pages, done with the keyboard: no axe violation', async () => {
  const answer = await fetch(`${op.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) });
  const { user_code: userCode, verification_uri: verificationUri } = await answer.json() as { user_code: string; verification_uri: string };
  const { context, page, blocked } = await open();
  const found: string[] = [];
  try {
    await page.goto(verificationUri);
    found.push(...await audit(page, 'op device code'));
    await page.keyboard.type('BCDF-GHJK');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-describedby'))).toBe('device-error');
    found.push(...await audit(page, 'op device wrong code'));
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(userCode);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Continue' }).waitFor();
    found.push(...await audit(page, 'op device confirm'));
    await tabTo(page, 'button[name=confirm]');
    await page.keyboard.press('Enter');
    await tabTo(page, 'input[name=login]');
    await page.keyboard.type('alice');
    await tabTo(page, 'input[name=password]');
    await page.keyboard.type(ALICE.password);
    await page.keyboard.press('Enter');
    await tabTo(page, 'button:text-is("Allow")');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Device signed in' }).waitFor();
    found.push(...await audit(page, 'op device signed in'));
    expect(blocked).toEqual([]);
  } finally {
    await context.close();
  }
  expect(found).toEqual([]);
});
