import { memoryAccounts, memoryAdapter, password, type AccountStore, type Authenticator } from '@openid-express/op';
import { escapeHtml } from '@openid-express/op';
import { ALICE, BOB } from './support/op-server.js';
import { callbackOf, client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';

// a second way in: a one-time code sent out of band (here: fixed per user, for the story)
const codes: Record<string, string> = { bob: '424242' };
const oneTimeCode: Authenticator = {
  id: 'otp',
  label: 'Sign in with a one-time code',
  submitLabel: 'Send code',
  fields: ({ lastLogin }) => `<label for="otp-user">Username</label><input id="otp-user" name="user" value="${escapeHtml(lastLogin ?? '')}">
<label for="otp-code">Code</label><input id="otp-code" name="code" inputmode="numeric">`,
  throttleKey: (body) => body.user?.toLowerCase(),
  async verify({ body }) {
    const user = body.user?.toLowerCase();
    return user && codes[user] && codes[user] === body.code ? { ok: true, accountId: user, amr: ['otp'], acr: 'urn:example:otp' } : { ok: false };
  },
};

// an app's own authenticator that says why it refused (for its own logs): still a counted failure
const codeWithReason: Authenticator = {
  id: 'code', label: 'Sign in with a code', fields: () => '<input name="user"><input name="code">',
  throttleKey: (body) => body.user?.toLowerCase(),
  async verify() {
    return { ok: false, reason: 'wrong_code' as never };
  },
};

describe('failures of an app\'s own authenticator', () => {
  test.each(['wrong_code', 'cancelled'])('are counted whatever `reason` they give (here %s; only an other provider that is down is not): the sixth guess is locked out', async (reason) => {
    codeWithReason.verify = async () => ({ ok: false, reason: reason as never });
    const f = await startFlowFixture(memoryAdapter(), { authenticators: [password(), codeWithReason] });
    try {
      const browser = f.browser();
      let page = await browser.open((await f.authorization()).url);
      const statuses: number[] = [];
      for (let n = 0; n < 6; n += 1) {
        page = await browser.submit(page, { value: ['authenticator', 'code'] }, { user: 'mallory', code: String(n) });
        statuses.push(page.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    } finally {
      await f.op.close();
    }
  });
});

describe('an account store whose verifyPassword() answers true/false (not the account id)', () => {
  // written from "verifyPassword(login, password)" alone, as password checks usually answer
  const real = memoryAccounts([ALICE, BOB]);
  const booleans = {
    findByLogin: (login: string) => real.findByLogin(login),
    findById: (id: string) => real.findById(id),
    verifyPassword: async (login: string, pw: string) => (await real.verifyPassword(login, pw)) !== undefined,
    claims: (id: string, scope: string) => real.claims(id, scope),
  } as unknown as AccountStore;

  test('the right password is a 500 whose log names accounts.verifyPassword() and what it returned; a wrong one (false) is a wrong password, as before', async () => {
    const f = await startFlowFixture(memoryAdapter(), { accounts: booleans });
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const browser = f.browser();
      const login = await browser.open((await f.authorization()).url);
      const page = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
      expect(page.status).toBe(500);
      expect(page.html).toContain('Something went wrong');
      // before: oidc-provider's "accountId must be a non-empty string, got: boolean", naming neither
      expect(error.mock.calls.map((c) => c.map(String).join(' ')).join('\n'))
        .toContain('accounts.verifyPassword() must return the account id (a string) or undefined; it returned boolean true');
      error.mockClear();
      const wrong = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: 'nope' });
      expect(wrong.status).toBe(401); // false reads as "no account": a store that answers it for a wrong password keeps working
      expect(error).not.toHaveBeenCalled();
    } finally {
      error.mockRestore();
      await f.op.close();
    }
  });
});

