import { signIn } from '../../../../test/support/op-forms.js';
import { ALICE } from './op-server.js';
import { aliceTokens, callbackOf, client, insecure, SECRET, useFlowFixture, type FlowFixture, type StoreFactory } from './flow-suite.js';

export type { StoreFactory } from './flow-suite.js';

/** The OP's happy paths, driven by openid-client through the real HTML forms. */
export function happyFlows(storeName: string, makeStore: StoreFactory): void {
  describe(`OP flows that succeed (${storeName} store)`, () => {
    let f: FlowFixture;
    useFlowFixture(makeStore, {}, (started) => { f = started; });

    test('discovery documents live under the mount and point at it', async () => {
      const meta = f.web.serverMetadata();
      expect(meta.issuer).toBe(f.op.issuer);
      expect(meta.authorization_endpoint).toBe(`${f.op.issuer}/auth`);
      expect(meta.code_challenge_methods_supported).toEqual(['S256']);
      expect(meta.pushed_authorization_request_endpoint).toBe(`${f.op.issuer}/request`);
      for (const url of [`${f.op.issuer}/.well-known/oauth-authorization-server`, `${f.op.origin}/.well-known/oauth-authorization-server/op`]) {
        const rfc8414 = await fetch(url);
        expect([url, rfc8414.status]).toEqual([url, 200]);
        const metadata = await rfc8414.json();
        expect(metadata.issuer).toBe(f.op.issuer);
        expect(metadata.token_endpoint).toBe(`${f.op.issuer}/token`);
      }
      const oauth2 = await client.discovery(new URL(f.op.issuer), 'service', SECRET, client.ClientSecretBasic(), { ...insecure, algorithm: 'oauth2' });
      expect(oauth2.serverMetadata().issuer).toBe(f.op.issuer);
      const jwks = await (await fetch(meta.jwks_uri!)).json();
      expect(jwks.keys.length).toBeGreaterThan(0);
      expect(jwks.keys.every((k: Record<string, unknown>) => k.d === undefined)).toBe(true);
    });

    test('alice signs in with her password, consents, and the client gets her tokens and claims', async () => {
      const tokens = await aliceTokens(f);
      const claims = tokens.claims()!;
      expect(claims.sub).toBe('alice');
      expect(claims.amr).toEqual(['pwd']);
      const info = await client.fetchUserInfo(f.web, tokens.access_token, 'alice');
      expect(info).toMatchObject({ sub: 'alice', name: ALICE.claims.name, email: ALICE.claims.email });
      expect(info.phone_number).toBeUndefined(); // the phone scope was not asked for
    });

    test('the consent screen names the client and the scopes in plain words, escaped', async () => {
      const auth = await f.authorization();
      const browser = f.browser();
      let page = await browser.open(auth.url);
      page = await browser.submit(page, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      expect(page.status).toBe(200);
      expect(page.html).toContain('Web &lt;App&gt;');
      expect(page.html).not.toContain('Web <App>');
      expect(page.html).toContain('See your email address');
      expect(page.html).toMatch(/<button type="submit"[^>]*>Allow<\/button>/);
    });

    test('prompt=consent asks again, listing what the request asks for', async () => {
      const browser = f.browser();
      callbackOf(await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password }));
      const again = await browser.open((await f.authorization(f.web, { prompt: 'consent', scope: 'openid email' })).url);
      expect(again.status).toBe(200);
      expect(again.html).toContain('See your email address');
      expect(again.html).toMatch(/<button type="submit"[^>]*>Allow<\/button>/);
    });

    test('a remembered grant skips both screens on the next authorization', async () => {
      const browser = f.browser();
      const first = await f.authorization();
      callbackOf(await signIn(browser, first.url, { login: 'alice', password: ALICE.password }));
      const again = await f.authorization();
      const page = await browser.open(again.url);
      const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), {
        pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce,
      });
      expect(tokens.claims()!.sub).toBe('alice');
    });

    test('a first-party client never shows the consent screen', async () => {
      const auth = await f.authorization(f.first);
      const browser = f.browser();
      const login = await browser.open(auth.url);
      const after = await browser.submit(login, { value: ['authenticator', 'password'] }, { login: 'alice', password: ALICE.password });
      expect(after.stoppedAt).toBeDefined();
      const tokens = await client.authorizationCodeGrant(f.first, new URL(after.stoppedAt!), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      expect(tokens.claims()!.sub).toBe('alice');
    });

    test('a public client\'s refresh token rotates, and the spent one no longer works', async () => {
      const tokens = await aliceTokens(f, f.pub, { scope: 'openid offline_access', prompt: 'consent' });
      expect(tokens.refresh_token).toBeDefined();
      const refreshed = await client.refreshTokenGrant(f.pub, tokens.refresh_token!);
      expect(refreshed.refresh_token).toBeDefined();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      await expect(client.refreshTokenGrant(f.pub, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    test('a confidential client\'s refresh token (bound to its authentication) survives a retry: a lost answer is not a replay', async () => {
      const tokens = await aliceTokens(f, f.web, { scope: 'openid offline_access', prompt: 'consent' });
      const lost = await client.refreshTokenGrant(f.web, tokens.refresh_token!); // the answer the client never read
      const retried = await client.refreshTokenGrant(f.web, tokens.refresh_token!);
      expect(retried.refresh_token).toBe(tokens.refresh_token);
      expect(lost.access_token).not.toBe(retried.access_token);
      expect((await client.fetchUserInfo(f.web, retried.access_token, 'alice')).sub).toBe('alice');
    });

    test('a service gets a token by client credentials; introspection sees it until it is revoked', async () => {
      const tokens = await client.clientCredentialsGrant(f.service, { scope: 'api:read' });
      const active = await client.tokenIntrospection(f.service, tokens.access_token);
      expect(active).toMatchObject({ active: true, client_id: 'service', scope: 'api:read' });
      await client.tokenRevocation(f.service, tokens.access_token);
      expect((await client.tokenIntrospection(f.service, tokens.access_token)).active).toBe(false);
    });

    test('a client registers itself with the initial access token, and only with it', async () => {
      const metadata = { redirect_uris: [`${f.op.origin}/cb`], client_name: 'Registered' };
      await expect(client.dynamicClientRegistration(new URL(f.op.issuer), metadata, undefined, insecure))
        .rejects.toBeDefined();
      const registered = await client.dynamicClientRegistration(new URL(f.op.issuer), metadata, client.ClientSecretBasic(),
        { ...insecure, initialAccessToken: 'let-me-register' });
      const { client_id: clientId } = registered.clientMetadata();
      expect(clientId).toEqual(expect.any(String));
      const tokens = await aliceTokens(f, registered);
      expect(tokens.claims()!.aud).toBe(clientId);
    });

    test('a pushed authorization request (PAR) signs alice in like a plain one', async () => {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = await client.buildAuthorizationUrlWithPAR(f.web, {
        redirect_uri: f.redirectUri, scope: 'openid email', state,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
      const page = await signIn(f.browser(), url.href, { login: 'alice', password: ALICE.password });
      const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.claims()!.sub).toBe('alice');
    });

    test('RP-initiated logout asks for confirmation, ends the OP session and returns to the client', async () => {
      const browser = f.browser();
      const auth = await f.authorization();
      const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
      const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      const endUrl = client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${f.op.origin}/bye`, state: 'st' });
      const confirm = await browser.open(endUrl.href);
      expect(confirm.status).toBe(200);
      expect(confirm.html).toContain('Yes, sign me out');
      const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
      expect(new URL(done.stoppedAt!).pathname).toBe('/bye');
      expect(new URL(done.stoppedAt!).searchParams.get('state')).toBe('st');
      const silent = await f.authorization(f.web, { prompt: 'none' });
      const answer = callbackOf(await browser.open(silent.url));
      expect(answer.searchParams.get('error')).toBe('login_required');
    });
  });
}
