// `node server.js`: listen on PORT (default 3000; 0 picks a free one), reachable at BASE_URL
// (default http://localhost:<port>), then build the app for that address.
import { createServer } from 'node:http';
import { createApp, providersFromEnv } from './app.js';

const server = createServer();
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { port } = server.address();
  const baseURL = process.env.BASE_URL ?? `http://localhost:${port}`;
  server.on('request', createApp({ baseURL, env: process.env }));
  const names = Object.keys(providersFromEnv(process.env));
  console.log(`rp-social listening: open ${baseURL}`);
  console.log(names.length ? `Providers: ${names.join(', ')}` : 'No provider configured yet: the home page says which variables to set.');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
