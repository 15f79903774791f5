/**
 * Front-Channel Logout 1.0 in a real Chromium: the user logs in in the browser, then signs out at
 * the OP; the OP's page (served from the OP's origin, another port on 127.0.0.1) frames the RP's
 * front-channel URL with `iss` and `sid`, Chromium loads it (the RP's CSP `frame-ancestors`
 * allows exactly the OP's origin, and it sends no X-Frame-Options), and the RP session ends.
 *
 * oidc-provider v9 has no front-channel logout, so its logout pages play that part (as in
 * cert-logout-login.test.ts): `logoutSource` takes the OP session's `sid` for client "app",
 * `postLogoutSuccessSource` renders the iframe. The RP's session cookie is removed from the browser
 * before the logout: the RP finds the session through its server-side sid index, so a browser
 * that withholds cookies from the iframe (third-party cookie blocking) changes nothing.
 */
import { createServer } from 'node:http';
import type { Browser, BrowserContext } from 'playwright-core';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { launchChromium } from '../../../test/support/chromium.js';
import { readStoredLogin, type OidcSessionData } from '@openid-express/rp';
import { CLIENT_ID, close, listen, startRp, type TestRp } from './support/rp-app.js';

let browser: Browser;
let t: TestRp;
let pendingSids: string[] = [];

const frontchannelUri = (sid: string): string =>
  `${t.baseURL}/auth/frontchannel-logout/op?iss=${encodeURIComponent(t.op.issuer)}&sid=${encodeURIComponent(sid)}`;

beforeAll(async () => {
  browser = await launchChromium();
  t = await startRp({
    provider: { backchannelLogout: false }, // only the front channel can end a session here
    op: {
      features: {
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
            const sid = (ctx.oidc.session as unknown as { authorizations?: Record<string, { sid?: string }> } | undefined)?.authorizations?.[CLIENT_ID]?.sid;
            if (sid) pendingSids.push(sid);
            ctx.body = `<!doctype html><title>Sign out?</title>${form}<button id="yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`;
          },
          postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
            const frames = pendingSids.map((sid) => `<iframe id="rp-frontchannel" src="${frontchannelUri(sid).replace(/&/g, '&amp;')}"></iframe>`).join('');
            pendingSids = [];
            ctx.body = `<!doctype html><title>Signed out</title><h1>Signed out</h1>${frames}`;
          },
        },
      },
    },
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** The claims of the logged-in sessions in the store. */
async function loggedIn(): Promise<Array<{ sub: unknown; sid: unknown }>> {
  const all = await new Promise<Record<string, { oidc?: OidcSessionData }>>((resolve) => t.store.all((_e, s) => resolve((s ?? {}) as never)));
  return Object.values(all).filter((s) => s.oidc?.auth).map((s) => readStoredLogin(s.oidc!.auth!)).map((a) => ({ sub: a.user.sub, sid: a.idTokenClaims?.sid }));
}

async function loginInChromium(context: BrowserContext): Promise<void> {
  const page = await context.newPage();
  await page.goto(`${t.baseURL}/me`);
  expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/interaction/`));
  await Promise.all([page.waitForURL(`${t.baseURL}/me`), page.click('#sign-in')]);
  expect(JSON.parse((await page.textContent('body'))!)).toMatchObject({ sub: 'alice' });
  await page.close();
}

test('OP-initiated front-channel logout in Chromium: the OP\'s page frames the RP\'s URL, Chromium renders it, and the RP session ends (without the RP\'s cookie)', async () => {
  const context = await browser.newContext();
  try {
    await loginInChromium(context);
    const bob = t.agent();
    await t.login(bob, { account: 'bob' }); // another OP session: must stay
    const before = await loggedIn();
    expect(before.map((s) => s.sub).sort()).toEqual(['alice', 'bob']);
    const aliceSid = before.find((s) => s.sub === 'alice')!.sid;
    expect(typeof aliceSid).toBe('string');

    // as if the browser withheld the RP's cookie from the OP's iframe
    await context.clearCookies({ name: 'sid' });
    expect((await context.cookies(t.baseURL)).find((c) => c.name === 'sid')).toBeUndefined();

    const page = await context.newPage();
    const frontchannelRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${t.baseURL}/auth/frontchannel-logout/`)) frontchannelRequests.push(r.url());
    });
    await page.goto(`${t.op.issuer}/session/end`);
    await Promise.all([page.waitForURL(`${t.op.issuer}/session/end/success`), page.click('#yes')]);
    const frame = page.frameLocator('#rp-frontchannel');
    await frame.getByRole('heading', { name: 'Signed out' }).waitFor({ timeout: 10_000 }); // rendered: the CSP let the OP frame it
    expect(frontchannelRequests).toEqual([frontchannelUri(String(aliceSid))]);

    expect(await loggedIn()).toEqual([{ sub: 'bob', sid: expect.any(String) }]);
    expect((await bob.get('/me')).status).toBe(200);
    await page.goto(`${t.baseURL}/me`);
    expect(page.url()).toMatch(new RegExp(`^${t.op.issuer}/interaction/`)); // signed out at the RP and at the OP
  } finally {
    await context.close();
    await new Promise<void>((resolve) => t.store.clear(() => resolve()));
  }
});

test('a page of another origin (another port on 127.0.0.1) cannot frame the front-channel URL: Chromium blocks it (frame-ancestors)', async () => {
  // a real server on loopback: a public origin would be stopped by Chromium's local-network checks instead, proving nothing
  const src = frontchannelUri('unknown-sid-0123456789'); // the request still reaches the RP (CSP only stops the rendering), but ends nothing
  const portal = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><iframe id="f" src="${src.replace(/&/g, '&amp;')}"></iframe>`);
  });
  const portalURL = await listen(portal);
  expect(new URL(portalURL).origin).not.toBe(new URL(t.op.issuer).origin);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/frame-ancestors/.test(m.text())) violations.push(m.text());
    });
    const answered = page.waitForResponse((r) => r.url() === src);
    await page.goto(`${portalURL}/`);
    expect((await answered).status()).toBe(200);
    for (let i = 0; i < 200 && violations.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(violations).toHaveLength(1);
    expect(violations[0]).toContain(`"frame-ancestors ${new URL(t.op.issuer).origin}"`);
    expect(violations[0]).toMatch(/blocked/);
    const child = page.frames().find((f) => f !== page.mainFrame())!;
    expect(child.url()).not.toBe(src); // an error page instead of the RP's
    expect(await child.evaluate(() => document.body?.textContent ?? '')).not.toContain('Signed out');
  } finally {
    await context.close();
    await close(portal);
  }
});
