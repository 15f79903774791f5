// Connects node-redis v5 to REDIS_URL, failing fast with a clear message when nobody answers.
import { createClient } from 'redis';

/**
 * A connected node-redis client. At start-up it gives up after a few tries instead of retrying
 * forever; once connected, it reconnects with a capped back-off.
 *
 * @example
 *   const redis = await connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 */
export async function connectRedis(url) {
  let connected = false;
  const client = createClient({
    url,
    socket: {
      reconnectStrategy: (retries) => {
        if (!connected && retries >= 3) return new Error(`Cannot reach Redis at ${url}`);
        return Math.min(100 * 2 ** retries, 3000);
      },
    },
  });
  client.on('error', (err) => {
    if (connected) console.error(`Redis (${url}): ${err.message}`);
  });
  await client.connect();
  connected = true;
  return client;
}
