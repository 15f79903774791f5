import * as client from 'openid-client';
import { memoryAdapter, type OpOptions } from '@openid-express/op';
import { FormBrowser, signIn } from '../../../../test/support/op-forms.js';
import { ALICE, accounts, startOp, type RunningOp } from './op-server.js';

export const SECRET = 'grant-secret-grant-secret';
export const API = 'https://api.example.com';
export const BACKEND = 'https://backend.example.com';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const insecure = { execute: [client.allowInsecureRequests] };

export interface GrantFixture {
  op: RunningOp;
  redirectUri: string;
  /** openid-client's view of a static client (client_secret_basic with SECRET, or `none`). */
  config(clientId: string, auth?: 'none'): Promise<client.Configuration>;
  /** A browser that stops at the client's callback; `ip` is sent as X-Forwarded-For (for an OP with trustProxy). */
  browser(ip?: string): FormBrowser;
  /** Signs alice in with the code flow (PKCE, state, nonce, consent allowed) with extra authorization parameters. */
  codeFlow(config: client.Configuration, params?: Record<string, string>): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers>;
}

/** A web client (code + refresh) at `${origin}/cb`, which every fixture has. */
export const webClient = (origin: string) => ({
  client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`], grant_types: ['authorization_code', 'refresh_token'],
});

/** An OP on a free port with a memory store and alice/bob; `options(origin)` adds clients and features. */
export async function startGrantOp(options: (origin: string) => Partial<OpOptions>): Promise<GrantFixture> {
  const op = await startOp((_issuer, origin) => ({ adapter: memoryAdapter(), accounts, ...options(origin) }));
  const issuer = new URL(op.issuer);
  const redirectUri = `${op.origin}/cb`;
  const browser = (ip?: string) => new FormBrowser({
    headers: ip ? { 'x-forwarded-for': ip } : {}, stopAt: (u: URL) => u.origin === op.origin && u.pathname === '/cb',
  });
  return {
    op, redirectUri, browser,
    config: (clientId, auth) => (auth === 'none'
      ? client.discovery(issuer, clientId, { token_endpoint_auth_method: 'none' }, client.None(), insecure)
      : client.discovery(issuer, clientId, SECRET, client.ClientSecretBasic(), insecure)),
    async codeFlow(config, params = {}) {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: 'openid', state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params,
      });
      const page = await signIn(browser(), url.href, { login: ALICE.username, password: ALICE.password });
      if (!page.stoppedAt) throw new Error(`no redirect to the client: ${page.status} ${page.html.slice(0, 300)}`);
      return client.authorizationCodeGrant(config, new URL(page.stoppedAt), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    },
  };
}

/** The OAuth error a rejected openid-client call carried (`error`, `error_description`, HTTP status). */
export async function oauthError(call: Promise<unknown>): Promise<{ error?: string; error_description?: string; status?: number }> {
  try {
    await call;
  } catch (err) {
    const e = err as { error?: string; error_description?: string; status?: number; cause?: { error?: string; error_description?: string } };
    return { error: e.error ?? e.cause?.error, error_description: e.error_description ?? e.cause?.error_description, status: e.status };
  }
  throw new Error('the call was not refused');
}

export { client };
