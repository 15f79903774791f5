/** Our OP on a free loopback port, mounted at /op after express-session, recording authorization requests. */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { generateKeys, memoryAccounts, op, type OpApp, type OpClient, type OpOptions } from '@openid-express/op';
import { close, listen } from '../../../packages/rp/test/support/rp-app.js';

export const ALICE = {
  id: 'alice', username: 'alice', password: 'wonderland-42',
  claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true },
};

export interface InteropOp {
  origin: string;
  issuer: string;
  /** Query parameters of every GET /op/auth, in order (what the RP really sent). */
  authRequests: Array<Record<string, unknown>>;
  /** The OP's oidc-provider instance (to mint a token directly). */
  provider: OpApp['provider'];
  close(): Promise<void>;
}

/**
 * Starts the OP; `clients` gets the issuer's origin, since redirect URIs may depend on it. `more`:
 * other op() options (e.g. `allowPrivateHosts` for back-channel logout to an RP on loopback).
 */
export async function startInteropOp(clients: (origin: string) => OpClient[], more: Partial<OpOptions> = {}): Promise<InteropOp> {
  const server = createServer();
  const origin = await listen(server);
  const issuer = `${origin}/op`;
  const authRequests: Array<Record<string, unknown>> = [];
  const app = express();
  app.use(session({ secret: 'interop-session-secret-0123456789', resave: false, saveUninitialized: false }));
  app.get('/op/auth', (req, _res, next) => { authRequests.push({ ...req.query }); next(); });
  const opApp = op({ issuer, accounts: memoryAccounts([ALICE]), clients: clients(origin), ...generateKeys(), ...more });
  app.use('/op', opApp);
  server.on('request', app);
  return {
    origin, issuer, authRequests, provider: opApp.provider,
    close: () => close(server),
  };
}
