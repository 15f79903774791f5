#!/usr/bin/env node
// The claims request parameter, OIDC Core 5.5 (IdPyOIDC: demo/oidc_code_claims.py).
//
// With scope openid only, the client names the claims it wants and where: nickname in the ID
// token, name, email and email_verified from userinfo. The OP releases exactly those.
import { authorize, defineStory, runIfMain } from './lib/story.mjs';
import { tokenResponse } from './lib/show.mjs';

// IdPyOIDC: request_additions.authorization.claims
const CLAIMS = {
  id_token: { nickname: null },
  userinfo: { name: null, email: null, email_verified: null },
};

export const story = defineStory({
  name: 'oidc-code-claims',
  seed: 'oidc_code_claims.py',
  title: 'The claims request parameter',
  shows: 'claims asked by name: nickname in the ID token, name and email from userinfo (scope openid only)',

  // ================ Server side ===================================
  // op() options: features.claimsParameter (on by default; claims_parameter_supported).
  server: ({ redirectUri }) => ({
    features: { claimsParameter: true },
    clients: [{
      client_id: 'client',
      client_secret: 'SUPERhemligtlosenord',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      redirect_uris: [redirectUri],
    }],
  }),

  // ================ Client side ===================================
  client: () => ({
    clientId: 'client',
    clientSecret: 'SUPERhemligtlosenord',
    scope: 'openid',
    claims: CLAIMS, // sent as the claims parameter of every authorization request
    fetchUserInfo: false,
  }),

  // ==== And now for the protocol exchange sequence
  async flow(t) {
    await t.step('provider_info', async (s) => {
      const metadata = (await t.relyingParty.providerInfo(t.OP)).serverMetadata();
      s.check('the OP supports the claims parameter (claims_parameter_supported)', metadata.claims_parameter_supported === true);
    });

    const { request, response } = await t.step('authorization', async (s) => {
      const result = await authorize(t, s);
      s.check('the request carries the claims parameter as JSON', JSON.stringify(JSON.parse(result.request.url.searchParams.get('claims'))) === JSON.stringify(CLAIMS));
      return result;
    });

    const auth = await t.step('accesstoken', async (s) => {
      const login = await t.relyingParty.finalize(request.transaction, request.state, response.params);
      tokenResponse(s, login, 'relyingParty.finalize()');
      s.rpVerified('relyingParty.finalize()', 'state, iss, the ID token (signature, iss, aud, exp, nonce)');
      const claims = await s.jwt('id_token', login.idToken, { audience: 'client' });
      s.check(`id_token: nickname "${claims.nickname}", asked for it`, claims.nickname === t.alice.claims.nickname);
      s.check('id_token: no name or email (asked from userinfo, not here)', claims.name === undefined && claims.email === undefined);
      return login;
    });

    await t.step('userinfo', async (s) => {
      const info = await t.relyingParty.userInfo(auth);
      s.rpVerified('relyingParty.userInfo()', 'the answer is JSON and its sub is the ID token\'s');
      s.check(`userinfo: name "${info.name}", email ${info.email}, email_verified ${info.email_verified}`,
        info.name === t.alice.claims.name && info.email === t.alice.claims.email && info.email_verified === true);
      s.check(`userinfo: only sub and the claims asked for (${Object.keys(info).join(', ')})`,
        Object.keys(info).sort().join(' ') === 'email email_verified name sub');
    });
  },
});

export default story;
await runIfMain(import.meta.url, story);
