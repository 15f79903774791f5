// Sign in with Google, Microsoft or GitHub: an RP-only app configured from environment variables.
import { randomBytes } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import { rp, requireAuth, google, microsoft, github } from '@openid-express/rp';

const presets = [
  { name: 'google', label: 'Google', env: 'GOOGLE', make: (c) => google(c) },
  { name: 'microsoft', label: 'Microsoft', env: 'MICROSOFT', make: (c, env) => microsoft({ ...c, tenant: env.MICROSOFT_TENANT || 'common' }) },
  { name: 'github', label: 'GitHub', env: 'GITHUB', make: (c, env) => github({ ...c, ...gitHubServer(env.GITHUB_BASE_URL) }) },
];

// GITHUB_BASE_URL points at a GitHub Enterprise Server; plain http is accepted on loopback only.
function gitHubServer(baseURL) {
  if (!baseURL) return {};
  return { baseURL, allowInsecureRequests: /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(\/|$)/.test(baseURL) };
}

/**
 * The `providers` option of `rp()` from GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET, MICROSOFT_... and
 * GITHUB_... (GITHUB_BASE_URL for GitHub Enterprise Server): a provider appears when both its id and secret are set.
 */
export function providersFromEnv(env) {
  const providers = {};
  for (const p of presets) {
    const clientId = env[`${p.env}_CLIENT_ID`];
    const clientSecret = env[`${p.env}_CLIENT_SECRET`];
    if (clientId && clientSecret) providers[p.name] = p.make({ clientId, clientSecret }, env);
  }
  return providers;
}

/**
 * Builds the app (an Express app; the caller listens).
 *
 * @example
 *   const app = createApp({ baseURL: 'http://localhost:3000', env: process.env });
 *   app.listen(3000);
 */
export function createApp({ baseURL, env = process.env }) {
  const providers = providersFromEnv(env);
  const app = express();
  app.disable('x-powered-by');
  if (env.TRUST_PROXY) app.set('trust proxy', env.TRUST_PROXY); // behind a TLS-terminating proxy
  app.use(
    session({
      name: 'rp-social.sid',
      secret: env.SESSION_SECRET || randomBytes(32).toString('hex'),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: baseURL.startsWith('https:') },
    }),
  );
  if (Object.keys(providers).length === 0) {
    // Nothing to sign in with yet: every page explains what to set.
    app.use((req, res) => page(res, req.path === '/' ? 200 : 404, 'Set up', `<h1>Sign in</h1>${setupHelp(baseURL)}`));
    return app;
  }
  app.use(rp({ baseURL, providers }));

  app.get('/', (req, res) => {
    const signedIn = req.oidc.isAuthenticated();
    const body = signedIn
      ? `<h1>Hello, ${esc(req.oidc.user.name || req.oidc.user.sub)}</h1>
         <p><a class="btn" href="/profile">Your profile</a></p>`
      : `<h1>Sign in</h1>${loginButtons(providers)}`;
    page(res, 200, 'Home', body);
  });

  app.get('/profile', requireAuth(), (req, res) => {
    const u = req.oidc.user;
    page(res, 200, 'Profile', `<h1>${esc(u.name || u.sub)}</h1>
      <p class="muted">${esc(u.email ?? '')} · signed in with ${esc(labelOf(u.provider))}</p>
      <pre>${esc(JSON.stringify(u.claims, null, 2))}</pre>
      <form method="post" action="/auth/logout"><button class="btn">Log out</button></form>`);
  });

  app.use((req, res) => page(res, 404, 'Not found', '<h1>Page not found</h1><p><a href="/">Home</a></p>'));
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    const status = Number(err.status ?? err.statusCode) || 500;
    if (status >= 500) console.error(err);
    const message = status >= 500 ? 'Something went wrong.' : err.message;
    page(res, status, 'Error', `<h1>Sign-in failed</h1><p>${esc(message)}</p>
      ${err.code ? `<p class="muted">Error code: <code>${esc(err.code)}</code></p>` : ''}<p><a href="/">Home</a></p>`);
  });
  return app;
}

function labelOf(name) {
  return presets.find((p) => p.name === name)?.label ?? name;
}

function loginButtons(providers) {
  return Object.keys(providers)
    .map((name) => `<p><a class="btn ${name}" href="/auth/login/${name}?returnTo=/profile">Sign in with ${esc(labelOf(name))}</a></p>`)
    .join('');
}

function setupHelp(baseURL) {
  const rows = presets
    .map((p) => `<li><b>${p.label}</b>: <code>${p.env}_CLIENT_ID</code> and <code>${p.env}_CLIENT_SECRET</code>;
      callback URL <code>${esc(baseURL)}/auth/callback/${p.name}</code></li>`)
    .join('');
  return `<p>No provider is configured yet. Set the client id and secret of at least one and restart:</p><ul>${rows}</ul>`;
}

function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.status(status).type('html').set('Cache-Control', 'no-store').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · rp-social</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.55;color:#1d2130;background:#f5f6fa;margin:0}
main{max-width:42rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #e2e5ee;border-radius:14px}
.btn{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1.1rem;border-radius:9px;border:0;background:#4f46e5;color:#fff;text-decoration:none;cursor:pointer}
.btn.google{background:#fff;color:#1f1f1f;border:1px solid #dadce0}.btn.microsoft{background:#2f2f2f}.btn.github{background:#24292f}
.muted{color:#5d6475} pre{background:#0f172a;color:#e2e8f0;padding:1rem;border-radius:10px;overflow:auto}
</style></head><body><main>${body}</main></body></html>`);
}
