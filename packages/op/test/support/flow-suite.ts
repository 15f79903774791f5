import express from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import type { OpOptions, OpStore } from '@openid-express/op';
import { FormBrowser, signIn, type BrowserPage } from '../../../../test/support/op-forms.js';
import { ALICE, accounts, startOp, type RunningOp } from './op-server.js';

const insecure = { execute: [client.allowInsecureRequests] };
const SECRET = 'web-secret-web-secret';
/** The initial access token the fixture's registration endpoint wants. */
export const REGISTRATION_TOKEN = 'let-me-register';

export interface FlowFixture {
  op: RunningOp;
  web: client.Configuration;
  first: client.Configuration;
  service: client.Configuration;
  /**
   * A public client (`token_endpoint_auth_method: 'none'`, no secret) registered like `web`: same
   * redirect and post-logout URIs, code + refresh token. PKCE is always required of it.
   */
  pub: client.Configuration;
  /**
   * Registers (dynamically) a client that signs its authorization requests (JAR) with the returned key.
   * Dynamic because oidc-provider structuredClones static clients, which breaks its plain-object check
   * on `jwks` inside jest's VM realm (not in plain Node).
   */
  registerJarClient(): Promise<{ config: client.Configuration; key: CryptoKey }>;
  /** Registered for back-channel logout at `${origin}/backchannel`; what it received is in `logoutTokens`. */
  bcl: client.Configuration;
  logoutTokens: string[];
  /** Statuses the back channel answers its next deliveries with (a token answered so is not kept), then 200. */
  logoutFailures: number[];
  redirectUri: string;
  /** A browser that stops at the client's callback and logout pages; `ip` is sent as X-Forwarded-For. */
  browser(ip?: string): FormBrowser;
  /** A fresh PKCE + state + nonce authorization request of the `web` client. */
  authorization(config?: client.Configuration, extra?: Record<string, string>): Promise<Authorization>;
}

export interface Authorization {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

/** A store for one suite run, and how to let it go. */
export type StoreFactory = () => Promise<{ store: OpStore; close(): Promise<void> }>;

/**
 * In a describe block: starts a flow fixture over a fresh store before the tests (handing both to
 * `started`) and stops the OP and the store after them.
 */
export function useFlowFixture(
  makeStore: StoreFactory, extra: Partial<OpOptions>, started: (f: FlowFixture, store: OpStore) => void,
): void {
  let f: FlowFixture | undefined;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const made = await makeStore();
    close = made.close;
    f = await startFlowFixture(made.store, extra);
    started(f, made.store);
  });
  afterAll(async () => {
    await f?.op.close();
    await close?.();
  });
}

