/**
 * What the OP's pages say: its name and logo on every page, who is consenting (and switching to
 * another account), a way onward after signing out, and errors in plain words with a way back.
 */
import { defaultViews, memoryAdapter, type ErrorViewProps } from '@openid-express/op';
import { FormBrowser, signIn } from '../../../test/support/op-forms.js';
import { plainError } from '../src/provider-errors.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE, BOB, accounts, startOp, type RunningOp } from './support/op-server.js';

const errorView = defaultViews.error as (p: ErrorViewProps) => string;

describe("the OP's name and logo", () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { name: 'Example ID', logoUri: '/brand/logo.svg' });
  });
  afterAll(() => f.op.close());

  const branded = (html: string, title: string) => {
    expect(html).toContain(`<title>${title} · Example ID</title>`);
    expect(html).toContain('<header class="site"><img src="/brand/logo.svg" alt="" height="32"><span>Example ID</span></header>');
  };

  test('are in the title and header of the login, consent, error, logout and signed-out pages', async () => {
    const browser = f.browser();
    const login = await browser.open((await f.authorization()).url);
    branded(login.html, 'Sign in');
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    branded(consent.html, 'Allow access?');
    branded((await browser.post(`${f.op.issuer}/interaction/nope/login`, { csrf: 'x' })).html, 'This sign-in has expired');
    branded((await browser.open((await f.authorization(f.web, { redirect_uri: 'https://evil.example/cb' })).url)).html, 'This sign-in link cannot be used');
    await browser.submit(consent, { action: '/confirm' });
    const confirm = await browser.open(`${f.op.issuer}/session/end`);
    branded(confirm.html, 'Sign out');
    branded((await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' })).html, 'Signed out');
  });

  test("without `name` the issuer's host names the OP", async () => {
    const plain = await startFlowFixture(memoryAdapter());
    try {
      const page = await plain.browser().open((await plain.authorization()).url);
      expect(page.html).toContain(`<title>Sign in · ${new URL(plain.op.issuer).host}</title>`);
      expect(page.html).toContain(`<header class="site"><span>${new URL(plain.op.issuer).host}</span></header>`);
    } finally {
      await plain.op.close();
    }
  });
});

describe('with the default options: the consent screen; pages without homeUri (an OP mounted under a path, nothing at the root of its site)', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter());
  });
  afterAll(() => f.op.close());

  test('"Signed out" and "expired" link nowhere they cannot lead (before: "/", a 404), and say what to do', async () => {
    const browser = f.browser();
    await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
    const confirm = await browser.open(`${f.op.issuer}/session/end`);
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.html).toContain('<h1>Signed out</h1>');
    expect(done.html).toContain('<p>You can close this page.</p>');
    expect(done.html).not.toContain('class="button"');
    const expired = await f.browser().open(`${f.op.issuer}/interaction/${'x'.repeat(21)}`);
    expect(expired.status).toBe(400);
    expect(expired.html).toContain('Return to the application you came from and try again.');
    expect(expired.html).not.toContain('href="/"');
  });
  test('says who is signed in, and "Use another account" lets bob consent instead of alice', async () => {
    const browser = f.browser();
    const auth = await f.authorization();
    const login = await browser.open(auth.url);
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(consent.html).toContain('Signed in as <strong><bdi>alice@example.org</bdi></strong>.');
    const other = /<a href="([^"]+)">Use another account<\/a>/.exec(consent.html)?.[1];
    expect(other).toMatch(/^\/op\/interaction\/[\w-]+\/login$/);
    const again = await browser.open(new URL(other!, f.op.origin).href);
    expect(again.html).toContain('name="password"');
    // oidc-provider signs alice out first (a form that posts itself in a browser), then resumes for bob
    let page = await browser.submit(again, { value: ['authenticator', 'password'] }, { login: 'bob', password: BOB.password });
    expect(page.forms[0]?.fields).toMatchObject({ logout: 'yes', xsrf: expect.any(String) });
    page = await browser.submit(page, { has: 'xsrf' });
    expect(page.html).toContain('Signed in as <strong><bdi>Bob</bdi></strong>.');
    const done = await browser.submit(page, { action: '/confirm' });
    const tokens = await client.authorizationCodeGrant(f.web, callbackOf(done), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    expect(tokens.claims()!.sub).toBe('bob');
  });

  test('consent is remembered through the OP session (README, Consent): not in another browser, nor after signing out', async () => {
    const login = { login: 'alice', password: ALICE.password };
    const asks = async (browser: FormBrowser) => {
      let page = await browser.open((await f.authorization()).url);
      if (page.html.includes('name="password"')) page = await browser.submit(page, { value: ['authenticator', 'password'] }, login);
      return page.html.includes('Allow access?');
    };
    const browser = f.browser();
    await signIn(browser, (await f.authorization()).url, login);
    expect(await asks(browser)).toBe(false);
    expect(await asks(f.browser())).toBe(true);
    const confirm = await browser.open(`${f.op.issuer}/session/end`);
    await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(await asks(browser)).toBe(true);
  });

  test('asked later for one more claim, it lists only that claim, not the scopes granted before', async () => {
    const browser = f.browser();
    await signIn(browser, (await f.authorization(f.web, { scope: 'openid email' })).url, { login: 'alice', password: ALICE.password });
    const items = (html: string) => [...html.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]);
    const claims = JSON.stringify({ userinfo: { phone_number: null } });
    const page = await browser.open((await f.authorization(f.web, { scope: 'openid email', claims })).url);
    expect(page.html).toContain('Allow access?');
    expect(items(page.html)).toEqual(['your phone number']);
    // consent asked again with nothing new (prompt=consent) still lists what the request asks
    const again = await browser.open((await f.authorization(f.web, { scope: 'openid email', prompt: 'consent' })).url);
    expect(items(again.html)).toEqual([expect.stringContaining('Confirm who you are'), 'See your email address']);
  });
});

