import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { authorizationServerMetadata, memoryAccounts, op, StoreUnavailableError, type AccountStore, type MemoryAccount, type OpApp, type OpOptions } from '@openid-express/op';

/** The accounts every OP test signs in with. */
export const ALICE = { id: 'alice', username: 'alice', password: 'wonderland-42',
  claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true, phone_number: '+44 20 7946 0000' } };
export const BOB = { id: 'bob', username: 'bob', password: 'builder-7', claims: { name: 'Bob' } };

export const accounts = memoryAccounts([ALICE, BOB]);

/** `memoryAccounts(list)` whose password check fails with `StoreUnavailableError` while `down()` (the accounts' database unavailable). */
export function accountsWithOutage(list: MemoryAccount[], down: () => boolean): AccountStore {
  const base = memoryAccounts(list);
  return {
    findByLogin: (login) => base.findByLogin(login),
    findById: (id) => base.findById(id),
    claims: (id, scope) => base.claims(id, scope),
    verifyPassword: async (login, pass) => {
      if (down()) throw new StoreUnavailableError('the accounts database did not answer');
      return base.verifyPassword(login, pass);
    },
  };
}

export interface RunningOp {
  /** http://127.0.0.1:<port> */
  origin: string;
  issuer: string;
  app: express.Express;
  op: OpApp;
  close(): Promise<void>;
}

/** A loopback HTTP server on a free port, not yet serving anything. */
export async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** `http://127.0.0.1:<port>` of a listening server. */
export const originOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/**
 * Starts an app with express-session and `op()` mounted at `/op` on a free loopback port.
 * `options` is called with the issuer once the port is known.
 */
export async function startOp(
  options: (issuer: string, origin: string) => Omit<OpOptions, 'issuer'> & { issuer?: string },
  setup: {
    beforeOp?: (app: express.Express) => void; session?: boolean; sessionName?: string; mountPath?: string;
    /** express-session's store (default: its own MemoryStore). */
    sessionStore?: session.Store;
    /** A server already listening (from `listen()`), when its origin had to be known earlier. */
    server?: Server;
  } = {},
): Promise<RunningOp> {
  const server = setup.server ?? (await listen());
  const origin = originOf(server);
  const issuer = `${origin}/op`;
  const app = express();
  if (setup.session !== false) {
    app.use(session({ name: setup.sessionName, secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: setup.sessionStore }));
  }
  setup.beforeOp?.(app);
  const opApp = op({ issuer, ...options(issuer, origin) });
  app.use(setup.mountPath ?? '/op', opApp);
  app.use(authorizationServerMetadata(opApp));
  server.on('request', app);
  return {
    origin, issuer, app, op: opApp,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