describe('several authenticators on one login page', () => {
  let f: FlowFixture;
  beforeAll(async () => {
    f = await startFlowFixture(memoryAdapter(), { authenticators: [password({ loginLabel: 'Email' }), oneTimeCode] });
  });
  afterAll(() => f.op.close());

  test('the page offers each in its own form, with its own label', async () => {
    const page = await f.browser().open((await f.authorization()).url);
    expect(page.html).toContain('<label for="password-login">Email</label>');
    expect(page.html).toContain('Sign in with a one-time code');
    const passwordForm = f.browser().form(page, { value: ['authenticator', 'password'] });
    const otpForm = f.browser().form(page, { value: ['authenticator', 'otp'] });
    expect(passwordForm.fields.csrf).toBe(otpForm.fields.csrf);
  });

  test("bob signs in with the second one, and the ID token says how (amr, acr)", async () => {
    const browser = f.browser();
    const auth = await f.authorization(f.first);
    const login = await browser.open(auth.url);
    const done = await browser.submit(login, { value: ['authenticator', 'otp'] }, { user: 'bob', code: '424242' });
    const tokens = await client.authorizationCodeGrant(f.first, callbackOf(done), {
      pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: 'bob', amr: ['otp'], acr: 'urn:example:otp' });
  });

  describe('an acr the client makes essential (OIDC Core §5.5.1.1)', () => {
    const essential = (acr: Record<string, unknown>) => ({ claims: JSON.stringify({ id_token: { acr: { essential: true, ...acr } } }) });
    // the two ways OIDC Core §5.5.1 lets a client name the acr it requires
    const FORMS: Array<[string, Record<string, unknown>]> = [
      ['values', { values: ['urn:example:otp'] }],
      ['value', { value: 'urn:example:otp' }],
    ];

    test.each(FORMS)('(%s) met by the one-time code: signed in, the ID token carries it', async (_form, acr) => {
      const browser = f.browser();
      const auth = await f.authorization(f.first, essential(acr));
      const done = await browser.submit(await browser.open(auth.url), { value: ['authenticator', 'otp'] }, { user: 'bob', code: '424242' });
      const tokens = await client.authorizationCodeGrant(f.first, callbackOf(done), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      expect(tokens.claims()).toMatchObject({ sub: 'bob', acr: 'urn:example:otp' });
    });

    test.each(FORMS)('(%s) not met by a password: unmet_authentication_requirements back to the client, not the login form again', async (_form, acr) => {
      const browser = f.browser();
      const auth = await f.authorization(f.first, essential(acr));
      const done = await browser.submit(await browser.open(auth.url), { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      const answer = callbackOf(done).searchParams;
      expect(answer.get('error')).toBe('unmet_authentication_requirements');
      expect(answer.get('error_description')).toContain('(acr) the client requires');
      expect(answer.get('state')).toBe(auth.state);
      expect(answer.get('code')).toBeNull();
    });

    test('essential without values: any sign-in meets it', async () => {
      const browser = f.browser();
      const auth = await f.authorization(f.first, essential({}));
      const done = await browser.submit(await browser.open(auth.url), { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      expect(callbackOf(done).searchParams.get('code')).toBeTruthy();
    });
  });

  test('a wrong code gets the generic message and the username is kept in the form', async () => {
    const browser = f.browser();
    const login = await browser.open((await f.authorization()).url);
    const failed = await browser.submit(login, { value: ['authenticator', 'otp'] }, { user: 'bob', code: '000000' });
    expect(failed.status).toBe(401);
    expect(failed.html).toContain('The login name or password is incorrect.');
    expect(browser.form(failed, { value: ['authenticator', 'otp'] }).fields.user).toBe('bob');
  });

  test('an authenticator that is not offered is refused with 400', async () => {
    const browser = f.browser();
    const login = await browser.open((await f.authorization()).url);
    const refused = await browser.submit(login, { value: ['authenticator', 'password'] }, { authenticator: 'magic', login: 'alice', password: ALICE.password });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('authenticator_unknown');
    expect(browser.jar.names()).not.toContain('_session');
  });

  test("the client's login_hint fills in the login field", async () => {
    const page = await f.browser().open((await f.authorization(f.web, { login_hint: 'alice@example.org"><b>' })).url);
    const form = f.browser().form(page, { value: ['authenticator', 'password'] });
    expect(form.fields.login).toBe('alice@example.org"><b>');
    expect(page.html).not.toContain('"><b>');
  });
});
