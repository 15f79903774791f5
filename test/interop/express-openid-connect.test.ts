/**
 * Interop: express-openid-connect (Auth0's Express middleware, on openid-client v6), an RP nobody
 * here wrote and one our users already run, signs in through our OP, keeps its session, and is
 * logged out both ways: RP-initiated (`idpLogout: true`, through the OP's end-session confirmation)
 * and by the OP's back-channel logout token after the user signs out at the OP itself. It sends
 * PKCE S256, state and nonce, and authenticates with client_secret_basic.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import { auth, requiresAuth } from 'express-openid-connect';
import { FormBrowser, type BrowserPage } from '../support/op-forms.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';
import { close, listen } from '../../packages/rp/test/support/rp-app.js';

const CLIENT_ID = 'eoc';
const CLIENT_SECRET = 'eoc-client-secret-0123456789abcdef';


interface EocRp {
  origin: string;
  /** Back-channel logout tokens the RP answered, with its status. */
  logoutTokens: number[];
  close(): Promise<void>;
}

/** The RP as its README sets it up, with a session store so back-channel logout can work. */
async function startEoc(server: Server, origin: string, issuer: string): Promise<EocRp> {
  const logoutTokens: number[] = [];
  const store = new session.MemoryStore();
  const app = express();
  app.use('/backchannel-logout', (_req, res, next) => {
    res.on('finish', () => logoutTokens.push(res.statusCode));
    next();
  });
  app.use(auth({
    issuerBaseURL: issuer, baseURL: origin, clientID: CLIENT_ID, clientSecret: CLIENT_SECRET,
    secret: 'eoc-session-secret-0123456789abcdef-0123',
    clientAuthMethod: 'client_secret_basic', authRequired: false, idpLogout: true,
    authorizationParams: { response_type: 'code', response_mode: 'query', scope: 'openid profile email' },
    routes: { postLogoutRedirect: '/bye' },
    // express-session's MemoryStore, as eoc's README suggests (its types describe stores by their own interface)
    session: { store: store as never },
    backchannelLogout: { store: store as never },
  }));
  // the ID token carries `sub` (OIDC Core 5.4: with an access token, the scopes' claims come from userinfo)
  app.get('/me', requiresAuth(), async (req, res) => {
    const info = await req.oidc.fetchUserInfo();
    res.json({ sub: req.oidc.user?.sub, email: info.email });
  });
  app.get('/bye', (_req, res) => void res.send('signed out of the app'));
  server.on('request', app);
  return {
    origin, logoutTokens,
    close: () => close(server),
  };
}

describe('express-openid-connect against op()', () => {
  let opServer: InteropOp;
  let rp: EocRp;

  beforeAll(async () => {
    const server = createServer();
    const origin = await listen(server);
    opServer = await startInteropOp(() => [{
      client_id: CLIENT_ID, client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${origin}/callback`],
      post_logout_redirect_uris: [origin, `${origin}/bye`],
      backchannel_logout_uri: `${origin}/backchannel-logout`,
      backchannel_logout_session_required: true,
    }], { allowPrivateHosts: ['127.0.0.1'] });
    rp = await startEoc(server, origin, opServer.issuer);
  });

  afterAll(async () => {
    await rp?.close();
    await opServer?.close();
  });

  /** Signs alice in: /me without a session sends the browser to the OP; returns the page it ends on. */
  async function login(browser: FormBrowser): Promise<BrowserPage> {
    let page = await browser.open(`${rp.origin}/me`);
    expectAt(page, '/op/interaction/', "our OP's login page");
    const sent = opServer.authRequests.at(-1)!;
    expect(sent).toMatchObject({
      client_id: CLIENT_ID, response_type: 'code', code_challenge_method: 'S256',
      code_challenge: expect.any(String), state: expect.any(String), nonce: expect.any(String),
    });
    page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    if (page.url.includes('/op/interaction/')) page = await browser.submit(page, { action: '/confirm' });
    expectAt(page, `${rp.origin}/me`, "the RP's /me");
    return page;
  }

  it('signs in, keeps the session, and RP-initiated logout ends both sessions', async () => {
    const browser = new FormBrowser();
    const page = await login(browser);
    expect(page.status).toBe(200);
    expect(JSON.parse(page.html)).toEqual({ sub: ALICE.id, email: ALICE.claims.email });

    const logins = opServer.authRequests.length;
    const again = await browser.open(`${rp.origin}/me`);
    expect([again.url, again.status, JSON.parse(again.html).sub]).toEqual([`${rp.origin}/me`, 200, ALICE.id]);
    expect(opServer.authRequests).toHaveLength(logins);

    // the RP's /logout sends the browser to the OP's end_session with its ID token as the hint and
    // its routes.postLogoutRedirect as post_logout_redirect_uri
    const confirm = await browser.open(`${rp.origin}/logout`);
    expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect([done.url, done.status, done.html]).toEqual([`${rp.origin}/bye`, 200, 'signed out of the app']);

    // signed out at both: the app sends the browser to the OP, which asks for the password again
    const relogin = await browser.open(`${rp.origin}/me`);
    expectAt(relogin, '/op/interaction/', "our OP's login page again");
    expect(browser.form(relogin, { value: ['authenticator', 'password'] })).toBeDefined();
  });

  it("signing out at the OP logs the app's session out by back-channel logout", async () => {
    const browser = new FormBrowser();
    await login(browser);
    const answered = rp.logoutTokens.length;

    // the user signs out at the OP itself, not through the app
    const confirm = await browser.open(`${opServer.issuer}/session/end`);
    expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.status).toBe(200);
    // the OP delivered a logout token that the RP validated (signature, iss, aud, events, sid) and accepted
    expect(rp.logoutTokens.slice(answered)).toEqual([204]);

    // the app's cookie is still in the browser, but its session is over
    const after = await browser.open(`${rp.origin}/me`);
    expectAt(after, '/op/interaction/', "our OP's login page (the app's session was logged out)");
  });
});
