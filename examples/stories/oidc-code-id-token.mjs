#!/usr/bin/env node
// Hybrid flow, response_type "code id_token" (IdPyOIDC: demo/oidc_code_id_token.py).
//
// The OP answers the authorization request with a code and an ID token at once (posted to the
// redirect_uri: form_post). The front-channel ID token's c_hash binds the code to it: the client
// checks it before it trades the code.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { halfHash, tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oidc-code-id-token',
  seed: 'oidc_code_id_token.py',
  title: 'Hybrid flow (code id_token)',
  shows: 'a code and an ID token from the authorization endpoint (form_post), c_hash checked, then the token endpoint',

  // ================ Server side ===================================
  // op() options: the client may use response_type "code id_token" (grant types
  // authorization_code and implicit).
  server: ({ redirectUri }) => ({
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code id_token'],
      grant_types: ['authorization_code', 'implicit'],
      redirect_uris: [redirectUri],
      // oidc-provider wants https redirect_uris of web clients that get tokens in the front channel;
      // the story's client lives on http://127.0.0.1, which a "native" client may use (RFC 8252 §7.3)
      application_type: 'native',
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: behaviour.response_types ["code id_token"]. Ours: responseType (form_post by default).
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid profile',
    responseType: 'code id_token',
    responseMode: 'form_post',
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP supports response_type "code id_token"', metadata.response_types_supported?.includes('code id_token'));
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      const code = result.response.params.get('code');
      const idToken = result.response.params.get('id_token');
      s.check('the OP posted the response (form_post) with a code and an ID token', result.response.method === 'POST' && !!code && !!idToken);
      const claims = await s.jwt('id_token (front channel)', idToken, { audience: 'client' });
      s.check(`id_token: c_hash ${claims.c_hash} = left half of SHA-256(code)`, claims.c_hash === halfHash(code));
      s.check('id_token: nonce is the one sent', claims.nonce === result.request.transaction.nonce);
      return result;
    });

    await t.step('accesstoken', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'the front-channel ID token (signature, iss, aud, exp, nonce, c_hash) before the code was traded, then the token response\'s ID token');
      const claims = await s.jwt('id_token', auth.idToken, { audience: 'client' });
      s.check(`both ID tokens are for the same user (${claims.sub})`, claims.sub === 'alice');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
