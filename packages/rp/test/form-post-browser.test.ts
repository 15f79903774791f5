/**
 * form_post in real Chromium, across sites: the OP (Entra simulator) on 127.0.0.1, the app on
 * localhost with express-session's default cookie (no SameSite attribute, so Lax in Chromium).
 * The OP's auto-submitted POST reaches the app without the session cookie; the login completes
 * anyway, and the app did not have to weaken its cookie.
 */
import type { Browser } from 'playwright-core';
import { microsoft } from '@openid-express/rp';
import { launchChromium } from '../../../test/support/chromium.js';
import { startMicrosoftSimulator, type MicrosoftSimulator } from './simulators/microsoft.js';
import { startSimApp, type SimApp } from './simulators/app.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const clientId = '6731de76-14a6-49ae-97bc-6eba6914391e';
let browser: Browser;
let sim: MicrosoftSimulator;
let app: SimApp;
/** Each POST to a callback, and whether it carried the app's session cookie. */
const callbackPosts: Array<{ path: string; withCookie: boolean; resubmitted: boolean }> = [];

beforeAll(async () => {
  // Chromium still sends a Lax-by-default cookie on a cross-site POST while it is under 2 minutes old
  // ("Lax+POST"); a real user often spends longer at the OP. This flag makes Chromium behave as for
  // such an older cookie, deterministically.
  browser = await launchChromium(['--enable-features=SameSiteDefaultChecksMethodRigorously']);
  sim = await startMicrosoftSimulator({
    clientId, clientSecret: 'entra-secret', redirectUris: [], host: '127.0.0.1',
    user: { sub: 'pairwise-sub-ann', oid: 'oid-ann', tid: TENANT, name: 'Ann Contoso', preferred_username: 'ann@contoso.com' },
  });
  app = await startSimApp(
    () => ({
      seed: microsoft({ tenant: 'common', clientId, authority: sim.authority, allowInsecureRequests: true, responseType: 'id_token' }),
      code: microsoft({ tenant: 'organizations', clientId, clientSecret: 'entra-secret', authority: sim.authority, allowInsecureRequests: true, responseMode: 'form_post' }),
    }),
    {
      host: 'localhost',
      beforeRp: (a) => a.post('/auth/callback/:provider', (req, _res, next) => {
        callbackPosts.push({ path: req.path, withCookie: /connect\.sid=/.test(req.headers.cookie ?? ''), resubmitted: false });
        next();
      }),
    },
  );
  sim.options.redirectUris = [`${app.baseURL}/auth/callback/seed`, `${app.baseURL}/auth/callback/code`];
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await sim?.close();
});
beforeEach(() => {
  callbackPosts.length = 0;
});

test('the OP and the app are on different sites', () => {
  expect(new URL(sim.authority).hostname).toBe('127.0.0.1');
  expect(new URL(app.baseURL).hostname).toBe('localhost');
});

