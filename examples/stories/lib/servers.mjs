// The two sides of every story, on loopback: our OP (`op()` in an Express app with express-session,
// memory store, generated keys) and the client's own site (its redirect_uri and, in some stories,
// a resource server route).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { generateKeys, memoryAccounts, memoryAdapter, op, webfinger } from '@openid-express/op';

/** The person who signs in, in every story (the seed's demos use "diana"; ours is alice). */
export const ALICE = {
  id: 'alice',
  username: 'alice',
  password: 'wonderland-42',
  claims: {
    name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell', nickname: 'Ally', preferred_username: 'alice',
    email: 'alice@example.org', email_verified: true, locale: 'en-GB',
  },
};

/** A loopback HTTP server on a free port; `origin` is http://127.0.0.1:<port>. */
async function listen() {
  const server = createServer();
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

async function close(server) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The client's site: an Express app on a free port (`origin` is the RelyingParty's baseURL). The
 * story adds routes to `app` (a resource server) before the OP starts.
 */
export async function startClientSite() {
  const { server, origin } = await listen();
  const app = express();
  app.disable('x-powered-by');
  server.on('request', app);
  return { app, origin, close: () => close(server) };
}

/**
 * Our OP at http://127.0.0.1:<port>/op: `config` is the story's part of the `op()` options
 * (clients, features, scopes …); accounts (alice), a memory store and generated keys are added
 * here. Warnings op() prints at start-up are returned, not printed (the story shows them).
 */
export async function startOP(config) {
  const { server, origin } = await listen();
  const issuer = `${origin}/op`;
  const accounts = memoryAccounts([ALICE]);
  const app = express();
  app.disable('x-powered-by');
  app.use(session({ name: 'op.sid', secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false }));
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(' ').trim());
  let provider;
  try {
    provider = op({ issuer, accounts, adapter: memoryAdapter(), ...generateKeys(), ...config });
  } finally {
    console.warn = warn;
  }
  app.use('/op', provider);
  app.use(webfinger({ issuer })); // for the dynamic registration story: alice@127.0.0.1:<port> → this OP
  server.on('request', app);
  return { issuer, origin, warnings, close: () => close(server) };
}
