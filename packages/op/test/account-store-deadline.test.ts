/**
 * The app's own account store and authenticators are given `storeTimeout`, as its own `adapter` is:
 * a user database or directory that stops answering made every sign-in, authorization and token
 * request hang with no answer and no log line (probe14-opnew F2). Now such a request answers 503
 * `store_unavailable` with `Retry-After`, and the log names the method.
 */
import * as client from 'openid-client';
import { memoryAccounts, memoryAdapter, OpError, type AccountStore, type Authenticator } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE } from './support/op-server.js';
import { callbackOf, refusal, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const base = memoryAccounts([ALICE]);
const hang = { verifyPassword: false, findById: false, claims: false };
let suspended = false;
const never = new Promise<never>(() => undefined);
// a store over a database that may stop answering (asynchronous, not memoryAccounts itself)
const accounts: AccountStore = {
  findByLogin: (login) => base.findByLogin(login),
  findById: (id) => (hang.findById ? never : base.findById(id)),
  verifyPassword: (login, password) => {
    if (suspended) throw new OpError('login_failed', 403, 'This account is suspended: ask your administrator.');
    return hang.verifyPassword ? never : base.verifyPassword(login, password);
  },
  claims: (id, scope) => (hang.claims ? never : base.claims(id, scope)),
};
const stuck: Authenticator = {
  id: 'stuck', label: 'A directory that does not answer',
  fields: () => '<input name="who">',
  throttleKey: (body) => body.who,
  verify: () => never,
};

let f: FlowFixture;
beforeAll(async () => {
  // storeTimeout: the right password's hash check must fit in it on a loaded CI machine (300 ms did not, once)
  f = await startFlowFixture(memoryAdapter(), { accounts, storeTimeout: 1500, authenticators: [(await import('@openid-express/op')).password(), stuck] });
}, 60_000);
afterAll(() => f?.op.close());
afterEach(() => Object.assign(hang, { verifyPassword: false, findById: false, claims: false }));

test('a password check that never answers: the login form answers 503 within storeTimeout, and the same form works once the store answers', async () => {
  hang.verifyPassword = true;
  const browser = f.browser();
  const login = await browser.open((await f.authorization(f.first)).url);
  const started = Date.now();
  const page = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
  expect([page.status, Date.now() - started < 5000]).toEqual([503, true]); // before: no answer at all
  hang.verifyPassword = false;
  const again = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
  expect(callbackOf(again).searchParams.get('code')).toBeTruthy();
});

test('an authenticator whose verify() never answers: 503, not a login that hangs', async () => {
  const browser = f.browser();
  const login = await browser.open((await f.authorization(f.first)).url);
  const page = await browser.submit(login, { value: ['authenticator', 'stuck'] }, { who: 'alice' });
  expect(page.status).toBe(503);
});

test('findById (a signed-in browser\'s next authorization) and claims (the code exchange) that never answer: 503 each', async () => {
  const browser = f.browser();
  const auth = await f.authorization(f.first);
  const signedIn = await signIn(browser, auth.url, { login: ALICE.username, password: ALICE.password });
  hang.claims = true;
  const exchange = refusal(client.authorizationCodeGrant(f.first, callbackOf(signedIn), {
    pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
  }));
  expect(await exchange).toMatchObject({ status: 503, error: 'store_unavailable', retryAfter: '5' });
  hang.claims = false;
  hang.findById = true;
  const next = await browser.open((await f.authorization(f.first)).url);
  expect(next.status).toBe(503);
}, 60_000);

test('a refusal the store means (an OpError: "this account is suspended") is answered as it says, not turned into a 500', async () => {
  suspended = true;
  try {
    const browser = f.browser();
    const login = await browser.open((await f.authorization(f.first)).url);
    const page = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    expect(page.status).toBe(403);
    expect(page.html).toContain('This account is suspended');
  } finally {
    suspended = false;
  }
});
