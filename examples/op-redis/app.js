// An OpenID Provider for production-like set-ups: records, login counters and sessions in Redis,
// plus WebFinger so RPs can find the issuer from "alice@your-domain".
import { randomBytes } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { op, memoryAccounts, redisAdapter, webfinger } from '@openid-express/op';

/** A stand-in for your user database: replace with your own `AccountStore`. */
export const exampleAccounts = [
  { id: 'alice', username: 'alice', password: 'wonderland', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } },
];

/**
 * The clients registered at start-up, from CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS and
 * POST_LOGOUT_REDIRECT_URIS (comma-separated). None when CLIENT_ID is unset.
 */
export function clientsFromEnv(env) {
  if (!env.CLIENT_ID) return [];
  const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);
  return [{
    client_id: env.CLIENT_ID,
    client_secret: env.CLIENT_SECRET,
    redirect_uris: list(env.REDIRECT_URIS),
    post_logout_redirect_uris: list(env.POST_LOGOUT_REDIRECT_URIS),
    grant_types: ['authorization_code', 'refresh_token'],
  }];
}

/**
 * Builds the OP (an Express app; the caller listens).
 *
 * @param {object} options
 * @param {string} options.issuer  e.g. https://id.example.com/op
 * @param {import('redis').RedisClientType} options.redis  a connected node-redis v5 client
 * @example
 *   const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 *   createIdentityProvider({ issuer: 'http://localhost:3001/op', redis }).listen(3001);
 */
export function createIdentityProvider({ issuer, redis, clients = [], accounts = exampleAccounts, env = process.env }) {
  const issuerUrl = new URL(issuer);
  const mountPath = issuerUrl.pathname.replace(/\/$/, '') || '/';
  const userAccounts = memoryAccounts(accounts);
  const app = express();
  app.disable('x-powered-by');
  if (env.TRUST_PROXY) app.set('trust proxy', 1); // behind one TLS-terminating proxy
  app.use(
    session({
      name: 'op.sid',
      store: new RedisStore({ client: redis, prefix: 'op-session:' }),
      secret: env.SESSION_SECRET || randomBytes(32).toString('hex'),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: issuerUrl.protocol === 'https:' },
    }),
  );
  // GET /.well-known/webfinger?resource=acct:alice@host&rel=http://openid.net/specs/connect/1.0/issuer
  app.use(webfinger({ issuer }));
  app.use(
    mountPath,
    op({
      issuer,
      clients,
      accounts: userAccounts,
      adapter: redisAdapter(redis, { prefix: 'oidc:' }),
      // In production give stable keys (every instance the same): OP_JWKS='{"keys":[...]}', OP_COOKIE_KEYS=k1,k2
      ...(env.OP_JWKS ? { jwks: JSON.parse(env.OP_JWKS) } : {}),
      ...(env.OP_COOKIE_KEYS ? { cookieKeys: env.OP_COOKIE_KEYS.split(',') } : {}),
      trustProxy: Boolean(env.TRUST_PROXY),
      homeUri: '/', // the page below: where "Signed out" and the error pages lead when no app is known
    }),
  );
  app.get('/', (req, res) => {
    res.type('html').send(`<!doctype html><html lang="en"><meta charset="utf-8"><title>OP with Redis</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1.25rem;line-height:1.55;color:#1d2130">
<h1>OpenID Provider</h1>
<p>Issuer <code>${escapeHtml(issuer)}</code>, records in Redis.</p>
<ul><li><a href="${escapeHtml(mountPath)}/.well-known/openid-configuration">Discovery document</a></li>
<li><a href="/.well-known/webfinger?resource=${encodeURIComponent(`acct:alice@${issuerUrl.host}`)}&amp;rel=${encodeURIComponent('http://openid.net/specs/connect/1.0/issuer')}">WebFinger for alice</a></li></ul>
</body></html>`);
  });
  return app;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
