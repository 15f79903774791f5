/**
 * OpenID Connect RP certification, Implicit RP and Hybrid RP profiles with response_mode=fragment,
 * in a REAL headless Chromium against the REAL oidc-provider: the OP redirects to the callback with
 * the response in the URL fragment (never sent to the server); the RP answers the parameterless GET
 * with its small same-origin page, which posts the fragment back (with the session cookie), clears
 * it from the address bar and history, and the user ends on /me, logged in.
 * The same flows through form_post, and the hash / nonce refusals: cert-response-types.test.ts.
 */
import type { Express } from 'express';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { requireAuth, type ProviderConfig } from '@openid-express/rp';
import { launchChromium } from '../../../test/support/chromium.js';
import { startRp, type TestRp } from './support/rp-app.js';
import { clearStore } from './support/expect.js';

type ResponseType = NonNullable<ProviderConfig['responseType']>;

const ALL_TYPES: ResponseType[] = ['code', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token'];

const FLOWS: Array<[string, ResponseType]> = [
  ['rp-response_type-id_token', 'id_token'],
  ['rp-response_type-id_token+token', 'id_token token'],
  ['rp-response_type-code+id_token', 'code id_token'],
  ['rp-response_type-code+token', 'code token'],
  ['rp-response_type-code+id_token+token', 'code id_token token'],
];

function routes(app: Express): void {
  app.get('/session', requireAuth(), (req, res) => {
    res.json({ accessToken: req.oidc.accessToken?.value ?? null, idTokenClaims: req.oidc.idTokenClaims, claims: req.oidc.user?.claims });
  });
}

let browser: Browser;
const rps = new Map<ResponseType, TestRp>();

beforeAll(async () => {
  browser = await launchChromium();
  await Promise.all(FLOWS.map(async ([, responseType]) => {
    const implicitOnly = !responseType.startsWith('code');
    rps.set(responseType, await startRp({
      // oidc-provider allows implicit over http only for native clients on loopback
      client: { response_types: [responseType], grant_types: implicitOnly ? ['implicit'] : ['authorization_code', 'implicit'], application_type: 'native' },
      op: { config: { responseTypes: ALL_TYPES } },
      provider: { responseType, responseMode: 'fragment', scope: 'openid profile email', ...(implicitOnly ? { clientSecret: undefined } : {}) },
      routes,
    }));
  }));
}, 60_000);
afterAll(async () => {
  await browser?.close();
  for (const t of rps.values()) await t.close();
});

/** Everything the page did at the RP's callback: navigations (with fragments), requests (with bodies and headers). */
interface Trace {
  navigations: string[];
  /** Every URL the page requested (redirect hops included). */
  requests: string[];
  callbacks: Array<{ method: string; url: string; body: URLSearchParams; referer?: string }>;
  /** Console errors about the Content Security Policy (a blocked script or form). */
  cspErrors: string[];
  /** The address of the page while its POST to the callback is on its way. */
  addressAtPost: string[];
}

async function withPage(t: TestRp, run: (page: Page, trace: Trace, context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext();
  const trace: Trace = { navigations: [], requests: [], callbacks: [], cspErrors: [], addressAtPost: [] };
  try {
    const page = await context.newPage();
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) trace.navigations.push(frame.url());
    });
    page.on('request', (r: Request) => {
      trace.requests.push(r.url());
      if (r.url().startsWith(`${t.baseURL}/auth/callback/`)) {
        trace.callbacks.push({ method: r.method(), url: r.url(), body: new URLSearchParams(r.postData() ?? ''), referer: r.headers().referer });
      }
    });
    await page.route(`${t.baseURL}/auth/callback/**`, async (route) => {
      if (route.request().method() === 'POST') trace.addressAtPost.push(page.url());
      await route.continue();
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) trace.cspErrors.push(m.text());
    });
    await run(page, trace, context);
  } finally {
    await context.close();
    await clearStore(t);
  }
}

/** At the OP's test page: presses `button` (sign in, or cancel) on each interaction (login, then consent) until the OP lets go. */
async function walkOp(page: Page, t: TestRp, button: '#sign-in' | '#cancel'): Promise<void> {
  for (let hop = 0; hop < 5; hop++) {
    const url = new URL(page.url());
    if (url.origin !== t.op.issuer) return;
    await page.waitForSelector(button);
    await Promise.all([page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() }), page.click(button)]);
  }
  throw new Error(`still at the OP after 5 interactions: ${page.url()}`);
}

