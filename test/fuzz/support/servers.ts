/**
 * The fuzz target: one OP (`op()` at /op, registration and client credentials on, WebFinger and
 * RFC 8414 metadata at the root) and one RP app (`rp()` + a `requireAuth()` route) on loopback,
 * and a victim signed in at the RP through the OP's real login and consent screens.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import {
  authorizationServerMetadata, generateKeys, memoryAccounts, op, webfinger,
} from '@openid-express/op';
import { oidc, requireAuth, rp } from '@openid-express/rp';
import { FormBrowser, parseForms } from '../../support/op-forms.js';

export const VICTIM = { id: 'alice', username: 'alice', password: 'wonderland-42', claims: { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true } };
export const OTHER = { id: 'bob', username: 'bob', password: 'builder-7-builder', claims: { name: 'Bob' } };

export const RP_CLIENT = { id: 'fuzz-rp', secret: 'fuzz-rp-client-secret-4b1d9c0e7f' };
export const SERVICE_CLIENT = { id: 'fuzz-service', secret: 'fuzz-service-client-secret-93ad1e' };
export const PUBLIC_CLIENT = 'fuzz-public';
const OP_SESSION_SECRET = 'fuzz-op-session-secret-5e0b8a27c1';
const RP_SESSION_SECRET = 'fuzz-rp-session-secret-d4c2f90a18';

export interface Target { origin: string; port: number; server: Server }

export interface Interaction {
  uid: string;
  /** Cookies of the browser that started it (the _interaction cookies), as a Cookie header value. */
  cookie: string;
  /** The login form's CSRF token, when the page was read. */
  csrf?: string;
}

export interface FuzzWorld {
  op: Target & { issuer: string };
  rp: Target;
  rpStore: session.MemoryStore;
  victim: {
    /** `sid=…` for the RP. */
    rpCookie: string;
    /** The victim browser's cookies at the OP (its login session there). */
    opCookie: string;
    sessionId: string;
    /** The victim's user, as GET /me answers it. */
    me: unknown;
  };
  interactions: Interaction[];
  /** A client-credentials access token (a valid bearer that is not the victim's). */
  serviceToken: string;
  /** Every secret that must never appear in an answer, by name. */
  secrets: Record<string, string>;
  close(): Promise<void>;
}

async function listen(): Promise<Target> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, port, server };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Whether the victim's browser is still signed in at the OP: a `prompt=none` authorization request
 * with its OP cookies comes back to the RP with a code (not `login_required`). Touches no RP session.
 */
