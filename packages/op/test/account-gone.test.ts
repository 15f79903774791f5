/**
 * An account the store no longer has (an admin deleted it) while a browser's OP session is still
 * signed in as it. oidc-provider went on with a session whose account it could not load, and every
 * sign-in from that browser, to any client and as anyone, answered 500 "Something went wrong, try
 * again" until the OP session expired, 14 days (probe14-opnew F1: a shared computer locked out).
 * Now that session is signed out: the login form is shown, and `prompt=none` gets `login_required`.
 */
import { memoryAccounts, memoryAdapter, type AccountStore } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { ALICE, BOB } from './support/op-server.js';
import { callbackOf, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

const base = memoryAccounts([ALICE, BOB]);
const gone = new Set<string>();
// the store an app keeps its users in, minus the ones it deleted (asynchronous, as a database is)
const accounts: AccountStore = {
  findById: async (id) => (gone.has(id) ? undefined : base.findById(id)),
  findByLogin: async (login) => {
    const found = await base.findByLogin(login);
    return found && !gone.has(found.id) ? found : undefined;
  },
  verifyPassword: async (login, password) => {
    const id = await base.verifyPassword(login, password);
    return id && !gone.has(id) ? id : undefined;
  },
  claims: (id, scope) => base.claims(id, scope),
};

let f: FlowFixture;
beforeAll(async () => {
  f = await startFlowFixture(memoryAdapter(), { accounts });
}, 60_000);
afterAll(() => f?.op.close());

test('a browser signed in as an account since deleted gets the login form (another user signs in), not a 500 for 14 days', async () => {
  const browser = f.browser();
  const first = await signIn(browser, (await f.authorization(f.first)).url, { login: ALICE.username, password: ALICE.password });
  expect(callbackOf(first).searchParams.get('code')).toBeTruthy();
  gone.add(ALICE.id);
  try {
    // silently: the OP session no longer stands for anyone
    const silent = await browser.open((await f.authorization(f.first, { prompt: 'none' })).url);
    expect(callbackOf(silent).searchParams.get('error')).toBe('login_required'); // before: a 500 page
    // with the form: bob signs in from the same browser
    const bob = await signIn(browser, (await f.authorization(f.first)).url, { login: BOB.username, password: BOB.password });
    expect(callbackOf(bob).searchParams.get('code')).toBeTruthy();
  } finally {
    gone.delete(ALICE.id);
  }
}, 60_000);
