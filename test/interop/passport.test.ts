/**
 * Interop: passport with the Strategy openid-client v6 ships (`openid-client/passport`), the other
 * way Express apps sign in today, against our OP. That Strategy sends PKCE S256 and, since the OP
 * announces PKCE, neither `state` nor `nonce`: a confidential client that relies on PKCE alone,
 * which the OP's PKCE policy accepts (RFC 9700 §2.1.1). The app signs in, keeps its session, and
 * logs out at the OP with openid-client's end-session URL.
 */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import * as client from 'openid-client';
import { Strategy, type VerifyFunction } from 'openid-client/passport';
import { Passport } from 'passport';
import { FormBrowser } from '../support/op-forms.js';
import { ALICE, startInteropOp, type InteropOp } from './support/op.js';
import { expectAt } from './support/pages.js';
import { close, listen } from '../../packages/rp/test/support/rp-app.js';

const CLIENT_ID = 'passport';
const CLIENT_SECRET = 'passport-client-secret-0123456789abcdef';


interface User { sub: string; email?: string; idToken?: string }

describe('passport + openid-client/passport against op()', () => {
  let opServer: InteropOp;
  let origin: string;
  const server = createServer();

  beforeAll(async () => {
    origin = await listen(server);
    opServer = await startInteropOp(() => [{
      client_id: CLIENT_ID, client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${origin}/callback`],
      post_logout_redirect_uris: [`${origin}/bye`],
    }]);

    // as openid-client's passport example sets it up (http only because the test OP is on loopback)
    const config = await client.discovery(new URL(opServer.issuer), CLIENT_ID, undefined, client.ClientSecretBasic(CLIENT_SECRET), { execute: [client.allowInsecureRequests] });
    const passport = new Passport();
    const verify: VerifyFunction = (tokens, verified) => {
      void client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)
        .then((info) => verified(null, { sub: info.sub, email: info.email, idToken: tokens.id_token } satisfies User))
        .catch((err: Error) => verified(err));
    };
    passport.use('oidc', new Strategy({ config, scope: 'openid profile email', callbackURL: `${origin}/callback` }, verify));
    passport.serializeUser((user, done) => done(null, user));
    passport.deserializeUser((user: User, done) => done(null, user));
    const app = express();
    app.use(session({ secret: 'passport-session-secret-0123456789abcdef', resave: false, saveUninitialized: false }));
    app.use(passport.session());
    app.get('/login', passport.authenticate('oidc'));
    app.get('/callback', passport.authenticate('oidc', { successRedirect: '/me', failureRedirect: '/failed' }));
    app.get('/me', (req, res) => {
      if (!req.isAuthenticated()) return void res.redirect('/login');
      const { sub, email } = req.user as User;
      res.json({ sub, email });
    });
    app.get('/logout', (req, res, next) => {
      const idToken = (req.user as User | undefined)?.idToken;
      req.logout((err) => {
        if (err) return next(err);
        const url = client.buildEndSessionUrl(config, { post_logout_redirect_uri: `${origin}/bye`, ...(idToken ? { id_token_hint: idToken } : {}) });
        res.redirect(url.href);
      });
    });
    app.get('/bye', (_req, res) => void res.send('signed out of the app'));
    app.get('/failed', (_req, res) => void res.status(401).send('login failed'));
    server.on('request', app);
  });

  afterAll(async () => {
    await close(server);
    await opServer?.close();
  });

  it('signs in with PKCE and no nonce, keeps the session, and logs out at the OP', async () => {
    const browser = new FormBrowser();
    let page = await browser.open(`${origin}/me`);
    expectAt(page, '/op/interaction/', "our OP's login page");
    const sent = opServer.authRequests.at(-1)!;
    // what the Strategy really sent, so the test is the case its name says
    expect(sent).toMatchObject({ client_id: CLIENT_ID, response_type: 'code', code_challenge_method: 'S256', code_challenge: expect.any(String) });
    expect(sent.nonce).toBeUndefined();

    page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
    if (page.url.includes('/op/interaction/')) page = await browser.submit(page, { action: '/confirm' });
    expectAt(page, `${origin}/me`, "the app's /me");
    expect(JSON.parse(page.html)).toEqual({ sub: ALICE.id, email: ALICE.claims.email });

    const logins = opServer.authRequests.length;
    const again = await browser.open(`${origin}/me`);
    expect([again.url, again.status]).toEqual([`${origin}/me`, 200]);
    expect(opServer.authRequests).toHaveLength(logins);

    const confirm = await browser.open(`${origin}/logout`);
    expectAt(confirm, '/op/session/end', "our OP's logout confirmation");
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect([done.url, done.status, done.html]).toEqual([`${origin}/bye`, 200, 'signed out of the app']);

    const relogin = await browser.open(`${origin}/me`);
    expectAt(relogin, '/op/interaction/', "our OP's login page again");
    expect(browser.form(relogin, { value: ['authenticator', 'password'] })).toBeDefined();
  });
});
