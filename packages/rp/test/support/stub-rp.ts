/**
 * An app with `rp()` over the misbehaving stub OP (provider "stub", client "app"), for the ID token
 * tests: its server and session store, a callback driver, and what the store holds.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import session from 'express-session';
import type request from 'supertest';
import { oidc, requireAuth, rp, type OidcProviderOptions, type RpOptions } from '@openid-express/rp';
import { close, listen } from './rp-app.js';
import { startStubOp, type StubOp } from './op-stub.js';

export interface StubRp {
  stub: StubOp;
  server: Server;
  store: session.MemoryStore;
  /** Starts a login at the RP and comes back to its callback as the stub OP would. */
  callback(agent: request.Agent): Promise<request.Response>;
  /** The sessions in the store that hold a login. */
  loggedInSessions(): Promise<session.SessionData[]>;
  clearStore(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the stub OP and an app (`GET /me` behind `requireAuth()`) whose provider "stub" uses it. */
export async function startStubRp(provider: Partial<OidcProviderOptions>, options: Partial<RpOptions> = {}): Promise<StubRp> {
  const stub = await startStubOp('app');
  const server = createServer();
  const baseURL = await listen(server);
  const store = new session.MemoryStore();
  const app = express();
  app.use(session({ secret: 's', resave: false, saveUninitialized: false, store }));
  app.use(rp({ baseURL, ...options, providers: { stub: oidc({ issuer: stub.issuer, clientId: 'app', allowInsecureRequests: true, ...provider }) } }));
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  server.on('request', app);
  return {
    stub, server, store,
    async callback(agent) {
      const login = await agent.get('/auth/login/stub');
      const url = new URL(login.headers.location);
      await fetch(`${stub.issuer}/nonce`, { method: 'POST', body: url.searchParams.get('nonce')!, headers: { 'content-type': 'text/plain' } });
      return agent.get(`/auth/callback/stub?code=stub-code&state=${url.searchParams.get('state')}`);
    },
    async loggedInSessions() {
      const all = await new Promise<Record<string, session.SessionData>>((resolve) => store.all((_e, s) => resolve((s ?? {}) as never)));
      return Object.values(all).filter((s) => s.oidc?.auth);
    },
    clearStore: () => new Promise<void>((resolve) => store.clear(() => resolve())),
    async close() {
      await close(server);
      await stub.close();
    },
  };
}
