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
