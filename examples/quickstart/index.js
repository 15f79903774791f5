// The quickstart: the Demo OP and the application, each on its own site, in one process.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createApplication } from './app.js';
import { createIdentityProvider } from './op.js';
import { demoAccounts } from './accounts.js';

export { createApplication, createIdentityProvider, demoAccounts };

/**
 * Starts the Demo OP and the application. Port 0 picks a free port. The app is addressed as
 * `localhost` and the OP as `127.0.0.1`: two sites, so browsers apply their real cookie rules.
 *
 * @example
 *   const qs = await startQuickstart({ port: 3000, opPort: 3001 });
 *   console.log(`Open ${qs.appURL}`);
 *   await qs.close();
 */
export async function startQuickstart({ port = 3000, opPort = 3001, bind = '127.0.0.1', appHost = 'localhost', opHost = '127.0.0.1', env = process.env } = {}) {
  const opServer = await listen(createServer(), opPort, bind, 'OP_PORT');
  let appServer;
  try {
    appServer = await listen(createServer(), port, bind, 'PORT');
  } catch (err) {
    await close(opServer);
    throw err;
  }
  const issuer = `http://${opHost}:${opServer.address().port}/op`;
  const appURL = `http://${appHost}:${appServer.address().port}`;
  const client = { clientId: 'quickstart-app', clientSecret: randomBytes(24).toString('base64url') };

  opServer.on('request', createIdentityProvider({
    issuer,
    accounts: demoAccounts,
    env,
    client: {
      ...client,
      redirectUris: [`${appURL}/auth/callback/demo`],
      postLogoutRedirectUris: [`${appURL}/`, `${appURL}/signed-out`],
      // Signing out at the OP (from any app) ends the app's session too: OIDC Back-Channel Logout.
      backchannelLogoutUri: `${appURL}/auth/backchannel-logout/demo`,
    },
  }));
  appServer.on('request', createApplication({ baseURL: appURL, issuer, client, accounts: demoAccounts, env }));

  return {
    appURL,
    issuer,
    accounts: demoAccounts,
    close: () => Promise.all([close(appServer), close(opServer)]).then(() => undefined),
  };
}

function listen(server, port, host, envName) {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      if (err.code === 'EADDRINUSE') {
        const e = new Error(`Port ${port} is already in use. Pick another one, e.g. ${envName}=${port + 10} npm run demo`);
        e.code = 'EADDRINUSE';
        reject(e);
      } else reject(err);
    });
    server.listen(port, host, () => resolve(server));
  });
}

function close(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
