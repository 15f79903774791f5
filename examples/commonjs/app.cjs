// A CommonJS app: require() of the ESM packages works on Node >= 20.19 (require(esm)).
// One Express app is both an OpenID Provider (under /op) and an application that signs in with it.
'use strict';
const { createServer } = require('node:http');
const { randomBytes } = require('node:crypto');
const express = require('express');
const session = require('express-session');
const { rp, requireAuth, oidc } = require('@openid-express/rp');
const { op, memoryAccounts, generateKeys } = require('@openid-express/op');

const accounts = [{ id: 'carol', username: 'carol', password: 'commonjs', claims: { name: 'Carol CommonJS', email: 'carol@example.org' } }];

/**
 * Builds the app for the origin it is reached at (the OP's issuer is `${baseURL}/op`).
 *
 * @example
 *   const app = createApp({ baseURL: 'http://localhost:3000' });
 *   app.listen(3000);
 */
function createApp({ baseURL, env = process.env }) {
  const issuer = `${baseURL}/op`;
  const client = { client_id: 'commonjs-app', client_secret: randomBytes(24).toString('base64url') };
  const secure = baseURL.startsWith('https:');
  const app = express();
  app.disable('x-powered-by');

  // The OP, with its own session cookie scoped to /op.
  app.use('/op', session({ name: 'op.sid', secret: env.SESSION_SECRET || randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { path: '/op', httpOnly: true, sameSite: 'lax', secure } }));
  app.use('/op', op({
    issuer,
    clients: [{ ...client, redirect_uris: [`${baseURL}/auth/callback/local`], post_logout_redirect_uris: [`${baseURL}/`], grant_types: ['authorization_code', 'refresh_token'] }],
    accounts: memoryAccounts(accounts),
    ...generateKeys(), // throwaway keys: fine for an example, not for production
  }));

  // The application.
  app.use(session({ name: 'app.sid', secret: env.SESSION_SECRET || randomBytes(32).toString('hex'), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax', secure } }));
  app.use(rp({
    baseURL,
    providers: {
      local: oidc({ issuer, clientId: client.client_id, clientSecret: client.client_secret, scope: 'openid profile email', label: 'Local OP', allowInsecureRequests: issuer.startsWith('http:') }),
    },
  }));
  app.get('/', (req, res) => {
    const who = req.oidc.isAuthenticated() ? `Signed in as ${escapeHtml(req.oidc.user.name || req.oidc.user.sub)}. <a href="/me">/me</a>` : '<a href="/auth/login/local?returnTo=/me">Sign in</a> (carol / commonjs)';
    res.type('html').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>CommonJS example</title><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto"><h1>CommonJS example</h1><p>${who}</p></body></html>`);
  });
  app.get('/me', requireAuth(), (req, res) => res.json(req.oidc.user));
  return app;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

module.exports = { createApp };

// `node app.cjs`: listen on PORT (default 3000; 0 picks a free port), then build the app for that address.
if (require.main === module) {
  const server = createServer();
  server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
    const baseURL = process.env.BASE_URL ?? `http://localhost:${server.address().port}`;
    server.on('request', createApp({ baseURL }));
    console.log(`CommonJS example listening: open ${baseURL}`);
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
}
