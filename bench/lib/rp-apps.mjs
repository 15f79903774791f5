// The same small app three ways: a login route, a callback, and a protected GET /me answering the
// user as JSON. Sessions live in express-session's MemoryStore (or, for express-openid-connect's
// default, in an encrypted cookie).
import { pathToFileURL } from 'node:url';
import session from 'express-session';
import express from 'express';

const SESSION_SECRET = 'bench-session-secret-0123456789abcdef';
const SCOPE = 'openid profile email';

/**
 * @openid-express/rp, from its built dist (or, with `from`, from a build of an earlier commit made by
 * bench/build-rp-at.mjs). `fetchUserInfo` undefined is the default (fetched when it can add something).
 */
async function ours({ baseURL, issuer, clientId, clientSecret, fetchUserInfo, from, me = 'guarded', sessionOption = false, seeded = false }) {
  const { rp, oidc, requireAuth } = await import(from ? pathToFileURL(`${from}/packages/rp/dist/index.js`).href : '@openid-express/rp');
  const store = new session.MemoryStore();
  const app = express();
  const sessions = session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' });
  if (!sessionOption) app.use(sessions);
  const sessionOnly = (req, res) => void res.json(req.session.oidc?.auth ? { sub: 'alice', provider: 'op', claims: JSON.parse(Buffer.from(req.session.oidc.auth.idToken.split('.')[1], 'base64url')) } : {});
  if (me === 'first') app.get('/me', sessionOnly); // before rp(): what the process, not rp()'s layer, costs
  if (seeded) { // diagnostic: the login a real one leaves in the session, hand-set (no login, no OP connection in this process)
    app.get('/seed', (req, res) => {
      const iat = Math.floor(Date.now() / 1000);
      req.session.oidc = { auth: { provider: 'op', idToken: fakeIdToken(issuer, clientId), claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true },
        accessToken: { value: 'x'.repeat(43), scope: SCOPE, expiresAt: iat + 3600 } } };
      res.json({});
    });
  }
  app.use(rp({ baseURL, providers: { op: oidc({ issuer, clientId, clientSecret, scope: SCOPE, allowInsecureRequests: true, fetchUserInfo }) }, ...(sessionOption ? { session: sessions } : {}) }));
  // `me` (diagnostic variants): 'guarded' as the README writes it; 'unguarded' without requireAuth();
  // 'session' reads only the session (what rp() costs a route that never touches req.oidc)
  if (me === 'guarded') app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  else if (me === 'unguarded') app.get('/me', (req, res) => void res.json(req.oidc.user));
  else if (me === 'session') app.get('/me', sessionOnly);
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

/**
 * The baseline of the login target: openid-client v6 called by hand with express-session, doing what
 * `@openid-express/rp` does by default — state, nonce and PKCE S256; the code exchange (openid-client
 * checks the RFC 9207 `iss` response parameter, the ID token's claims and nonce); the ID token's
 * signature verified with jose against the OP's cached JWKS (openid-client itself trusts the TLS
 * channel); userinfo fetched (here the ID token carries only `sub`, so it can add something) with
 * its `sub` checked; a new session id at login, saved before the redirect; and a back-channel-logout
 * index (session ids by `sub` and `sid`) kept in the store. No error pages beyond a status code.
 */
async function handWritten({ baseURL, issuer, clientId, clientSecret, nested = false }) {
  const client = await import('openid-client');
  const jose = await import('jose');
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });
  const metadata = config.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  // `nested` (diagnostic): the login routes in a router mounted at /auth, with a path parameter, as rp() has them
  const redirectUri = nested ? `${baseURL}/auth/callback/op` : `${baseURL}/callback`;
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  const routes = nested ? express.Router() : app;
  if (nested) app.use('/auth', routes);
  routes.get(nested ? '/login/:provider' : '/login', async (req, res, next) => {
    try {
      const codeVerifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: SCOPE, state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
      });
      req.session.login = { state, nonce, codeVerifier, returnTo: '/me' };
      res.redirect(url.href);
    } catch (err) {
      next(err);
    }
  });
  const op = (fn) => new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
  // back-channel logout: which session ids belong to a sub / sid (the newest 50); one update per key at a time
  const tails = new Map();
  const remember = (key, id) => {
    const update = async () => {
      const record = await op((cb) => store.get(key, cb));
      const members = [...(record?.members ?? []).filter((m) => m !== id), id].slice(-50);
      await op((cb) => store.set(key, { members, cookie: { expires: new Date(Date.now() + 30 * 86400e3).toISOString(), originalMaxAge: 30 * 86400e3 } }, cb));
    };
    const done = (tails.get(key) ?? Promise.resolve()).then(update);
    const tail = done.catch(() => {});
    tails.set(key, tail);
    void tail.then(() => tails.get(key) === tail && tails.delete(key));
    return done;
  };
  routes.get(nested ? '/callback/:provider' : '/callback', async (req, res, next) => {
    try {
      const login = req.session.login;
      if (!login) return void res.status(400).send('no login in progress');
      delete req.session.login;
      const tokens = await client.authorizationCodeGrant(config, new URL(req.originalUrl, baseURL), {
        pkceCodeVerifier: login.codeVerifier, expectedState: login.state, expectedNonce: login.nonce, idTokenExpected: true,
      });
      const { payload: claims } = await jose.jwtVerify(tokens.id_token, jwks, { issuer: metadata.issuer, audience: clientId, algorithms: ['RS256'] });
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      await op((cb) => req.session.regenerate(cb));
      req.session.user = { ...userinfo, sub: claims.sub };
      req.session.tokens = {
        id_token: tokens.id_token, access_token: tokens.access_token, token_type: tokens.token_type,
        expires_at: Math.floor(Date.now() / 1000) + (tokens.expiresIn() ?? 0), refresh_token: tokens.refresh_token,
      };
      await op((cb) => req.session.save(cb));
      await Promise.all([
        remember(`bcl:sub:${claims.sub}`, req.sessionID),
        ...(typeof claims.sid === 'string' ? [remember(`bcl:sid:${claims.sid}`, req.sessionID)] : []),
      ]);
      res.redirect(login.returnTo);
    } catch (err) {
      next(err);
    }
  });
  app.get('/me', (req, res) => (req.session.user ? void res.json(req.session.user) : void res.status(401).json({ error: 'login_required' })));
  return { app, store, loginPath: nested ? '/auth/login/op' : '/login' };
}

