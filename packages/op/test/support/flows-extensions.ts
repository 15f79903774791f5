import { createRemoteJWKSet, decodeJwt, jwtVerify, SignJWT, generateKeyPair } from 'jose';
import { signIn } from '../../../../test/support/op-forms.js';
import { ALICE } from './op-server.js';
import { aliceTokens, callbackOf, client, useFlowFixture, type FlowFixture, type StoreFactory } from './flow-suite.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** JAR, DPoP and back-channel logout, with their refusals. */
export function extensionFlows(storeName: string, makeStore: StoreFactory): void {
  describe(`OP protocol extensions (${storeName} store)`, () => {
    let f: FlowFixture;
    useFlowFixture(makeStore, {}, (started) => { f = started; });

    let jar: Awaited<ReturnType<FlowFixture['registerJarClient']>>;
    beforeAll(async () => {
      jar = await f.registerJarClient();
    });

    const jarParams = async () => {
      const verifier = client.randomPKCECodeVerifier();
      return { verifier, state: client.randomState(), params: {
        redirect_uri: f.redirectUri, scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      } };
    };

    test('a signed request object (JAR) signs alice in', async () => {
      const { verifier, state, params } = await jarParams();
      const url = await client.buildAuthorizationUrlWithJAR(jar.config, { ...params, state }, jar.key);
      expect(url.searchParams.get('request')).toEqual(expect.any(String));
      const page = await signIn(f.browser(), url.href, { login: 'alice', password: ALICE.password });
      const tokens = await client.authorizationCodeGrant(jar.config, callbackOf(page), { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.claims()!.sub).toBe('alice');
    });

    test('a request object signed with another key is refused, and a plain request too', async () => {
      const { params } = await jarParams();
      const { privateKey } = await generateKeyPair('ES256');
      const clientId = jar.config.clientMetadata().client_id;
      const forged = await new SignJWT({ ...params, client_id: clientId, response_type: 'code' })
        .setProtectedHeader({ alg: 'ES256' }).setIssuer(clientId).setAudience(f.op.issuer).setIssuedAt().setExpirationTime('1m')
        .sign(privateKey);
      // no redirect_uri outside the forged object: nothing trustworthy to redirect to, so an error page at the OP
      const page = await f.browser().open(`${f.op.issuer}/auth?client_id=${clientId}&request=${forged}`);
      expect(page.stoppedAt).toBeUndefined();
      expect(page.status).toBe(400);
      expect(page.html).toContain('invalid_request_object');
      const withRedirect = await f.browser().open(`${f.op.issuer}/auth?client_id=${clientId}&redirect_uri=${encodeURIComponent(f.redirectUri)}&request=${forged}`);
      const refusal = callbackOf(withRedirect).searchParams;
      expect(refusal.get('error')).toBe('invalid_request_object');
      expect(refusal.get('code')).toBeNull();
      const plain = await f.browser().open(client.buildAuthorizationUrl(jar.config, params).href);
      expect(callbackOf(plain).searchParams.get('error_description')).toBe('Request Object must be used by this client');
    });

    test('DPoP binds the tokens to the client key; without the proof they are refused', async () => {
      const dpop = client.getDPoPHandle(f.web, await client.randomDPoPKeyPair());
      const auth = await f.authorization();
      const page = await signIn(f.browser(), auth.url, { login: 'alice', password: ALICE.password });
      const tokens = await client.authorizationCodeGrant(f.web, callbackOf(page), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      }, undefined, { DPoP: dpop });
      expect(tokens.token_type).toBe('dpop');
      await expect(client.fetchUserInfo(f.web, tokens.access_token, 'alice', { DPoP: dpop })).resolves.toMatchObject({ sub: 'alice' });
      const bearer = await fetch(`${f.op.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(bearer.status).toBe(401);
    });

    /** Alice signs in at the `bcl` client and out at the OP; the ID token's `sid`. */
    async function signInAndOut(): Promise<string> {
      const browser = f.browser();
      const auth = await f.authorization(f.bcl);
      const page = await signIn(browser, auth.url, { login: 'alice', password: ALICE.password });
      const tokens = await client.authorizationCodeGrant(f.bcl, callbackOf(page), {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      });
      const confirm = await browser.open(client.buildEndSessionUrl(f.bcl, {
        id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${f.op.origin}/bye` }).href);
      await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
      return tokens.claims()!.sid as string;
    }
    const delivered = async (before: number, ms: number) => {
      for (let i = 0; i < ms / 50 && f.logoutTokens.length === before; i += 1) await new Promise((r) => setTimeout(r, 50));
      return f.logoutTokens.slice(before);
    };

    test('logging out sends a signed logout token to the client back channel', async () => {
      const before = f.logoutTokens.length;
      const sid = await signInAndOut();
      const [token] = await delivered(before, 2000);
      const jwks = createRemoteJWKSet(new URL(f.bcl.serverMetadata().jwks_uri!));
      const { payload } = await jwtVerify(token!, jwks, { issuer: f.op.issuer, audience: 'bcl' });
      expect(payload.sub).toBe('alice');
      expect(payload.sid).toBe(sid);
      expect(payload.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
    });

    test('an app that answers 503 (restarting, its store stalled) gets the logout token again until it takes it: before, it was sent once and the app kept the user signed in', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        f.logoutFailures.push(503, 503);
        const before = f.logoutTokens.length;
        const started = Date.now();
        const sid = await signInAndOut();
        const [token] = await delivered(before, 8000);
        expect(Date.now() - started).toBeGreaterThan(3500); // after 1 s, then 3 s more
        expect(decodeJwt(token!)).toMatchObject({ sub: 'alice', sid });
        expect(f.logoutFailures).toEqual([]);
        expect(warn).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
      }
    });

    test('an app that refuses the logout token (400) is not sent it again, and the OP says so', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        f.logoutFailures.push(400);
        const before = f.logoutTokens.length;
        await signInAndOut();
        expect(await delivered(before, 1800)).toEqual([]);
        // what the app answered is said, and what to fix, not "check that it is reachable"
        await new Promise((r) => setTimeout(r, 100));
        expect(warn).toHaveBeenCalledWith(expect.stringMatching(/back-channel logout to client "bcl" .* was refused by the app: expected 200 OK .* got: 400 Bad Request \(invalid_logout_token: refused by the test app\)\. That app may still have the user signed in: fix what its answer names .*clocks of the OP and the app differ/));
      } finally {
        warn.mockRestore();
      }
    });

    test('a client that was not part of the session gets no logout token', async () => {
      const before = f.logoutTokens.length;
      const browser = f.browser();
      const tokens = await aliceTokens(f); // the web client only, in a new browser
      const confirm = await browser.open(client.buildEndSessionUrl(f.web, { id_token_hint: tokens.id_token! }).href);
      expect(confirm.status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect(f.logoutTokens.length).toBe(before);
    });
  });
}
