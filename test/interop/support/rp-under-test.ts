/**
 * Our RP as the interop tests against other OPs run it: express + express-session (MemoryStore) +
 * `rp()` on a loopback port known before the OP starts (the OP's client registration needs the
 * redirect URIs), with
 * - `GET /me` behind `requireAuth()`: the user, a few ID token claims, the access token's type and scope;
 * - `GET /userinfo`: `req.oidc.fetchUserInfo()`;
 * - `GET /bye`: a page to come back to after logout;
 * - `toOp`: every request the RP made to the OP (`METHOD URL [grant_type]`), through `recording`,
 *   the `customFetch` each provider entry is given.
 */
import { createServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import session from 'express-session';
import type request from 'supertest';
import { oidc, readStoredLogin, requireAuth, rp, type ProviderConfig, type RelyingParty } from '@openid-express/rp';
import { close, listen } from '../../../packages/rp/test/support/rp-app.js';

type CustomFetch = NonNullable<Parameters<typeof oidc>[0]['customFetch']>;

export interface RpUnderTest {
  baseURL: string;
  server: Server;
  store: session.MemoryStore;
  /** Every request the RP made to the OP, `METHOD URL [grant_type]`, oldest first. */
  toOp: string[];
  /** The customFetch that records into `toOp`: give it to every provider entry. */
  recording: CustomFetch;
  /** Set by `mount`. */
  relyingParty: RelyingParty;
  /** Builds the app: `before` runs ahead of express-session, `after` after the routes above. */
  mount(providers: Record<string, ProviderConfig>, hooks?: { before?: (app: Express) => void; after?: (app: Express) => void }): void;
  /** Sessions in the store that hold a login, with the login as stored. */
  logins(): Promise<Array<{ id: string; auth: ReturnType<typeof readStoredLogin> }>>;
  clearStore(): Promise<void>;
  /**
   * Brings the OP's redirect back to the callback with its `state` altered (one character): the RP
   * answers 400 `invalid_state`, takes no code to the OP and writes no login.
   */
  expectTamperedStateRefused(agent: request.Agent, callback: URL): Promise<void>;
  close(): Promise<void>;
}

/** Listens on a free loopback port; the app is built by `mount` once the OP is up. */
export async function listenRp(): Promise<RpUnderTest> {
  const server = createServer();
  const baseURL = await listen(server);
  const store = new session.MemoryStore();
  const toOp: string[] = [];
  const recording: CustomFetch = (url, init) => {
    const grant = init.body instanceof URLSearchParams ? init.body.get('grant_type') : null;
    toOp.push(`${init.method ?? 'GET'} ${url}${grant ? ` ${grant}` : ''}`);
    return fetch(url, init as RequestInit);
  };
  const t: RpUnderTest = {
    baseURL, server, store, toOp, recording,
    relyingParty: undefined as unknown as RelyingParty,
    mount(providers, hooks = {}) {
      const app = express();
      hooks.before?.(app);
      app.use(session({ name: 'app.sid', secret: 'interop-rp-session-secret-0123456789', resave: false, saveUninitialized: false, store }));
      const router = rp({ baseURL, providers });
      t.relyingParty = router.relyingParty;
      app.use(router);
      app.get('/me', requireAuth(), (req, res) => {
        const claims = req.oidc.idTokenClaims!;
        res.json({
          user: req.oidc.user,
          idToken: { iss: claims.iss, aud: claims.aud, sub: claims.sub, nonce: typeof claims.nonce },
          accessToken: { tokenType: req.oidc.accessToken?.tokenType, scope: req.oidc.accessToken?.scope },
        });
      });
      app.get('/userinfo', requireAuth(), async (req, res, next) => {
        try {
          res.json(await req.oidc.fetchUserInfo());
        } catch (err) {
          next(err);
        }
      });
      app.get('/bye', (_req, res) => void res.send('signed out of the app'));
      hooks.after?.(app);
      server.on('request', app);
    },
    logins: () => new Promise((resolve, reject) => store.all((err, all) => {
      if (err) return reject(err);
      resolve(Object.entries((all ?? {}) as Record<string, session.SessionData>)
        .filter(([, s]) => s?.oidc?.auth)
        .map(([id, s]) => ({ id, auth: readStoredLogin(s.oidc!.auth!) })));
    })),
    clearStore: () => new Promise((resolve) => store.clear(() => resolve())),
    async expectTamperedStateRefused(agent, callback) {
      const state = callback.searchParams.get('state')!;
      const tampered = new URL(callback);
      tampered.searchParams.set('state', `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`);
      const calls = toOp.length;
      const res = await agent.get(tampered.pathname + tampered.search).set('accept', 'application/json');
      expect([res.status, res.body.error]).toEqual([400, 'invalid_state']);
      expect(toOp.slice(calls).filter((c) => c.includes('/token'))).toEqual([]);
      expect(await t.logins()).toEqual([]);
      expect((await agent.get('/me').set('accept', 'application/json')).status).toBe(401);
    },
    close: () => close(server),
  };
  return t;
}
