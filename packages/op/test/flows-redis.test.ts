import { createClient } from 'redis';
import { redisAdapter } from '@openid-express/op';
import { startRedisServer } from '../../../test/support/redis-server.js';
import { happyFlows } from './support/flows-happy.js';
import { refusedFlows } from './support/flows-refused.js';
import { extensionFlows } from './support/flows-extensions.js';

// every suite gets its own real redis-server, so nothing leaks between them
const redis = async () => {
  const server = await startRedisServer();
  const connection = await createClient({ url: server.url }).connect();
  return {
    store: redisAdapter(connection),
    close: async () => {
      await connection.close();
      await server.stop();
    },
  };
};

happyFlows('redis', redis);
refusedFlows('redis', redis);
extensionFlows('redis', redis);
