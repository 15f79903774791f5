/**
 * `response_mode=form_post` in a real Chromium, with an app-wide security-header middleware before
 * op() (helmet()'s default Content-Security-Policy, whose `form-action 'self'` forbids posting to
 * another origin): the page that posts the code to the client, on another origin, still posts it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { memoryAdapter } from '@openid-express/op';
import { launchChromium } from '../../../test/support/chromium.js';
import { accounts, ALICE, startOp, type RunningOp } from './support/op-server.js';

jest.setTimeout(60_000);

// helmet 8's default Content-Security-Policy, as app.use(helmet()) sets it on every answer
const HELMET_CSP = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';"
  + "img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

let browser: Browser;
let op: RunningOp;
let client: Server;
let clientOrigin: string;
const posted: Array<Record<string, string>> = [];

beforeAll(async () => {
  // the client, on another origin (localhost, where the OP is on 127.0.0.1)
  client = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d)).on('end', () => {
      if (req.method === 'GET' && req.url?.startsWith('/bye?')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('signed out, back at the client');
      if (req.method !== 'POST') return void res.writeHead(404).end();
      posted.push(Object.fromEntries(new URLSearchParams(body)));
      // and sends the user on to the app, on a third origin (an auth host in front of the app does so)
      res.writeHead(302, { location: `${op.origin}/landed` }).end();
    });
  });
  await new Promise<void>((resolve) => client.listen(0, '127.0.0.1', resolve));
  clientOrigin = `http://localhost:${(client.address() as AddressInfo).port}`;
  op = await startOp(() => ({
    adapter: memoryAdapter(), accounts,
    provider: { features: { jwtResponseModes: { enabled: true } } }, // JARM, for form_post.jwt
    clients: [{
      client_id: 'crm', client_secret: 'crm-secret-crm-secret', redirect_uris: [`${clientOrigin}/cb`], post_logout_redirect_uris: [`${clientOrigin}/bye`], firstParty: true,
    }],
  }), {
    beforeOp: (app) => {
      app.use((_req, res, next) => void (res.setHeader('Content-Security-Policy', HELMET_CSP), next()));
      app.get('/landed', (_req, res) => void res.type('text').send('the app, signed in'));
    },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await op?.close();
  await new Promise((resolve) => client?.close(resolve));
});

test.each([
  ['form_post', (body: Record<string, string>) => expect(body).toEqual({ code: expect.any(String), state: 'st', iss: op.issuer })],
  // JARM: the same page posts one signed `response`
  ['form_post.jwt', (body: Record<string, string>) => expect(Object.keys(body)).toEqual(['response'])],
])('%s: the code is posted to the client on another origin, which may send the browser on to a third', async (mode, check) => {
  posted.length = 0;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => void (m.text().includes('Content Security Policy') && violations.push(m.text())));
    await page.goto(`${op.issuer}/auth?${new URLSearchParams({
      client_id: 'crm', response_type: 'code', response_mode: mode, scope: 'openid', redirect_uri: `${clientOrigin}/cb`, state: 'st', nonce: 'n',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    })}`);
    await page.locator('input[name=login]').fill('alice');
    await page.locator('input[name=password]').fill(ALICE.password);
    // before: a blank "Submitting Callback" page; and a form-action of the client's origin would stop the redirect after the post
    await Promise.all([page.waitForURL(`${op.origin}/landed`, { timeout: 15_000 }), page.getByRole('button', { name: 'Sign in' }).click()]);
    expect(await page.textContent('body')).toBe('the app, signed in');
    expect(posted).toHaveLength(1);
    check(posted[0]);
    expect(violations).toEqual([]);
  } finally {
    await context.close();
  }
});

test('a logout from a browser with no OP session (it expired): oidc-provider\'s self-posting page gets its own headers, and the browser lands back at the client', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => void (m.text().includes('Content Security Policy') && violations.push(m.text())));
    const autoPost = page.waitForResponse((r) => r.url().startsWith(`${op.issuer}/session/end?`));
    // before: the app-wide policy's form-action 'self' stopped the redirect after the post, on a blank "Submitting Callback"
    await page.goto(`${op.issuer}/session/end?${new URLSearchParams({ client_id: 'crm', post_logout_redirect_uri: `${clientOrigin}/bye`, state: 's' })}`);
    await page.waitForURL(`${clientOrigin}/bye?state=s`, { timeout: 15_000 });
    expect(await page.textContent('body')).toBe('signed out, back at the client');
    expect(violations).toEqual([]);
    const answer = await autoPost;
    expect(answer.headers()).toMatchObject({ 'x-frame-options': 'DENY', 'cache-control': 'no-store' });
    expect(answer.headers()['content-security-policy']).toMatch(/^default-src 'none'; script-src 'sha256-[^']+'; base-uri 'none'; frame-ancestors 'none'$/);
    // its page says its language and fits a phone (WCAG 3.1.1)
    const again = await fetch(answer.url());
    expect(await again.text()).toMatch(/<html lang="en">[\s\S]*<meta name="viewport"[\s\S]*<title>Submitting Callback<\/title>/);
  } finally {
    await context.close();
  }
});
