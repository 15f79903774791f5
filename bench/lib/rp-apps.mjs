// The same small app three ways: a login route, a callback, and a protected GET /me answering the
// user as JSON. Sessions live in express-session's MemoryStore (or, for express-openid-connect's
// default, in an encrypted cookie).
import session from 'express-session';
import express from 'express';

const SESSION_SECRET = 'bench-session-secret-0123456789abcdef';
const SCOPE = 'openid profile email';

/** @openid-express/rp, from its built dist. */
async function ours({ baseURL, issuer, clientId, clientSecret, fetchUserInfo = true }) {
  const { rp, oidc, requireAuth } = await import('@openid-express/rp');
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  app.use(rp({ baseURL, providers: { op: oidc({ issuer, clientId, clientSecret, scope: SCOPE, allowInsecureRequests: true, fetchUserInfo }) } }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  return { app, store, loginPath: '/auth/login/op?returnTo=%2Fme' };
}

/** express-openid-connect (auth0), code flow with PKCE like ours; `stateful` keeps sessions in a MemoryStore. */
async function expressOpenidConnect({ baseURL, issuer, clientId, clientSecret, stateful }) {
  const { auth, requiresAuth } = (await import('express-openid-connect')).default;
  const store = stateful ? new session.MemoryStore() : undefined;
  const app = express();
  app.use(auth({
    issuerBaseURL: issuer, baseURL, clientID: clientId, clientSecret, secret: SESSION_SECRET,
    clientAuthMethod: 'client_secret_basic', authRequired: false, idpLogout: false,
    authorizationParams: { response_type: 'code', response_mode: 'query', scope: SCOPE },
    routes: { login: false },
    ...(store ? { session: { store } } : {}),
  }));
  app.get('/login', (req, res) => res.oidc.login({ returnTo: '/me' }));
  app.get('/me', requiresAuth(), (req, res) => void res.json(req.oidc.user));
  return { app, store, loginPath: '/login' };
}

/** passport + openid-client/passport (the Strategy openid-client v6 ships). */
async function passportOpenidClient({ baseURL, issuer, clientId, clientSecret }) {
  const { Passport } = (await import('passport')).default;
  const client = await import('openid-client');
  const { Strategy } = await import('openid-client/passport');
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });
  const passport = new Passport();
  // keep what ours and express-openid-connect keep: claims and tokens (refresh, logout, API calls)
  passport.use('oidc', new Strategy({ config, scope: SCOPE, callbackURL: `${baseURL}/callback` }, (tokens, verified) => {
    verified(null, {
      claims: tokens.claims(), id_token: tokens.id_token, access_token: tokens.access_token,
      token_type: tokens.token_type, expires_at: Math.floor(Date.now() / 1000) + (tokens.expiresIn() ?? 0), refresh_token: tokens.refresh_token,
    });
  }));
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user, done) => done(null, user));
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  app.use(passport.session());
  app.get('/login', passport.authenticate('oidc'));
  app.get('/callback', passport.authenticate('oidc', { successRedirect: '/me', failureRedirect: '/login-failed' }));
  app.get('/me', (req, res) => (req.isAuthenticated() ? void res.json(req.user.claims) : void res.status(401).json({ error: 'login_required' })));
  return { app, store, loginPath: '/login' };
}

/**
 * The floor: express + express-session and no OIDC library. /login keeps a random value in a new
 * session and redirects; /me answers the user that /seed kept in the session. What the others cost above it
 * is what their OIDC layer costs.
 */
async function floor({ issuer }) {
  const { randomBytes } = await import('node:crypto');
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  app.get('/login', (req, res) => {
    req.session.pending = { state: randomBytes(32).toString('base64url'), returnTo: '/me' };
    res.redirect(`${issuer}/auth?state=${req.session.pending.state}`);
  });
  app.get('/seed', (req, res) => {
    req.session.user = { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org' };
    res.json(req.session.user);
  });
  app.get('/me', (req, res) => (req.session.user ? void res.json(req.session.user) : void res.status(401).json({ error: 'login_required' })));
  return { app, store, loginPath: '/login' };
}

/** The contenders, by name: how to build each app and its label in the tables. */
export const VARIANTS = {
  floor: { label: 'floor: express + express-session, no OIDC', callbackPath: '/callback', noLogin: true, build: (o) => floor(o) },
  ours: { label: '@openid-express/rp', callbackPath: '/auth/callback/op', build: (o) => ours(o) },
  'ours-no-userinfo': { label: '@openid-express/rp, fetchUserInfo: false', callbackPath: '/auth/callback/op', build: (o) => ours({ ...o, fetchUserInfo: false }) },
  eoc: { label: 'express-openid-connect (cookie session)', callbackPath: '/callback', build: (o) => expressOpenidConnect({ ...o, stateful: false }) },
  'eoc-store': { label: 'express-openid-connect (MemoryStore)', callbackPath: '/callback', build: (o) => expressOpenidConnect({ ...o, stateful: true }) },
  passport: { label: 'passport + openid-client/passport', callbackPath: '/callback', build: (o) => passportOpenidClient(o) },
};
