#!/usr/bin/env node
// Normal Code Flow (IdPyOIDC: demo/oauth2_code.py), RFC 6749 §4.1.
//
// The authorization code grant, for a confidential client: the user agent carries the
// authorization request to the OP, the user signs in and consents, the OP sends the code back
// to the client's redirect_uri; the client trades it at the token endpoint (client_secret_post).
// No PKCE here (see oauth2-pkce): the OP accepts that only from a confidential client whose
// OpenID Connect request carries a nonce.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oauth2-code',
  seed: 'oauth2_code.py',
  title: 'Normal code flow',
  shows: 'authorization request, a scripted sign-in and consent, the code traded at the token endpoint (client_secret_post)',

  // ================ Server side ===================================
  // op() options (IdPyOIDC: SERVER_CONF of oauth2_server_conf.py): an authorization and a token
  // endpoint; codes for one use, access tokens for 600 seconds.
  server: ({ redirectUri }) => ({
    scopes: ['foobar'],
    ttl: { AuthorizationCode: 600, AccessToken: 600 },
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      token_endpoint_auth_method: 'client_secret_post',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: oauth2_client_conf.py (metadata, authorization and access_token services).
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    tokenEndpointAuthMethod: 'client_secret_post',
    scope: 'openid foobar', // IdPyOIDC's Flow adds "openid" to every authorization request too
    pkce: false,
    fetchUserInfo: false, // the OAuth 2.0 stories stop at the token (oidc-code adds userinfo)
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('server_metadata', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the discovery document names the authorization and token endpoints', !!(metadata.authorization_endpoint && metadata.token_endpoint));
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      s.check('the authorization request carries no code_challenge (pkce: false)', !result.request.url.searchParams.has('code_challenge'));
      s.check('the response carries a code and the OP\'s iss (RFC 9207)', result.response.params.has('code') && result.response.params.get('iss') === t.issuer);
      return result;
    });

    await t.step('accesstoken', async (s) => {
      const auth = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, auth, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state and iss of the response, then the ID token: signature by the OP\'s key, iss, aud, exp, nonce');
      await s.jwt('id_token', auth.idToken, { audience: 'client' });
      s.check(`the access token is for scope "${auth.accessToken.scope}"`, auth.accessToken.scope === 'openid foobar');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
