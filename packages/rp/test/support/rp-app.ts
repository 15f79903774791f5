/**
 * A test app: express + express-session (MemoryStore) + rp() with one provider "op" served by a
 * real oidc-provider (see ./oidc-provider.ts), both on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import session from 'express-session';
import request from 'supertest';
import type { ClientMetadata } from 'oidc-provider';
import { oidc, requireAuth, rp, rpErrorHandler, type RelyingParty, type RpOptions } from '@openid-express/rp';
import { startOp, type OpBrowser, type TestOp, type TestOpOptions } from './oidc-provider.js';

export const CLIENT_ID = 'app';
export const CLIENT_SECRET = 'app-secret-that-is-long-enough-0123456789';

/** A session store that can list and clear its sessions (MemoryStore, connect-redis ...). */
export type ListableStore = session.Store & Required<Pick<session.Store, 'all' | 'clear'>>;

export interface LoginOptions {
  account?: string;
  returnTo?: string;
  deny?: boolean;
  /** The browser at the OP (keeps the OP session, e.g. for logout); default: a fresh one. */
  browser?: OpBrowser;
}

export interface TestRp {
  baseURL: string;
  op: TestOp;
  app: Express;
  server: Server;
  store: ListableStore;
  relyingParty: RelyingParty;
  agent(): request.Agent;
  /** Starts a login at the RP, walks the OP as `account`, returns the callback URL (not yet fetched). */
  startLogin(agent: request.Agent, opts?: LoginOptions): Promise<URL>;
  /** A whole login; returns the RP's answer to the callback. */
  login(agent: request.Agent, opts?: LoginOptions): Promise<request.Response>;
  /** Sessions in the store that hold a login. */
  authenticatedSessions(): Promise<string[]>;
  close(): Promise<void>;
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function startRp(opts: {
  rp?: Partial<RpOptions>;
  client?: Partial<ClientMetadata>;
  op?: Partial<TestOpOptions>;
  provider?: Partial<Parameters<typeof oidc>[0]>;
  routes?: (app: Express) => void;
  /** Session store (default: a MemoryStore). */
  store?: ListableStore;
  /** The session cookie's options (default: express-session's). */
  cookie?: session.CookieOptions;
  /** express-session's `rolling` (default false). */
  rolling?: boolean;
  /** The app's own middleware before express-session and rp() (e.g. an app-wide body parser). */
  before?: (app: Express) => void;
  /** The app's own middleware between express-session and rp() (e.g. one that writes to the session). */
  afterSession?: (app: Express) => void;
} = {}): Promise<TestRp> {
  const server = createServer();
  const baseURL = await listen(server);
  const op = await startOp({
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${baseURL}/auth/callback/op`],
      post_logout_redirect_uris: [`${baseURL}/`, `${baseURL}/bye`],
      grant_types: ['authorization_code', 'refresh_token'],
      backchannel_logout_uri: `${baseURL}/auth/backchannel-logout/op`,
      backchannel_logout_session_required: true,
      ...opts.client,
    }],
    ...opts.op,
  });
  const store = opts.store ?? new session.MemoryStore();
  const app = express();
  opts.before?.(app);
  app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false, store, name: 'sid', ...(opts.cookie ? { cookie: opts.cookie } : {}), ...(opts.rolling ? { rolling: true } : {}) }));
  opts.afterSession?.(app);
  const router = rp({
    baseURL,
    providers: {
      op: oidc({ issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'openid profile email offline_access', allowInsecureRequests: true, ...opts.provider }),
    },
    ...opts.rp,
  });
  app.use(router);
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  opts.routes?.(app);
  server.on('request', app);

  const t: TestRp = {
    baseURL, op, app, server, store,
    relyingParty: router.relyingParty,
    agent: () => request.agent(server),
    async startLogin(agent, o = {}) {
      const start = await agent.get(`/auth/login/op?returnTo=${encodeURIComponent(o.returnTo ?? '/me')}`);
      if (start.status !== 302) throw new Error(`login start answered ${start.status}: ${start.text}`);
      return (o.browser ?? op.browser()).authorize(start.headers.location, { account: o.account, deny: o.deny });
    },
    async login(agent, o = {}) {
      const callback = await t.startLogin(agent, o);
      return agent.get(callback.pathname + callback.search);
    },
    async authenticatedSessions() {
      const all = await new Promise<unknown>((resolve, reject) => store.all((err, sessions) => (err ? reject(err) : resolve(sessions ?? {}))));
      // MemoryStore answers { id: session }, connect-redis an array of sessions carrying their id
      const entries: Array<[string, session.SessionData]> = Array.isArray(all)
        ? all.map((s: session.SessionData & { id: string }) => [s.id, s])
        : Object.entries(all as Record<string, session.SessionData>);
      return entries.filter(([, s]) => s?.oidc?.auth).map(([id]) => id);
    },
    async close() {
      await close(server);
      await op.close();
    },
  };
  return t;
}

/** `GET /token`: the request's valid access token (`getValidAccessToken()`, refreshing when due), the RP's errors as rp() answers them. */
export function tokenRoute(app: Express): void {
  app.get('/token', requireAuth(), async (req, res, next) => {
    try {
      res.json({ value: (await req.oidc.getValidAccessToken()).value });
    } catch (err) {
      next(err);
    }
  });
  app.use(rpErrorHandler());
}
