// `node server.js`: connect to REDIS_URL, listen on PORT (default 3001), issuer ISSUER
// (default http://localhost:<port>/op). Clients from CLIENT_ID / CLIENT_SECRET / REDIRECT_URIS.
import { createServer } from 'node:http';
import { createIdentityProvider, clientsFromEnv } from './app.js';
import { connectRedis } from './redis.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis;
try {
  redis = await connectRedis(redisUrl);
} catch (err) {
  console.error(`${err.message}. Start redis-server or set REDIS_URL.`);
  process.exit(1);
}

const server = createServer();
server.listen(Number(process.env.PORT ?? 3001), process.env.HOST ?? '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = process.env.ISSUER ?? `http://localhost:${port}/op`;
  const clients = clientsFromEnv(process.env);
  server.on('request', createIdentityProvider({ issuer, redis, clients, env: process.env }));
  console.log(`OP listening on http://localhost:${port}/ (issuer ${issuer}, Redis ${redisUrl})`);
  if (!clients.length) console.log('No client registered: set CLIENT_ID, CLIENT_SECRET and REDIRECT_URIS.');
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.closeAllConnections();
    server.close();
    await redis.quit().catch(() => {});
    process.exit(0);
  });
}
