#!/usr/bin/env node
// OpenID Connect code flow with userinfo (IdPyOIDC: demo/oidc_code.py).
//
// provider_info (discovery), the authorization request with scope openid profile email, the
// code traded for an ID token and an access token, then the userinfo endpoint with that token.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { halfHash, tokenResponse } from './lib/show.mjs';

export const story = defineStory({
  name: 'oidc-code',
  seed: 'oidc_code.py',
  title: 'OpenID Connect code flow with userinfo',
  shows: 'discovery, authorization, the ID token verified, userinfo',

  // ================ Server side ===================================
  // op() options (IdPyOIDC: oidc_server_conf.py): discovery, authorization, token, userinfo
  // endpoints; ID tokens signed RS256; claims released by scope (profile, email).
  server: ({ redirectUri }) => ({
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
      id_token_signed_response_alg: 'RS256',
    }],
  }),

  // ================ Client side ===================================
  // IdPyOIDC: oidc_client_conf.py (provider_info, authorization, accesstoken, userinfo services).
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid profile email',
    idTokenSignedResponseAlg: 'RS256',
    fetchUserInfo: false, // userinfo is a step of its own below (finalize() would call it itself)
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check(`the discovery document's issuer is the OP (${metadata.issuer})`, metadata.issuer === t.issuer);
      s.check('it names the userinfo endpoint and the jwks_uri', !!(metadata.userinfo_endpoint && metadata.jwks_uri));
    });

    const { request, response } = await t.step('authorization', async (s) => authorize(t, s));

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state and iss of the response, the ID token: signature by the OP\'s key, iss, aud, exp, iat, nonce');
      const claims = await s.jwt('id_token', login.idToken, { audience: 'client' });
      s.check(`id_token: nonce is the one sent (${claims.nonce?.slice(0, 10)}…)`, claims.nonce === request.transaction.nonce);
      if (claims.at_hash) s.check(`id_token: at_hash ${claims.at_hash} is the half hash of the access token`, claims.at_hash === halfHash(login.accessToken.value));
      return login;
    });

    await t.step('userinfo', async (s) => {
      const info = await t.relyingParty.userInfo(auth);
      s.rpVerified('relyingParty.userInfo()', 'the answer is JSON and its sub is the ID token\'s');
      s.check(`userinfo: sub ${info.sub} = the ID token's sub`, info.sub === auth.user.sub);
      s.check(`userinfo: name "${info.name}", email ${info.email} (scopes profile, email)`, info.name === t.alice.claims.name && info.email === t.alice.claims.email);
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
