// The identity provider: an OpenID Provider built with @openid-express/op, memory store.
import { randomBytes } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import { op, memoryAccounts, generateKeys } from '@openid-express/op';

/**
 * Builds the Demo OP (an Express app serving the provider under the issuer's path, e.g. `/op`).
 *
 * @param {object} options
 * @param {string} options.issuer  e.g. http://127.0.0.1:3001/op (its path is where `op()` is mounted)
 * @param {{clientId: string, clientSecret: string, redirectUris: string[], postLogoutRedirectUris: string[], backchannelLogoutUri?: string}} options.client
 * @param {Array} options.accounts  demo accounts for `memoryAccounts()`
 * @example
 *   const idp = createIdentityProvider({ issuer: 'http://127.0.0.1:3001/op', client, accounts });
 *   idp.listen(3001, '127.0.0.1');
 */
export function createIdentityProvider({ issuer, client, accounts, env = process.env }) {
  const mountPath = new URL(issuer).pathname.replace(/\/$/, '') || '/';
  const app = express();
  app.disable('x-powered-by');
  app.use(
    session({
      name: 'demo-op.sid',
      secret: env.OP_SESSION_SECRET || randomBytes(32).toString('hex'),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: issuer.startsWith('https:') },
    }),
  );
  app.use(
    mountPath,
    op({
      issuer,
      clients: [
        {
          client_id: client.clientId,
          client_secret: client.clientSecret,
          client_name: 'Quickstart app',
          redirect_uris: client.redirectUris,
          post_logout_redirect_uris: client.postLogoutRedirectUris,
          backchannel_logout_uri: client.backchannelLogoutUri,
          backchannel_logout_session_required: true,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
        },
      ],
      accounts: memoryAccounts(accounts),
      homeUri: '/', // the Demo OP's page below: where "Signed out" and the error pages lead when no app is known
      // Fresh signing and cookie keys at every start: the demo's tokens and sessions end with it.
      ...generateKeys(),
      // the demo app lives on loopback, which the OP's outgoing calls (back-channel logout) refuse by default (SSRF guard)
      ...(client.backchannelLogoutUri ? { allowPrivateHosts: [new URL(client.backchannelLogoutUri).hostname] } : {}),
    }),
  );
  app.get('/', (req, res) => {
    res.type('html').send(`<!doctype html><meta charset="utf-8"><title>Demo OP</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1.25rem;line-height:1.55;color:#1d2130">
<h1>Demo OP</h1><p>This is the quickstart's OpenID Provider. Applications find it through its
<a href="${mountPath}/.well-known/openid-configuration">discovery document</a>.</p>
<p><a href="${mountPath}/session/end">Sign out of the Demo OP</a> (the app is told too: back-channel logout).</p></body>`);
  });
  return app;
}
