#!/usr/bin/env node
// Proof Key for Code Exchange, RFC 7636 (IdPyOIDC: demo/oauth2_add_on_pkce.py).
//
// The client makes a fresh code_verifier per login and sends only its S256 hash
// (code_challenge) with the authorization request; the token endpoint wants the verifier
// itself. A code intercepted on its way back is useless without it: the last step redeems a
// code with another verifier, and the OP refuses.
import { createHash, randomBytes } from 'node:crypto';
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-add-on-pkce',
  seed: 'oauth2_add_on_pkce.py',
  title: 'PKCE (RFC 7636)',
  shows: 'code_challenge S256 in the authorization request, code_verifier at the token endpoint; a wrong verifier is refused',

  // ================ Server side ===================================
  // op() options. IdPyOIDC: add_ons.pkce { code_challenge_length: 64, code_challenge_method: S256 };
  // ours: PKCE on every authorization request (pkce: 'always'), S256 only.
  server: ({ redirectUri }) => ({
    pkce: 'always',
    scopes: ['foobar'],
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: add_ons.pkce on the client. Ours: pkce is on by default (S256, a verifier per login).
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid foobar',
    pkce: true,
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the OP supports code_challenge_methods ${metadata.code_challenge_methods_supported}`, metadata.code_challenge_methods_supported?.includes('S256'));
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      const url = result.request.url;
      const challenge = createHash('sha256').update(result.request.transaction.codeVerifier).digest('base64url');
      s.note(`The code_verifier stays with the client (in the login's transaction): ${result.request.transaction.codeVerifier.slice(0, 10)}…`);
      s.check('code_challenge_method is S256', url.searchParams.get('code_challenge_method') === 'S256');
      s.check('code_challenge = BASE64URL(SHA-256(code_verifier))', url.searchParams.get('code_challenge') === challenge);
      return result;
    });

    await t.step('accesstoken', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      const sent = s.requests().find((r) => r.form?.grant_type === 'authorization_code');
      s.check('the token request carried the code_verifier', typeof sent?.form?.code_verifier === 'string');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      s.note('The OP hashed the code_verifier and compared it with the code_challenge of the code: it issued the tokens.');
      await s.jwt('id_token', auth.idToken, { audience: 'client' });
    });

    // Someone who intercepted a code (not the verifier, which never left the client) tries to redeem it.
    const second = await t.step('authorization', async (s) => authorize(t, s));

    await t.step('accesstoken (wrong code_verifier)', async (s) => {
      s.note('An attacker holds the code from the redirect but not the code_verifier: it redeems the code with one of its own.');
      const stolen = { ...second.request.transaction, codeVerifier: randomBytes(32).toString('base64url') };
      const err = await s.refused(t.relyingParty.finalize(stolen, second.request.state, second.response.params), 'invalid_grant', 'the token request with a code_verifier that does not match the code_challenge');
      s.check('no token was issued (the OP answered HTTP 400)', s.requests().length > 0 && s.responses().every((r) => r.status === 400));
      return err;
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
