/**
 * Interop in a real browser: a single-page app on another site signs in through our OP with
 * oidc-client-ts (the library SPAs use; a public client, PKCE S256, the code exchange and userinfo
 * called from the page by fetch, so across origins), then logs out. The OP lets the app's origin (that
 * of one of its redirect_uris) read those answers and no other origin: a page elsewhere calling the
 * token endpoint gets nothing (CORS), and a confidential client's origin may read userinfo only.
 * Needs Chromium (`apt-get install -y chromium`); fails (never skips) without it.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { close, listen } from '../../packages/rp/test/support/rp-app.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';

// the library's own browser build (its package exports do not name the file, so by path)
const LIBRARY = readFileSync(join(__dirname, '..', '..', 'node_modules', 'oidc-client-ts', 'dist', 'browser', 'oidc-client-ts.min.js'), 'utf8');

/** One of the app's pages, making a UserManager (`more` changes the client's settings). */
function spaPage(issuer: string, origin: string, body: string, more: Record<string, unknown> = {}, script = '{}'): string {
  const settings = {
    authority: issuer, client_id: 'spa', response_type: 'code', scope: 'openid profile email',
    redirect_uri: `${origin}/callback.html`, post_logout_redirect_uri: `${origin}/`, loadUserInfo: true,
    silent_redirect_uri: `${origin}/silent.html`, silentRequestTimeoutInSeconds: 5, ...more,
  };
  return `<!doctype html><html><head><meta charset="utf-8"><title>SPA</title>
<script src="/oidc-client-ts.js"></script></head><body><p>the app</p>
<script>window.mgr = new oidc.UserManager({ ...${JSON.stringify(settings)}, ...${script} });${body}</script></body></html>`;
}

/** A static site: the library and its pages. */
function staticSite(pages: (origin: string) => Record<string, string>, origin: () => string): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/oidc-client-ts.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(LIBRARY);
    const html = pages(origin())[path];
    if (html === undefined) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
}