describe('response_mode=fragment in Chromium', () => {
  test.each(FLOWS)('%s with response_mode=fragment: the page posts the fragment back and the user ends on /me, logged in, with no fragment left', async (_id, responseType) => {
    const t = rps.get(responseType)!;
    await withPage(t, async (page, trace) => {
      await page.goto(`${t.baseURL}/auth/login/op?returnTo=/me`);
      const authorize = new URL(trace.requests.find((u) => u.startsWith(`${t.op.issuer}/auth?`)) ?? page.url());
      await walkOp(page, t, '#sign-in');
      await page.waitForURL((u) => u.href === `${t.baseURL}/me`, { timeout: 15_000 });
      expect(JSON.parse((await page.textContent('body')) ?? '{}')).toMatchObject({ sub: 'alice', email: 'alice@example.org', name: 'Alice Liddell' });

      // the request asked for the fragment; the OP answered in it
      expect(authorize.searchParams.get('response_type')).toBe(responseType);
      expect(authorize.searchParams.get('response_mode')).toBe('fragment');
      const landed = trace.navigations.map((u) => new URL(u)).find((u) => u.pathname === '/auth/callback/op' && u.hash.length > 1);
      expect(landed).toBeDefined();
      const fragment = new URLSearchParams(landed!.hash.slice(1));
      expect(fragment.get('state')).toBe(authorize.searchParams.get('state'));
      expect(fragment.has('id_token')).toBe(responseType.split(' ').includes('id_token'));
      expect(fragment.has('access_token')).toBe(responseType.split(' ').includes('token'));
      expect(fragment.has('code')).toBe(responseType.startsWith('code'));

      // the server saw the response only in the same-origin POST of its own page: the GET had no parameters
      expect(trace.callbacks.map((c) => [c.method, new URL(c.url).search])).toEqual([['GET', ''], ['POST', '']]);
      const posted = trace.callbacks[1].body;
      expect(Object.fromEntries([...posted].filter(([k]) => k !== 'oidc_resubmitted'))).toEqual(Object.fromEntries(fragment));
      expect(trace.callbacks[1].referer).toBeUndefined(); // the RP page's referrer-policy: no-referrer
      expect(trace.cspErrors).toEqual([]); // no CSP violation: the hashed script ran

      // the kept access token, for the types that return one
      const session = JSON.parse((await (await page.goto(`${t.baseURL}/session`))!.text()));
      expect(session.idTokenClaims).toMatchObject({ sub: 'alice', iss: t.op.issuer, aud: 'app' });
      if (responseType.split(' ').includes('token')) expect(session.accessToken).toEqual(expect.any(String));
      if (responseType === 'id_token token') expect(session.accessToken).toBe(fragment.get('access_token'));
      if (responseType === 'id_token') expect(session.accessToken).toBeNull();
      expect(await t.authenticatedSessions()).toHaveLength(1);

      // history: going back entry by entry until the OP, no entry of the app carries the fragment (the
      // page replaced it before posting; Chromium may also replace the whole entry with the POST's result)
      expect(trace.addressAtPost).toEqual([`${t.baseURL}/auth/callback/op`]); // fragment cleared before the POST left
      const back: string[] = [];
      for (let i = 0; i < 5 && new URL(page.url()).origin === t.baseURL; i++) {
        if (!(await page.goBack())) break;
        if (new URL(page.url()).origin === t.baseURL) back.push(page.url());
      }
      expect(back[0]).toBe(`${t.baseURL}/me`);
      expect(new URL(page.url()).origin).toBe(t.op.issuer); // walked back past the callback
      for (const url of back) {
        expect(new URL(url).hash).toBe('');
        expect(url).not.toMatch(/id_token|access_token|code=|state=/);
      }
      expect(await t.authenticatedSessions()).toHaveLength(1); // nothing was posted again
    });
  });

  test('the fragment page opened without a fragment says the response is empty, and logs no one in', async () => {
    const t = rps.get('id_token token')!;
    await withPage(t, async (page, trace) => {
      const response = await page.goto(`${t.baseURL}/auth/callback/op`);
      expect(response!.status()).toBe(200);
      expect(response!.headers()['content-security-policy']).toMatch(/script-src 'sha256-[\w+/=]+';/);
      // the script ran under that CSP (a blocked script would leave "Signing in…") and posted nothing
      await page.waitForFunction(() => document.getElementById('m')?.textContent !== 'Signing in…');
      expect(await page.textContent('#m')).toBe('This sign-in response is empty or incomplete: please start again.');
      expect(trace.callbacks.map((c) => c.method)).toEqual(['GET']);
      expect(trace.cspErrors).toEqual([]);
      expect(await t.authenticatedSessions()).toEqual([]);
    });
  });

  test('a fragment without state (not a response to any login) is not posted', async () => {
    const t = rps.get('id_token token')!;
    await withPage(t, async (page, trace) => {
      await page.goto(`${t.baseURL}/auth/callback/op#id_token=x.y.z&access_token=abc`);
      await page.waitForFunction(() => document.getElementById('m')?.textContent !== 'Signing in…');
      expect(await page.textContent('#m')).toMatch(/empty or incomplete/);
      expect(trace.callbacks.map((c) => c.method)).toEqual(['GET']);
      expect(await t.authenticatedSessions()).toEqual([]);
    });
  });

  test('the user cancels at the OP: the error in the fragment is posted back and shown, no one is logged in', async () => {
    const t = rps.get('code id_token')!;
    await withPage(t, async (page, trace, context) => {
      await page.goto(`${t.baseURL}/auth/login/op?returnTo=/me`);
      await walkOp(page, t, '#cancel');
      await page.waitForSelector('h1');
      expect(await page.textContent('h1')).toBe('Sign-in cancelled');
      expect(await page.textContent('body')).toMatch(/access_denied/);
      expect(await page.textContent('body')).toMatch(/op_error/);
      expect(page.url()).toBe(`${t.baseURL}/auth/callback/op`); // no fragment left in the address bar
      expect(trace.callbacks.map((c) => c.method)).toEqual(['GET', 'POST']);
      expect(trace.callbacks[1].body.get('error')).toBe('access_denied');
      const me = await context.request.get(`${t.baseURL}/me`, { headers: { accept: 'application/json' } }); // this browser's cookies
      expect(me.status()).toBe(401);
      expect((await me.json()).error).toBe('not_authenticated');
      expect(await t.authenticatedSessions()).toEqual([]);
    });
  });
});