export async function victimSignedInAtOp(w: Pick<FuzzWorld, 'op' | 'rp' | 'victim'>): Promise<string> {
  const url = new URL(`${w.op.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: RP_CLIENT.id, redirect_uri: `${w.rp.origin}/auth/callback/op`, response_type: 'code', scope: 'openid',
    prompt: 'none', state: 'probe', nonce: 'probe', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString();
  let next = url.href;
  for (let hops = 0; hops < 5; hops += 1) {
    const res = await fetch(next, { headers: { cookie: w.victim.opCookie }, redirect: 'manual' });
    const location = res.headers.get('location');
    if (!location) return `ended at ${next} with ${res.status}`;
    const target = new URL(location, next);
    if (target.pathname === '/auth/callback/op') return target.searchParams.has('code') ? 'signed in' : `callback without code: ${target.search}`;
    next = target.href;
  }
  return 'too many redirects';
}

export const readSession = (store: session.MemoryStore, id: string) => new Promise<session.SessionData | null | undefined>(
  (resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))),
);

/** Signs the victim in at the RP (login → consent → callback → /me); returns its browser. */
async function signInVictim(rpOrigin: string): Promise<FormBrowser> {
  const browser = new FormBrowser();
  let page = await browser.open(`${rpOrigin}/auth/login/op?returnTo=/me`);
  page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: VICTIM.username, password: VICTIM.password });
  if (page.url.includes('/interaction/')) page = await browser.submit(page, { action: '/confirm' });
  if (page.url !== `${rpOrigin}/me` || page.status !== 200) throw new Error(`victim login ended at ${page.url} (${page.status}): ${page.html.slice(0, 300)}`);
  return browser;
}

/** Authorization requests started by fresh browsers, left at the login screen (real uids for the fuzzer). */
async function openInteractions(issuer: string, redirectUri: string, count: number): Promise<Interaction[]> {
  const out: Interaction[] = [];
  for (let i = 0; i < count; i += 1) {
    const browser = new FormBrowser();
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: RP_CLIENT.id, redirect_uri: redirectUri, response_type: 'code', scope: 'openid email',
      state: `s${i}`, nonce: `n${i}`, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    }).toString();
    const page = await browser.open(url.href);
    const uid = /\/interaction\/([^/?#]+)/.exec(page.url)?.[1];
    if (!uid) throw new Error(`no interaction from ${url.href}: ${page.status} ${page.url}`);
    const csrf = parseForms(page.html, page.url).find((f) => 'csrf' in f.fields)?.fields.csrf;
    out.push({ uid, cookie: browser.jar.header(page.url), csrf });
  }
  return out;
}

export async function startWorld(): Promise<FuzzWorld> {
  const opT = await listen();
  const rpT = await listen();
  const issuer = `${opT.origin}/op`;
  const keys = generateKeys();
  const accounts = memoryAccounts([VICTIM, OTHER]);

  const opApp = express();
  opApp.use(session({ name: 'op.sid', secret: OP_SESSION_SECRET, resave: false, saveUninitialized: false }));
  const provider = op({
    issuer, accounts, ...keys, scopes: ['api:read'],
    features: { registration: true, clientCredentials: true },
    clients: [
      {
        client_id: RP_CLIENT.id, client_secret: RP_CLIENT.secret,
        redirect_uris: [`${rpT.origin}/auth/callback/op`],
        post_logout_redirect_uris: [`${rpT.origin}/`],
        grant_types: ['authorization_code', 'refresh_token'],
        backchannel_logout_uri: `${rpT.origin}/auth/backchannel-logout/op`,
      },
      { client_id: SERVICE_CLIENT.id, client_secret: SERVICE_CLIENT.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
      { client_id: PUBLIC_CLIENT, token_endpoint_auth_method: 'none', redirect_uris: [`${rpT.origin}/public/callback`] },
    ],
    // the RP's back-channel logout endpoint is on loopback
    allowPrivateHosts: ['127.0.0.1'],
  });
  opApp.use('/op', provider);
  opApp.use(webfinger({ issuer, accounts }));
  opApp.use(authorizationServerMetadata(provider));
  opT.server.on('request', opApp);

  const rpStore = new session.MemoryStore();
  const rpApp = express();
  rpApp.use(session({ name: 'sid', secret: RP_SESSION_SECRET, resave: false, saveUninitialized: false, store: rpStore }));
  rpApp.use(rp({
    baseURL: rpT.origin,
    providers: {
      op: oidc({
        issuer, clientId: RP_CLIENT.id, clientSecret: RP_CLIENT.secret, allowInsecureRequests: true,
        scope: 'openid profile email offline_access', authorizationParams: { prompt: 'consent' },
      }),
    },
    // WebFinger and registration against loopback hosts only: the fuzzer never names another host
    dynamic: { webfinger: true, registration: true, allowPrivateNetwork: true, allowInsecureRequests: true },
  }));
  rpApp.get('/me', requireAuth(), (req, res) => void res.json(req.oidc.user));
  rpT.server.on('request', rpApp);

  const browser = await signInVictim(rpT.origin);
  const rpCookie = browser.jar.header(`${rpT.origin}/me`).split('; ').find((c) => c.startsWith('sid='))!;
  const opCookie = browser.jar.header(`${issuer}/auth`).split('; ').filter((c) => !c.startsWith('sid=')).join('; ');
  const sessionId = /^s:([^.]+)\./.exec(decodeURIComponent(rpCookie.slice(4)))![1]!;
  const me = await (await fetch(`${rpT.origin}/me`, { headers: { cookie: rpCookie } })).json();
  const record = await readSession(rpStore, sessionId);
  const auth = record?.oidc?.auth;
  if (!auth?.accessToken || !auth.idToken || !auth.refreshToken) throw new Error('the victim has no tokens: the login did not ask for offline_access');

  const tokenRes = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${SERVICE_CLIENT.id}:${SERVICE_CLIENT.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  });
  const serviceToken = ((await tokenRes.json()) as { access_token?: string }).access_token;
  if (!serviceToken) throw new Error(`client credentials refused: ${tokenRes.status}`);

  const privateKey = keys.jwks.keys[0] as { d?: string; p?: string };
  const world: FuzzWorld = {
    op: { ...opT, issuer },
    rp: rpT,
    rpStore,
    victim: { rpCookie, opCookie, sessionId, me },
    interactions: await openInteractions(issuer, `${rpT.origin}/auth/callback/op`, 4),
    serviceToken,
    secrets: {
      'RP client secret': RP_CLIENT.secret,
      'service client secret': SERVICE_CLIENT.secret,
      'OP session secret': OP_SESSION_SECRET,
      'RP session secret': RP_SESSION_SECRET,
      'OP cookie key': keys.cookieKeys[0]!,
      'OP signing key (d)': privateKey.d!,
      'OP signing key (p)': privateKey.p!,
      'victim access token': auth.accessToken.value,
      'victim ID token': auth.idToken,
      'victim refresh token': auth.refreshToken,
      'victim RP session id': sessionId,
      'victim password': VICTIM.password,
    },
    close: async () => {
      await close(rpT.server);
      await close(opT.server);
    },
  };
  const atOp = await victimSignedInAtOp(world);
  if (atOp !== 'signed in') throw new Error(`the victim's OP session probe does not work before the run: ${atOp}`);
  return world;
}
