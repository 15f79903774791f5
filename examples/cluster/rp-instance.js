// One instance of the application (the Relying Party). What makes several instances one app:
// - the session store is Redis (connect-redis), so a login started on one instance finishes on another;
// - `coordination: redisCoordination(redis)`: one refresh grant per refresh token across all instances,
//   and the back-channel-logout index and logout-token `jti` check are atomic in Redis;
// - `baseURL` is the load balancer's URL, the same on every instance.
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { rp, requireAuth, oidc, redisCoordination, rpErrorHandler } from '@openid-express/rp';

/**
 * Builds one RP instance (an Express app; the caller listens).
 *
 * @param {object} o
 * @param {string} o.baseURL  the load balancer's URL, what browsers see (e.g. http://localhost:8081)
 * @param {string} o.issuer  the OP's issuer (through its load balancer)
 * @param {string} o.clientId
 * @param {string} o.clientSecret
 * @param {import('redis').RedisClientType} o.redis  a node-redis v5 client (connected, with an 'error' listener)
 * @param {string | string[]} o.sessionSecret  the same on every instance
 * @param {boolean} [o.coordinate]  false leaves out `coordination` (what one instance gets): only to measure its cost
 * @example
 *   createRpInstance({ baseURL, issuer, clientId, clientSecret, redis, sessionSecret }).listen(4101);
 */
export function createRpInstance({ baseURL, issuer, clientId, clientSecret, redis, sessionSecret, coordinate = true }) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1);

  app.get('/health', (req, res) => res.json({ pid: process.pid, cpu: process.cpuUsage() }));
  app.use(
    rp({
      baseURL,
      // rp() runs express-session itself, so a store failure becomes 503 `store_unavailable` (Retry-After).
      session: session({
        name: 'rp.sid',
        store: new RedisStore({ client: redis, prefix: 'rp-session:' }),
        secret: sessionSecret,
        resave: false,
        saveUninitialized: false,
        cookie: { httpOnly: true, sameSite: 'lax', secure: baseURL.startsWith('https:') },
      }),
      coordination: coordinate ? redisCoordination(redis) : undefined, // undefined only to measure what it costs (bench/cluster.mjs)
      providers: {
        op: oidc({
          issuer,
          clientId,
          clientSecret,
          scope: 'openid profile email offline_access',
          // offline_access (a refresh token) is only granted with prompt=consent (OIDC Core 11)
          authorizationParams: { prompt: 'consent' },
          allowInsecureRequests: new URL(issuer).protocol === 'http:', // the demo runs on plain http on one machine
        }),
      },
    }),
  );

  app.get('/', (req, res) => {
    const user = req.oidc.isAuthenticated() ? req.oidc.user : undefined;
    if (user) res.set('cache-control', 'no-store'); // it shows the user: Back after a sign-out must not show it again
    res.type('html').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Cluster demo</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1.25rem;line-height:1.55;color:#1d2130">
<h1>Cluster demo</h1>
<p>This page was served by the instance with process id <code>${process.pid}</code>. Reload: the next one answers.</p>
${user
    ? `<p>Signed in as <strong>${escapeHtml(user.name ?? user.sub)}</strong>.</p>
<ul><li><a href="/me">/me</a> (your user, JSON)</li><li><a href="/api/token">/api/token</a> (refreshes the access token when it expired)</li>
<li><a href="/auth/logout?returnTo=/">Sign out</a></li></ul>`
    : '<p><a href="/auth/login/op?returnTo=/">Sign in</a></p>'}
</body></html>`);
  });
  app.get('/me', requireAuth(), (req, res) => res.json({ ...req.oidc.user, servedBy: process.pid }));
  app.get('/api/token', requireAuth(), async (req, res, next) => {
    try {
      const token = await req.oidc.getValidAccessToken();
      res.json({ expiresAt: token.expiresAt, servedBy: process.pid }); // never the token itself
    } catch (err) {
      next(err);
    }
  });
  // The RP's errors thrown in your own routes (getValidAccessToken() while Redis or the OP is down):
  // their status, stable code and Retry-After; JSON for APIs, a page for browsers.
  app.use(rpErrorHandler());
  return app;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
