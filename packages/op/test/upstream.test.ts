import { oidc } from '@openid-express/rp';
import { memoryAccounts, memoryAdapter, password, upstream } from '@openid-express/op';
import { FormBrowser } from '../../../test/support/op-forms.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { ALICE, listen, originOf, startOp, type RunningOp } from './support/op-server.js';

// the corporate OP where people really sign in; carol has no account at our OP
const CAROL = { id: 'carol', username: 'carol', password: 'carol-pw-1', claims: { email: 'carol@corp.example' } };
const corpAccounts = memoryAccounts([{ ...ALICE, id: 'corp-alice-7' }, CAROL]);

describe('federation: signing in at our OP through another OP (upstream)', () => {
  let directoryHangs = false;
  let corp: RunningOp;
  let f: FlowFixture;
  beforeAll(async () => {
    const ours = await listen();
    corp = await startOp(() => ({
      adapter: memoryAdapter(), accounts: corpAccounts,
      clients: [{ client_id: 'our-op', client_secret: 'upstream-secret-1', redirect_uris: [`${originOf(ours)}/op/upstream/callback/corp`] }],
      provider: { cookies: { names: { session: '_corp_session', interaction: '_corp_interaction', resume: '_corp_resume' } } },
    }), { sessionName: 'corp.sid' });
    f = await startFlowFixture(memoryAdapter(), {
      authenticators: [password(), upstream({
        name: 'corp', label: 'Sign in with Corp',
        provider: oidc({ issuer: corp.issuer, clientId: 'our-op', clientSecret: 'upstream-secret-1', allowInsecureRequests: true }),
        account: (user) => (directoryHangs ? new Promise<undefined>(() => undefined) : user.email === ALICE.claims.email ? 'alice' : undefined),
      }), upstream({
        // an OP that is down (nothing listens on port 9)
        name: 'down', label: 'Sign in with Down', provider: oidc({ issuer: 'http://127.0.0.1:9/op', clientId: 'x', clientSecret: 'y', allowInsecureRequests: true }),
        account: () => undefined,
      })],
      storeTimeout: 1000,
    }, { server: ours });
  });
  afterAll(async () => {
    await f?.op.close();
    await corp?.close();
  });

  const startAtOurOp = async (browser: FormBrowser) => {
    const auth = await f.authorization(f.first);
    const login = await browser.open(auth.url);
    expect(login.html).toContain('Sign in with Corp');
    const atCorp = await browser.submit(login, { value: ['authenticator', 'corp'] });
    expect(atCorp.url.startsWith(corp.issuer)).toBe(true);
    return { auth, atCorp };
  };

  test('alice signs in at Corp and comes back signed in at our OP, amr "fed"', async () => {
    const browser = f.browser();
    const { auth, atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    page = await browser.submit(page, { action: '/confirm' }); // consent at Corp for our OP
    const tokens = await client.authorizationCodeGrant(f.first, callbackOf(page), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: 'alice', amr: ['fed'] });
  });

  test('a Corp user without an account here is refused, with a way back to the login page', async () => {
    const browser = f.browser();
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'carol', password: CAROL.password });
    page = await browser.submit(page, { action: '/confirm' });
    expect(page.status).toBe(401);
    expect(page.html).toContain('login_failed');
    expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    expect(browser.jar.names()).not.toContain('_session');
  });

  test('cancelling at Corp says so (not "failed"), with a way back, and counts no failed attempt: six cancels, then the password works', async () => {
    const address = { 'x-forwarded-for': '198.51.100.40' };
    for (let i = 0; i < 6; i += 1) {
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
      const { atCorp } = await startAtOurOp(browser);
      const page = await browser.submit(atCorp, { action: '/abort' });
      expect([page.status, page.html.includes('login_cancelled'), page.html.includes('was cancelled there')]).toEqual([400, true, true]);
      expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    }
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
    const login = await browser.open((await f.authorization(f.first)).url);
    const done = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(done.status).not.toBe(429);
  });

  test('an upstream OP that cannot be reached: 503 with Retry-After naming it, not a 500, and no failed attempt counted', async () => {
    const address = { 'x-forwarded-for': '198.51.100.41' };
    for (let i = 0; i < 6; i += 1) {
      const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
      const login = await browser.open((await f.authorization(f.first)).url);
      const page = await browser.submit(login, { value: ['authenticator', 'down'] });
      expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
      expect(page.html).toContain('upstream_unavailable');
      expect(page.html).toMatch(/Signing in with [^<]+ is not possible right now/);
    }
    const browser = new FormBrowser({ stopAt: (u) => u.pathname === '/cb', headers: address });
    const login = await browser.open((await f.authorization(f.first)).url);
    const done = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    expect(done.status).not.toBe(429);
  });

  test('an account() that never answers (a directory stalled): 503 after storeTimeout, not a callback that hangs', async () => {
    const browser = f.browser();
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    directoryHangs = true;
    try {
      const started = Date.now();
      page = await browser.submit(page, { action: '/confirm' });
      expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
      expect(Date.now() - started).toBeLessThan(5000);
      // the other OP's answer is spent: the way back starts the sign-in again, not "try again" here
      expect(page.html).toMatch(/href="\/op\/interaction\/[\w-]+"/);
    } finally {
      directoryHangs = false;
    }
  });

  test('a callback with a state this browser never sent is refused and signs no one in', async () => {
    const browser = f.browser();
    await startAtOurOp(browser);
    const forged = await browser.open(`${f.op.issuer}/upstream/callback/corp?code=stolen&state=forged`);
    expect(forged.status).toBe(400);
    expect(forged.html).toContain('interaction_expired');
    expect(browser.jar.names()).not.toContain('_session');
  });

  test('a replayed upstream callback is refused, and the replay signs no one in', async () => {
    const ourOrigin = f.op.origin;
    const browser = new FormBrowser({
      stopAt: (u) => u.origin === ourOrigin && (u.pathname === '/cb' || u.pathname.startsWith('/op/upstream/callback')),
    });
    const { atCorp } = await startAtOurOp(browser);
    let page = await browser.submit(atCorp, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
    page = await browser.submit(page, { action: '/confirm' });
    const upstreamCallback = page.stoppedAt!;
    expect(new URL(upstreamCallback).pathname).toBe('/op/upstream/callback/corp');
    const first = await browser.open(upstreamCallback);
    expect(callbackOf(first).searchParams.get('code')).toEqual(expect.any(String)); // it worked once
    const replay = await browser.open(upstreamCallback);
    expect(replay.status).toBe(400);
    expect(replay.html).toContain('interaction_expired');
  });
});
