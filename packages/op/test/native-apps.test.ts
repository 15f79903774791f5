/**
 * Native apps (RFC 8252): a command-line or desktop app is a public client that receives the code
 * on a loopback listener it opens on whatever port is free. The OP matches a registered loopback IP
 * redirect URI on any port (§7.3), keeps the scheme, host and path exact, and lets a private-use
 * URI scheme through for mobile apps (§7.1). Driven by openid-client as the app, with PKCE.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { FormBrowser, signIn } from '../../../test/support/op-forms.js';
import { generateKeys, type OpClient } from '@openid-express/op';
import { ALICE, accounts, startOp, type RunningOp } from './support/op-server.js';

const NATIVE: OpClient = {
  client_id: 'cli', application_type: 'native', token_endpoint_auth_method: 'none',
  redirect_uris: ['http://127.0.0.1/callback', 'com.example.app:/oauth2redirect'],
};

describe('native apps (RFC 8252) against op()', () => {
  let running: RunningOp;
  let config: client.Configuration;

  beforeAll(async () => {
    running = await startOp(() => ({ accounts, clients: [NATIVE], ...generateKeys() }));
    config = await client.discovery(new URL(running.issuer), NATIVE.client_id, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  });

  afterAll(() => running.close());

  /** The app's loopback listener on a free port: resolves with the query the browser brought back. */
  async function loopback(): Promise<{ redirectUri: string; answer: Promise<URLSearchParams>; server: Server }> {
    let deliver!: (q: URLSearchParams) => void;
    const answer = new Promise<URLSearchParams>((resolve) => { deliver = resolve; });
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      res.end('You can close this window.');
      if (url.pathname === '/callback') deliver(url.searchParams);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, answer, server };
  }

  function authorizationUrl(redirectUri: string, verifier: string, state: string): Promise<URL> {
    return client.calculatePKCECodeChallenge(verifier).then((challenge) => client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid email', state, code_challenge: challenge, code_challenge_method: 'S256',
    }));
  }

  it('signs in through a loopback listener on a port chosen at run time, and exchanges the code with PKCE', async () => {
    const { redirectUri, answer, server } = await loopback();
    try {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const page = await signIn(new FormBrowser(), (await authorizationUrl(redirectUri, verifier, state)).href, { login: 'alice', password: ALICE.password });
      expect(page.url.startsWith(`${redirectUri}?`)).toBe(true);
      const query = await answer;
      const callback = new URL(`${redirectUri}?${query}`);
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri });
      expect(tokens.claims()?.sub).toBe(ALICE.id);
      const info = await client.fetchUserInfo(config, tokens.access_token, ALICE.id);
      expect(info.email).toBe(ALICE.claims.email);
    } finally {
      server.close();
    }
  });

  it('a public native client without PKCE is refused', async () => {
    const url = client.buildAuthorizationUrl(config, { redirect_uri: 'http://127.0.0.1:1234/callback', scope: 'openid', state: 's' });
    const page = await new FormBrowser({ stopAt: (u) => u.port === '1234' }).open(url.href);
    expect(page.stoppedAt).toBeDefined();
    const back = new URL(page.stoppedAt!).searchParams;
    expect([back.get('error'), back.get('error_description')]).toEqual(['invalid_request', expect.stringContaining('PKCE')]);
  });

  it.each([
    ['another path on the loopback address', 'http://127.0.0.1:4321/other'],
    ['localhost, which was not registered (RFC 8252 8.3: use the IP literal)', 'http://localhost:4321/callback'],
    ['https on the loopback address', 'https://127.0.0.1:4321/callback'],
    ['another loopback address than the registered one', 'http://127.0.0.2:4321/callback'],
    ['another private-use scheme', 'com.evil.app:/oauth2redirect'],
  ])('refuses %s: the OP shows an error page and sends nothing back', async (_name, redirectUri) => {
    const url = await authorizationUrl(redirectUri, client.randomPKCECodeVerifier(), 's');
    const page = await new FormBrowser({ stopAt: () => true }).open(url.href);
    expect(page.stoppedAt).toBeUndefined();
    expect(page.status).toBe(400);
    expect(page.html).toContain('redirect_uri');
  });

  it('a private-use URI scheme (a mobile app) gets the code', async () => {
    const redirectUri = 'com.example.app:/oauth2redirect';
    const url = await authorizationUrl(redirectUri, client.randomPKCECodeVerifier(), 'st');
    const browser = new FormBrowser({ stopAt: (u) => u.protocol === 'com.example.app:' });
    const page = await signIn(browser, url.href, { login: 'alice', password: ALICE.password });
    expect(page.stoppedAt?.startsWith(`${redirectUri}?code=`)).toBe(true);
    expect(new URL(page.stoppedAt!).searchParams.get('state')).toBe('st');
  });
});
