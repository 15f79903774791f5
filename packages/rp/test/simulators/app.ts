/**
 * An app for end-to-end tests against the simulators: express + express-session (defaults but
 * `resave`/`saveUninitialized` off) + rp() with the given providers, on loopback, plus a
 * "browser" helper that follows the provider's redirects.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import session from 'express-session';
import request from 'supertest';
import { requireAuth, rp, rpErrorHandler, type ProviderConfig, type RpOptions, type RpRouter } from '@openid-express/rp';

export interface SimApp {
  baseURL: string;
  app: Express;
  router: RpRouter;
  store: session.MemoryStore;
  agent(): request.Agent;
  /** GET /auth/login/:provider → the provider's authorization URL. */
  startLogin(agent: request.Agent, provider: string, returnTo?: string): Promise<URL>;
  /** Follows the provider's answer to `url` (no cookies) and returns where it sends the browser back. */
  authorize(url: URL): Promise<URL>;
  /** Sessions in the store that hold a login. */
  authenticatedSessions(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Starts the app; `providers` receives the app's base URL (redirect URIs derive from it).
 *
 * @example
 * ```ts
 * const app = await startSimApp((baseURL) => ({ github: github({ ... }) }));
 * ```
 */
export async function startSimApp(
  providers: (baseURL: string) => Record<string, ProviderConfig>,
  options: {
    host?: string;
    /** Listen on this port (e.g. the port of a closed instance: an app "restarted"). Default: any. */
    port?: number;
    /** Session store (share one between instances). Default: a new MemoryStore. */
    store?: session.MemoryStore;
    rp?: Partial<RpOptions>;
    beforeRp?: (app: Express) => void;
    /** The session cookie's options (default: express-session's). */
    cookie?: session.CookieOptions;
  } = {},
): Promise<SimApp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const baseURL = `http://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  const store = options.store ?? new session.MemoryStore();
  const app = express();
  options.beforeRp?.(app);
  // express-session's cookie defaults (no SameSite attribute: browsers treat it as Lax).
  app.use(session({ secret: 'sim-app-session-secret', resave: false, saveUninitialized: false, store, ...(options.cookie ? { cookie: options.cookie } : {}) }));
  let router: RpRouter;
  try {
    router = rp({ baseURL, providers: providers(baseURL), ...options.rp });
  } catch (err) {
    server.close();
    throw err;
  }
  app.use(router);
  app.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  app.get('/needs-email', requireAuth({ scope: 'email profile' }), (_req, res) => void res.json({ ok: true }));
  app.get('/id-token-claims', requireAuth(), (req, res) => void res.json(req.oidc.idTokenClaims ?? null));
  app.get('/token', requireAuth(), (req, res) => void res.json({ accessToken: req.oidc.accessToken?.value ?? null }));
  app.get('/userinfo', requireAuth(), async (req, res) => void res.json(await req.oidc.fetchUserInfo()));
  app.use(rpErrorHandler());
  server.on('request', app);
  const sim: SimApp = {
    baseURL, app, router, store,
    agent: () => request.agent(server),
    async startLogin(agent, provider, returnTo = '/me') {
      const res = await agent.get(`/auth/login/${provider}?returnTo=${encodeURIComponent(returnTo)}`);
      if (res.status !== 302) throw new Error(`login start answered ${res.status}: ${res.text}`);
      return new URL(res.headers.location);
    },
    async authorize(url) {
      const res = await fetch(url, { redirect: 'manual' });
      const location = res.headers.get('location');
      if (res.status !== 302 || !location) throw new Error(`the provider answered ${res.status}: ${await res.text()}`);
      return new URL(location, url);
    },
    async authenticatedSessions() {
      const all = await new Promise<Record<string, session.SessionData>>((resolve, reject) =>
        store.all((err, s) => (err ? reject(err) : resolve((s ?? {}) as Record<string, session.SessionData>))),
      );
      return Object.entries(all).filter(([, s]) => s?.oidc?.auth).map(([id]) => id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return sim;
}

/** A callback URL as a path + query the agent can GET. */
export const pathOf = (url: URL): string => url.pathname + url.search;
