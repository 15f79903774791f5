// The application: an OpenID Connect Relying Party built with @openid-express/rp.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import { rp, requireAuth } from '@openid-express/rp';
import { configureProviders, providerLabel } from './providers.js';
import { homePage, profilePage, errorPage, sendPage } from './views.js';

/**
 * Builds the quickstart application (an Express app). It does not listen: the caller does.
 *
 * @param {object} options
 * @param {string} options.baseURL       where browsers reach the app, e.g. http://localhost:3000
 * @param {string} options.issuer        the Demo OP's issuer, e.g. http://127.0.0.1:3001/op
 * @param {{clientId: string, clientSecret: string}} options.client  the app's client at the Demo OP
 * @param {Array} [options.accounts]     demo accounts to show on the home page
 * @param {Record<string, string|undefined>} [options.env]  GOOGLE_CLIENT_ID ... SESSION_SECRET
 * @example
 *   const app = createApplication({ baseURL: 'http://localhost:3000', issuer, client });
 *   app.listen(3000);
 */
export function createApplication({ baseURL, issuer, client, accounts = [], env = process.env }) {
  const { providers, buttons, setupHints } = configureProviders({ issuer, client, baseURL, env });
  const app = express();
  app.disable('x-powered-by');
  app.use(
    session({
      name: 'quickstart.sid',
      secret: env.SESSION_SECRET || randomBytes(32).toString('hex'),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: baseURL.startsWith('https:') },
    }),
  );
  // Sign-in errors get this app's pages (browsers) or the RP's JSON body (API calls).
  app.use(rp({ baseURL, providers, onError: (err, req, res, next) => (wantsHtml(req) ? next(err) : sendJsonError(err, res)) }));

  const loginButtons = buttons.map((b) => ({ ...b, loginUrl: `/auth/login/${b.name}?returnTo=/profile` }));
  const home = (notice) => (req, res) => {
    const user = viewUser(req);
    sendPage(res, 200, homePage({ user, providers: loginButtons, accounts, setupHints, notice }));
  };
  app.get('/', home());
  app.get('/signed-out', home('You are signed out.'));

  app.get('/profile', requireAuth(), showProfile);

  const form = [requireAuth(), express.urlencoded({ extended: false, limit: '2kb' }), checkCsrf];
  app.post('/profile/refresh', ...form, action(async (req) => {
    await req.oidc.refresh();
    req.session.refreshed = (req.session.refreshed ?? 0) + 1;
    return { notice: 'Tokens refreshed: a new access token, and a new expiry below.' };
  }));
  app.post('/profile/userinfo', ...form, action(async (req) => {
    const userinfo = await req.oidc.fetchUserInfo();
    return { notice: 'The userinfo endpoint answered.', userinfo };
  }));

  app.use((req, res) => {
    sendPage(res, 404, errorPage({ status: 404, title: 'Page not found', message: 'There is nothing at this address.', user: viewUser(req) }));
  });
  app.use(errorHandler);
  return app;
}

function showProfile(req, res) {
  const flash = takeFlash(req);
  const token = req.oidc.accessToken; // expiresAt: epoch seconds
  const page = profilePage({
    user: viewUser(req),
    token: token && { expiresAt: token.expiresAt, scope: token.scope, refreshed: req.session.refreshed },
    canRefresh: Boolean(req.oidc.authentication?.refreshToken),
    claims: { ...req.oidc.user.claims, ...req.oidc.idTokenClaims }, // the person's claims, then the sign-in's
    userinfo: flash.userinfo,
    notice: flash.notice,
    error: flash.error,
    csrf: csrfToken(req),
  });
  sendPage(res, 200, page);
}

// Runs a profile action and shows its outcome on the profile page (post / redirect / get).
function action(run) {
  return async (req, res) => {
    try {
      req.session.flash = await run(req);
    } catch (err) {
      req.session.flash = { error: `That did not work: ${describe(err).message}${err?.code ? ` (${err.code})` : ''}` };
    }
    res.redirect(303, '/profile');
  };
}

function takeFlash(req) {
  const flash = req.session.flash ?? {};
  delete req.session.flash;
  return flash;
}

function csrfToken(req) {
  req.session.csrf ??= randomBytes(24).toString('base64url');
  return req.session.csrf;
}

// The session cookie is SameSite=Lax already; the token also stops same-site forgeries.
function checkCsrf(req, res, next) {
  const expected = Buffer.from(String(req.session.csrf ?? ''));
  const given = Buffer.from(String(req.body?.csrf ?? ''));
  if (expected.length > 0 && expected.length === given.length && timingSafeEqual(expected, given)) return next();
  sendPage(res, 403, errorPage({ status: 403, title: 'Form expired', message: 'This form is stale or did not come from this site. Reload the profile page and try again.', code: 'csrf_mismatch', user: viewUser(req) }));
}

function viewUser(req) {
  if (!req.oidc?.isAuthenticated()) return undefined;
  const u = req.oidc.user;
  return { ...u, given_name: u.claims?.given_name, providerLabel: providerLabel(u.provider) };
}

// What a person should read for an error: RpError codes (stable) mapped to plain words.
function describe(err) {
  const status = Number(err?.status ?? err?.statusCode) || 500;
  if (err?.opError === 'access_denied') {
    return {
      status,
      title: 'Sign-in cancelled',
      message: 'You chose not to share your information with this application, so you are not signed in. You can try again whenever you like.',
    };
  }
  switch (err?.code) {
    case 'missing_state':
    case 'invalid_state':
    case 'transaction_expired':
      return { status, title: 'This sign-in has expired', message: 'The sign-in took too long, was already used, or was started in another browser. Please start again.' };
    case 'op_unreachable':
    case 'op_unavailable':
      return { status, title: 'The identity provider is not answering', message: 'We could not reach the identity provider. Try again in a moment.' };
    case 'store_unavailable':
      return { status, title: 'Briefly unavailable', message: 'The application could not reach its session store. Try again in a moment; if you were signed in, you still are.' };
    default:
      if (status >= 500) return { status, title: 'Something went wrong', message: 'The application hit an unexpected error. Try again in a moment.' };
      return { status, title: status === 401 ? 'Please sign in' : 'Sign-in did not complete', message: err?.message || 'The request was refused.' };
  }
}

function wantsHtml(req) {
  return (req.get('accept') ?? '').includes('text/html');
}

function sendJsonError(err, res) {
  res.status(err.status).set('Cache-Control', 'no-store');
  if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
  if (err.status === 401) res.set('WWW-Authenticate', `Bearer error="${err.code}"`);
  res.json(err.toJSON());
}

function errorHandler(err, req, res, next) {
  if (res.headersSent) return next(err);
  const d = describe(err);
  if (d.status >= 500 && err?.retryAfter === undefined) console.error(err);
  // a transient failure (the OP restarting, the session store stalling): say when to try again
  if (err?.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
  // a failed callback: its answer is used once, so the way forward is a new sign-in (err.loginUrl)
  sendPage(res, d.status, errorPage({ ...d, code: err?.code, loginUrl: err?.loginUrl, user: viewUser(req) }));
}