/** Starts an OP over `store` with the clients every flow test uses. */
export async function startFlowFixture(
  store: OpStore, extra: Partial<OpOptions> = {}, setup: Parameters<typeof startOp>[1] = {},
): Promise<FlowFixture> {
  const logoutTokens: string[] = [];
  const logoutFailures: number[] = [];
  const op = await startOp((_issuer: string, origin: string) => ({
    adapter: store,
    accounts,
    scopes: ['api:read'],
    features: { clientCredentials: true, registration: { initialAccessToken: REGISTRATION_TOKEN } },
    clients: [
      { client_id: 'web', client_secret: SECRET, client_name: 'Web <App>', redirect_uris: [`${origin}/cb`],
        post_logout_redirect_uris: [`${origin}/bye`], grant_types: ['authorization_code', 'refresh_token'] },
      { client_id: 'first', client_secret: SECRET, redirect_uris: [`${origin}/cb`], firstParty: true },
      { client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [],
        redirect_uris: [], scope: 'api:read' },
      { client_id: 'bcl', client_secret: SECRET, redirect_uris: [`${origin}/cb`], post_logout_redirect_uris: [`${origin}/bye`],
        backchannel_logout_uri: `${origin}/backchannel`, backchannel_logout_session_required: true },
      { client_id: 'pub', token_endpoint_auth_method: 'none', redirect_uris: [`${origin}/cb`],
        post_logout_redirect_uris: [`${origin}/bye`], grant_types: ['authorization_code', 'refresh_token'] },
    ],
    ...extra,
  }), {
    ...setup,
    beforeOp: (app) => {
      app.post('/backchannel', express.urlencoded({ extended: false }), (req, res) => {
        const failure = logoutFailures.shift();
        if (failure) {
          // a refusal says why, as rp() does; other failures have no body
          if (failure < 500) return void res.status(failure).json({ error: 'invalid_logout_token', error_description: 'refused by the test app' });
          return void res.status(failure).end();
        }
        logoutTokens.push(String(req.body.logout_token));
        res.status(200).end();
      });
      setup.beforeOp?.(app);
    },
  });
  const issuer = new URL(op.issuer);
  const discover = (id: string) => client.discovery(issuer, id, SECRET, client.ClientSecretBasic(), insecure);
  const [web, first, service, bcl] = await Promise.all(['web', 'first', 'service', 'bcl'].map(discover));
  const pub = await client.discovery(issuer, 'pub', { token_endpoint_auth_method: 'none' }, client.None(), insecure);
  const redirectUri = `${op.origin}/cb`;
  return {
    op, web: web!, first: first!, service: service!, bcl: bcl!, pub, logoutTokens, logoutFailures, redirectUri,
    async registerJarClient() {
      const keys = await generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await exportJWK(keys.publicKey)), alg: 'ES256', use: 'sig' };
      const config = await client.dynamicClientRegistration(issuer, {
        redirect_uris: [`${op.origin}/cb`], jwks: { keys: [jwk] }, request_object_signing_alg: 'ES256', require_signed_request_object: true,
      }, client.ClientSecretBasic(), { ...insecure, initialAccessToken: REGISTRATION_TOKEN });
      return { config, key: keys.privateKey };
    },
    browser: (ip?: string) => new FormBrowser({ headers: ip ? { 'x-forwarded-for': ip } : {}, stopAt: (u: URL) => u.origin === op.origin && (u.pathname === '/cb' || u.pathname === '/bye') }),
    async authorization(config = web, extra = {}) {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: 'openid profile email', state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
      });
      return { url: url.href, verifier, state, nonce };
    },
  };
}

/** The callback URL a walk stopped at; fails the test with the page when it did not get there. */
export function callbackOf(page: BrowserPage): URL {
  if (!page.stoppedAt) throw new Error(`expected a redirect to the client, got ${page.status} at ${page.url}: ${page.html.slice(0, 400)}`);
  return new URL(page.stoppedAt);
}

/** Signs alice in through the forms and exchanges the code. */
export async function aliceTokens(f: FlowFixture, config = f.web, extra: Record<string, string> = {}) {
  const auth = await f.authorization(config, extra);
  const page = await signIn(f.browser(), auth.url, { login: ALICE.username, password: ALICE.password });
  return client.authorizationCodeGrant(config, callbackOf(page), {
    pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
  });
}

/**
 * Signs alice in with a fresh browser, then signs her out through the confirmation page: a post with a
 * guessed CSRF token is refused (403) first, then the page's own form signs her out.
 */
export async function signInThenOutChecked(f: FlowFixture): Promise<void> {
  const browser = f.browser();
  await signIn(browser, (await f.authorization()).url, { login: ALICE.username, password: ALICE.password });
  const confirm = await browser.open(`${f.op.issuer}/session/end`);
  const forged = await browser.post(`${f.op.issuer}/session/end/confirm`, { ...browser.form(confirm, { id: 'op.logoutForm' }).fields, csrf: 'guessed', logout: 'yes' });
  expect(forged.status).toBe(403);
  const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
  expect(done.html).toContain('<h1>Signed out</h1>');
}

export { client, insecure, SECRET };

/** What openid-client's rejection carried: HTTP status and OAuth error (from the answer itself when openid-client kept it as the cause). */
export async function refusal(call: Promise<unknown>): Promise<{ status?: number; error?: string; retryAfter?: string | null }> {
  try {
    await call;
  } catch (err) {
    const e = err as { status?: number; error?: string; cause?: unknown };
    if (e.cause instanceof Response) {
      const body = await e.cause.json().catch(() => ({})) as { error?: string };
      return { status: e.cause.status, error: body.error, retryAfter: e.cause.headers.get('retry-after') };
    }
    return { status: e.status, error: e.error ?? (e.cause as { error?: string } | undefined)?.error };
  }
  throw new Error('the call was not refused');
}