describe('the signed-out page', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { homeUri: 'https://www.example.org/' });
  });
  afterAll(() => f.op.close());

  const signedIn = async () => {
    const browser = f.browser();
    await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
    return { browser, confirm: await browser.open(`${f.op.issuer}/session/end?client_id=web`) };
  };

  test('leads back to the client when it is known (its registered post-logout page)', async () => {
    const { browser, confirm } = await signedIn();
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }); // "No, stay signed in": only the client's session ends
    expect(done.html).toContain('<h1>Signed out</h1>');
    expect(done.html).toContain(`<a class="button" href="${f.op.origin}/bye">Back to Web &lt;App&gt;</a>`);
  });

  test('leads to `homeUri` otherwise', async () => {
    const { browser, confirm } = await signedIn();
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.html).toContain('<a class="button" href="https://www.example.org/">Continue</a>');
  });
});

describe('error pages', () => {
  let op: RunningOp;
  beforeAll(async () => {
    op = await startOp((_issuer, origin) => ({
      adapter: memoryAdapter(), accounts,
      clients: [{
        client_id: 'shop', client_secret: 'shop-secret-shop-secret', client_name: 'Shop', client_uri: 'https://shop.example/', redirect_uris: [`${origin}/cb`],
        post_logout_redirect_uris: [`${origin}/bye/`],
      }],
    }));
  });
  afterAll(() => op.close());

  const authorize = (redirectUri: string) => `${op.issuer}/auth?${new URLSearchParams({
    client_id: 'shop', response_type: 'code', scope: 'openid', redirect_uri: redirectUri,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  })}`;

  test("an unregistered redirect_uri: what happened in plain words, a way back to the client, the code for developers", async () => {
    const page = await new FormBrowser().open(authorize('https://evil.example/cb'));
    expect(page.status).toBe(400);
    expect(page.html).toContain('<h1>This sign-in link cannot be used</h1>');
    expect(page.html).toContain('Shop asked to send you back to an address it has not registered here');
    expect(page.html).toContain('<a class="button" href="https://shop.example/">Back to Shop</a>');
    expect(page.html).toContain('Error code: <code>invalid_redirect_uri</code>');
    expect(page.html).not.toContain('evil.example');
    // the developer's pointer: the values are in the log (before: named nowhere)
    expect(page.html).toContain('with DEBUG=openid-express:op, names the values received');
  });

  /** The DEBUG=openid-express:op lines said while `fn` runs. */
  const debugLines = async (fn: () => Promise<unknown>): Promise<string[]> => {
    const { default: debug } = await import('debug');
    const { format } = await import('node:util');
    const lines: string[] = [];
    const log = debug.log;
    debug.enable('openid-express:op');
    debug.log = (...args: unknown[]) => void lines.push(format(...args));
    try {
      await fn();
    } finally {
      debug.log = log;
      debug.disable();
    }
    return lines;
  };

  test('with DEBUG, the log names the redirect_uri and client_id an authorization request was refused for', async () => {
    const lines = await debugLines(async () => {
      await new FormBrowser().open(authorize('https://evil.example/cb'));
      await new FormBrowser().open(`${op.issuer}/auth?client_id=nobody&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fa.example%2Fcb`);
    });
    expect(lines).toContainEqual(expect.stringContaining('invalid_redirect_uri (redirect_uri did not match any of the client\'s registered redirect_uris) (redirect_uri received: "https://evil.example/cb", client_id "shop"'));
    expect(lines).toContainEqual(expect.stringContaining('invalid_client (client is invalid) (client_id received: "nobody": no client of that id is registered)'));
  });

  test('a sign-out asked with a post_logout_redirect_uri the client did not register (express-openid-connect\'s baseURL without its slash): not signed out, told so, offered a sign-out here; the log names both addresses (SPA probe F1)', async () => {
    const origin = new URL(op.issuer).origin;
    let page!: Awaited<ReturnType<FormBrowser['open']>>;
    const lines = await debugLines(async () => {
      page = await new FormBrowser().open(`${op.issuer}/session/end?${new URLSearchParams({ client_id: 'shop', post_logout_redirect_uri: `${origin}/bye` })}`);
    });
    expect(page.status).toBe(400);
    expect(page.html).toContain('<h1>You were not signed out</h1>');
    expect(page.html).toContain('asked to sign you out and then send you to an address it has not registered');
    expect(page.html).toContain(`<a class="button" href="${op.issuer}/session/end">Sign out</a>`); // before: "Return to app and try again"
    expect(page.html).not.toContain(`${origin}/bye"`);
    expect(lines).toContainEqual(expect.stringContaining(`(post_logout_redirect_uri received: "${origin}/bye", client "shop", whose post_logout_redirect_uris are ["${origin}/bye/"]: it must be one of them exactly, a trailing slash included)`));
  });

  test('an authorization request with a response_type the client did not register (express-openid-connect\'s default id_token): the log names the one asked and the registered ones (SPA probe F3)', async () => {
    const origin = new URL(op.issuer).origin;
    const lines = await debugLines(() => fetch(`${op.issuer}/auth?${new URLSearchParams({
      client_id: 'shop', response_type: 'id_token', response_mode: 'form_post', scope: 'openid', nonce: 'n', redirect_uri: `${origin}/cb`,
    })}`, { redirect: 'manual' }));
    expect(lines).toContainEqual(expect.stringContaining('(response_type received: "id_token", client "shop", whose response_types are ["code"]: register it in the client\'s response_types, or have the client ask one of those, e.g. response_type=code)'));
  });

  test('clients registered by strangers (dynamic registration) get no such warning: they would fill the log (review-55 F3)', async () => {
    const open = await startOp((_issuer, origin) => ({
      adapter: memoryAdapter(), accounts, features: { registration: true },
      clients: [{ client_id: 'shop', client_secret: 'shop-secret-shop-secret', redirect_uris: [`${origin}/cb`] }],
    }));
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const origin = new URL(open.issuer).origin;
      for (let i = 0; i < 3; i += 1) {
        const reg = await (await fetch(`${open.issuer}/reg`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [`${origin}/cb${i}`] }),
        })).json() as { client_id: string; client_secret: string };
        await fetch(`${open.issuer}/token`, {
          method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${reg.client_id}:${reg.client_secret}`).toString('base64')}` },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: `${origin}/cb${i}` }),
        });
      }
      expect(warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('called the token endpoint'))).toEqual([]);
    } finally {
      warn.mockRestore();
      await open.close();
    }
  });

  test('a page calling the token endpoint of a confidential client from that client\'s own origin: no CORS answer, a warning says to register the app as a public client, and the debug log says why (SPA probe F2)', async () => {
    const origin = new URL(op.issuer).origin;
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    let res!: Response;
    const lines = await debugLines(async () => {
      res = await fetch(`${op.issuer}/token`, {
        method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('shop:shop-secret-shop-secret').toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: `${origin}/cb` }),
      });
    });
    const warned = warn.mock.calls.map((c) => String(c[0]));
    warn.mockRestore();
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(warned).toContainEqual(expect.stringMatching(/^op\(\): a page at http:\/\/127\.0\.0\.1:\d+ called the token endpoint for client "shop", which authenticates with client_secret_basic.*token_endpoint_auth_method: 'none'/));
    // before: "refused: invalid_request (invalid_request)"
    expect(lines).toContainEqual(expect.stringMatching(/token request of client shop refused: invalid_request \(origin .* not allowed for client: shop\)/));
  });

  test('Back onto a finished sign-in\'s page: "expired", with the way back to the one client this browser is signed in to; none from another browser (tabs probe F2)', async () => {
    const browser = new FormBrowser();
    const origin = new URL(op.issuer).origin;
    const login = await browser.open(authorize(`${origin}/cb`));
    expect(login.url).toContain('/interaction/');
    const consent = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    const done = await browser.submit(consent, { action: '/confirm' });
    expect(done.stoppedAt ?? done.url).toContain('/cb?code=');
    const back = await browser.open(login.url); // the first sign-in's page, gone since
    expect(back.status).toBe(400);
    expect(back.html).toContain('<h1>This sign-in has expired</h1>');
    expect(back.html).toContain('<a class="button" href="https://shop.example/">Back to Shop</a>'); // before: no link at all
    const elsewhere = await new FormBrowser().open(login.url);
    expect(elsewhere.html).not.toContain('shop.example');
    // the OP session's id without its signature (or with a wrong one): read as oidc-provider reads it, so no link (review-55 F2)
    const id = /(?:^|; )_session=([^;]+)/.exec(browser.jar.header(login.url))![1]!;
    for (const cookie of [`_session=${id}`, `_session=${id}; _session.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA`]) {
      const bare = await fetch(login.url, { headers: { cookie } });
      expect(await bare.text()).not.toContain('shop.example');
    }
  });

  test('a sign-in whose cookie is gone says it has expired', async () => {
    const page = await new FormBrowser().open(`${op.issuer}/auth/some-old-interaction`);
    expect(page.status).toBe(400);
    expect(page.html).toContain('<h1>This sign-in has expired</h1>');
    expect(page.html).toContain('Go back to the application you came from and sign in again.');
  });

  test('access_denied reads as a choice the user made, with the way back, never a bare code', () => {
    const clientOf = { clientId: 'shop', clientName: 'Shop', clientUri: 'https://shop.example/' } as never;
    const html = errorView(plainError(400, 'access_denied', 'End-User aborted interaction', clientOf));
    expect(html).toContain('<h1>Access was not given</h1>');
    expect(html).toContain('You chose not to let Shop use your account, so nothing was shared with it.');
    expect(html).toContain('<a class="button" href="https://shop.example/">Back to Shop</a>');
    // a name ending in a right-to-left override loses it: it cannot turn the words after it backwards
    const spoof = errorView(plainError(400, 'access_denied', undefined, { clientId: 'x', clientName: 'Photo Print\u202e', clientUri: 'https://x.example/' } as never));
    expect(spoof).toContain('You chose not to let Photo Print use your account');
    expect(spoof).toContain('>Back to Photo Print</a>');
    const unknown = errorView(plainError(400, 'access_denied', undefined, undefined));
    expect(unknown).toContain('You chose not to let the application you came from use your account');
    expect(unknown).toContain('Return to the application you came from and try again.');
  });
});
