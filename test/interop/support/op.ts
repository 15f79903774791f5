/** Our OP on a free loopback port, mounted at /op after express-session, recording authorization requests. */
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { generateKeys, memoryAccounts, op, type OpApp, type OpClient, type OpOptions } from '@openid-express/op';
import { close, listen } from '../../../packages/rp/test/support/rp-app.js';
import type { BrowserPage, FormBrowser } from '../../support/op-forms.js';
import { requireApache, startApache, type ApacheRp } from './apache.js';
import { onFreePort } from '../../support/ports.js';
import { expectAt } from './pages.js';

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

/** The client Apache is registered as at our OP, when it has one static provider. */
export const APACHE_CLIENT = { id: 'apache', secret: 'apache-client-secret-0123456789abcdef' } as const;

/**
 * Our OP with Apache registered as its confidential client (client_secret_basic, the redirect and
 * post-logout URIs of apacheConf(); `client`, given Apache's origin, adds metadata), and Apache with the OP as its static
 * provider and `directives`.
 */
export async function startApacheWithOp(o: { directives?: string[]; client?: (rpOrigin: string) => Partial<OpClient>; op?: Partial<OpOptions> } = {}): Promise<{ opServer: InteropOp; apache: ApacheRp }> {
  requireApache();
  // Apache's origin goes into the OP's client before Apache starts: a port taken meanwhile starts both again
  return onFreePort(async (port) => {
    const rpOrigin = `http://127.0.0.1:${port}`;
    const opServer = await startInteropOp(() => [{
      client_id: APACHE_CLIENT.id, client_secret: APACHE_CLIENT.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${rpOrigin}/protected/redirect_uri`],
      post_logout_redirect_uris: [`${rpOrigin}/loggedout.html`],
      ...o.client?.(rpOrigin),
    }], o.op);
    try {
      const apache = await startApache({
        port, metadataUrl: `${opServer.issuer}/.well-known/openid-configuration`,
        clientId: APACHE_CLIENT.id, clientSecret: APACHE_CLIENT.secret, directives: o.directives,
      });
      return { opServer, apache };
    } catch (err) {
      await opServer.close();
      throw err;
    }
  });
}

/** From our OP's login page `login`, as alice: the password form, then consent; ends on the RP's protected page `url`. */
export async function signInAtOp(browser: FormBrowser, login: BrowserPage, url: string): Promise<BrowserPage> {
  expectAt(login, '/op/interaction/', "our OP's login page");
  let page = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: ALICE.username, password: ALICE.password });
  expectAt(page, '/op/interaction/', 'the consent page');
  page = await browser.submit(page, { action: '/confirm' });
  expectAt(page, url, 'the protected page at Apache');
  return page;
}