test.each([
  ['seed', 'id_token + form_post'],
  ['code', 'code + form_post'],
])('a %s login (%s) completes in Chromium although the cross-site POST carries no session cookie', async (provider) => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${app.baseURL}/auth/login/${provider}?returnTo=/me`);
    await page.waitForURL(`${app.baseURL}/me`, { timeout: 15_000 });
    const me = JSON.parse((await page.textContent('body')) ?? '{}');
    expect(me).toMatchObject({ sub: 'pairwise-sub-ann', provider, name: 'Ann Contoso' });

    // First POST: from the OP's page on 127.0.0.1, no cookie. Second: from the app's own page, with it.
    expect(callbackPosts.map((p) => p.withCookie)).toEqual([false, true]);
    const cookies = await context.cookies(app.baseURL);
    const sessionCookie = cookies.find((c) => c.name === 'connect.sid');
    expect(sessionCookie).toBeDefined();
    expect(sessionCookie!.sameSite).not.toBe('None');
    expect(await app.authenticatedSessions()).toHaveLength(1);
  } finally {
    await context.close();
    await new Promise<void>((resolve) => app.store.clear(() => resolve()));
  }
});

test('a forged cross-site POST to the callback (no login started) ends on an error page, without a session', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // An attacker's page on the other site auto-posts a made-up response to the app's callback.
    await page.goto(`${sim.authority}/common/v2.0/.well-known/openid-configuration`);
    await page.setContent(
      `<form method="post" action="${app.baseURL}/auth/callback/seed"><input name="state" value="forged"><input name="id_token" value="x.y.z"></form>` +
        `<script>document.forms[0].submit()</script>`,
    );
    await page.waitForURL(`${app.baseURL}/auth/callback/seed`);
    await page.waitForSelector('h1');
    expect(await page.textContent('h1')).toBe('This sign-in has expired');
    expect(await page.textContent('body')).toContain('invalid_state');
    expect(callbackPosts.map((p) => p.withCookie)).toEqual([false, false]);
    expect(await app.authenticatedSessions()).toEqual([]);
  } finally {
    await context.close();
  }
});

describe('a session cookie with SameSite=Strict', () => {
  let strict: SimApp;
  const callbacks: Array<{ method: string; withCookie: boolean }> = [];
  beforeAll(async () => {
    strict = await startSimApp(
      () => ({ code: microsoft({ tenant: 'organizations', clientId, clientSecret: 'entra-secret', authority: sim.authority, allowInsecureRequests: true }) }),
      {
        host: 'localhost',
        cookie: { sameSite: 'strict' },
        beforeRp: (a) => a.use('/auth/callback/:provider', (req, _res, next) => {
          callbacks.push({ method: req.method, withCookie: /connect\.sid=/.test(req.headers.cookie ?? '') });
          next();
        }),
      },
    );
    sim.options.redirectUris.push(`${strict.baseURL}/auth/callback/code`);
  }, 30_000);
  afterAll(() => strict?.close());

  test('a code login in the query (the OP\'s redirect back is cross-site, so the cookie stays behind) completes: the app\'s own page posts the answer again, with the cookie', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // The simulator signs the user in with no page of its own, and Chromium (by default) weighs only
      // where a redirect chain started: the user's click on the OP's own page is what makes the way
      // back cross-site. So the login starts in the browser's cookie jar, the OP's answer is taken as
      // it leaves, and the user follows it from a page of the OP's site.
      // (context.request keeps its cookies in the browser's jar)
      const start = await context.request.get(`${strict.baseURL}/auth/login/code?returnTo=/me`, { maxRedirects: 0 });
      const answer = (await fetch(start.headers().location!, { redirect: 'manual' })).headers.get('location');
      expect(answer).toContain('code=');
      await page.goto(`${sim.authority}/common/v2.0/.well-known/openid-configuration`);
      await page.setContent(`<a href="${answer}">Continue</a>`);
      await Promise.all([page.waitForURL(`${strict.baseURL}/me`, { timeout: 15_000 }), page.click('a')]);
      expect(JSON.parse((await page.textContent('body')) ?? '{}')).toMatchObject({ sub: 'pairwise-sub-ann', provider: 'code' });
      // before: the GET without the cookie was the end of it ("This sign-in has expired")
      expect(callbacks).toEqual([{ method: 'GET', withCookie: false }, { method: 'POST', withCookie: true }]);
      expect((await context.cookies(strict.baseURL)).find((c) => c.name === 'connect.sid')?.sameSite).toBe('Strict');
      expect(await strict.authenticatedSessions()).toHaveLength(1);
    } finally {
      await context.close();
    }
  });

  test('a made-up answer sent from another site is still refused after the same-origin post, and no session is left', async () => {
    callbacks.length = 0;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${sim.authority}/common/v2.0/.well-known/openid-configuration`);
      await page.setContent(`<a href="${strict.baseURL}/auth/callback/code?code=forged&state=forged">x</a>`);
      await page.click('a');
      await page.waitForSelector('h1');
      expect(await page.textContent('h1')).toBe('This sign-in has expired');
      expect(callbacks.map((c) => c.method)).toEqual(['GET', 'POST']);
      expect(await strict.authenticatedSessions()).toHaveLength(1); // the first test's, none more
    } finally {
      await context.close();
    }
  });
});
