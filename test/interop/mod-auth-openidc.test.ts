/**
 * Interop: Apache mod_auth_openidc, a certified RP nobody here wrote, logs in through our OP, keeps
 * its session and logs out (RP-initiated logout), with PKCE S256, with the module's default and with
 * PKCE off (a confidential client sending a nonce, which RFC 9700 §2.1.1 allows to omit PKCE).
 * Needs `apt-get install -y apache2 libapache2-mod-auth-openidc`; fails (never skips) without it.
 */
import { FormBrowser } from '../support/op-forms.js';
import { pkceOffDirective, withApacheLog, type ApacheRp } from './support/apache.js';
import { ALICE, signInAtOp, startApacheWithOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';


interface Run { name: string; directives: () => string[]; pkce?: 'S256' | 'none' }

const RUNS: Run[] = [
  { name: 'OIDCPKCEMethod S256', directives: () => ['OIDCPKCEMethod S256'], pkce: 'S256' },
  { name: "the module's default PKCE setting (no OIDCPKCEMethod)", directives: () => [] },
  // 2.4.12 has no "none" value: there, leaving the directive out is how PKCE is turned off
  { name: 'PKCE off (OIDCPKCEMethod none, or no directive where "none" is unknown)', directives: pkceOffDirective, pkce: 'none' },
];

describe.each(RUNS)('mod_auth_openidc against op(): $name', (run) => {
  let opServer: InteropOp;
  let apache: ApacheRp;

  beforeAll(async () => {
    ({ opServer, apache } = await startApacheWithOp({ directives: run.directives() }));
  });

  afterAll(async () => {
    await apache?.stop();
    await opServer?.close();
  });

  it('signs in, keeps the session, logs out at the OP and asks for login again', () => withApacheLog(() => apache, async () => {
    const browser = new FormBrowser();
    const protectedUrl = `${apache.origin}/protected/whoami.html`;
    const login = await browser.open(protectedUrl);
    expectAt(login, '/op/interaction/', "our OP's login page");
    const sent = opServer.authRequests.at(-1)!;
    // what the RP really sent, so each run tests what its name says
    if (run.pkce === 'S256') expect(sent).toMatchObject({ code_challenge_method: 'S256', code_challenge: expect.any(String) });
    if (run.pkce === 'none') {
      expect(sent.code_challenge).toBeUndefined();
      expect(sent.nonce).toEqual(expect.any(String));
    }

    const page = await signInAtOp(browser, login, protectedUrl);
    expect(page.status).toBe(200);
    expect(page.html).toContain('protected page');
    expect(page.headers.get('x-oidc-sub')).toBe(ALICE.id);
    expect(page.headers.get('x-oidc-email')).toBe(ALICE.claims.email);

    // the module's session holds: no new trip to the OP
    const logins = opServer.authRequests.length;
    const again = await browser.open(protectedUrl);
    expect([again.url, again.status, again.headers.get('x-oidc-sub')]).toEqual([protectedUrl, 200, ALICE.id]);
    expect(opServer.authRequests).toHaveLength(logins);

    const after = `${apache.origin}/loggedout.html`;
    const confirm = await browser.open(`${apache.origin}/protected/redirect_uri?logout=${encodeURIComponent(after)}`);
    expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect([done.url, done.status]).toEqual([after, 200]);
    expect(done.html).toContain('signed out of Apache');

    // both sessions are gone: Apache sends the browser to the OP, which shows its login form
    const relogin = await browser.open(protectedUrl);
    expectAt(relogin, '/op/interaction/', "our OP's login page again");
    expect(browser.form(relogin, { value: ['authenticator', 'password'] })).toBeDefined();
    expect(opServer.authRequests).toHaveLength(logins + 1);
  }, run.name));
});