describe('oidc-client-ts in Chromium against op() (a single-page app on another site)', () => {
  let browser: Browser;
  let opServer: InteropOp;
  let spaOrigin = '';
  let otherOrigin = '';
  const callback = `mgr.signinRedirectCallback()
      .then((u) => { window.done = { sub: u.profile.sub, email: u.profile.email, access: typeof u.access_token, scope: u.scope }; })
      .catch((e) => { window.done = { error: String(e) }; });`;
  // the same app as a client that may keep a refresh token (offline_access, asked with prompt=consent)
  const offline = (origin: string) => ({
    client_id: 'spa-offline', scope: 'openid email offline_access', prompt: 'consent', redirect_uri: `${origin}/offline/callback.html`,
  });
  // and as a client whose tokens are bound to a key the page holds (DPoP, RFC 9449)
  // (oidc-client-ts sends userinfo a plain Bearer header, which a DPoP-bound token is refused with:
  // the page calls userinfo itself, with a proof)
  const dpop = (origin: string) => ({ ...offline(origin), client_id: 'spa-dpop', redirect_uri: `${origin}/dpop/callback.html`, loadUserInfo: false });
  const DPOP_STORE = '{ dpop: { store: new oidc.IndexedDbDPoPStore() } }';
  const spa = staticSite((origin) => ({
    '/': spaPage(opServer.issuer, origin, ''),
    '/callback.html': spaPage(opServer.issuer, origin, callback),
    // where a renewal in a hidden iframe comes back (prompt=none), telling the page that opened it
    '/silent.html': spaPage(opServer.issuer, origin, 'mgr.signinCallback();'),
    '/offline/': spaPage(opServer.issuer, origin, '', offline(origin)),
    '/offline/callback.html': spaPage(opServer.issuer, origin, callback, offline(origin)),
    '/dpop/': spaPage(opServer.issuer, origin, '', dpop(origin), DPOP_STORE),
    '/dpop/callback.html': spaPage(opServer.issuer, origin, `${callback.replace('scope: u.scope', 'scope: u.scope, type: u.token_type')}`, dpop(origin), DPOP_STORE),
  }), () => spaOrigin);
  // a page on a site the client never registered
  const other = staticSite(() => ({ '/': '<!doctype html><title>elsewhere</title><p>elsewhere</p>' }), () => otherOrigin);

  beforeAll(async () => {
    // the app and the other page on `localhost`, another site than the OP's `127.0.0.1`
    spaOrigin = (await listen(spa)).replace('127.0.0.1', 'localhost');
    otherOrigin = (await listen(other)).replace('127.0.0.1', 'localhost');
    opServer = await startInteropOp(() => [
      {
        client_id: 'spa', token_endpoint_auth_method: 'none',
        redirect_uris: [`${spaOrigin}/callback.html`, `${spaOrigin}/silent.html`], post_logout_redirect_uris: [`${spaOrigin}/`],
      },
      {
        client_id: 'spa-offline', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [`${spaOrigin}/offline/callback.html`],
      },
      {
        client_id: 'spa-dpop', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
        dpop_bound_access_tokens: true, redirect_uris: [`${spaOrigin}/dpop/callback.html`],
      },
      // a confidential client whose redirect_uri is on the other site: its origin may read userinfo only
      {
        client_id: 'web', client_secret: 'web-client-secret-0123456789abcdef',
        redirect_uris: [`${otherOrigin}/cb`],
      },
    ], { features: { dPoP: true } });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await opServer?.close();
    await Promise.all([spa, other].map(close));
  });

  /** Calls the app's UserManager method that navigates away (not awaited: the page goes). */
  async function start(page: Page, method: 'signinRedirect' | 'signoutRedirect'): Promise<void> {
    await page.evaluate((m) => { void (window as unknown as { mgr: Record<string, () => Promise<void>> }).mgr[m]!(); }, method);
  }

  async function signIn(page: Page, app: string): Promise<void> {
    await page.goto(`${spaOrigin}${app}`);
    await start(page, 'signinRedirect');
    await page.waitForURL((u) => u.pathname.includes('/op/interaction/'));
    await page.locator('input[name=login]').fill(ALICE.username);
    await page.locator('input[name=password]').fill(ALICE.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${spaOrigin}${app}callback.html**`);
  }

  /** Signs in at the app at `app` and returns what its callback page made of the sign-in. */
  async function signedIn(page: Page, app: string): Promise<unknown> {
    await signIn(page, app);
    await page.waitForFunction(() => (window as unknown as { done?: unknown }).done);
    return page.evaluate(() => (window as unknown as { done: unknown }).done);
  }

  /** Runs `test` in a page of a fresh browser context (no cookies, no storage), closed after. */
  async function inNewPage(test: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.newContext();
    try {
      await test(await context.newPage());
    } finally {
      await context.close();
    }
  }

  it('signs in with PKCE, exchanges the code and reads userinfo from the page, then logs out', async () => {
    await inNewPage(async (page) => {
      const done = await signedIn(page, '/');
      const sent = opServer.authRequests.at(-1)!;
      expect(sent).toMatchObject({ client_id: 'spa', code_challenge_method: 'S256', code_challenge: expect.any(String), state: expect.any(String) });
      // email comes from userinfo (the ID token of a code flow carries sub): the page read both across origins
      expect(done).toEqual({ sub: ALICE.id, email: ALICE.claims.email, access: 'string', scope: 'openid profile email' });

      // without a refresh token, oidc-client-ts renews in a hidden iframe (prompt=none): the OP's
      // session cookie is SameSite=Lax, so a browser does not send it to a frame under another site,
      // and the OP answers login_required although alice is signed in there (the README says so)
      const silent = await page.evaluate(() => (window as unknown as { mgr: { signinSilent(): Promise<unknown> } }).mgr.signinSilent()
        .then(() => 'renewed', (e: { error?: string; message?: string }) => e.error ?? e.message));
      expect(silent).toBe('login_required');

      await start(page, 'signoutRedirect');
      await page.waitForURL((u) => u.pathname.endsWith('/op/session/end'));
      await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      await page.waitForURL(`${spaOrigin}/`);

      // signed out at the OP: the next sign-in asks for the password again
      await start(page, 'signinRedirect');
      await page.waitForURL((u) => u.pathname.includes('/op/interaction/'));
      await expect(page.locator('input[name=password]').count()).resolves.toBe(1);
    });
  });

  it('renews its tokens from the page with a rotating refresh token; the used one is refused after', async () => {
    await inNewPage(async (page) => {
      expect(await signedIn(page, '/offline/')).toMatchObject({ sub: ALICE.id, scope: 'openid email offline_access' });
      const renewed = await page.evaluate(async (issuer) => {
        type Tokens = { access_token: string; refresh_token?: string };
        const mgr = (window as unknown as { mgr: { getUser(): Promise<Tokens | null>; signinSilent(): Promise<Tokens | null> } }).mgr;
        const before = (await mgr.getUser())!;
        // oidc-client-ts renews with the refresh token when it holds one (no iframe, no third-party cookie)
        const after = (await mgr.signinSilent())!;
        const refresh = async (token: string) => {
          const res = await fetch(`${issuer}/token`, {
            method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'spa-offline' }),
          });
          return [res.status, ((await res.json()) as { error?: string }).error];
        };
        // the refresh token it used has rotated away: a replay is refused, and it revokes the grant,
        // so the current refresh token (the one a thief racing the app would hold next) dies with it
        const replay = await refresh(before.refresh_token!);
        const current = await refresh(after.refresh_token!);
        return {
          hadRefresh: typeof before.refresh_token, newAccess: after.access_token !== before.access_token,
          rotated: after.refresh_token !== before.refresh_token, replay, current,
        };
      }, opServer.issuer);
      expect(renewed).toEqual({
        hadRefresh: 'string', newAccess: true, rotated: true, replay: [400, 'invalid_grant'], current: [400, 'invalid_grant'],
      });
    });
  });

  it('binds its tokens to a key of the page with DPoP: the exchange, the renewal and userinfo each carry a proof', async () => {
    await inNewPage(async (page) => {
      expect(await signedIn(page, '/dpop/')).toEqual({ sub: ALICE.id, access: 'string', scope: 'openid email offline_access', type: 'DPoP' });
      const renewed = await page.evaluate(async (issuer) => {
        type Tokens = { access_token: string; refresh_token?: string; token_type: string };
        const mgr = (window as unknown as { mgr: {
          getUser(): Promise<Tokens | null>; signinSilent(): Promise<Tokens | null>;
          dpopProof(url: string, user: Tokens, method?: string): Promise<string | undefined>;
        } }).mgr;
        const before = (await mgr.getUser())!;
        const after = (await mgr.signinSilent())!;
        const userinfo = `${issuer}/me`;
        // with a proof of the page's key: userinfo answers, across origins (the DPoP header allowed)
        const proved = await fetch(userinfo, { headers: { authorization: `DPoP ${after.access_token}`, dpop: (await mgr.dpopProof(userinfo, after, 'GET'))! } });
        // without one (a 400: the DPoP scheme needs its proof), or as a Bearer token (401), it is refused
        const unproved = await fetch(userinfo, { headers: { authorization: `DPoP ${after.access_token}` } });
        const bearer = await fetch(userinfo, { headers: { authorization: `Bearer ${after.access_token}` } });
        return {
          type: after.token_type, newAccess: after.access_token !== before.access_token,
          proved: [proved.status, ((await proved.json()) as { email?: string }).email], unproved: unproved.status, bearer: bearer.status,
        };
      }, opServer.issuer);
      expect(renewed).toEqual({ type: 'DPoP', newAccess: true, proved: [200, ALICE.claims.email], unproved: 400, bearer: 401 });
    });
  });

  it('a page on a site the client never registered cannot read the token endpoint', async () => {
    await inNewPage(async (page) => {
      await page.goto(`${otherOrigin}/`);
      const result = await page.evaluate(async (issuer) => {
        const read = async (url: string, init?: RequestInit) => fetch(url, init).then((r) => `read ${r.status}`, (e: Error) => `blocked: ${e.name}`);
        const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        return {
          discovery: await read(`${issuer}/.well-known/openid-configuration`),
          // the SPA's client id, from the wrong site
          token: await read(`${issuer}/token`, { ...form, body: 'grant_type=authorization_code&code=x&client_id=spa&code_verifier=y&redirect_uri=z' }),
          // the confidential client's own origin: never the token endpoint from a browser
          confidential: await read(`${issuer}/token`, { ...form, body: 'grant_type=authorization_code&code=x&client_id=web&client_secret=s' }),
        };
      }, opServer.issuer);
      expect(result).toEqual({ discovery: 'read 200', token: 'blocked: TypeError', confidential: 'blocked: TypeError' });
    });
  });

  it("answers CORS by the client's registered origins (the headers a browser relies on)", async () => {
    const token = `${opServer.issuer}/token`;
    const userinfo = `${opServer.issuer}/me`;
    const allowed = async (url: string, origin: string, init: RequestInit = {}) => {
      const res = await fetch(url, { ...init, headers: { ...init.headers as Record<string, string>, origin } });
      await res.arrayBuffer();
      return res.headers.get('access-control-allow-origin');
    };
    const form = (body: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const spaToken = form('grant_type=authorization_code&code=x&client_id=spa&code_verifier=y&redirect_uri=z');
    expect(await allowed(token, spaOrigin, spaToken)).toBe(spaOrigin);
    expect(await allowed(token, otherOrigin, spaToken)).toBeNull();
    expect(await allowed(token, 'null', spaToken)).toBeNull();
    expect(await allowed(token, otherOrigin, form('grant_type=authorization_code&code=x&client_id=web&client_secret=web-client-secret-0123456789abcdef'))).toBeNull();
    // userinfo: an access token of `web` read from web's origin, and refused to the SPA's
    const { provider } = opServer;
    const grant = new provider.Grant({ clientId: 'web', accountId: ALICE.id });
    grant.addOIDCScope('openid email');
    const webToken = await new provider.AccessToken({
      client: (await provider.Client.find('web'))!, accountId: ALICE.id, grantId: await grant.save(), gty: 'authorization_code', scope: 'openid email',
    }).save();
    const bearer = { headers: { authorization: `Bearer ${webToken}` } };
    expect(await allowed(userinfo, otherOrigin, bearer)).toBe(otherOrigin);
    expect(await allowed(userinfo, spaOrigin, bearer)).toBeNull();
  });
});
