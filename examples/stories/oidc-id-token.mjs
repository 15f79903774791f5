#!/usr/bin/env node
// Implicit flow, response_type "id_token" (IdPyOIDC: demo/oidc_id_token.py).
//
// No code and no token endpoint: the OP answers with an ID token only, posted to the client's
// redirect_uri by an auto-submitting form (form_post). The user's claims are in the ID token.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse, userClaims } from './lib/show.mjs';

export const story = defineStory({
  name: 'oidc-id-token',
  seed: 'oidc_id_token.py',
  title: 'Implicit flow (id_token, form_post)',
  shows: 'an ID token only, posted to the redirect_uri (form_post), the claims inside it',

  // ================ Server side ===================================
  // op() options: the client may use response_type "id_token" (grant type implicit).
  server: ({ redirectUri }) => ({
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['id_token'],
      grant_types: ['implicit'],
      redirect_uris: [redirectUri],
      // oidc-provider wants https redirect_uris of web clients that get tokens in the front channel;
      // the story's client lives on http://127.0.0.1, which a "native" client may use (RFC 8252 §7.3)
      application_type: 'native',
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: behaviour.response_types ["id_token"], response_mode form_post.
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid profile email',
    responseType: 'id_token',
    responseMode: 'form_post',
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP supports response_type "id_token" and form_post', metadata.response_types_supported?.includes('id_token') && metadata.response_modes_supported?.includes('form_post'));
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      s.check('the request asks response_mode=form_post', result.request.url.searchParams.get('response_mode') === 'form_post');
      s.check('the OP\'s page posts an ID token and no code or access token', result.response.method === 'POST'
        && result.response.params.has('id_token') && !result.response.params.has('code') && !result.response.params.has('access_token'));
      return result;
    });

    await t.step('id_token', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.result('relyingParty.finalize()', { user: userClaims(auth) });
      s.rpVerified('relyingParty.finalize()', 'state, the ID token (signature, iss, aud, exp, iat, nonce)');
      const claims = await s.jwt('id_token', auth.idToken, { audience: 'client' });
      s.check('id_token: nonce is the one sent (required for the implicit flow)', claims.nonce === request.transaction.nonce);
      s.check(`id_token: the scope's claims are inside (name "${claims.name}", email ${claims.email})`, claims.name === t.alice.claims.name && claims.email === t.alice.claims.email);
      s.check('no access token: nothing to call an API with', !auth.accessToken);
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