/**
 * A JWT-shaped string as long as an RS256 ID token of this OP (header, claims, 256-byte signature),
 * for the floor that keeps a user's tokens without logging in.
 */
function fakeIdToken(issuer, aud) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'RS256', kid: '00000000-0000-4000-8000-000000000000' })}.${part({ sub: 'alice', aud, exp: iat + 3600, iat, iss: issuer })}.${Buffer.alloc(256, 7).toString('base64url')}`;
}

/**
 * The floor with the same data as a login: express + express-session and no OIDC library, the
 * session hand-set to what passport keeps for the same user (claims, ID token, access token and its
 * expiry), /me answering the user. express-session parses, hashes and re-serializes the whole
 * session on every request, so this is the floor for a session that holds a real login.
 */
async function floorTokens({ issuer, layer = false, garbage = 0 }) {
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, store, name: 'sid' }));
  if (layer) app.use((req, res, next) => next()); // diagnostic: what one more app-level layer costs
  if (garbage) { // diagnostic: what `garbage` KB more short-lived allocation per request costs (small objects, dropped at once)
    let kept;
    app.use((req, res, next) => {
      for (let i = 0; i < garbage * 16; i++) kept = { i, a: kept === undefined ? 0 : 1, b: null, c: null, d: null, e: null };
      next();
    });
  }
  app.get('/seed', (req, res) => {
    const iat = Math.floor(Date.now() / 1000);
    req.session.user = { sub: 'alice', provider: 'op', name: 'Alice Liddell', email: 'alice@example.org', emailVerified: true,
      claims: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } };
    req.session.tokens = { id_token: fakeIdToken(issuer, 'floor-tokens'), access_token: 'x'.repeat(43), token_type: 'bearer', expires_at: iat + 3600 };
    res.json(req.session.user);
  });
  app.get('/me', (req, res) => (req.session.user ? void res.json(req.session.user) : void res.status(401).json({ error: 'login_required' })));
  return { app, store, loginPath: '/login' };
}

/**
 * floor-tokens with `HEAVY_MB` (default 5) MB more live heap (small linked objects, kept for the
 * app's life): what a bigger heap at rest alone costs each request in GC.
 */
async function floorTokensHeavy(o) {
  const built = await floorTokens(o);
  const keep = [];
  const mb = Number(process.env.HEAVY_MB ?? 5);
  for (let i = 0; i < mb * 1024 * 1024 / 64; i++) keep.push({ i, next: keep[i - 1], s: `k${i}` });
  built.app.locals.heavy = keep;
  return built;
}

/**
 * floor-tokens in a process that also loaded what an OIDC login needs (openid-client, jose, and
 * undici through a discovery request to the OP): what holding them costs each request of the floor.
 */
async function floorTokensLoaded(o) {
  const built = await floorTokens(o);
  const client = await import('openid-client');
  await import('jose');
  built.app.locals.config = await client.discovery(new URL(o.issuer), 'floor-tokens-loaded', undefined, undefined, { execute: [client.allowInsecureRequests] });
  return built;
}

/** floor-tokens with rp()'s session-store deadline (boundStore) on its store: what the deadline costs. */
async function floorTokensBound(o) {
  const built = await floorTokens(o);
  const { boundStore } = await import(new URL('../../packages/rp/dist/session-guard.js', import.meta.url).href);
  // own methods, as a network store (Redis) has: rp() leaves express-session's own MemoryStore unbounded
  for (const name of ['get', 'set', 'touch', 'destroy']) built.store[name] = built.store[name];
  boundStore(built.store, 3000);
  return built;
}

/** The contenders, by name: how to build each app and its label in the tables. */
export const VARIANTS = {
  floor: { label: 'floor: express + express-session, no OIDC', callbackPath: '/callback', noLogin: true, build: (o) => floor(o) },
  'floor-tokens': { label: 'floor with a login\'s data: express + express-session, same user + tokens hand-set', callbackPath: '/callback', noLogin: true, noLoginRoute: true, build: (o) => floorTokens(o) },
  handwritten: { label: 'openid-client v6 by hand + express-session (same checks as ours)', callbackPath: '/callback', build: (o) => handWritten(o) },
  'handwritten-nested': { label: 'handwritten with its login routes in a router mounted at /auth, with a path parameter', callbackPath: '/auth/callback/op', optIn: true, build: (o) => handWritten({ ...o, nested: true }) },
  ours: { label: '@openid-express/rp', callbackPath: '/auth/callback/op', build: (o) => ours(o) },
  'ours-no-userinfo': { label: '@openid-express/rp, fetchUserInfo: false', callbackPath: '/auth/callback/op', build: (o) => ours({ ...o, fetchUserInfo: false }) },
  'ours-fetch-userinfo': { label: '@openid-express/rp, fetchUserInfo: true (always)', callbackPath: '/auth/callback/op', build: (o) => ours({ ...o, fetchUserInfo: true }) },
  // diagnostics (ONLY=…): where /me's cost above floor-tokens goes
  'ours-session-option': { label: '@openid-express/rp running express-session itself (rp({ session }))', callbackPath: '/auth/callback/op', optIn: true, build: (o) => ours({ ...o, sessionOption: true }) },
  'ours-seeded': { label: '@openid-express/rp, the login hand-set in the session (no login ran in the process)', callbackPath: '/auth/callback/op', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => ours({ ...o, seeded: true }) },
  'ours-seeded-after-login': { label: '@openid-express/rp, logged in, then /me with the login hand-set in another session', callbackPath: '/auth/callback/op', noLoginRoute: true, seedAfterLogin: true, optIn: true, build: (o) => ours({ ...o, seeded: true }) },
  'ours-unguarded': { label: '@openid-express/rp, /me without requireAuth()', callbackPath: '/auth/callback/op', optIn: true, build: (o) => ours({ ...o, me: 'unguarded' }) },
  // A/A check of a method (ONLY=floor-tokens,floor-tokens-again): two identical apps should measure 1.00×
  'floor-tokens-again': { label: 'floor-tokens again (a second, identical app)', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokens(o) },
  'floor-tokens-heavy': { label: 'floor-tokens with HEAVY_MB (5) MB more live heap', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokensHeavy(o) },
  'floor-tokens-loaded': { label: 'floor-tokens with openid-client, jose and undici loaded (one discovery)', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokensLoaded(o) },
  'floor-tokens-bound': { label: 'floor-tokens with rp()\'s store deadline', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokensBound(o) },
  'floor-tokens-layer': { label: 'floor-tokens with one no-op app.use() layer before /me', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokens({ ...o, layer: true }) },
  'floor-tokens-garbage': { label: 'floor-tokens with GARBAGE_KB (3) KB more short-lived allocation per request', callbackPath: '/callback', noLogin: true, noLoginRoute: true, optIn: true, build: (o) => floorTokens({ ...o, garbage: Number(process.env.GARBAGE_KB ?? 3) }) },
  'ours-first': { label: '@openid-express/rp mounted after /me, which reads only the session', callbackPath: '/auth/callback/op', optIn: true, build: (o) => ours({ ...o, me: 'first' }) },
  'ours-session': { label: '@openid-express/rp mounted, /me reading only the session', callbackPath: '/auth/callback/op', optIn: true, build: (o) => ours({ ...o, me: 'session' }) },
  // BEFORE=<dir of bench/build-rp-at.mjs>: the RP as it was at that commit, next to the current build
  'ours-before': { label: '@openid-express/rp before (BEFORE build)', callbackPath: '/auth/callback/op', optIn: true, build: (o) => ours({ ...o, from: process.env.BEFORE }) },
  eoc: { label: 'express-openid-connect (cookie session)', callbackPath: '/callback', build: (o) => expressOpenidConnect({ ...o, stateful: false }) },
  'eoc-store': { label: 'express-openid-connect (MemoryStore)', callbackPath: '/callback', build: (o) => expressOpenidConnect({ ...o, stateful: true }) },
  passport: { label: 'passport + openid-client/passport', callbackPath: '/callback', build: (o) => passportOpenidClient(o) },
};
