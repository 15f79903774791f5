// `node instance.js op|rp`: one OP or RP instance, configured from the environment. Start as many
// as you like behind a load balancer (proxy.js here); main.js starts 2 + 2 for you.
//
// Both:  PORT (default 0: any free port), HOST (default 127.0.0.1), REDIS_URL, SESSION_SECRET (or
//        several, comma-separated, newest first, while it is being changed: the first signs, all verify)
// op:    ISSUER (the load balancer's URL + /op), CLIENTS (JSON array of client metadata),
//        OP_JWKS (JSON {"keys":[...]}), OP_COOKIE_KEYS (JSON array), ACCESS_TOKEN_TTL (seconds),
//        ALLOW_PRIVATE_HOSTS (comma-separated, default "127.0.0.1,localhost"), HOME_URI (where the OP's
//        "Signed out" and error pages lead when no application is known), UPSTREAM (optional, JSON
//        {"name","issuer","clientId","clientSecret"}: another OP offered on the login page)
// rp:    BASE_URL (the load balancer's URL), ISSUER, CLIENT_ID, CLIENT_SECRET,
//        COORDINATION=none (leaves out redisCoordination, to measure its cost; never run several instances so)
//
// Prints one line "<role> listening on http://HOST:PORT (pid N)" when it serves; on SIGTERM/SIGINT it
// answers what was sent to it, then exits (within 2.5 s).
import { createServer } from 'node:http';
import { Server } from 'node:net';
import { createClient } from 'redis';

const role = process.argv[2];
if (role !== 'op' && role !== 'rp') {
  console.error('usage: node instance.js op|rp   (configuration in the environment, see the top of this file)');
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${role}: ${name} is required (see examples/cluster/instance.js)`);
    process.exit(2);
  }
  return value;
}

function json(name) {
  try {
    return JSON.parse(required(name));
  } catch (err) {
    console.error(`${role}: ${name} is not valid JSON: ${err.message}`);
    process.exit(2);
  }
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = createClient({
  url: redisUrl,
  // a command waits at most 2 s: a stalled Redis becomes a 503, never a hung request
  commandOptions: { timeout: 2000 },
  socket: { connectTimeout: 2000, reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000) },
});
// Without an 'error' listener node-redis crashes the process on the first network blip.
let lastRedisError = '';
redis.on('error', (err) => {
  if (err.message !== lastRedisError) console.error(`${role} ${process.pid}: Redis: ${err.message}`);
  lastRedisError = err.message;
});
redis.on('ready', () => {
  if (lastRedisError) console.error(`${role} ${process.pid}: Redis is back`);
  lastRedisError = '';
});

// the URL as logs may show it: without its password
const redisWhere = (() => {
  try {
    const url = new URL(redisUrl);
    if (url.password) url.password = '***';
    return url.href;
  } catch {
    return '(REDIS_URL is not a URL)';
  }
})();
const startup = setTimeout(() => {
  console.error(`${role}: cannot use Redis at ${redisWhere} within 15 s${lastRedisError ? ` (${lastRedisError})` : ''}: start redis-server, or set REDIS_URL `
    + '(with the password, and for TLS rediss:// with NODE_EXTRA_CA_CERTS naming a private CA)');
  process.exit(1);
}, 15_000);
await redis.connect();
clearTimeout(startup);

const sessionSecret = required('SESSION_SECRET').split(',');
let app;
if (role === 'op') {
  const { createOpInstance } = await import('./op-instance.js');
  app = createOpInstance({
    issuer: required('ISSUER'),
    redis,
    clients: json('CLIENTS'),
    jwks: json('OP_JWKS'),
    cookieKeys: json('OP_COOKIE_KEYS'),
    sessionSecret,
    accessTokenTtl: process.env.ACCESS_TOKEN_TTL ? Number(process.env.ACCESS_TOKEN_TTL) : undefined,
    allowPrivateHosts: (process.env.ALLOW_PRIVATE_HOSTS ?? '127.0.0.1,localhost').split(',').map((s) => s.trim()).filter(Boolean),
    homeUri: process.env.HOME_URI || undefined,
    upstream: process.env.UPSTREAM ? json('UPSTREAM') : undefined,
  });
} else {
  const { createRpInstance } = await import('./rp-instance.js');
  app = createRpInstance({
    baseURL: required('BASE_URL'),
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    clientSecret: required('CLIENT_SECRET'),
    redis,
    sessionSecret,
    coordinate: process.env.COORDINATION !== 'none',
  });
}

const host = process.env.HOST ?? '127.0.0.1';
const server = createServer(app);
server.keepAliveTimeout = 10_000; // longer than the proxy's idle sockets live
server.on('error', (err) => {
  console.error(`${role}: ${err.message}`);
  process.exit(1);
});
server.listen(Number(process.env.PORT ?? 0), host, () => {
  console.log(`${role} listening on http://${host}:${server.address().port} (pid ${process.pid})`);
});

// A graceful stop (a rolling restart) loses no request. The server stops taking connections at once
// (the load balancer's next attempt goes to another instance); every request already sent is answered,
// and after a stop each answer says `Connection: close`. A kept-alive connection is closed only once it
// has been idle for a moment: closing one the instant it is idle (as `server.close()` does) races a
// request the load balancer is sending on it — a reset, which it cannot safely retry for a POST.
// Then Redis, then exit.
const IDLE_MS = 500;
const lastActive = new Map(); // connection → when it last answered; 0 while a request is in flight
let stopping = false;
server.on('connection', (socket) => {
  lastActive.set(socket, Date.now());
  socket.once('close', () => lastActive.delete(socket));
});
server.prependListener('request', (req, res) => {
  lastActive.set(req.socket, 0);
  res.once('finish', () => lastActive.has(req.socket) && lastActive.set(req.socket, Date.now()));
  if (stopping) res.setHeader('connection', 'close');
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    stopping = true;
    setTimeout(() => process.exit(0), 2500).unref(); // a request or Redis that never ends
    // net.Server's close: stops listening, and leaves the connections to us (http's would close the idle ones now)
    Server.prototype.close.call(server, () => redis.close().catch(() => {}).finally(() => process.exit(0)));
    setInterval(() => {
      for (const [socket, at] of lastActive) if (at && Date.now() - at >= IDLE_MS) socket.destroy();
    }, 100).unref();
  });
}
