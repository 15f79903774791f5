/**
 * What an RP-initiated logout leaves in the browser-session store: the confirmation's CSRF token is
 * used up, and a session that held nothing else is deleted, not written back empty (which left one
 * empty record per logout for the store's TTL); a session the app keeps its own data in stays.
 */
import session from 'express-session';
import { memoryAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

/** The sessions in `store`, as their data without the cookie. */
function contents(store: session.MemoryStore): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => store.all((err, all) => {
    if (err) return reject(err);
    resolve(Object.values(all ?? {}).map((s) => Object.fromEntries(Object.entries(s as object).filter(([k]) => k !== 'cookie'))));
  }));
}

async function signInAndOut(f: FlowFixture): Promise<void> {
  const browser = f.browser();
  const auth = await f.authorization();
  const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
  const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });
  const confirm = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${f.op.origin}/bye` }).href);
  expect(confirm.html).toContain('Yes, sign me out');
  const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
  expect(new URL(done.stoppedAt!).pathname).toBe('/bye');
}

describe('the OP\'s own session data only', () => {
  const store = new session.MemoryStore();
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), {}, { sessionStore: store });
  });
  afterAll(() => f?.op.close());

  test('three sign-ins and sign-outs leave no session record behind', async () => {
    for (let i = 0; i < 3; i++) await signInAndOut(f);
    expect(await contents(store)).toEqual([]); // before: three records holding only their cookie
  });
});

describe('a session the app also keeps its own data in', () => {
  const store = new session.MemoryStore();
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), {}, {
      sessionStore: store,
      beforeOp: (app) => app.use((req, _res, next) => {
        (req.session as unknown as { cart?: string }).cart ??= 'three apples';
        next();
      }),
    });
  });
  afterAll(() => f?.op.close());

  test('is kept, with the app\'s data, without the used-up token', async () => {
    await signInAndOut(f);
    const left = await contents(store);
    expect(left.length).toBeGreaterThan(0);
    for (const data of left) expect(data).toEqual({ cart: 'three apples' });
  });
});

describe('"Sign out?" open in two tabs of one browser', () => {
  const store = new session.MemoryStore();
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), {}, { sessionStore: store });
  });
  afterAll(() => f?.op.close());

  /** Whether `browser` still gets a code without signing in (its OP session is alive). */
  async function signedIn(browser: ReturnType<FlowFixture['browser']>): Promise<boolean> {
    const page = await browser.open((await f.authorization(f.web, { prompt: 'none' })).url);
    return callbackOf(page).searchParams.has('code');
  }

  test('the first tab\'s confirmation signs this browser out, and only this browser', async () => {
    const other = f.browser();
    await signIn(other, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
    const browser = f.browser();
    const auth = await f.authorization();
    const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
    const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });
    const endSession = client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${f.op.origin}/bye` }).href;
    const tabA = await browser.open(endSession);
    const tabB = await browser.open(endSession); // before: a new xsrf secret in the OP session, tab A's form stale
    expect(tabB.html).toContain('Yes, sign me out');
    const done = await browser.submit(tabA, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.stoppedAt && new URL(done.stoppedAt).pathname).toBe('/bye'); // before: 400 "xsrf token invalid"
    expect(await signedIn(browser)).toBe(false); // before: still alice, no password asked
    // tab B confirmed later: already done
    const again = await browser.submit(tabB, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(again.html).toContain('<h1>Signed out</h1>');
    expect(await signedIn(other)).toBe(true);
    expect(await contents(store)).toEqual([]);
  });

  test('an earlier page that asked something else (another post_logout_redirect_uri or state) is not confirmed with the later page\'s request: refused, still signed in (review: it acted on the later page\'s client and redirect)', async () => {
    const browser = f.browser();
    const auth = await f.authorization();
    const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
    const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });
    const hint = tokens.id_token!;
    const tabA = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: hint, post_logout_redirect_uri: `${f.op.origin}/bye`, state: 'a' }).href);
    // a later page of another request (another site can open one with a plain link)
    await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: hint, post_logout_redirect_uri: `${f.op.origin}/bye`, state: 'b' }).href);
    const refused = await browser.submit(tabA, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('You are still signed in');
    expect(await signedIn(browser)).toBe(true);
  });

  test('a refused confirmation (our token or oidc-provider\'s secret stale) links to a fresh "Sign out?" page that works', async () => {
    for (const stale of [{ csrf: 'stale' }, { xsrf: 'stale' }] as Array<Record<string, string>>) {
      const browser = f.browser();
      await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
      const page = await browser.open(`${f.op.issuer}/session/end`);
      const refused = await browser.submit(page, { id: 'op.logoutForm' }, { logout: 'yes', ...stale });
      expect(refused.status).toBe('csrf' in stale ? 403 : 400);
      const link = /<a class="button" href="([^"]+)">Sign out<\/a>/.exec(refused.html)?.[1]; // before: no way on but the back button
      expect(link).toBeDefined();
      expect(await signedIn(browser)).toBe(true);
      const fresh = await browser.open(new URL(link!.replace(/&amp;/g, '&'), f.op.issuer).href);
      const done = await browser.submit(fresh, { id: 'op.logoutForm' }, { logout: 'yes' });
      expect(done.html).toContain('<h1>Signed out</h1>');
      expect(await signedIn(browser)).toBe(false);
    }
  });
});
