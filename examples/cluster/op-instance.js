// One instance of the OpenID Provider. Every instance is built the same way and shares, through
// Redis, everything a login needs: the browser sessions (connect-redis), oidc-provider's records
// and the login counters (redisAdapter), and — from the environment — the same signing keys and
// cookie keys. So any instance can serve any request of any browser: no sticky sessions.
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { op, memoryAccounts, password, redisAdapter, upstream as upstreamOp, webfinger } from '@openid-express/op';
import { oidc } from '@openid-express/rp';

/** Stand-ins for your user database. */
export const demoAccounts = [
  { id: 'alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } },
  { id: 'bob', username: 'bob', password: 'builder', claims: { name: 'Bob Builder', email: 'bob@example.org', email_verified: true } },
  { id: 'carol', username: 'carol', password: 'christmas', claims: { name: 'Carol Danvers', email: 'carol@example.org', email_verified: true } },
];

/**
 * Builds one OP instance (an Express app; the caller listens).
 *
 * @param {object} o
 * @param {string} o.issuer  the public issuer, i.e. the load balancer's URL + mount path (e.g. http://127.0.0.1:8080/op)
 * @param {import('redis').RedisClientType} o.redis  a node-redis v5 client (connected, with an 'error' listener)
 * @param {object[]} o.clients  oidc-provider client metadata
 * @param {{ keys: object[] }} o.jwks  private signing keys: the same on every instance
 * @param {string[]} o.cookieKeys  cookie signing keys: the same on every instance
 * @param {string | string[]} o.sessionSecret  express-session secret: the same on every instance
 * @param {number} [o.accessTokenTtl]  seconds
 * @param {string[]} [o.allowPrivateHosts]  hosts on a private network that may receive back-channel logout tokens
 * @param {string} [o.homeUri]  where the OP's "Signed out" and error pages lead when no application is known
 * @param {{ name: string, issuer: string, clientId: string, clientSecret: string }} [o.upstream]  another OP
 *   to offer next to the password (`upstream()`); its users sign in as the account with their verified email
 * @example
 *   createOpInstance({ issuer, redis, clients, jwks, cookieKeys, sessionSecret }).listen(4001);
 */
export function createOpInstance({
  issuer, redis, clients, jwks, cookieKeys, sessionSecret, accessTokenTtl, allowPrivateHosts = ['127.0.0.1', 'localhost'], accounts = demoAccounts, homeUri, upstream,
}) {
  const issuerUrl = new URL(issuer);
  const mountPath = issuerUrl.pathname.replace(/\/$/, '') || '/';
  const userAccounts = memoryAccounts(accounts);
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1); // one proxy in front: req.ip is the client's address from X-Forwarded-For

  app.get('/health', (req, res) => res.json({ pid: process.pid, cpu: process.cpuUsage() }));
  app.use(webfinger({ issuer }));
  app.use(
    mountPath,
    op({
      issuer,
      clients,
      accounts: userAccounts,
      // op() runs the session only on its browser routes (login, consent, logout); a store that does
      // not answer becomes a 503 `store_unavailable` with Retry-After.
      session: session({
        name: 'op.sid',
        store: new RedisStore({ client: redis, prefix: 'op-session:' }),
        secret: sessionSecret,
        resave: false,
        saveUninitialized: false,
        cookie: { httpOnly: true, sameSite: 'lax', secure: issuerUrl.protocol === 'https:' },
      }),
      adapter: redisAdapter(redis, { prefix: 'oidc:', timeout: 2000 }),
      jwks,
      cookieKeys,
      trustProxy: true,
      allowPrivateHosts,
      homeUri,
      ...(upstream ? { authenticators: [password(), upstreamOp({
        name: upstream.name,
        // http only for one on this machine (a test's, a local demo's)
        provider: oidc({ issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret,
          allowInsecureRequests: ['127.0.0.1', 'localhost'].includes(new URL(upstream.issuer).hostname) }),
        account: (user) => (user.emailVerified ? accounts.find((a) => a.claims.email === user.email)?.id : undefined),
      })] } : {}),
      ...(accessTokenTtl ? { ttl: { AccessToken: accessTokenTtl } } : {}),
    }),
  );
  return app;
}
